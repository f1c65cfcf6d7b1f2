//! Validated configurations for tests inside the crate (integration tests get theirs from an
//! environment document through the loader).
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::config::{Addressing, Deployment, HaConfig, HaRole, Secret, ValidatedConfig};

fn net(s: &str) -> Ipv4Network {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn fixed(address: &str, gateway: Option<&str>) -> Addressing {
    Addressing::Static {
        address: net(address),
        gateway: gateway.map(ip),
    }
}

/// Default configuration, static addresses, one additional workload network.
pub fn default_static() -> ValidatedConfig {
    ValidatedConfig {
        deployment: Deployment::Default,
        hostname: "haproxy.corp.example".into(),
        nameservers: vec![ip("192.168.0.53"), ip("1.1.1.1")],
        management: fixed("192.168.0.2/24", Some("192.168.0.1")),
        workload: fixed("192.168.10.2/24", Some("192.168.10.1")),
        additional_workload_networks: vec![net("10.20.0.0/16")],
        frontend: None,
        lb_ranges: vec![net("192.168.10.64/26"), net("192.168.10.128/27")],
        dataplane_port: 5556,
        haproxy_user: "admin".into(),
        haproxy_password: Secret("dataplane-secret".into()),
        root_password: Secret("root-secret".into()),
        permit_root_login: true,
        ca: None,
        ha: None,
        nics: crate::definition::appliance().nics.clone(),
    }
}

/// Frontend configuration, static addresses.
pub fn frontend_static() -> ValidatedConfig {
    ValidatedConfig {
        deployment: Deployment::Frontend,
        hostname: "lb01".into(),
        nameservers: vec![ip("1.1.1.1"), ip("1.0.0.1")],
        management: fixed("10.13.10.199/24", Some("10.13.10.1")),
        workload: fixed("10.13.201.10/24", Some("10.13.201.1")),
        additional_workload_networks: vec![net("10.13.202.0/24"), net("10.13.203.0/24")],
        frontend: Some(fixed("10.13.200.10/24", Some("10.13.200.1"))),
        lb_ranges: vec![net("10.13.200.32/27"), net("10.13.200.64/27")],
        dataplane_port: 5556,
        haproxy_user: "lbadmin".into(),
        haproxy_password: Secret("api-password-2".into()),
        root_password: Secret("root-password-2".into()),
        permit_root_login: false,
        ca: None,
        ha: None,
        nics: crate::definition::appliance().nics.clone(),
    }
}

/// [`default_static`] as the primary of an HA pair (peer .3, VIP .10 on the management subnet).
pub fn ha_primary() -> ValidatedConfig {
    let mut cfg = default_static();
    cfg.ha = Some(HaConfig {
        node: net("192.168.0.2/24"),
        peer: ip("192.168.0.3"),
        vip: ip("192.168.0.10"),
        router_id: 51,
        role: HaRole::Primary,
        secret: Secret("pair-secret-1".into()),
    });
    cfg
}
