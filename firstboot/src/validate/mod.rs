//! Properties → [`ValidatedConfig`], or every problem at once.
//!
//! Each rule of `docs/validation.md` produces a [`Finding`] naming the wizard label and the key,
//! what was given and what is expected. "Missing", empty and `null` mean the same: not set;
//! unset properties take the default of the appliance definition. The type and qualifiers the
//! definition declares for a property (`MinLen(6) MaxLen(128)`, `MinValue(1) MaxValue(65535)`)
//! are enforced as declared: the definition is the one place they live.
//!
//! One module per property group, each adding its rules to one shared context (`Ctx`: the
//! environment, the definition's facts, the findings): `appliance` (passwords, SSH, the
//! supplied CA), `network` (host name, DNS, NICs, gateways, routes), `loadbalance` (virtual IP
//! ranges, Data Plane API), `ha` (the HA pair: peer, management VIP, VRRP router id, role,
//! shared secret). A new group is a new module and one call in `run`.

mod addresses;
mod appliance;
mod context;
mod declared;
mod ha;
pub mod keys;
mod loadbalance;
mod network;

use std::fmt;

use crate::config::{Deployment, ValidatedConfig};
use crate::definition::ApplianceFacts;
use crate::env::Environment;

use context::Ctx;
pub use network::{HOSTS_NAMES, is_rfc1123_hostname};

/// One problem or warning about one property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `class.key`.
    pub key: String,
    /// Wizard label without numbering, e.g. `Workload IP`.
    pub label: String,
    /// What was given and what is expected.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.label, self.key, self.message)
    }
}

/// A configuration that passed every rule, with the warnings found on the way.
#[derive(Clone, Debug)]
pub struct Valid {
    pub config: ValidatedConfig,
    pub warnings: Vec<Finding>,
}

/// Every problem found (never empty), and the warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub problems: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// Problems listed per property; a huge value could otherwise produce millions of lines.
pub const PROBLEMS_SHOWN_PER_PROPERTY: usize = 5;

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{n} problem{} in the vApp properties:",
            if n == 1 { "" } else { "s" }
        )?;
        // (first finding of the property, number of findings)
        let mut shown: Vec<(&Finding, usize)> = Vec::new();
        for p in &self.problems {
            let count = match shown.iter_mut().find(|(first, _)| first.key == p.key) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    shown.push((p, 1));
                    1
                }
            };
            if count <= PROBLEMS_SHOWN_PER_PROPERTY {
                writeln!(f, "  - {p}")?;
            }
        }
        for (first, n) in shown {
            if let Some(more) = n
                .checked_sub(PROBLEMS_SHOWN_PER_PROPERTY)
                .filter(|m| *m > 0)
            {
                let (label, key) = (&first.label, &first.key);
                let s = if more == 1 { "" } else { "s" };
                writeln!(f, "  - {label} ({key}): {more} more problem{s} like these")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Validate the environment's properties for the given deployment, against the rules and
/// defaults of `facts` (the built-in appliance definition: [`crate::definition::appliance`]).
pub fn validate(
    env: &Environment,
    deployment: Deployment,
    facts: &ApplianceFacts,
) -> Result<Valid, Invalid> {
    let mut ctx = Ctx::new(env, facts);
    let config = run(&mut ctx, deployment);
    match config {
        Some(config) if ctx.problems.is_empty() => Ok(Valid {
            config,
            warnings: ctx.warnings,
        }),
        _ => Err(Invalid {
            problems: ctx.problems,
            warnings: ctx.warnings,
        }),
    }
}

/// Every group's rules, in the order their findings are listed.
fn run(ctx: &mut Ctx<'_>, deployment: Deployment) -> Option<ValidatedConfig> {
    ctx.environment_keys();
    let access = appliance::access(ctx);
    let network = network::check(ctx, deployment);
    let lb = loadbalance::check(ctx, &network);
    let ca = appliance::ca(ctx);
    let ha = ha::check(ctx, &network, lb.ranges.as_deref());
    Some(ValidatedConfig {
        deployment,
        hostname: network.hostname?,
        nameservers: network.nameservers?,
        management: network.management.addressing(),
        workload: network.workload.addressing(),
        additional_workload_networks: network.additional?,
        frontend: network.frontend.as_ref().map(network::Iface::addressing),
        lb_ranges: lb.ranges?,
        dataplane_port: lb.dataplane_port?,
        haproxy_user: lb.haproxy_user?,
        haproxy_password: lb.haproxy_password?,
        root_password: access.root_password?,
        permit_root_login: access.permit_root_login?,
        ca: ca?,
        ha: ha?,
        nics: ctx.facts.nics.clone(),
    })
}
