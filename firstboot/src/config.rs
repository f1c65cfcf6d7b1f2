//! The validated configuration: the only thing the render/apply side ever sees.
//!
//! Values of these types exist only after every rule of `docs/validation.md` held (parse, don't
//! validate): fields are crate-private, so outside this crate a `ValidatedConfig` can only
//! come from `validate`. Inside the crate, only `validate` (and tests) construct it.

use std::fmt;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::definition::NicSpec;

/// Which deployment option (OVF DeploymentOptionSection configuration) the VM was deployed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Deployment {
    /// Two NICs: management and workload; VIPs live on the workload network.
    Default,
    /// Three NICs: a separate client-facing frontend network.
    Frontend,
}

impl Deployment {
    /// The OVF configuration id (`default`, `frontend`).
    pub fn id(self) -> &'static str {
        match self {
            Deployment::Default => "default",
            Deployment::Frontend => "frontend",
        }
    }
}

/// How one NIC gets its IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// DHCP; on workload/frontend NICs the lease must not install a default route.
    Dhcp,
    /// A static address with prefix (host bits are neither network nor broadcast address)
    /// and the gateway of that subnet (inside it), when one was given.
    Static {
        address: Ipv4Network,
        gateway: Option<Ipv4Addr>,
    },
}

/// A password or other secret. Never printed: `Debug` masks it and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// The secret itself, for the few places that must hash or write it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// A supplied certificate authority, repaired and checked: the PEM certificate (chain, CA
/// first), and its unencrypted private key in PKCS#8 PEM. The key matches the first
/// certificate, which has basicConstraints CA:TRUE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaMaterial {
    pub(crate) cert_chain_pem: String,
    pub(crate) key_pkcs8_pem: Secret,
}

impl CaMaterial {
    pub fn cert_chain_pem(&self) -> &str {
        &self.cert_chain_pem
    }
    pub fn key_pkcs8_pem(&self) -> &Secret {
        &self.key_pkcs8_pem
    }
}

/// This appliance's part in an HA pair: decides the first election only, because both nodes
/// start as VRRP BACKUP with `nopreempt` (docs/ha-pair.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HaRole {
    Primary,
    Secondary,
}

impl HaRole {
    /// The value of `ha.role` (`primary`, `secondary`).
    pub fn id(self) -> &'static str {
        match self {
            HaRole::Primary => "primary",
            HaRole::Secondary => "secondary",
        }
    }

    /// The VRRP priority of the role: the higher one wins an election between two BACKUPs.
    pub fn priority(self) -> u8 {
        match self {
            HaRole::Primary => 150,
            HaRole::Secondary => 100,
        }
    }
}

/// An HA pair, validated: this node's static management address, the peer's and the management
/// VIP, both inside that subnet and distinct from every appliance address, gateway, DNS server
/// and load-balancer range; a router id of 1–255; a shared secret of 8–128 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaConfig {
    /// This node's management address with its prefix (the management IP, static).
    pub(crate) node: Ipv4Network,
    pub(crate) peer: Ipv4Addr,
    pub(crate) vip: Ipv4Addr,
    pub(crate) router_id: u8,
    pub(crate) role: HaRole,
    pub(crate) secret: Secret,
}

impl HaConfig {
    pub fn node(&self) -> Ipv4Network {
        self.node
    }
    pub fn peer(&self) -> Ipv4Addr {
        self.peer
    }
    pub fn vip(&self) -> Ipv4Addr {
        self.vip
    }
    pub fn router_id(&self) -> u8 {
        self.router_id
    }
    pub fn role(&self) -> HaRole {
        self.role
    }
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// Everything first boot applies, after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedConfig {
    pub(crate) deployment: Deployment,
    /// RFC 1123 host name or FQDN.
    pub(crate) hostname: String,
    /// At most three DNS servers, none inside an LB range.
    pub(crate) nameservers: Vec<Ipv4Addr>,
    pub(crate) management: Addressing,
    pub(crate) workload: Addressing,
    /// Extra networks routed via the workload gateway; never the primary workload network.
    pub(crate) additional_workload_networks: Vec<Ipv4Network>,
    /// `Some` exactly when `deployment` is `Frontend`.
    pub(crate) frontend: Option<Addressing>,
    /// Virtual-IP ranges as minimal CIDRs (zero host bits, non-overlapping), in input order.
    pub(crate) lb_ranges: Vec<Ipv4Network>,
    /// Data Plane API port: 1–65535, not 22.
    pub(crate) dataplane_port: u16,
    pub(crate) haproxy_user: String,
    pub(crate) haproxy_password: Secret,
    pub(crate) root_password: Secret,
    pub(crate) permit_root_login: bool,
    /// `None`: generate a self-signed CA at first boot (and keep it on later runs).
    pub(crate) ca: Option<CaMaterial>,
    /// `Some` when the appliance is one of an HA pair; `None`: a single appliance.
    pub(crate) ha: Option<HaConfig>,
    /// The NICs of the appliance definition validated against (names and PCI slots), for the
    /// network files.
    pub(crate) nics: Vec<NicSpec>,
}

impl ValidatedConfig {
    pub fn deployment(&self) -> Deployment {
        self.deployment
    }
    pub fn hostname(&self) -> &str {
        &self.hostname
    }
    pub fn nameservers(&self) -> &[Ipv4Addr] {
        &self.nameservers
    }
    pub fn management(&self) -> &Addressing {
        &self.management
    }
    pub fn workload(&self) -> &Addressing {
        &self.workload
    }
    pub fn additional_workload_networks(&self) -> &[Ipv4Network] {
        &self.additional_workload_networks
    }
    pub fn frontend(&self) -> Option<&Addressing> {
        self.frontend.as_ref()
    }
    pub fn lb_ranges(&self) -> &[Ipv4Network] {
        &self.lb_ranges
    }
    pub fn dataplane_port(&self) -> u16 {
        self.dataplane_port
    }
    pub fn haproxy_user(&self) -> &str {
        &self.haproxy_user
    }
    pub fn haproxy_password(&self) -> &Secret {
        &self.haproxy_password
    }
    pub fn root_password(&self) -> &Secret {
        &self.root_password
    }
    pub fn permit_root_login(&self) -> bool {
        self.permit_root_login
    }
    pub fn ca(&self) -> Option<&CaMaterial> {
        self.ca.as_ref()
    }
    pub fn ha(&self) -> Option<&HaConfig> {
        self.ha.as_ref()
    }
    pub fn nics(&self) -> &[NicSpec] {
        &self.nics
    }
}
