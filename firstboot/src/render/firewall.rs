//! `/etc/nftables.conf`: the host firewall Debian's nftables.service loads at boot. The rule it
//! enforces (management services on the management NIC only, the virtual IPs open to whatever
//! haproxy binds) is explained in the template, which is what administrators read on the
//! appliance.

use std::net::Ipv4Addr;

use askama::Template;

use super::RenderedFile;
use super::network::Nic;
use crate::config::ValidatedConfig;

pub const NFTABLES_CONF: &str = "etc/nftables.conf";

#[derive(Template)]
#[template(path = "nftables.conf", escape = "none")]
struct NftablesConf {
    management: &'static str,
    dataplane_port: u16,
    /// The load-balancer ranges as CIDRs.
    ranges: Vec<String>,
    /// The HA peer's management IP, whose VRRP adverts are accepted.
    vrrp_peer: Option<Ipv4Addr>,
}

pub(super) fn render(
    cfg: &ValidatedConfig,
    out: &mut Vec<RenderedFile>,
) -> Result<(), askama::Error> {
    let conf = NftablesConf {
        management: Nic::Management.name(),
        dataplane_port: cfg.dataplane_port(),
        ranges: cfg.lb_ranges().iter().map(ToString::to_string).collect(),
        vrrp_peer: cfg.ha().map(|ha| ha.peer()),
    };
    // Not executable: nftables.service runs `nft -f` on it.
    out.push(RenderedFile::text(NFTABLES_CONF, conf.render()?, 0o644));
    Ok(())
}
