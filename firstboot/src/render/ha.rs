//! The HA pair's files (docs/ha-pair.md): keepalived's configuration and its unit's drop-in,
//! the Data Plane API unit's drop-in (raw packets and netlink, for a pair only), the sysctl that lets haproxy bind VIPs the node does not hold, the shared secret for the
//! Data Plane API's replication, and the `ha:` section of `dataplaneapi.yaml`. A single
//! appliance has none of them: [`HA_FILES`] are then removed.
//!
//! Every value in the templates is an IPv4 address or network, a number, the validated host name
//! (RFC 1123: letters, digits, hyphens and dots) or one of this crate's fixed paths and names:
//! none needs quoting in keepalived's, systemd's or YAML's syntax.

use std::net::Ipv4Addr;

use askama::Template;
use ipnetwork::Ipv4Network;

use super::network::{Nic, vip_nic};
use super::{CA_CERT, RenderedFile};
use crate::config::{HaConfig, ValidatedConfig};

pub const KEEPALIVED_CONF: &str = "etc/keepalived/keepalived.conf";
pub const KEEPALIVED_DROPIN: &str = "etc/systemd/system/keepalived.service.d/appliance.conf";
pub const SYSCTL_CONF: &str = "etc/sysctl.d/60-haproxy-ha.conf";
pub const PEER_SECRET: &str = "etc/haproxy/ha-peer.secret";
pub const DATAPLANEAPI_DROPIN: &str = "etc/systemd/system/dataplaneapi.service.d/ha.conf";

/// The files only an HA pair has: removed from a single appliance (one that was a pair before).
pub const HA_FILES: &[&str] = &[
    KEEPALIVED_CONF,
    KEEPALIVED_DROPIN,
    SYSCTL_CONF,
    PEER_SECRET,
    DATAPLANEAPI_DROPIN,
];

/// The drop-ins: systemd reads them only after a reload (`apply` asks for one when they change).
pub const DROPINS: &[&str] = &[KEEPALIVED_DROPIN, DATAPLANEAPI_DROPIN];

/// VRRP advertisement interval in seconds. A MASTER that stops advertising is replaced after
/// three intervals plus the BACKUP's skew time ((256 − priority) / 256 intervals): 0.1 s gives
/// 0.36 s (priority 100), so a client sees a takeover well within the one second even
/// on a loaded host (0.2 s, 0.72 s in theory, measured up to 1.1 s in the namespace test under
/// load). The price: a MASTER stalled for more than about 0.35 s (a long vMotion switch-over)
/// is replaced, and its connections are lost.
pub const ADVERT_INT: &str = "0.1";

/// The sysctl the pair needs, set by `apply` also on the running system.
pub const NONLOCAL_BIND: &str = "/proc/sys/net/ipv4/ip_nonlocal_bind";

#[derive(Template)]
#[template(path = "keepalived.conf", escape = "none")]
struct KeepalivedConf<'a> {
    management: &'a str,
    hostname: &'a str,
    role: &'a str,
    router_id: u8,
    priority: u8,
    advert_int: &'a str,
    node_ip: Ipv4Addr,
    peer: Ipv4Addr,
    vip: Ipv4Addr,
    prefix: u8,
    ranges: &'a [Ipv4Network],
}

#[derive(Template)]
#[template(path = "keepalived-appliance.conf", escape = "none")]
struct KeepalivedDropin<'a> {
    management: &'a str,
    vip: Ipv4Addr,
    prefix: u8,
    ranges: &'a [Ipv4Network],
}

#[derive(Template)]
#[template(path = "sysctl-ha.conf", escape = "none")]
struct SysctlConf;

#[derive(Template)]
#[template(path = "dataplaneapi-ha.conf", escape = "none")]
struct DataplaneapiDropin;

/// The `ha:` section of `dataplaneapi.yaml`; its keys are those the Data Plane API reads
/// (docs/ha-pair.md).
pub(super) struct HaYaml {
    pub node_address: Ipv4Addr,
    pub peer_address: Ipv4Addr,
    /// The peer's Data Plane API port: the pair's nodes share `loadbalance.dataplane_port`.
    pub peer_port: u16,
    pub management_vip: Ipv4Addr,
    pub secret_file: String,
    pub ca_file: String,
    pub router_id: u8,
    pub service_ranges: Vec<Ipv4Network>,
    pub vip_interface: &'static str,
}

impl HaYaml {
    pub fn of(cfg: &ValidatedConfig, ha: &HaConfig) -> HaYaml {
        HaYaml {
            node_address: ha.node().ip(),
            peer_address: ha.peer(),
            peer_port: cfg.dataplane_port(),
            management_vip: ha.vip(),
            secret_file: format!("/{PEER_SECRET}"),
            ca_file: format!("/{CA_CERT}"),
            router_id: ha.router_id(),
            service_ranges: cfg.lb_ranges().to_vec(),
            vip_interface: vip_nic(cfg).name(),
        }
    }
}

/// The pair's files, when `cfg` is one of a pair.
pub(super) fn render(
    cfg: &ValidatedConfig,
    out: &mut Vec<RenderedFile>,
) -> Result<(), askama::Error> {
    let Some(ha) = cfg.ha() else {
        return Ok(());
    };
    let ranges = cfg.lb_ranges();
    let prefix = ha.node().prefix();
    let management = Nic::Management.name();
    let conf = KeepalivedConf {
        management,
        hostname: cfg.hostname(),
        role: ha.role().id(),
        router_id: ha.router_id(),
        priority: ha.role().priority(),
        advert_int: ADVERT_INT,
        node_ip: ha.node().ip(),
        peer: ha.peer(),
        vip: ha.vip(),
        prefix,
        ranges,
    };
    // 0600: it names the scripts keepalived runs as root.
    out.push(RenderedFile::text(KEEPALIVED_CONF, conf.render()?, 0o600));
    let dropin = KeepalivedDropin {
        management,
        vip: ha.vip(),
        prefix,
        ranges,
    };
    out.push(RenderedFile::text(
        KEEPALIVED_DROPIN,
        dropin.render()?,
        0o644,
    ));
    out.push(RenderedFile::text(SYSCTL_CONF, SysctlConf.render()?, 0o644));
    out.push(RenderedFile::text(
        DATAPLANEAPI_DROPIN,
        DataplaneapiDropin.render()?,
        0o644,
    ));
    // The Data Plane API reads the secret from here (root's alone); a trailing newline ends it.
    out.push(RenderedFile::text(
        PEER_SECRET,
        format!("{}\n", ha.secret().expose()),
        0o600,
    ));
    Ok(())
}
