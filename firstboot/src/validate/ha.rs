//! The HA group (`ha.*`, docs/ha-pair.md): two appliances as a pair, keepalived moving the
//! management VIP and the load-balancer ranges between them.
//!
//! The pair is on when `ha.peer_ip` or `ha.management_vip` is given; then the peer, the VIP and
//! the shared secret are required, the management IP must be static, the VIP and the peer lie in
//! its subnet apart from every other address of the appliance, and the CA must be supplied (both
//! nodes' certificates must chain to the one CA the Supervisor trusts for the VIP). Without the
//! pair, a router id, role or secret that was given is ignored with a warning.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::config::{HaConfig, HaRole, Secret};
use crate::definition::PropertySpec;

use super::addresses::subnet_of;
use super::context::Ctx;
use super::declared;
use super::keys::*;
use super::network::Network;

/// The shortest shared secret: it authenticates the replication between the two nodes.
pub(super) const SECRET_MIN_CHARS: usize = 8;
/// VRRP's virtual router ids: no definition can allow another.
const ROUTER_IDS: (i128, i128) = (1, 255);

/// `Some(None)`: a single appliance. `Some(Some(_))`: one of an HA pair. `None`: problems were
/// recorded.
pub(super) fn check(
    ctx: &mut Ctx<'_>,
    network: &Network,
    lb_ranges: Option<&[Ipv4Network]>,
) -> Option<Option<HaConfig>> {
    if ctx.given(HA_PEER_IP).is_none() && ctx.given(HA_MANAGEMENT_VIP).is_none() {
        ctx.ha_ignored();
        return Some(None);
    }
    let peer = ctx.ha_address(HA_PEER_IP, HA_MANAGEMENT_VIP, "192.168.0.3");
    let vip = ctx.ha_address(HA_MANAGEMENT_VIP, HA_PEER_IP, "192.168.0.10");
    let node = ctx.ha_management(network);
    let others = Others::of(network, lb_ranges);
    let mut placed = true;
    if let Some(node) = node {
        for (key, ip) in [(HA_PEER_IP, peer), (HA_MANAGEMENT_VIP, vip)] {
            if let Some(ip) = ip {
                placed &= ctx.ha_placement(key, ip, node, &others);
            }
        }
    }
    if let (Some(peer), Some(vip)) = (peer, vip)
        && peer == vip
    {
        let vip_ref = ctx.refer(HA_MANAGEMENT_VIP);
        ctx.problem(
            HA_PEER_IP,
            format!(
                "{peer} is also {vip_ref}; expected the other appliance's own management \
                 address, which differs from the virtual IP"
            ),
        );
        placed = false;
    }
    let router_id = ctx.router_id();
    let role = ctx.role();
    let secret = ctx.shared_secret();
    let ca = ctx.ha_ca();
    let config = HaConfig {
        node: node?,
        peer: peer?,
        vip: vip?,
        router_id: router_id?,
        role: role?,
        secret: secret?,
    };
    (placed && ca).then_some(Some(config))
}

/// Everything the VIP and the peer must differ from, besides the management subnet's own
/// network and broadcast addresses.
struct Others {
    /// The appliance's addresses, gateways and DNS servers, each with the key it comes from.
    addresses: Vec<(Ipv4Addr, &'static str, &'static str)>,
    lb_ranges: Vec<Ipv4Network>,
}

impl Others {
    fn of(network: &Network, lb_ranges: Option<&[Ipv4Network]>) -> Others {
        let mut addresses = Vec::new();
        for iface in network.ifaces() {
            if let Some(a) = iface.address {
                addresses.push((a.ip(), iface.ip_key, "the appliance's own address"));
            }
            if let Some(gw) = iface.gateway {
                addresses.push((gw, iface.gw_key, "a gateway"));
            }
        }
        for ns in network.nameservers.iter().flatten() {
            addresses.push((*ns, NAMESERVERS, "a DNS server"));
        }
        Others {
            addresses,
            lb_ranges: lb_ranges.unwrap_or_default().to_vec(),
        }
    }
}

