//! The effective configuration as `Label (key): value` lines, secrets masked and load-balancer
//! ranges written as the CIDRs that will be routed. Used by `check` and by `apply`'s log.

use std::fmt::Write as _;

use crate::config::{Addressing, Deployment, ValidatedConfig};
use crate::definition::ApplianceFacts;
use crate::ranges::CidrList;
use crate::validate::keys::*;

/// What a masked secret looks like.
pub const MASK: &str = "********";

/// One line of the effective configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub key: &'static str,
    pub label: String,
    pub value: String,
}

/// Every property first boot understands, with its effective value, labelled as `facts`
/// (the definition validated against) name them.
pub fn lines(facts: &ApplianceFacts, config: &ValidatedConfig) -> Vec<Line> {
    let mut out = Vec::new();
    let mut push = |key: &'static str, value: String| {
        out.push(Line {
            key,
            label: facts.label(key),
            value,
        });
    };
    push(ROOT_PWD, MASK.into());
    push(PERMIT_ROOT_LOGIN, config.permit_root_login().to_string());
    match config.ca() {
        Some(ca) => {
            let n = ca
                .cert_chain_pem()
                .matches("-----BEGIN CERTIFICATE-----")
                .count();
            let subject = openssl::x509::X509::from_pem(ca.cert_chain_pem().as_bytes())
                .map(|c| crate::pem::subject(&c))
                .unwrap_or_default();
            push(
                CA_CERT,
                format!(
                    "supplied CA {subject} ({n} certificate{})",
                    if n == 1 { "" } else { "s" }
                ),
            );
            push(CA_CERT_KEY, format!("{MASK} (matches the CA certificate)"));
        }
        None => {
            push(
                CA_CERT,
                "not set: a self-signed CA is generated at first boot".into(),
            );
            push(CA_CERT_KEY, "not set".into());
        }
    }
    push(HOSTNAME, config.hostname().to_owned());
    push(NAMESERVERS, join(config.nameservers()));
    let (ip, gw) = addressing(config.management());
    push(MANAGEMENT_IP, ip);
    push(MANAGEMENT_GATEWAY, gw);
    let (ip, gw) = addressing(config.workload());
    push(WORKLOAD_IP, ip);
    push(WORKLOAD_GATEWAY, gw);
    push(
        ADDITIONAL_WORKLOAD_NETWORKS,
        if config.additional_workload_networks().is_empty() {
            "none".into()
        } else {
            CidrList(config.additional_workload_networks()).to_string()
        },
    );
    match (config.deployment(), config.frontend()) {
        (Deployment::Frontend, Some(fe)) => {
            let (ip, gw) = addressing(fe);
            push(FRONTEND_IP, ip);
            push(FRONTEND_GATEWAY, gw);
        }
        _ => {
            push(FRONTEND_IP, "not used (Default configuration)".into());
            push(FRONTEND_GATEWAY, "not used (Default configuration)".into());
        }
    }
    push(SERVICE_IP_RANGE, CidrList(config.lb_ranges()).to_string());
    push(DATAPLANE_PORT, config.dataplane_port().to_string());
    push(HAPROXY_USER, config.haproxy_user().to_owned());
    push(HAPROXY_PWD, MASK.into());
    out.extend(ha_lines(facts, config));
    out
}

/// The HA group: the pair's settings, or that the appliance runs alone.
fn ha_lines(facts: &ApplianceFacts, config: &ValidatedConfig) -> Vec<Line> {
    let values: [(&'static str, String); 5] = match config.ha() {
        Some(ha) => [
            (HA_PEER_IP, ha.peer().to_string()),
            (
                HA_MANAGEMENT_VIP,
                format!("{}/{}", ha.vip(), ha.node().prefix()),
            ),
            (HA_ROUTER_ID, ha.router_id().to_string()),
            (
                HA_ROLE,
                format!(
                    "{} (VRRP priority {})",
                    ha.role().id(),
                    ha.role().priority()
                ),
            ),
            (HA_SHARED_SECRET, MASK.into()),
        ],
        None => {
            let unused = || "not used (single appliance)".to_string();
            [
                (HA_PEER_IP, "not set: a single appliance, no HA pair".into()),
                (HA_MANAGEMENT_VIP, "not set".into()),
                (HA_ROUTER_ID, unused()),
                (HA_ROLE, unused()),
                (HA_SHARED_SECRET, unused()),
            ]
        }
    };
    values
        .into_iter()
        .map(|(key, value)| Line {
            key,
            label: facts.label(key),
            value,
        })
        .collect()
}

/// The lines as text, one `Label (key): value` per line.
pub fn text(facts: &ApplianceFacts, config: &ValidatedConfig) -> String {
    let lines = lines(facts, config);
    let width = lines
        .iter()
        .map(|l| l.label.chars().count() + l.key.len() + 5)
        .max()
        .unwrap_or(0);
    let mut s = String::new();
    for l in lines {
        let head = format!("{} ({}):", l.label, l.key);
        let _ = writeln!(s, "{head:<width$}{}", l.value);
    }
    s
}

fn addressing(a: &Addressing) -> (String, String) {
    match a {
        Addressing::Dhcp => ("DHCP".into(), "from the DHCP lease".into()),
        Addressing::Static { address, gateway } => (
            address.to_string(),
            gateway.map_or_else(|| "none".to_owned(), |g| g.to_string()),
        ),
    }
}

fn join(ips: &[std::net::Ipv4Addr]) -> String {
    if ips.is_empty() {
        return "none".into();
    }
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
