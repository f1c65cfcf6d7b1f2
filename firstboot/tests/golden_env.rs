//! Golden tests from OVF environment documents: environment → loader → render, every file's
//! content and mode compared with `tests/golden/env-<case>/` — for a Default and a Frontend
//! environment with static addresses, a DHCP one, and a node of an HA pair in each (the
//! primary in Default, the secondary in Frontend). Random inputs (TLS material, salts) are fixed
//! here; everything else is the real chain. `UPDATE_GOLDEN=1` rewrites the files.
#![allow(clippy::unwrap_used)]

mod apply_support;

use std::fmt::Write as _;
use std::path::PathBuf;

use apply_support::*;
use firstboot::config::Deployment;
use firstboot::render::{Inputs, render};
use firstboot::tls::{CaOrigin, TlsMaterial};
use firstboot::{LoadOptions, load::load_bytes};

const SHADOW: &str = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";

fn check(case: &str, props: &[(String, String)], deployment: Deployment) {
    let options = LoadOptions {
        deployment: Some(deployment),
        ..LoadOptions::default()
    };
    let loaded = load_bytes(env_xml(props).into_bytes(), "test".into(), &options).unwrap();
    let tls = TlsMaterial {
        ca_cert_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".into(),
        ca_key_pem: "-----BEGIN PRIVATE KEY-----\nCAKEY\n-----END PRIVATE KEY-----\n".into(),
        server_cert_pem: "-----BEGIN CERTIFICATE-----\nSERVER\n-----END CERTIFICATE-----\n".into(),
        server_key_pem: "-----BEGIN PRIVATE KEY-----\nSERVERKEY\n-----END PRIVATE KEY-----\n"
            .into(),
        ca_origin: CaOrigin::Generated,
    };
    let inputs = Inputs {
        tls: &tls,
        haproxy_password_hash: "$6$goldensaltgolde$Fixed.hash",
        root_password: Some(("$6$rootsaltrootsal$Fixed.root.hash", 20000)),
        existing_shadow: Some(SHADOW),
        existing_haproxy_cfg: None,
    };
    let out = render(&loaded.config, &inputs).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut modes = String::new();
    for f in &out.files {
        writeln!(modes, "{:o} {}", f.mode, f.path).unwrap();
    }
    for r in &out.remove {
        writeln!(modes, "removed {r}").unwrap();
    }
    if update {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut expected: Vec<(String, Vec<u8>)> = vec![("MODES".into(), modes.into_bytes())];
    for f in &out.files {
        expected.push((format!("root/{}", f.path), f.contents.clone()));
    }
    let mut failures = Vec::new();
    for (rel, actual) in expected {
        let p = dir.join(&rel);
        if update {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &actual).unwrap();
            continue;
        }
        match std::fs::read(&p) {
            Ok(e) if e == actual => {}
            Ok(e) => failures.push(format!(
                "{rel} differs:\n--- expected\n{}\n--- actual\n{}",
                String::from_utf8_lossy(&e),
                String::from_utf8_lossy(&actual)
            )),
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatch for {case} (UPDATE_GOLDEN=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_env_default_static() {
    check("env-default-static", &default_props(), Deployment::Default);
}

#[test]
fn golden_env_frontend_static() {
    check(
        "env-frontend-static",
        &frontend_props(),
        Deployment::Frontend,
    );
}

#[test]
fn golden_env_dhcp() {
    let props = with(
        default_props(),
        &[
            ("network.management_ip", Some("")),
            ("network.management_gateway", None),
            ("network.workload_ip", Some("")),
            ("network.workload_gateway", None),
            ("network.additional_workload_networks", None),
            ("loadbalance.service_ip_range", Some("10.99.0.1-10.99.0.6")),
            ("appliance.permit_root_login", Some("false")),
        ],
    );
    check("env-dhcp", &props, Deployment::Default);
}

#[test]
fn golden_env_ha_primary() {
    check(
        "env-ha-primary",
        &ha_props(default_props(), "primary"),
        Deployment::Default,
    );
}

#[test]
fn golden_env_ha_frontend_secondary() {
    let props = with(
        ha_props(frontend_props(), "secondary"),
        &[("ha.router_id", Some("7"))],
    );
    check("env-ha-frontend-secondary", &props, Deployment::Frontend);
}
