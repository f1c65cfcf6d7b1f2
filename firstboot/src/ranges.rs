//! Load-balancer (virtual IP) ranges: CIDRs (`192.168.100.0/24`) and inclusive address ranges
//! (`192.168.100.10-192.168.100.20`, the notation of the Supervisor's Workload Management
//! wizard), each converted exactly to the minimal list of CIDRs that covers it.

use std::fmt;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

/// One comma-separated item of `loadbalance.service_ip_range`, as given and as CIDRs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeItem {
    /// The item as written (trimmed).
    pub text: String,
    /// The minimal CIDRs covering exactly the addresses of the item.
    pub cidrs: Vec<Ipv4Network>,
}

impl RangeItem {
    /// First and last address covered.
    pub fn bounds(&self) -> (u32, u32) {
        let first = self.cidrs.first().map_or(0, |c| u32::from(c.network()));
        let last = self.cidrs.last().map_or(0, |c| u32::from(c.broadcast()));
        (first, last)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.cidrs.iter().any(|c| c.contains(ip))
    }
}

/// Why one item is not a usable range. `Display` says what is wrong and what is expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error(
        "{given} has host bits set; expected the network address {network} (the kernel refuses \
         `ip route add local` for it otherwise)"
    )]
    HostBits { given: String, network: Ipv4Network },
    #[error(
        "{given} is not a valid range; expected a first address not above the last, e.g. {last}-{first}"
    )]
    Reversed {
        given: String,
        first: Ipv4Addr,
        last: Ipv4Addr,
    },
    #[error(
        "{} is not a CIDR or address range; expected e.g. 192.168.100.0/24 or \
         192.168.100.10-192.168.100.20",
        crate::quote::value(.given)
    )]
    Syntax { given: String },
}

/// Parse one item: `a.b.c.d/len` with zero host bits, or `first-last` (inclusive).
pub fn parse_item(item: &str) -> Result<RangeItem, RangeError> {
    let text = item.trim();
    let syntax = || RangeError::Syntax {
        given: text.to_owned(),
    };
    if let Some((first, last)) = text.split_once('-') {
        let first: Ipv4Addr = parse_ip(first.trim()).ok_or_else(syntax)?;
        let last: Ipv4Addr = parse_ip(last.trim()).ok_or_else(syntax)?;
        if u32::from(first) > u32::from(last) {
            return Err(RangeError::Reversed {
                given: text.to_owned(),
                first,
                last,
            });
        }
        return Ok(RangeItem {
            text: text.to_owned(),
            cidrs: range_to_cidrs(first, last),
        });
    }
    let (addr, len) = text.split_once('/').ok_or_else(syntax)?;
    let addr = parse_ip(addr.trim()).ok_or_else(syntax)?;
    let len: u8 = parse_prefix(len.trim()).ok_or_else(syntax)?;
    let net = Ipv4Network::new(addr, len).map_err(|_| syntax())?;
    if net.network() != addr {
        let network = Ipv4Network::new(net.network(), len).map_err(|_| syntax())?;
        return Err(RangeError::HostBits {
            given: text.to_owned(),
            network,
        });
    }
    Ok(RangeItem {
        text: text.to_owned(),
        cidrs: vec![net],
    })
}

/// A dotted-quad IPv4 address, strictly (no leading zeros, which some tools read as octal).
pub fn parse_ip(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// A prefix length 0–32 written in decimal digits only.
pub fn parse_prefix(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok().filter(|&n| n <= 32)
}

/// The minimal list of CIDRs whose union is exactly `first..=last`, in ascending order.
///
/// Greedy from the low end: at each step take the largest block that starts at the current
/// address (bounded by its alignment) and does not pass `last`.
pub fn range_to_cidrs(first: Ipv4Addr, last: Ipv4Addr) -> Vec<Ipv4Network> {
    let mut out = Vec::new();
    let mut cur = u64::from(u32::from(first));
    let end = u64::from(u32::from(last));
    while cur <= end {
        // Largest power-of-two block aligned at `cur` …
        let align_bits = if cur == 0 {
            32
        } else {
            cur.trailing_zeros().min(32)
        };
        // … that fits in the remaining count.
        let remaining = end - cur + 1;
        let fit_bits = 63 - remaining.leading_zeros(); // floor(log2(remaining))
        let bits = align_bits.min(fit_bits);
        let prefix = 32 - bits as u8;
        let addr = Ipv4Addr::from(cur as u32);
        if let Ok(net) = Ipv4Network::new(addr, prefix) {
            out.push(net);
        }
        cur += 1u64 << bits;
    }
    out
}

/// A comma-separated list of CIDRs written back, as `check` prints it.
pub struct CidrList<'a>(pub &'a [Ipv4Network]);

impl fmt::Display for CidrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}
