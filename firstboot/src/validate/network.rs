//! The network group (`network.*`): host name, DNS servers, the NICs' addresses and gateways,
//! and the additional workload networks routed through the workload gateway.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::config::{Addressing, Deployment};
use crate::quote;
use crate::ranges::{self, RangeItem};

use super::addresses::{overlaps, reserved_block, reserved_overlap, subnet_of};
use super::context::Ctx;
use super::keys::*;

/// An interface's address as given, before cross-checks.
pub(super) struct Iface {
    pub ip_key: &'static str,
    pub gw_key: &'static str,
    pub address: Option<Ipv4Network>,
    pub gateway: Option<Ipv4Addr>,
}

impl Iface {
    pub fn addressing(&self) -> Addressing {
        match self.address {
            Some(address) => Addressing::Static {
                address,
                gateway: self.gateway,
            },
            None => Addressing::Dhcp,
        }
    }
}

/// The network group as validated; `None` where problems were recorded. The interfaces keep
/// what could be parsed, for the other groups' cross-checks.
pub(super) struct Network {
    pub hostname: Option<String>,
    pub nameservers: Option<Vec<Ipv4Addr>>,
    pub management: Iface,
    pub workload: Iface,
    /// `Some` in the Frontend Network configuration.
    pub frontend: Option<Iface>,
    pub additional: Option<Vec<Ipv4Network>>,
}

impl Network {
    /// The appliance's interfaces in this deployment.
    pub fn ifaces(&self) -> Vec<&Iface> {
        [
            Some(&self.management),
            Some(&self.workload),
            self.frontend.as_ref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

pub(super) fn check(ctx: &mut Ctx<'_>, deployment: Deployment) -> Network {
    let hostname = ctx.hostname();
    let nameservers = ctx.nameservers();
    let mut management = ctx.iface(MANAGEMENT_IP, MANAGEMENT_GATEWAY, "192.168.0.2/24");
    let mut workload = ctx.iface(WORKLOAD_IP, WORKLOAD_GATEWAY, "192.168.10.2/24");
    let mut frontend = match deployment {
        Deployment::Frontend => Some(ctx.iface(FRONTEND_IP, FRONTEND_GATEWAY, "192.168.100.2/24")),
        Deployment::Default => {
            ctx.frontend_ignored();
            None
        }
    };
    // Gateways: required where an interface is static and the deployment needs them; ignored
    // (with a warning) on DHCP interfaces.
    ctx.gateway_rules(
        &mut management,
        true,
        "it is the appliance's default gateway",
    );
    let frontend_mode = deployment == Deployment::Frontend;
    let needed = "the Frontend Network configuration does not work without it";
    ctx.gateway_rules(&mut workload, frontend_mode, needed);
    if let Some(fe) = frontend.as_mut() {
        ctx.gateway_rules(fe, true, needed);
    }
    if ctx.given(MANAGEMENT_IP).is_none() {
        ctx.warn(
            MANAGEMENT_IP,
            "not set: the management NIC uses DHCP; its address must never change (use a DHCP \
             reservation), because the Supervisor reaches the Data Plane API there",
        );
    }
    ctx.shared_subnet_warning(&management, &workload, "workload");
    if let Some(fe) = frontend.as_ref() {
        ctx.shared_subnet_warning(&management, fe, "frontend");
    }
    let mut network = Network {
        hostname,
        nameservers,
        management,
        workload,
        frontend,
        additional: None,
    };
    ctx.appliance_address_checks(&network.ifaces(), &network.nameservers);
    network.additional =
        ctx.additional_networks(&network.workload, &network.management, &network.nameservers);
    network
}

impl Ctx<'_> {
    /// Frontend values in the Default configuration are ignored, with a warning.
    fn frontend_ignored(&mut self) {
        for key in [FRONTEND_IP, FRONTEND_GATEWAY] {
            if let Some(v) = self.given(key) {
                let v = v.trim().to_owned();
                self.warn(
                    key,
                    format!(
                        "{} is ignored: the VM is deployed in the Default configuration, which \
                         has no frontend network",
                        self.shown(key, &v)
                    ),
                );
            }
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
        if !self.conforms(HOSTNAME, &h) {
            return None;
        }
        if HOSTS_NAMES.iter().any(|n| n.eq_ignore_ascii_case(&h)) {
            self.problem(
                HOSTNAME,
                format!(
                    "{} is already in /etc/hosts for a loopback or multicast address; \
                     expected the appliance's own name, e.g. haproxy.local",
                    quote::value(&h)
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
                    self.shown(HOSTNAME, &h)
                ),
            );
            None
        }
    }

    fn nameservers(&mut self) -> Option<Vec<Ipv4Addr>> {
        let v = self.value(NAMESERVERS).unwrap_or_default();
        if !v.is_empty() && !self.conforms(NAMESERVERS, &v) {
            return None;
        }
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
                            self.shown(NAMESERVERS, item)
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
                    self.shown(NAMESERVERS, &items.join(", "))
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
            .filter(|v| self.conforms(ip_key, v))
            .and_then(|v| self.host_cidr(ip_key, &v, example));
        let gateway = self
            .value(gw_key)
            .filter(|v| self.conforms(gw_key, v))
            .and_then(|v| {
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
        let not_cidr = format!(
            "{} is not an IPv4 address with prefix length; expected e.g. {example}",
            self.shown(key, v)
        );
        let Some((ip, prefix)) = v.split_once('/') else {
            if ranges::parse_ip(v).is_some() {
                self.problem(
                    key,
                    format!(
                        "{} has no prefix length; expected an IPv4 address with prefix \
                         length, e.g. {example}",
                        self.shown(key, v)
                    ),
                );
            } else {
                self.problem(key, not_cidr);
            }
            return None;
        };
        let parsed = ranges::parse_ip(ip.trim()).zip(ranges::parse_prefix(prefix.trim()));
        let Some((ip, prefix)) = parsed.filter(|(_, p)| *p >= 1) else {
            self.problem(key, not_cidr);
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

    pub(super) fn plain_ip(&mut self, key: &str, v: &str, example: &str) -> Option<Ipv4Addr> {
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
                    self.shown(key, v)
                ),
            );
        } else {
            self.problem(
                key,
                format!(
                    "{} is not an IPv4 address; expected a plain IPv4 address, e.g. {example}",
                    self.shown(key, v)
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
                        self.shown(iface.gw_key, &v)
                    ),
                );
            }
            iface.gateway = None;
            return;
        }
        let Some(addr) = iface.address else {
            return; // the address itself is wrong: already reported
        };
        let subnet = subnet_of(addr);
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
        if !v.is_empty() && !self.conforms(ADDITIONAL_WORKLOAD_NETWORKS, &v) {
            return None;
        }
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
                            self.shown(ADDITIONAL_WORKLOAD_NETWORKS, item)
                        ),
                    );
                }
                Err(e) => {
                    ok = false;
                    let msg = match e {
                        ranges::RangeError::Syntax { given } => format!(
                            "{} is not a CIDR; expected comma-separated IPv4 networks, \
                             e.g. 192.168.20.0/24, 192.168.30.0/24",
                            self.shown(ADDITIONAL_WORKLOAD_NETWORKS, &given)
                        ),
                        other => other.to_string(),
                    };
                    self.problem(ADDITIONAL_WORKLOAD_NETWORKS, msg);
                }
            }
        }
        ok &= self.additional_network_conflicts(&out, management, nameservers);
        if let Some(addr) = workload.address {
            let primary = subnet_of(addr);
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
                let subnet = subnet_of(addr);
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
