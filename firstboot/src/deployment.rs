//! Which deployment configuration applies.
//!
//! The guest cannot read which DeploymentOption the administrator picked, but it can see the
//! hardware it produced: the frontend configuration adds a third NIC in PCI slot 224
//! (`0000:13:00.0`). Order: `--deployment` if given; else, inside the appliance (its
//! management NIC is present), the frontend NIC's presence; else, outside the appliance, the
//! number of adapters in the environment's `EthernetAdapterSection` (3 or more: frontend);
//! else `default`.

use std::fmt;
use std::path::PathBuf;

use crate::config::Deployment;
use crate::definition::{self, ApplianceFacts};
use crate::env::Environment;

/// How the deployment was decided, for `check`'s output and the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `--deployment` was given.
    Flag,
    /// Inside the appliance: the frontend NIC at this PCI address is (not) present.
    FrontendNic { address: String, present: bool },
    /// Outside the appliance: the environment lists this many adapters.
    AdapterCount(usize),
    /// Nothing to go by.
    Fallback,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Flag => f.write_str("chosen with --deployment"),
            Reason::FrontendNic {
                address,
                present: true,
            } => {
                write!(f, "the frontend NIC (PCI {address}) is present")
            }
            Reason::FrontendNic {
                address,
                present: false,
            } => {
                write!(f, "no frontend NIC (PCI {address}) is present")
            }
            Reason::AdapterCount(n) => write!(
                f,
                "the environment's EthernetAdapterSection lists {n} adapter{}",
                if *n == 1 { "" } else { "s" }
            ),
            Reason::Fallback => f.write_str("no NICs or adapter list to go by"),
        }
    }
}

/// Where PCI devices are looked up: `/sys` normally, a directory tree in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysRoot(pub PathBuf);

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot(PathBuf::from("/sys"))
    }
}

impl SysRoot {
    fn pci_present(&self, address: &str) -> bool {
        self.0.join("bus/pci/devices").join(address).exists()
    }
}

/// Decide the deployment; the NICs' PCI slots are those of `facts`.
pub fn decide(
    flag: Option<Deployment>,
    sys: &SysRoot,
    env: &Environment,
    facts: &ApplianceFacts,
) -> (Deployment, Reason) {
    if let Some(d) = flag {
        return (d, Reason::Flag);
    }
    let address_of = |nic: &str| {
        facts
            .nic(nic)
            .and_then(|n| definition::pci_address(n.pci_slot))
    };
    if let (Some(mgmt), Some(frontend)) = (address_of("management"), address_of("frontend"))
        && sys.pci_present(&mgmt)
    {
        let present = sys.pci_present(&frontend);
        let deployment = if present {
            Deployment::Frontend
        } else {
            Deployment::Default
        };
        return (
            deployment,
            Reason::FrontendNic {
                address: frontend,
                present,
            },
        );
    }
    if let Some(n) = env.adapter_count()
        && n > 0
    {
        let deployment = if n >= 3 {
            Deployment::Frontend
        } else {
            Deployment::Default
        };
        return (deployment, Reason::AdapterCount(n));
    }
    (Deployment::Default, Reason::Fallback)
}
