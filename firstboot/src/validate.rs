//! Properties → [`ValidatedConfig`], or every problem at once.
//!
//! Each rule of `docs/validation.md` produces a [`Finding`] naming the wizard label and the key,
//! what was given and what is expected. "Missing", empty and `null` mean the same: not set;
//! unset properties take the default of the appliance definition.

use std::fmt;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use openssl::asn1::Asn1Time;
use openssl::pkey::Id;
use openssl::x509::{X509, X509KeyUsage};

use crate::config::{Addressing, CaMaterial, Deployment, Secret, ValidatedConfig};
use crate::definition::{self, Definition};
use crate::env::Environment;
use crate::pem;
use crate::quote;
use crate::ranges::{self, RangeItem};
use crate::tls;

/// The property keys first boot reads (`class.key`).
pub mod keys {
    pub const ROOT_PWD: &str = "appliance.root_pwd";
    pub const PERMIT_ROOT_LOGIN: &str = "appliance.permit_root_login";
    pub const CA_CERT: &str = "appliance.ca_cert";
    pub const CA_CERT_KEY: &str = "appliance.ca_cert_key";
    pub const HOSTNAME: &str = "network.hostname";
    pub const NAMESERVERS: &str = "network.nameservers";
    pub const MANAGEMENT_IP: &str = "network.management_ip";
    pub const MANAGEMENT_GATEWAY: &str = "network.management_gateway";
    pub const WORKLOAD_IP: &str = "network.workload_ip";
    pub const WORKLOAD_GATEWAY: &str = "network.workload_gateway";
    pub const ADDITIONAL_WORKLOAD_NETWORKS: &str = "network.additional_workload_networks";
    pub const FRONTEND_IP: &str = "network.frontend_ip";
    pub const FRONTEND_GATEWAY: &str = "network.frontend_gateway";
    pub const SERVICE_IP_RANGE: &str = "loadbalance.service_ip_range";
    pub const DATAPLANE_PORT: &str = "loadbalance.dataplane_port";
    pub const HAPROXY_USER: &str = "loadbalance.haproxy_user";
    pub const HAPROXY_PWD: &str = "loadbalance.haproxy_pwd";

    /// Every user-configurable key first boot understands.
    pub const ALL: &[&str] = &[
        ROOT_PWD,
        PERMIT_ROOT_LOGIN,
        CA_CERT,
        CA_CERT_KEY,
        HOSTNAME,
        NAMESERVERS,
        MANAGEMENT_IP,
        MANAGEMENT_GATEWAY,
        WORKLOAD_IP,
        WORKLOAD_GATEWAY,
        ADDITIONAL_WORKLOAD_NETWORKS,
        FRONTEND_IP,
        FRONTEND_GATEWAY,
        SERVICE_IP_RANGE,
        DATAPLANE_PORT,
        HAPROXY_USER,
        HAPROXY_PWD,
    ];
}

