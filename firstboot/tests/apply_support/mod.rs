//! Helpers of the apply_/haproxy_/tls_/networkd_/crash_ tests: OVF environment documents,
//! running `haproxy-firstboot apply` into a scratch root, and finding the real verifiers.
#![allow(dead_code)]

#[path = "../env_support/mod.rs"]
mod env_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports)] // each test target includes this module; not all use these
pub use testkit::have;

/// A valid Default-deployment property set (static addresses).
pub fn default_props() -> Vec<(String, String)> {
    [
        ("appliance.root_pwd", "Root-pass1"),
        ("appliance.permit_root_login", "True"),
        ("network.hostname", "haproxy.corp.example"),
        ("network.nameservers", "192.168.0.53, 1.1.1.1"),
        ("network.management_ip", "192.168.0.2/24"),
        ("network.management_gateway", "192.168.0.1"),
        ("network.workload_ip", "192.168.10.2/24"),
        ("network.workload_gateway", "192.168.10.1"),
        ("network.additional_workload_networks", "10.20.0.0/16"),
        (
            "loadbalance.service_ip_range",
            "192.168.10.64/26, 192.168.10.128/27",
        ),
        ("loadbalance.dataplane_port", "5556"),
        ("loadbalance.haproxy_user", "admin"),
        ("loadbalance.haproxy_pwd", "Api-pass-123"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A valid Frontend-deployment property set.
pub fn frontend_props() -> Vec<(String, String)> {
    let mut p = with(
        default_props(),
        &[("loadbalance.service_ip_range", Some("192.168.100.64/26"))],
    );
    p.push(("network.frontend_ip".into(), "192.168.100.2/24".into()));
    p.push(("network.frontend_gateway".into(), "192.168.100.1".into()));
    p
}

/// `Some(v)` sets or adds a key, `None` removes it.
pub use env_support::with;

/// `props` (with management 192.168.0.2/24) as one node of an HA pair: peer 192.168.0.3,
/// management VIP 192.168.0.10, `role`, and the supplied CA the pair requires (a new EC CA).
pub fn ha_props(props: Vec<(String, String)>, role: &str) -> Vec<(String, String)> {
    let ca = env_support::ec_ca("HA Pair CA");
    with(
        props,
        &[
            ("appliance.ca_cert", Some(&ca.cert_pem())),
            ("appliance.ca_cert_key", Some(&ca.key_pkcs8_pem())),
            ("ha.peer_ip", Some("192.168.0.3")),
            ("ha.management_vip", Some("192.168.0.10")),
            ("ha.router_id", Some("51")),
            ("ha.role", Some(role)),
            ("ha.shared_secret", Some("pair-secret-42")),
        ],
    )
}

/// An OVF environment document as vCenter writes it, written by the crate's own (quick-xml)
/// writer so every value is escaped.
pub fn env_xml(props: &[(String, String)]) -> String {
    env_support::doc(props, None)
}

/// The status record, relative to the root.
pub const STATUS: &str = "var/lib/haproxy-firstboot/status.json";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_haproxy-firstboot"))
}

/// Runs `haproxy-firstboot apply --env <doc> --root <root> --deployment <d>`.
pub fn apply(
    root: &Path,
    props: &[(String, String)],
    deployment: &str,
    extra_env: &[(&str, &str)],
) -> Output {
    let env = root.with_extension("ovf-env.xml");
    let mut cmd = apply_command(root, &env, props, deployment);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The `haproxy-firstboot apply` command for `props`, written to `env` (one file per
/// concurrent run), not yet started.
pub fn apply_command(
    root: &Path,
    env: &Path,
    props: &[(String, String)],
    deployment: &str,
) -> Command {
    std::fs::write(env, env_xml(props)).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("apply")
        .arg("--env")
        .arg(env)
        .arg("--root")
        .arg(root)
        .arg("--deployment")
        .arg(deployment);
    cmd
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