impl Ctx<'_> {
    /// No pair: the pair's other settings, when given and not their defaults, are ignored.
    fn ha_ignored(&mut self) {
        let why = format!(
            "is ignored: no HA pair is configured ({} and {} are not set), so the appliance \
             runs alone",
            self.refer(HA_PEER_IP),
            self.refer(HA_MANAGEMENT_VIP)
        );
        for key in [HA_ROUTER_ID, HA_ROLE, HA_SHARED_SECRET] {
            let Some(v) = self.given(key).map(|v| v.trim().to_owned()) else {
                continue;
            };
            if self.facts.default(key).is_some_and(|d| d.trim() == v) {
                continue;
            }
            let shown = self.shown(key, &v);
            self.warn(key, format!("{shown} {why}"));
        }
    }

    /// The peer's or the VIP's address: required with the pair, a plain IPv4 address.
    fn ha_address(&mut self, key: &str, other: &str, example: &str) -> Option<Ipv4Addr> {
        let Some(v) = self.value(key) else {
            let other_ref = self.refer(other);
            let what = if key == HA_PEER_IP {
                "the other appliance's management IP"
            } else {
                "the management virtual IP both appliances share"
            };
            self.problem(
                key,
                format!(
                    "not set although {other_ref} is given; expected {what}, e.g. {example}, for \
                     an HA pair (or neither, for a single appliance)"
                ),
            );
            return None;
        };
        if !self.conforms(key, &v) {
            return None;
        }
        self.plain_ip(key, &v, example)
    }

    /// The pair needs a static management IP: the VIP and the peer are checked against its
    /// subnet, and keepalived speaks from it.
    fn ha_management(&mut self, network: &Network) -> Option<Ipv4Network> {
        if self.given(MANAGEMENT_IP).is_none() {
            let peer_ref = self.refer(HA_PEER_IP);
            self.problem(
                MANAGEMENT_IP,
                format!(
                    "not set (DHCP); expected a static IPv4 address with prefix length, e.g. \
                     192.168.0.2/24, because an HA pair is configured ({peer_ref}): the peer \
                     and the management virtual IP must lie in its subnet"
                ),
            );
            return None;
        }
        // A given but invalid address is already reported.
        network.management.address
    }

    /// The pair's CA must be supplied: the Supervisor trusts one CA for the management VIP,
    /// whichever node holds it.
    fn ha_ca(&mut self) -> bool {
        if self.given(CA_CERT).is_some() || self.given(CA_CERT_KEY).is_some() {
            return true; // both, or the missing one is reported by the appliance group
        }
        let (key_ref, peer_ref) = (self.refer(CA_CERT_KEY), self.refer(HA_PEER_IP));
        self.problem(
            CA_CERT,
            format!(
                "not set; expected the CA certificate (and {key_ref}) that signs the server \
                 certificates of both appliances, because an HA pair is configured ({peer_ref}): \
                 the Supervisor trusts one CA for the management virtual IP, whichever appliance \
                 holds it"
            ),
        );
        false
    }

    /// The peer or the VIP inside the management subnet, apart from every other address.
    fn ha_placement(
        &mut self,
        key: &str,
        ip: Ipv4Addr,
        node: Ipv4Network,
        others: &Others,
    ) -> bool {
        let subnet = subnet_of(node);
        let ip_ref = self.refer(MANAGEMENT_IP);
        let mut ok = true;
        if !node.contains(ip) {
            self.problem(
                key,
                format!(
                    "{ip} lies outside {subnet}, the subnet of {ip_ref}; expected an address \
                     inside it"
                ),
            );
            ok = false;
        } else if node.prefix() <= 30 && (ip == node.network() || ip == node.broadcast()) {
            let which = if ip == node.network() {
                "network"
            } else {
                "broadcast"
            };
            self.problem(
                key,
                format!(
                    "{ip} is the {which} address of {subnet}; expected a host address inside it"
                ),
            );
            ok = false;
        }
        for (other, other_key, what) in &others.addresses {
            if *other == ip {
                let other_ref = self.refer(other_key);
                self.problem(
                    key,
                    format!(
                        "{ip} is {what} ({other_ref}); expected an address no other host or \
                         service of the appliance uses"
                    ),
                );
                ok = false;
            }
        }
        if let Some(range) = others.lb_ranges.iter().find(|r| r.contains(ip)) {
            self.problem(
                key,
                format!(
                    "{ip} lies inside load-balancer range {range} ({SERVICE_IP_RANGE}); expected \
                     an address outside every load-balancer range"
                ),
            );
            ok = false;
        }
        ok
    }

    /// The VRRP virtual router id: an integer in the range the definition declares, within
    /// VRRP's 1–255.
    fn router_id(&mut self) -> Option<u8> {
        let v = self.value(HA_ROUTER_ID).unwrap_or_default();
        let declared = self
            .facts
            .property(HA_ROUTER_ID)
            .and_then(PropertySpec::integer_range)
            .unwrap_or(ROUTER_IDS);
        let (min, max) = (declared.0.max(ROUTER_IDS.0), declared.1.min(ROUTER_IDS.1));
        let expected = format!(
            "expected {}, the same on both appliances",
            declared::integer_rule(min, max)
        );
        let parsed = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<i128>().ok())
            .flatten();
        match parsed {
            Some(n) if (min..=max).contains(&n) => u8::try_from(n).ok(),
            Some(_) => {
                let shown = self.shown(HA_ROUTER_ID, &v);
                self.problem(HA_ROUTER_ID, format!("{shown} is out of range; {expected}"));
                None
            }
            None => {
                let shown = self.shown(HA_ROUTER_ID, &v);
                self.problem(
                    HA_ROUTER_ID,
                    format!("{shown} is not a virtual router id; {expected}"),
                );
                None
            }
        }
    }

    fn role(&mut self) -> Option<HaRole> {
        let v = self.value(HA_ROLE).unwrap_or_default();
        if !self.conforms(HA_ROLE, &v) {
            return None;
        }
        match v.as_str() {
            "primary" => Some(HaRole::Primary),
            "secondary" => Some(HaRole::Secondary),
            _ => {
                let shown = self.shown(HA_ROLE, &v);
                self.problem(
                    HA_ROLE,
                    format!("{shown} is not a role; expected primary or secondary"),
                );
                None
            }
        }
    }

    /// The shared secret: required with the pair; at least [`SECRET_MIN_CHARS`] characters and
    /// at most what the definition allows; printable. Used exactly as given, like a password.
    fn shared_secret(&mut self) -> Option<Secret> {
        let max = self
            .facts
            .property(HA_SHARED_SECRET)
            .and_then(PropertySpec::length_range)
            .and_then(|(_, max)| max);
        let min = u64::try_from(SECRET_MIN_CHARS).unwrap_or(u64::MAX);
        let rule = declared::length_rule(min, max);
        let Some(secret) = self.given(HA_SHARED_SECRET).map(str::to_owned) else {
            let given: Vec<String> = [HA_PEER_IP, HA_MANAGEMENT_VIP]
                .into_iter()
                .filter(|k| self.given(k).is_some())
                .map(|k| self.refer(k))
                .collect();
            self.problem(
                HA_SHARED_SECRET,
                format!(
                    "not set although {} {} given; expected a secret of {rule}, the same on both \
                     appliances, for an HA pair",
                    given.join(" and "),
                    if given.len() == 1 { "is" } else { "are" }
                ),
            );
            return None;
        };
        let secret = self.printable_secret(HA_SHARED_SECRET, secret)?;
        let n = secret.0.chars().count();
        if n < SECRET_MIN_CHARS {
            self.problem(
                HA_SHARED_SECRET,
                format!(
                    "is {n} character{} long; expected {rule}",
                    if n == 1 { "" } else { "s" }
                ),
            );
            return None;
        }
        Some(secret)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