use keys::*;

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
        let mut shown: Vec<(&str, usize)> = Vec::new();
        for p in &self.problems {
            let count = match shown.iter_mut().find(|(k, _)| *k == p.key) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    shown.push((&p.key, 1));
                    1
                }
            };
            if count <= PROBLEMS_SHOWN_PER_PROPERTY {
                writeln!(f, "  - {p}")?;
            }
        }
        for (key, n) in shown {
            if let Some(more) = n
                .checked_sub(PROBLEMS_SHOWN_PER_PROPERTY)
                .filter(|m| *m > 0)
            {
                let label = definition::appliance().label(key);
                let s = if more == 1 { "" } else { "s" };
                writeln!(f, "  - {label} ({key}): {more} more problem{s} like these")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// Validate the environment's properties for the given deployment.
pub fn validate(env: &Environment, deployment: Deployment) -> Result<Valid, Invalid> {
    let mut v = Validator {
        env,
        def: definition::appliance(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let config = v.run(deployment);
    match config {
        Some(config) if v.problems.is_empty() => Ok(Valid {
            config,
            warnings: v.warnings,
        }),
        _ => Err(Invalid {
            problems: v.problems,
            warnings: v.warnings,
        }),
    }
}

struct Validator<'a> {
    env: &'a Environment,
    def: &'a Definition,
    problems: Vec<Finding>,
    warnings: Vec<Finding>,
}

/// An interface's address as given, before cross-checks.
struct Iface {
    ip_key: &'static str,
    gw_key: &'static str,
    address: Option<Ipv4Network>,
    gateway: Option<Ipv4Addr>,
}

impl Validator<'_> {
    fn finding(&self, key: &str, message: String) -> Finding {
        Finding {
            key: key.to_owned(),
            label: self.def.label(key),
            message,
        }
    }

    fn problem(&mut self, key: &str, message: impl Into<String>) {
        let f = self.finding(key, message.into());
        self.problems.push(f);
    }

    fn warn(&mut self, key: &str, message: impl Into<String>) {
        let f = self.finding(key, message.into());
        self.warnings.push(f);
    }

    /// `Label (key)` of another property, for cross-references in messages.
    fn refer(&self, key: &str) -> String {
        format!("{} ({key})", self.def.label(key))
    }

    /// The value as given, `None` when missing, empty (after trimming) or `null`.
    fn given(&self, key: &str) -> Option<&str> {
        let v = self.env.get(key)?;
        let t = v.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("null") {
            None
        } else {
            Some(v)
        }
    }

    /// Trimmed value, or the definition's default.
    fn value(&self, key: &str) -> Option<String> {
        match self.given(key) {
            Some(v) => Some(v.trim().to_owned()),
            None => self
                .def
                .default(key)
                .filter(|d| !d.trim().is_empty())
                .map(|d| d.trim().to_owned()),
        }
    }

    fn run(&mut self, deployment: Deployment) -> Option<ValidatedConfig> {
        // vSphere compares keys exactly; a near miss is almost certainly a typo in automation.
        for p in &self.env.properties {
            if !ALL.contains(&p.key.as_str())
                && let Some(known) = ALL.iter().find(|k| k.eq_ignore_ascii_case(p.key.trim()))
            {
                let given = p.key.clone();
                self.warn(
                    known,
                    format!(
                        "the environment has {}, which is ignored: property keys are \
                         case-sensitive; expected {known}",
                        quote::value(&given)
                    ),
                );
            }
        }
        for dup in self.env.duplicates() {
            if ALL.contains(&dup) {
                self.problem(
                    dup,
                    "appears more than once in the environment; expected it once",
                );
            }
        }

        let root_password = self.password(ROOT_PWD);
        let permit_root_login = self.boolean(PERMIT_ROOT_LOGIN);
        let hostname = self.hostname();
        let nameservers = self.nameservers();

        let mut management = self.iface(MANAGEMENT_IP, MANAGEMENT_GATEWAY, "192.168.0.2/24");
        let mut workload = self.iface(WORKLOAD_IP, WORKLOAD_GATEWAY, "192.168.10.2/24");
        let mut frontend = match deployment {
            Deployment::Frontend => {
                Some(self.iface(FRONTEND_IP, FRONTEND_GATEWAY, "192.168.100.2/24"))
            }
            Deployment::Default => {
                for key in [FRONTEND_IP, FRONTEND_GATEWAY] {
                    if let Some(v) = self.given(key) {
                        let v = v.trim().to_owned();
                        self.warn(
                            key,
                            format!(
                                "{} is ignored: the VM is deployed in the Default configuration, \
                                 which has no frontend network",
                                quote::property(key, &v)
                            ),
                        );
                    }
                }
                None
            }
        };

        // Gateways: required where an interface is static and the deployment needs them;
        // ignored (with a warning) on DHCP interfaces.
        self.gateway_rules(
            &mut management,
            true,
            "it is the appliance's default gateway",
        );
        let frontend_mode = deployment == Deployment::Frontend;
        self.gateway_rules(
            &mut workload,
            frontend_mode,
            "the Frontend Network configuration does not work without it",
        );
        if let Some(fe) = frontend.as_mut() {
            self.gateway_rules(
                fe,
                true,
                "the Frontend Network configuration does not work without it",
            );
        }
        if self.given(MANAGEMENT_IP).is_none() {
            self.warn(
                MANAGEMENT_IP,
                "not set: the management NIC uses DHCP; its address must never change (use a DHCP \
                 reservation), because the Supervisor reaches the Data Plane API there",
            );
        }

        let ifaces: Vec<&Iface> = [Some(&management), Some(&workload), frontend.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        self.shared_subnet_warning(&management, &workload, "workload");
        if let Some(fe) = frontend.as_ref() {
            self.shared_subnet_warning(&management, fe, "frontend");
        }
        self.appliance_address_checks(&ifaces, &nameservers);
        let additional = self.additional_networks(&workload, &management, &nameservers);
        let (lb_items, lb_ok) = self.lb_ranges();
        self.lb_cross_checks(&lb_items, &ifaces, &nameservers, &additional);
        let lb = lb_ok.then_some(lb_items);

        let dataplane_port = self.port();
        let haproxy_user = self.user();
        let haproxy_password = self.password(HAPROXY_PWD);
        let ca = self.ca();

        Some(ValidatedConfig {
            deployment,
            hostname: hostname?,
            nameservers: nameservers?,
            management: addressing(&management),
            workload: addressing(&workload),
            additional_workload_networks: additional?,
            frontend: frontend.as_ref().map(addressing),
            lb_ranges: lb?.into_iter().flat_map(|r| r.cidrs).collect(),
            dataplane_port: dataplane_port?,
            haproxy_user: haproxy_user?,
            haproxy_password: haproxy_password?,
            root_password: root_password?,
            permit_root_login: permit_root_login?,
            ca: ca?,
        })
    }

    fn password(&mut self, key: &str) -> Option<Secret> {
        let Some(pw) = self.given(key).map(str::to_owned) else {
            self.problem(key, "not set; expected a password of 6 to 128 characters");
            return None;
        };
        let n = pw.chars().count();
        if !(6..=128).contains(&n) {
            self.problem(
                key,
                format!(
                    "is {n} character{} long; expected 6 to 128 characters",
                    if n == 1 { "" } else { "s" }
                ),
            );
            return None;
        }
        if pw.chars().any(char::is_control) {
            self.problem(
                key,
                "contains a control character (line break, tab, …); expected printable characters",
            );
            return None;
        }
        Some(Secret(pw))
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        let v = self.value(key).unwrap_or_default();
        if v.eq_ignore_ascii_case("true") {
            Some(true)
        } else if v.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.problem(
                key,
                format!(
                    "{} is not a boolean; expected true or false",
                    quote::property(key, &v)
                ),
            );
            None
        }
    }

    fn hostname(&mut self) -> Option<String> {
        let Some(h) = self.value(HOSTNAME) else {
            self.problem(
                HOSTNAME,
                "not set; expected a host name or FQDN, e.g. haproxy.local",
            );
            return None;
        };
        if HOSTS_NAMES.iter().any(|n| n.eq_ignore_ascii_case(&h)) {
            self.problem(
                HOSTNAME,
                format!(
                    "{} is already in /etc/hosts for a loopback or multicast address; \
                     expected the appliance's own name, e.g. haproxy.local",
                    crate::quote::value(&h)
                ),
            );
            None
        } else if is_rfc1123_hostname(&h) {
            Some(h)
        } else {
            self.problem(
                HOSTNAME,
                format!(
                    "{} is not a valid host name; expected dot-separated labels of 1 to 63 \
                     letters, digits and hyphens, not starting or ending with a hyphen, at most \
                     253 characters (RFC 1123)",
                    quote::property(HOSTNAME, &h)
                ),
            );
            None
        }
    }

    fn nameservers(&mut self) -> Option<Vec<Ipv4Addr>> {
        let v = self.value(NAMESERVERS).unwrap_or_default();
        let items: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut out = Vec::new();
        let mut ok = true;
        for item in &items {
            match ranges::parse_ip(item) {
                Some(ip) => match reserved_block(ip) {
                    Some((block, what)) => {
                        ok = false;
                        self.problem(
                            NAMESERVERS,
                            format!(
                                "{ip} is in {block} ({what}); expected the address of a DNS \
                                 server the appliance can reach, e.g. 1.1.1.1"
                            ),
                        );
                    }
                    None => out.push(ip),
                },
                None => {
                    ok = false;
                    self.problem(
                        NAMESERVERS,
                        format!(
                            "{} is not an IPv4 address; expected comma-separated IPv4 \
                             addresses, e.g. 1.1.1.1, 1.0.0.1",
                            quote::property(NAMESERVERS, item)
                        ),
                    );
                }
            }
        }
        if items.len() > 3 {
            ok = false;
            self.problem(
                NAMESERVERS,
                format!(
                    "lists {} servers: {}; expected at most three",
                    items.len(),
                    quote::property(NAMESERVERS, &items.join(", "))
                ),
            );
        }
        ok.then_some(out)
    }

    /// Parse an interface's IP (with prefix) and gateway; problems are recorded, and what
    /// could be parsed is kept for the cross-checks.
    fn iface(&mut self, ip_key: &'static str, gw_key: &'static str, example: &str) -> Iface {
        let address = self
            .value(ip_key)
            .and_then(|v| self.host_cidr(ip_key, &v, example));
        let gateway = self.value(gw_key).and_then(|v| {
            let example_gw = example
                .split('/')
                .next()
                .and_then(|ip| ip.rsplit_once('.'))
                .map(|(net, _)| format!("{net}.1"))
                .unwrap_or_default();
            self.plain_ip(gw_key, &v, &example_gw)
        });
        Iface {
            ip_key,
            gw_key,
            address,
            gateway,
        }
    }

    /// An IPv4 address with prefix length whose host part is neither the network nor the
    /// broadcast address.
    fn host_cidr(&mut self, key: &str, v: &str, example: &str) -> Option<Ipv4Network> {
        let Some((ip, prefix)) = v.split_once('/') else {
            if ranges::parse_ip(v).is_some() {
                self.problem(
                    key,
                    format!(
                        "{} has no prefix length; expected an IPv4 address with prefix \
                         length, e.g. {example}",
                        quote::property(key, v)
                    ),
                );
            } else {
                self.problem(
                    key,
                    format!(
                        "{} is not an IPv4 address with prefix length; expected e.g. {example}",
                        quote::property(key, v)
                    ),
                );
            }
            return None;
        };
        let parsed = ranges::parse_ip(ip.trim()).zip(ranges::parse_prefix(prefix.trim()));
        let Some((ip, prefix)) = parsed.filter(|(_, p)| *p >= 1) else {
            self.problem(
                key,
                format!(
                    "{} is not an IPv4 address with prefix length; expected e.g. {example}",
                    quote::property(key, v)
                ),
            );
            return None;
        };
        let net = Ipv4Network::new(ip, prefix).ok()?;
        let subnet = Ipv4Network::new(net.network(), prefix).ok()?;
        if let Some((block, what)) = reserved_block(ip) {
            self.problem(
                key,
                format!(
                    "{net} is in {block} ({what}); expected an ordinary unicast address, e.g. \
                     {example}"
                ),
            );
            return None;
        }
        if prefix <= 30 && ip == net.network() {
            self.problem(
                key,
                format!(
                    "{net} is the network address of {subnet}; expected a host address inside it, \
                     e.g. {example}"
                ),
            );
            return None;
        }
        if prefix <= 30 && ip == net.broadcast() {
            self.problem(
                key,
                format!(
                    "{net} is the broadcast address of {subnet}; expected a host address inside \
                     it, e.g. {example}"
                ),
            );
            return None;
        }
        Some(net)
    }

    fn plain_ip(&mut self, key: &str, v: &str, example: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = ranges::parse_ip(v) {
            return Some(ip);
        }
        if let Some((ip, _)) = v.split_once('/')
            && ranges::parse_ip(ip.trim()).is_some()
        {
            self.problem(
                key,
                format!(
                    "{} has a prefix length; expected a plain IPv4 address, e.g. {example}",
                    quote::property(key, v)
                ),
            );
        } else {
            self.problem(
                key,
                format!(
                    "{} is not an IPv4 address; expected a plain IPv4 address, e.g. {example}",
                    quote::property(key, v)
                ),
            );
        }
        None
    }

    fn gateway_rules(&mut self, iface: &mut Iface, required: bool, why: &str) {
        let ip_given = self.given(iface.ip_key).is_some();
        let gw_given = self.given(iface.gw_key).is_some();
        if !ip_given {
            if let Some(v) = self.given(iface.gw_key).map(|s| s.trim().to_owned()) {
                let ip_ref = self.refer(iface.ip_key);
                self.warn(
                    iface.gw_key,
                    format!(
                        "{} is ignored: {ip_ref} is not set, so the interface uses DHCP and \
                         learns its gateway from the lease",
                        quote::property(iface.gw_key, &v)
                    ),
                );
            }
            iface.gateway = None;
            return;
        }
        let Some(addr) = iface.address else {
            return; // the address itself is wrong: already reported
        };
        let subnet = Ipv4Network::new(addr.network(), addr.prefix()).unwrap_or(addr);
        match iface.gateway {
            None if !gw_given && required => {
                let ip_ref = self.refer(iface.ip_key);
                self.problem(
                    iface.gw_key,
                    format!(
                        "not set; expected the gateway of {subnet} because {ip_ref} is static: \
                         {why}"
                    ),
                );
            }
            None => {}
            Some(gw) => {
                let ip_ref = self.refer(iface.ip_key);
                if !addr.contains(gw) {
                    self.problem(
                        iface.gw_key,
                        format!(
                            "{gw} lies outside {subnet}, the subnet of {ip_ref}; expected an \
                             address inside it"
                        ),
                    );
                    iface.gateway = None;
                } else if gw == addr.ip() {
                    self.problem(
                        iface.gw_key,
                        format!(
                            "{gw} is the appliance's own address ({ip_ref}); expected the \
                             router's address"
                        ),
                    );
                    iface.gateway = None;
                } else if addr.prefix() <= 30 && (gw == addr.network() || gw == addr.broadcast()) {
                    let which = if gw == addr.network() {
                        "network"
                    } else {
                        "broadcast"
                    };
                    self.problem(
                        iface.gw_key,
                        format!(
                            "{gw} is the {which} address of {subnet}; expected a host address \
                             inside it"
                        ),
                    );
                    iface.gateway = None;
                }
            }
        }
    }

    fn additional_networks(
        &mut self,
        workload: &Iface,
        management: &Iface,
        nameservers: &Option<Vec<Ipv4Addr>>,
    ) -> Option<Vec<Ipv4Network>> {
        let v = self.value(ADDITIONAL_WORKLOAD_NETWORKS).unwrap_or_default();
        let mut out = Vec::new();
        let mut ok = true;
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match ranges::parse_item(item) {
                Ok(RangeItem { cidrs, .. }) if !item.contains('-') => out.extend(cidrs),
                Ok(_) | Err(ranges::RangeError::Reversed { .. }) => {
                    ok = false;
                    self.problem(
                        ADDITIONAL_WORKLOAD_NETWORKS,
                        format!(
                            "{} is not a CIDR; expected comma-separated IPv4 networks, \
                             e.g. 192.168.20.0/24, 192.168.30.0/24",
                            quote::property(ADDITIONAL_WORKLOAD_NETWORKS, item)
                        ),
                    );
                }
                Err(e) => {
                    ok = false;
                    let msg = match e {
                        ranges::RangeError::Syntax { given } => format!(
                            "{} is not a CIDR; expected comma-separated IPv4 networks, \
                             e.g. 192.168.20.0/24, 192.168.30.0/24",
                            quote::property(ADDITIONAL_WORKLOAD_NETWORKS, &given)
                        ),
                        other => other.to_string(),
                    };
                    self.problem(ADDITIONAL_WORKLOAD_NETWORKS, msg);
                }
            }
        }
        ok &= self.additional_network_conflicts(&out, management, nameservers);
        if let Some(addr) = workload.address {
            let primary = Ipv4Network::new(addr.network(), addr.prefix()).unwrap_or(addr);
            let ip_ref = self.refer(WORKLOAD_IP);
            for net in &out {
                if overlaps(net, &primary) {
                    ok = false;
                    self.problem(
                        ADDITIONAL_WORKLOAD_NETWORKS,
                        format!(
                            "{net} overlaps the primary workload network {primary} of {ip_ref}; \
                             expected only networks reached through the workload gateway"
                        ),
                    );
                }
            }
            if !out.is_empty()
                && workload.gateway.is_none()
                && self.given(WORKLOAD_GATEWAY).is_none()
            {
                ok = false;
                let gw_ref = self.refer(WORKLOAD_GATEWAY);
                self.problem(
                    ADDITIONAL_WORKLOAD_NETWORKS,
                    format!(
                        "lists networks to route through the workload gateway, but {gw_ref} is \
                         not set; expected a workload gateway"
                    ),
                );
            }
        }
        ok.then_some(out)
    }

    /// The items that parsed (for the cross-checks), and whether the whole list is valid.
    fn lb_ranges(&mut self) -> (Vec<RangeItem>, bool) {
        let Some(v) = self.value(SERVICE_IP_RANGE) else {
            self.problem(
                SERVICE_IP_RANGE,
                "not set; expected comma-separated IPv4 CIDRs or address ranges, e.g. \
                 192.168.100.0/24 or 192.168.100.10-192.168.100.20",
            );
            return (Vec::new(), false);
        };
        let mut items = Vec::new();
        let mut ok = true;
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match ranges::parse_item(item) {
                Ok(r) => items.push(r),
                Err(e) => {
                    ok = false;
                    self.problem(SERVICE_IP_RANGE, e.to_string());
                }
            }
        }
        for item in &items {
            let (first, last) = item.bounds();
            if let Some((block, what)) = reserved_overlap(first, last) {
                ok = false;
                self.problem(
                    SERVICE_IP_RANGE,
                    format!(
                        "{} overlaps {block} ({what}); expected ranges of ordinary unicast \
                         addresses",
                        item.text
                    ),
                );
            }
        }
        for (i, a) in items.iter().enumerate() {
            for b in &items[i + 1..] {
                let (a0, a1) = a.bounds();
                let (b0, b1) = b.bounds();
                if a0 <= b1 && b0 <= a1 {
                    ok = false;
                    self.problem(
                        SERVICE_IP_RANGE,
                        format!(
                            "{} overlaps {}; expected ranges that do not overlap each other",
                            a.text, b.text
                        ),
                    );
                }
            }
        }
        if ok && items.is_empty() {
            self.problem(
                SERVICE_IP_RANGE,
                format!(
                    "{} lists no range; expected e.g. 192.168.100.0/24",
                    quote::property(SERVICE_IP_RANGE, &v)
                ),
            );
            return (items, false);
        }
        (items, ok)
    }

    fn lb_cross_checks(
        &mut self,
        lb: &[RangeItem],
        ifaces: &[&Iface],
        nameservers: &Option<Vec<Ipv4Addr>>,
        additional: &Option<Vec<Ipv4Network>>,
    ) {
        let inside = |ip: Ipv4Addr| lb.iter().find(|r| r.contains(ip)).map(|r| r.text.clone());
        // The management subnet must not hold any VIP.
        let management = ifaces.iter().find(|i| i.ip_key == MANAGEMENT_IP);
        if let Some(addr) = management.and_then(|m| m.address) {
            let subnet = Ipv4Network::new(addr.network(), addr.prefix()).unwrap_or(addr);
            let ip_ref = self.refer(MANAGEMENT_IP);
            for r in lb {
                if r.cidrs.iter().any(|c| overlaps(c, &subnet)) {
                    self.problem(
                        SERVICE_IP_RANGE,
                        format!(
                            "{} overlaps the management subnet {subnet} of {ip_ref}; expected \
                             ranges outside it",
                            r.text
                        ),
                    );
                }
            }
        }
        // Appliance addresses and gateways.
        for iface in ifaces {
            if let Some(addr) = iface.address
                && let Some(range) = inside(addr.ip())
            {
                self.problem(
                    iface.ip_key,
                    format!(
                        "{addr} lies inside load-balancer range {range} ({SERVICE_IP_RANGE}); \
                         expected an address outside every load-balancer range"
                    ),
                );
            }
            if let Some(gw) = iface.gateway
                && let Some(range) = inside(gw)
            {
                self.problem(
                    iface.gw_key,
                    format!(
                        "{gw} lies inside load-balancer range {range} ({SERVICE_IP_RANGE}); \
                         expected an address outside every load-balancer range"
                    ),
                );
            }
        }
        if let Some(ns) = nameservers {
            for &ip in ns {
                if let Some(range) = inside(ip) {
                    self.problem(
                        NAMESERVERS,
                        format!(
                            "{ip} lies inside load-balancer range {range} ({SERVICE_IP_RANGE}); \
                             expected DNS servers outside every load-balancer range"
                        ),
                    );
                }
            }
        }
        // Traffic to an additional workload network is policy-routed away from the VIPs.
        for net in additional.iter().flatten() {
            let (first, last) = (u32::from(net.network()), u32::from(net.broadcast()));
            let hit = lb.iter().find(|r| {
                let (a, b) = r.bounds();
                a <= last && first <= b
            });
            if let Some(r) = hit {
                self.problem(
                    ADDITIONAL_WORKLOAD_NETWORKS,
                    format!(
                        "{net} overlaps load-balancer range {} ({SERVICE_IP_RANGE}); expected \
                         networks outside every load-balancer range",
                        r.text
                    ),
                );
            }
        }
    }

    /// An additional workload network gets a `to <cidr>` rule into the workload table: it must
    /// not catch management, DNS or reserved destinations.
    fn additional_network_conflicts(
        &mut self,
        nets: &[Ipv4Network],
        management: &Iface,
        nameservers: &Option<Vec<Ipv4Addr>>,
    ) -> bool {
        let mut ok = true;
        let ns_ref = self.refer(NAMESERVERS);
        for net in nets {
            let (first, last) = (u32::from(net.network()), u32::from(net.broadcast()));
            if let Some((block, what)) = reserved_overlap(first, last) {
                ok = false;
                self.problem(
                    ADDITIONAL_WORKLOAD_NETWORKS,
                    format!(
                        "{net} overlaps {block} ({what}); expected networks of ordinary unicast \
                         addresses"
                    ),
                );
                continue;
            }
            // The management gateway lies inside the management subnet, so this covers it too.
            if let Some(addr) = management.address {
                let subnet = Ipv4Network::new(addr.network(), addr.prefix()).unwrap_or(addr);
                if overlaps(net, &subnet) {
                    ok = false;
                    let ip_ref = self.refer(MANAGEMENT_IP);
                    self.problem(
                        ADDITIONAL_WORKLOAD_NETWORKS,
                        format!(
                            "{net} overlaps the management subnet {subnet} of {ip_ref}; expected \
                             only networks reached through the workload gateway (management \
                             traffic would leave through the workload NIC)"
                        ),
                    );
                }
            }
            for ip in nameservers.iter().flatten().filter(|ip| net.contains(**ip)) {
                ok = false;
                self.problem(
                    ADDITIONAL_WORKLOAD_NETWORKS,
                    format!(
                        "{net} contains {ip} of {ns_ref}; expected only networks reached through \
                         the workload gateway (DNS queries would leave through the workload NIC)"
                    ),
                );
            }
        }
        ok
    }

    /// Two NICs on one subnet work only on one port group; the kernel then picks either for
    /// that subnet, so it is worth a warning, not a refusal.
    fn shared_subnet_warning(&mut self, management: &Iface, other: &Iface, network: &str) {
        if let (Some(m), Some(o)) = (management.address, other.address) {
            let msub = Ipv4Network::new(m.network(), m.prefix()).unwrap_or(m);
            let osub = Ipv4Network::new(o.network(), o.prefix()).unwrap_or(o);
            if overlaps(&msub, &osub) {
                let mref = self.refer(MANAGEMENT_IP);
                self.warn(
                    other.ip_key,
                    format!(
                        "{o} shares a subnet with {m} ({mref}); the management and {network} \
                         networks should be different subnets"
                    ),
                );
            }
        }
    }

    /// No gateway and no DNS server may be one of the appliance's own addresses.
    fn appliance_address_checks(&mut self, ifaces: &[&Iface], nameservers: &Option<Vec<Ipv4Addr>>) {
        for owner in ifaces {
            let Some(addr) = owner.address else { continue };
            let ip_ref = self.refer(owner.ip_key);
            // A gateway equal to its own interface's address is reported by gateway_rules.
            for iface in ifaces.iter().filter(|i| i.ip_key != owner.ip_key) {
                if iface.gateway == Some(addr.ip()) {
                    self.problem(
                        iface.gw_key,
                        format!(
                            "{} is the appliance's own address ({ip_ref}); expected the \
                             router's address",
                            addr.ip()
                        ),
                    );
                }
            }
            if nameservers.iter().flatten().any(|ns| *ns == addr.ip()) {
                self.problem(
                    NAMESERVERS,
                    format!(
                        "{} is the appliance's own address ({ip_ref}); expected the address of a \
                         DNS server (the appliance runs none)",
                        addr.ip()
                    ),
                );
            }
        }
    }

    fn port(&mut self) -> Option<u16> {
        let v = self.value(DATAPLANE_PORT).unwrap_or_default();
        let expected = "expected an integer from 1 to 65535 other than 22";
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            self.problem(
                DATAPLANE_PORT,
                format!(
                    "{} is not a port number; {expected}",
                    quote::property(DATAPLANE_PORT, &v)
                ),
            );
            return None;
        }
        match v.parse::<u32>() {
            Ok(22) => {
                self.problem(
                    DATAPLANE_PORT,
                    "22 is reserved for SSH; expected another port from 1 to 65535",
                );
                None
            }
            Ok(p @ 1..=65535) => u16::try_from(p).ok(),
            _ => {
                self.problem(
                    DATAPLANE_PORT,
                    format!(
                        "{} is out of range; {expected}",
                        quote::property(DATAPLANE_PORT, &v)
                    ),
                );
                None
            }
        }
    }

    fn user(&mut self) -> Option<String> {
        let Some(u) = self.value(HAPROXY_USER) else {
            self.problem(HAPROXY_USER, "not set; expected a user name, e.g. admin");
            return None;
        };
        let ok = u.len() <= 64
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if ok {
            Some(u)
        } else {
            self.problem(
                HAPROXY_USER,
                format!(
                    "{} is not a valid user name; expected 1 to 64 letters, digits, '.', \
                     '_', '-' or '@'",
                    quote::property(HAPROXY_USER, &u)
                ),
            );
            None
        }
    }

    /// `Some(None)`: no CA supplied (generate one). `None`: problems were recorded.
    fn ca(&mut self) -> Option<Option<CaMaterial>> {
        let cert_text = self.given(CA_CERT).map(str::to_owned);
        let key_text = self.given(CA_CERT_KEY).map(str::to_owned);
        let (cert_text, key_text) = match (cert_text, key_text) {
            (None, None) => return Some(None),
            (Some(_), None) => {
                let cert_ref = self.refer(CA_CERT);
                self.problem(
                    CA_CERT_KEY,
                    format!("not set; expected the CA's private key because {cert_ref} is given"),
                );
                return None;
            }
            (None, Some(_)) => {
                let key_ref = self.refer(CA_CERT_KEY);
                self.problem(
                    CA_CERT,
                    format!(
                        "not set although {key_ref} is given; expected both the CA certificate \
                         and its key, or neither"
                    ),
                );
                return None;
            }
            (Some(c), Some(k)) => (c, k),
        };
        let certs = match pem::certificates(&cert_text) {
            Ok(c) => Some(c),
            Err(e) => {
                self.problem(CA_CERT, e.to_string());
                None
            }
        };
        let key = match pem::private_key(&key_text) {
            Ok(k) => Some(k),
            Err(e) => {
                self.problem(CA_CERT_KEY, e.to_string());
                None
            }
        };
        let (certs, key) = (certs?, key?);
        let matching = certs.iter().position(|c| {
            c.public_key()
                .map(|public| public.public_eq(&key))
                .unwrap_or(false)
        });
        let Some(index) = matching else {
            let subject = certs.first().map(|c| pem::subject(c)).unwrap_or_default();
            self.problem(
                CA_CERT_KEY,
                format!(
                    "does not match the certificate ({subject}); expected the private key of \
                     that certificate"
                ),
            );
            return None;
        };
        let ca_cert = &certs[index];
        if !pem::is_ca(ca_cert) {
            self.problem(
                CA_CERT,
                format!(
                    "the certificate ({}) is not a CA (no basicConstraints CA:TRUE); expected a \
                     CA certificate that can sign the appliance's server certificate",
                    pem::subject(ca_cert)
                ),
            );
            return None;
        }
        if !self.ca_signing_rules(ca_cert) {
            return None;
        }
        // CA first, then the rest of the chain in input order.
        let mut chain = String::new();
        for c in std::iter::once(ca_cert).chain(
            certs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != index)
                .map(|(_, c)| c),
        ) {
            match c.to_pem() {
                Ok(p) => chain.push_str(&String::from_utf8_lossy(&p)),
                Err(_) => {
                    self.problem(CA_CERT, "cannot re-encode the certificate as PEM");
                    return None;
                }
            }
        }
        let key_pem = match key.private_key_to_pem_pkcs8() {
            Ok(p) => String::from_utf8_lossy(&p).into_owned(),
            Err(_) => {
                self.problem(CA_CERT_KEY, "cannot re-encode the key as PKCS#8");
                return None;
            }
        };
        Some(Some(CaMaterial {
            cert_chain_pem: chain,
            key_pkcs8_pem: Secret(key_pem),
        }))
    }
}

