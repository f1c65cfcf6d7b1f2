//! systemd-networkd files: `.link` (NIC names by PCI path), `.network` (addresses, DNS,
//! default route, per-network policy routing), AnyIP local routes on `lo`, and
//! `/etc/vmware/anyip-routes.cfg`.
//!
//! Routing model (the reference's, made declarative):
//! - main table: the management network's gateway is the only default route;
//! - workload (table 2) and frontend (table 3): the network's connected route and default
//!   route via its own gateway; a rule `from <its address>` (static addressing) sends traffic
//!   sourced from that NIC through its table; DHCP leases install their gateway into that
//!   table (`[DHCPv4] RouteTable=`) instead of main;
//! - `from <LB range>` rules send replies from the virtual IPs through the table of the network
//!   the VIPs live on (frontend in the frontend configuration, else workload), ahead of
//! - `to <cidr>` rules, which send the additional workload networks through the workload table;
//! - a `local` route per LB range on `lo` (AnyIP).

use std::net::Ipv4Addr;

use askama::Template;
use ipnetwork::Ipv4Network;

use super::RenderedFile;
use crate::config::{Addressing, Deployment, ValidatedConfig};
use crate::definition::NicSpec;

/// Rule priorities: `from <NIC address>` first, then `from <LB range>`, then
/// `to <additional network>`; all before the main table's rule (32766). A reply from a virtual
/// IP must leave by the VIP's own NIC whoever the client is: were `to <additional network>`
/// first, in the frontend configuration a reply from a frontend VIP to a client on an
/// additional workload network would leave by the workload NIC, and a router with strict
/// reverse-path filtering drops it (the connection hangs in SYN-RECV).
const PRIO_FROM_ADDRESS: u32 = 100;
const PRIO_FROM_RANGE: u32 = 150;
const PRIO_TO_NETWORK: u32 = 200;

/// The appliance's NICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nic {
    Management,
    Workload,
    Frontend,
}

impl Nic {
    pub const ALL: [Nic; 3] = [Nic::Management, Nic::Workload, Nic::Frontend];

    /// The interface name in the guest (and the NIC's name in the appliance definition).
    pub fn name(self) -> &'static str {
        match self {
            Nic::Management => "management",
            Nic::Workload => "workload",
            Nic::Frontend => "frontend",
        }
    }

    /// The policy-routing table of the network (the reference's numbers); management uses main.
    pub fn table(self) -> Option<u32> {
        match self {
            Nic::Management => None,
            Nic::Workload => Some(2),
            Nic::Frontend => Some(3),
        }
    }

    /// `slotInfo.pciSlotNumber` of this NIC among the appliance definition's `nics`.
    pub fn pci_slot(self, nics: &[NicSpec]) -> Option<u32> {
        nics.iter()
            .find(|nic| nic.name == self.name())
            .map(|nic| nic.pci_slot)
    }

    /// The udev `ID_PATH` of this NIC (`pci-0000:03:00.0`).
    pub fn pci_path(self, nics: &[NicSpec]) -> Option<String> {
        let address = crate::definition::pci_address(self.pci_slot(nics)?)?;
        Some(format!("pci-{address}"))
    }
}

#[derive(Template)]
#[template(path = "nic.link", escape = "none")]
struct LinkTemplate<'a> {
    name: &'a str,
    slot: u32,
    pci_path: &'a str,
}

struct Rule {
    /// `From` or `To`.
    selector: &'static str,
    cidr: Ipv4Network,
    priority: u32,
}

#[derive(Template)]
#[template(path = "nic.network", escape = "none")]
struct NetworkTemplate<'a> {
    name: &'a str,
    /// Static address with prefix; `None` = DHCP.
    address: Option<Ipv4Network>,
    /// Default route in the main table (management only).
    main_gateway: Option<Ipv4Addr>,
    nameservers: &'a [Ipv4Addr],
    use_dhcp_dns: bool,
    table: Option<u32>,
    table_gateway: Option<Ipv4Addr>,
    subnet: Option<Ipv4Network>,
    rules: Vec<Rule>,
}

#[derive(Template)]
#[template(path = "lo-anyip.network", escape = "none")]
struct AnyIpTemplate<'a> {
    ranges: &'a [Ipv4Network],
    /// An HA pair: keepalived installs the local routes on the MASTER, none are written here.
    keepalived: bool,
}

#[derive(Template)]
#[template(path = "anyip-routes.cfg", escape = "none")]
struct AnyIpCfgTemplate<'a> {
    ranges: &'a [Ipv4Network],
}

pub const NETWORK_DIR: &str = "etc/systemd/network";

pub fn link_path(nic: Nic) -> String {
    format!("{NETWORK_DIR}/10-{}.link", nic.name())
}

