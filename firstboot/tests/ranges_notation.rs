//! Load-balancer range notation: `first-last` → the minimal CIDR list, exactly.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::Ipv4Addr;

use firstboot::ranges::{RangeError, parse_item, range_to_cidrs};
use ipnetwork::Ipv4Network;
use proptest::prelude::*;

fn strings(cidrs: &[Ipv4Network]) -> Vec<String> {
    cidrs.iter().map(ToString::to_string).collect()
}

#[test]
fn the_wizard_example() {
    let item = parse_item("10.0.0.1-10.0.0.6").unwrap();
    assert_eq!(
        strings(&item.cidrs),
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    );
}

#[test]
fn aligned_ranges_are_one_cidr() {
    assert_eq!(
        strings(&parse_item("192.168.100.0-192.168.100.255").unwrap().cidrs),
        ["192.168.100.0/24"]
    );
    assert_eq!(
        strings(&parse_item(" 10.0.0.0 - 10.0.0.0 ").unwrap().cidrs),
        ["10.0.0.0/32"]
    );
    assert_eq!(
        strings(&parse_item("0.0.0.0-255.255.255.255").unwrap().cidrs),
        ["0.0.0.0/0"]
    );
    assert_eq!(
        strings(&parse_item("255.255.255.254-255.255.255.255").unwrap().cidrs),
        ["255.255.255.254/31"]
    );
    assert_eq!(
        strings(&parse_item("192.168.1.10-192.168.1.20").unwrap().cidrs),
        [
            "192.168.1.10/31",
            "192.168.1.12/30",
            "192.168.1.16/30",
            "192.168.1.20/32"
        ]
    );
}

#[test]
fn cidrs_are_checked() {
    assert_eq!(
        strings(&parse_item("192.168.100.0/24").unwrap().cidrs),
        ["192.168.100.0/24"]
    );
    assert_eq!(
        parse_item("192.168.1.5/25").unwrap_err(),
        RangeError::HostBits {
            given: "192.168.1.5/25".into(),
            network: "192.168.1.0/25".parse().unwrap(),
        }
    );
    for bad in [
        "192.168.1.0",
        "192.168.1.0/",
        "192.168.1.0/33",
        "192.168.1/24",
        "a-b",
        "1.2.3.4-",
        "01.2.3.4/32",
        "1.2.3.4/+8",
    ] {
        assert!(
            matches!(parse_item(bad), Err(RangeError::Syntax { .. })),
            "{bad}"
        );
    }
    assert!(matches!(
        parse_item("10.0.0.9-10.0.0.1"),
        Err(RangeError::Reversed { .. })
    ));
}

proptest! {
    /// The CIDR list covers exactly first..=last: contiguous, in order, no gaps or overlaps,
    /// every block aligned, and minimal (no two neighbours could merge into one block).
    #[test]
    fn cidr_list_covers_exactly_the_range(a in any::<u32>(), b in any::<u32>()) {
        let (first, last) = (a.min(b), a.max(b));
        let cidrs = range_to_cidrs(Ipv4Addr::from(first), Ipv4Addr::from(last));
        prop_assert!(!cidrs.is_empty());
        let mut next = u64::from(first);
        for c in &cidrs {
            let start = u64::from(u32::from(c.network()));
            let end = u64::from(u32::from(c.broadcast()));
            prop_assert_eq!(start, next, "gap or overlap before {}", c);
            prop_assert_eq!(c.ip(), c.network(), "{} has host bits", c);
            next = end + 1;
        }
        prop_assert_eq!(next, u64::from(last) + 1);
        prop_assert!(cidrs.len() <= 62);
        for pair in cidrs.windows(2) {
            // Two equal-size neighbours that form an aligned block of twice the size would
            // mean the list is not minimal.
            let (x, y) = (pair[0], pair[1]);
            if x.prefix() == y.prefix() && x.prefix() > 0 {
                let merged = Ipv4Network::new(x.network(), x.prefix() - 1).unwrap();
                prop_assert!(merged.network() != x.network() || !merged.contains(y.network()),
                    "{} and {} could be one block", x, y);
            }
        }
    }

    /// Small ranges, checked address by address.
    #[test]
    fn small_ranges_address_by_address(first in any::<u32>(), len in 0u32..600) {
        let last = first.saturating_add(len);
        let cidrs = range_to_cidrs(Ipv4Addr::from(first), Ipv4Addr::from(last));
        let lo = first.saturating_sub(3);
        let hi = last.saturating_add(3);
        for ip in lo..=hi {
            let inside = (first..=last).contains(&ip);
            let covered = cidrs.iter().filter(|c| c.contains(Ipv4Addr::from(ip))).count();
            prop_assert_eq!(covered, usize::from(inside), "address {}", Ipv4Addr::from(ip));
        }
    }
}
