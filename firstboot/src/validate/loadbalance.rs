//! The load-balancing group (`loadbalance.*`): the virtual IP ranges and their conflicts with
//! the appliance's addresses, the Data Plane API's port and user.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::config::Secret;
use crate::definition::PropertySpec;
use crate::ranges::{self, RangeItem};

use super::addresses::{overlaps, reserved_overlap, subnet_of};
use super::context::Ctx;
use super::declared;
use super::keys::*;
use super::network::{Iface, Network};

/// The port SSH listens on, which the Data Plane API cannot have.
const SSH_PORT: i128 = 22;
/// The TCP port numbers: no definition can allow a port outside them.
const TCP_PORTS: (i128, i128) = (1, 65535);

/// The load-balancing group as validated; `None` where problems were recorded.
pub(super) struct LoadBalancing {
    pub ranges: Option<Vec<Ipv4Network>>,
    pub dataplane_port: Option<u16>,
    pub haproxy_user: Option<String>,
    pub haproxy_password: Option<Secret>,
}

pub(super) fn check(ctx: &mut Ctx<'_>, network: &Network) -> LoadBalancing {
    let (items, ranges_ok) = ctx.lb_ranges();
    ctx.lb_cross_checks(&items, &network.ifaces(), &network.nameservers);
    ctx.lb_additional_networks(&items, &network.additional);
    LoadBalancing {
        ranges: ranges_ok.then(|| items.into_iter().flat_map(|r| r.cidrs).collect()),
        dataplane_port: ctx.port(),
        haproxy_user: ctx.user(),
        haproxy_password: ctx.password(HAPROXY_PWD),
    }
}

impl Ctx<'_> {
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
        if !self.conforms(SERVICE_IP_RANGE, &v) {
            return (Vec::new(), false);
        }
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
                    self.shown(SERVICE_IP_RANGE, &v)
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
    ) {
        let inside = |ip: Ipv4Addr| lb.iter().find(|r| r.contains(ip)).map(|r| r.text.clone());
        // The management subnet must not hold any VIP.
        let management = ifaces.iter().find(|i| i.ip_key == MANAGEMENT_IP);
        if let Some(addr) = management.and_then(|m| m.address) {
            let subnet = subnet_of(addr);
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
    }

    /// Traffic to an additional workload network is policy-routed away from the VIPs.
    fn lb_additional_networks(&mut self, lb: &[RangeItem], additional: &Option<Vec<Ipv4Network>>) {
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

    /// The Data Plane API port: an integer in the range the definition declares (and a TCP
    /// port), other than SSH's.
    fn port(&mut self) -> Option<u16> {
        let v = self.value(DATAPLANE_PORT).unwrap_or_default();
        let (min, max) = self.port_range();
        let other_than = if (min..=max).contains(&SSH_PORT) {
            format!(" other than {SSH_PORT}")
        } else {
            String::new()
        };
        let expected = format!("expected {}{other_than}", declared::integer_rule(min, max));
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            let shown = self.shown(DATAPLANE_PORT, &v);
            self.problem(
                DATAPLANE_PORT,
                format!("{shown} is not a port number; {expected}"),
            );
            return None;
        }
        match v.parse::<i128>() {
            Ok(SSH_PORT) if (min..=max).contains(&SSH_PORT) => {
                self.problem(
                    DATAPLANE_PORT,
                    format!(
                        "{SSH_PORT} is reserved for SSH; expected another port from {min} to {max}"
                    ),
                );
                None
            }
            Ok(p) if (min..=max).contains(&p) => u16::try_from(p).ok(),
            _ => {
                let shown = self.shown(DATAPLANE_PORT, &v);
                self.problem(
                    DATAPLANE_PORT,
                    format!("{shown} is out of range; {expected}"),
                );
                None
            }
        }
    }

    /// The integers the definition allows for the port (its type narrowed by `MinValue` and
    /// `MaxValue`), within the TCP port numbers whatever it declares.
    fn port_range(&self) -> (i128, i128) {
        let (tcp_min, tcp_max) = TCP_PORTS;
        let declared = self
            .facts
            .property(DATAPLANE_PORT)
            .and_then(PropertySpec::integer_range);
        let (min, max) = declared.unwrap_or(TCP_PORTS);
        (min.max(tcp_min), max.min(tcp_max))
    }

    fn user(&mut self) -> Option<String> {
        let Some(u) = self.value(HAPROXY_USER) else {
            self.problem(HAPROXY_USER, "not set; expected a user name, e.g. admin");
            return None;
        };
        if !self.conforms(HAPROXY_USER, &u) {
            return None;
        }
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
                    self.shown(HAPROXY_USER, &u)
                ),
            );
            None
        }
    }
}