impl Validator<'_> {
    /// Whether the supplied CA can sign a server certificate clients accept now. Every reason
    /// it cannot is reported; a CA that ends within the renewal window is a warning.
    fn ca_signing_rules(&mut self, ca_cert: &X509) -> bool {
        let subject = pem::subject(ca_cert);
        let refusals = ca_refusals(ca_cert);
        for r in &refusals {
            self.problem(CA_CERT, format!("the certificate ({subject}) {r}"));
        }
        let ends_soon = Asn1Time::days_from_now(tls::RENEW_BEFORE_DAYS)
            .is_ok_and(|renew_at| ca_cert.not_after() < renew_at);
        if refusals.is_empty() && ends_soon {
            self.warn(
                CA_CERT,
                format!(
                    "the certificate ({subject}) expires on {}, within {} days; the server \
                     certificate it signs expires with it: replace the CA before then",
                    ca_cert.not_after(),
                    tls::RENEW_BEFORE_DAYS
                ),
            );
        }
        refusals.is_empty()
    }
}

/// Why a CA certificate cannot sign the server certificate: not valid now, not allowed to sign
/// certificates, or a key too weak. Each reason follows "the certificate (subject) ".
fn ca_refusals(ca_cert: &X509) -> Vec<String> {
    let mut out = Vec::new();
    match Asn1Time::days_from_now(0) {
        Ok(now) if ca_cert.not_after() < now => out.push(format!(
            "expired on {}; expected a CA certificate that is valid now (every server \
             certificate it signs would be born expired)",
            ca_cert.not_after()
        )),
        Ok(now) if ca_cert.not_before() > now => out.push(format!(
            "is not valid before {}; expected a CA certificate that is valid now (check the \
             clocks of the machine that made it and of the ESXi host)",
            ca_cert.not_before()
        )),
        Ok(_) => {}
        Err(_) => out.push("cannot be checked: the current time is unavailable".to_owned()),
    }
    // No keyUsage extension means no restriction (RFC 5280 4.2.1.3).
    if ca_cert
        .key_usage()
        .is_some_and(|ku| !ku.contains(X509KeyUsage::KEY_CERT_SIGN))
    {
        out.push(
            "has a keyUsage extension without keyCertSign; expected a CA certificate allowed \
             to sign certificates"
                .to_owned(),
        );
    }
    let key_rule = "expected an RSA key of at least 2048 bits or an EC key";
    match ca_cert.public_key() {
        Ok(k) if k.id() == Id::DSA => out.push(format!("has a DSA key; {key_rule}")),
        Ok(k) if matches!(k.id(), Id::RSA | Id::RSA_PSS) && k.bits() < 2048 => {
            out.push(format!("has a {}-bit RSA key; {key_rule}", k.bits()));
        }
        Ok(_) => {}
        Err(_) => out.push(format!("has a public key OpenSSL cannot read; {key_rule}")),
    }
    out
}