pub fn network_path(nic: Nic) -> String {
    format!("{NETWORK_DIR}/10-{}.network", nic.name())
}

pub const ANYIP_NETWORK: &str = "etc/systemd/network/10-lo-anyip.network";
pub const ANYIP_CFG: &str = "etc/vmware/anyip-routes.cfg";

/// The addressing of `nic` in `cfg`, `None` when the deployment has no such NIC.
fn addressing(cfg: &ValidatedConfig, nic: Nic) -> Option<&Addressing> {
    match nic {
        Nic::Management => Some(cfg.management()),
        Nic::Workload => Some(cfg.workload()),
        Nic::Frontend => cfg.frontend(),
    }
}

/// The NIC whose network carries the virtual IPs.
pub(super) fn vip_nic(cfg: &ValidatedConfig) -> Nic {
    match cfg.deployment() {
        Deployment::Frontend => Nic::Frontend,
        Deployment::Default => Nic::Workload,
    }
}

pub(super) fn render(
    cfg: &ValidatedConfig,
    out: &mut Vec<RenderedFile>,
) -> Result<(), askama::Error> {
    for nic in Nic::ALL {
        // Every NIC gets its name whatever the deployment (naming an absent NIC is harmless),
        // so the image can ship the same `.link` files and udev names NICs from the first
        // boot on; only the `.network` files depend on the deployment.
        if let (Some(slot), Some(path)) = (nic.pci_slot(cfg.nics()), nic.pci_path(cfg.nics())) {
            let link = LinkTemplate {
                name: nic.name(),
                slot,
                pci_path: &path,
            };
            out.push(RenderedFile::text(link_path(nic), link.render()?, 0o644));
        }
        let Some(addr) = addressing(cfg, nic) else {
            continue;
        };
        out.push(RenderedFile::text(
            network_path(nic),
            network_file(cfg, nic, addr).render()?,
            0o644,
        ));
    }
    let ranges = cfg.lb_ranges();
    out.push(RenderedFile::text(
        ANYIP_NETWORK,
        AnyIpTemplate {
            ranges,
            keepalived: cfg.ha().is_some(),
        }
        .render()?,
        0o644,
    ));
    out.push(RenderedFile::text(
        ANYIP_CFG,
        AnyIpCfgTemplate { ranges }.render()?,
        0o644,
    ));
    Ok(())
}

fn network_file<'a>(cfg: &'a ValidatedConfig, nic: Nic, addr: &Addressing) -> NetworkTemplate<'a> {
    let (address, gateway) = match addr {
        Addressing::Dhcp => (None, None),
        Addressing::Static { address, gateway } => (Some(*address), *gateway),
    };
    let is_management = nic == Nic::Management;
    // A table needs a way out: a static gateway, or a DHCP lease that provides one.
    let table = nic
        .table()
        .filter(|_| address.is_none() || gateway.is_some());
    let mut rules = Vec::new();
    if table.is_some() {
        if let Some(a) = address {
            rules.push(Rule {
                selector: "From",
                cidr: host(a.ip()),
                priority: PRIO_FROM_ADDRESS,
            });
        }
        if nic == Nic::Workload {
            for net in cfg.additional_workload_networks() {
                rules.push(Rule {
                    selector: "To",
                    cidr: *net,
                    priority: PRIO_TO_NETWORK,
                });
            }
        }
        if nic == vip_nic(cfg) {
            for range in cfg.lb_ranges() {
                rules.push(Rule {
                    selector: "From",
                    cidr: *range,
                    priority: PRIO_FROM_RANGE,
                });
            }
        }
    }
    NetworkTemplate {
        name: nic.name(),
        address,
        main_gateway: if is_management { gateway } else { None },
        nameservers: if is_management {
            cfg.nameservers()
        } else {
            &[]
        },
        use_dhcp_dns: is_management,
        table,
        table_gateway: table.and(gateway),
        subnet: table
            .and(address)
            .and_then(|a| Ipv4Network::new(a.network(), a.prefix()).ok()),
        rules,
    }
}

fn host(ip: Ipv4Addr) -> Ipv4Network {
    Ipv4Network::from(ip)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_from_the_definition() {
        let nics = &crate::definition::appliance().nics;
        assert_eq!(Nic::Management.pci_slot(nics), Some(160));
        assert_eq!(Nic::Workload.pci_slot(nics), Some(192));
        assert_eq!(Nic::Frontend.pci_slot(nics), Some(224));
        assert_eq!(
            Nic::Management.pci_path(nics).as_deref(),
            Some("pci-0000:03:00.0")
        );
        assert_eq!(
            Nic::Workload.pci_path(nics).as_deref(),
            Some("pci-0000:0b:00.0")
        );
        assert_eq!(
            Nic::Frontend.pci_path(nics).as_deref(),
            Some("pci-0000:13:00.0")
        );
    }
}
