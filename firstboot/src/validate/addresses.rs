//! Address facts the groups share: reserved blocks, overlap, subnets.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

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

pub(super) fn reserved_block(ip: Ipv4Addr) -> Option<(&'static str, &'static str)> {
    RESERVED
        .iter()
        .copied()
        .find(|(block, _)| block.parse::<Ipv4Network>().is_ok_and(|b| b.contains(ip)))
}

/// The first reserved block that shares an address with `first..=last`.
pub(super) fn reserved_overlap(first: u32, last: u32) -> Option<(&'static str, &'static str)> {
    RESERVED.iter().copied().find(|(block, _)| {
        block
            .parse::<Ipv4Network>()
            .is_ok_and(|b| u32::from(b.network()) <= last && first <= u32::from(b.broadcast()))
    })
}

pub(super) fn overlaps(a: &Ipv4Network, b: &Ipv4Network) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// The subnet an interface address lies in (`192.168.0.2/24` → `192.168.0.0/24`).
pub(super) fn subnet_of(addr: Ipv4Network) -> Ipv4Network {
    Ipv4Network::new(addr.network(), addr.prefix()).unwrap_or(addr)
}