fn addressing(iface: &Iface) -> Addressing {
    match iface.address {
        Some(address) => Addressing::Static {
            address,
            gateway: iface.gateway,
        },
        None => Addressing::Dhcp,
    }
}

/// Address blocks that never belong to an interface or a virtual IP.
const RESERVED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\""),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    (
        "240.0.0.0/4",
        "reserved, including the broadcast address 255.255.255.255",
    ),
];

fn reserved_block(ip: Ipv4Addr) -> Option<(&'static str, &'static str)> {
    RESERVED
        .iter()
        .copied()
        .find(|(block, _)| block.parse::<Ipv4Network>().is_ok_and(|b| b.contains(ip)))
}

/// The first reserved block that shares an address with `first..=last`.
fn reserved_overlap(first: u32, last: u32) -> Option<(&'static str, &'static str)> {
    RESERVED.iter().copied().find(|(block, _)| {
        block
            .parse::<Ipv4Network>()
            .is_ok_and(|b| u32::from(b.network()) <= last && first <= u32::from(b.broadcast()))
    })
}

/// Names the rendered `/etc/hosts` (templates/hosts) maps to loopback or multicast besides the
/// host name: as host name they would resolve to those instead of the appliance.
pub const HOSTS_NAMES: &[&str] = &[
    "localhost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-allnodes",
    "ip6-allrouters",
];

fn overlaps(a: &Ipv4Network, b: &Ipv4Network) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// RFC 1123 host name: dot-separated labels of 1–63 letters, digits and hyphens, no label
/// starting or ending with a hyphen, at most 253 characters in all.
pub fn is_rfc1123_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
