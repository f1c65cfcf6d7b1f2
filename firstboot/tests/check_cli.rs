//! `haproxy-firstboot check` end to end: output, masking, exit status 0/1/2, and how the
//! deployment is decided.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod env_support;

use std::path::Path;
use std::process::{Command, Output};

use env_support::*;

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haproxy-firstboot"))
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// A sysfs tree with the given PCI devices.
fn sysfs(dir: &Path, devices: &[&str]) -> String {
    let root = dir.join(format!("sys-{}", devices.len()));
    std::fs::create_dir_all(root.join("bus/pci/devices")).unwrap();
    for d in devices {
        std::fs::create_dir_all(root.join("bus/pci/devices").join(d)).unwrap();
    }
    root.display().to_string()
}

#[test]
fn valid_environment_prints_the_effective_configuration_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ec_ca("Check CA");
    let props = with(
        base(),
        &[
            (
                "loadbalance.service_ip_range",
                Some("10.0.0.1-10.0.0.6, 192.168.10.128/25"),
            ),
            ("appliance.ca_cert", Some(&ca.cert_pem().replace('\n', " "))),
            ("appliance.ca_cert_key", Some(&ca.key_pkcs8_pem())),
        ],
    );
    let env = write(dir.path(), "env.xml", &doc(&props, Some(2)));
    let out = check(&["--env", &env, "--sys-root", &sysfs(dir.path(), &[])]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("OVF environment: file {env} (sha256 ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Deployment: default (the environment's EthernetAdapterSection lists 2 adapters)"
        ),
        "{stdout}"
    );
    for line in [
        "Load Balancer IP Ranges (loadbalance.service_ip_range): ",
        "10.0.0.1/32, 10.0.0.2/31, 10.0.0.4/31, 10.0.0.6/32, 192.168.10.128/25",
        "Root Password (appliance.root_pwd):",
        "HAProxy Password (loadbalance.haproxy_pwd):",
        "supplied CA CN=Check CA (1 certificate)",
        "Workload IP (network.workload_ip):",
        "192.168.10.2/24",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    for secret in ["VMware1!", "haproxy-secret", "PRIVATE KEY"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
        assert!(!text(&out.stderr).contains(secret));
    }
    assert_eq!(stdout.matches("********").count(), 3, "{stdout}");
}

#[test]
fn invalid_environment_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let props = with(
        base(),
        &[
            ("network.workload_ip", Some("192.168.10.200/24")),
            ("loadbalance.dataplane_port", Some("22")),
        ],
    );
    let env = write(dir.path(), "env.xml", &doc(&props, None));
    let out = check(&["--env", &env]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("has 2 problems in the vApp properties:"),
        "{stderr}"
    );
    assert!(stderr.contains("  - Workload IP (network.workload_ip): 192.168.10.200/24 lies inside load-balancer range 192.168.10.128/25 (loadbalance.service_ip_range); expected an address outside every load-balancer range\n"), "{stderr}");
    assert!(stderr.contains("  - Dataplane API Management Port (loadbalance.dataplane_port): 22 is reserved for SSH; expected another port from 1 to 65535\n"), "{stderr}");
}

#[test]
fn no_environment_unreadable_or_malformed_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&[
        "--env",
        &dir.path().join("missing.xml").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing.xml: cannot read it"),
        "{}",
        text(&out.stderr)
    );

    let bad = write(
        dir.path(),
        "bad.xml",
        "<Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\">\n<PropertySection>\n</Environment>",
    );
    let out = check(&["--env", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not well-formed XML at line 3"),
        "{}",
        text(&out.stderr)
    );

    let other = write(dir.path(), "other.xml", "<html/>");
    let out = check(&["--env", &other]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not an OVF environment"),
        "{}",
        text(&out.stderr)
    );

    // Not a VMware VM: guestinfo has nothing; no ISO carries ovf-env.xml here.
    let out = check(&["--transport", "guestinfo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no OVF environment found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn deployment_comes_from_the_flag_then_the_frontend_nic_then_the_adapter_count() {
    let dir = tempfile::tempdir().unwrap();
    let env3 = write(dir.path(), "env3.xml", &doc(&base_frontend(), Some(3)));
    let env_none = write(dir.path(), "env0.xml", &doc(&base_frontend(), None));
    let appliance_frontend = sysfs(
        dir.path(),
        &["0000:03:00.0", "0000:0b:00.0", "0000:13:00.0"],
    );
    let appliance_default = sysfs(dir.path(), &["0000:03:00.0", "0000:0b:00.0"]);
    let elsewhere = sysfs(dir.path(), &[]);

    let deployment_line = |args: &[&str]| {
        let out = check(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout).lines().nth(1).unwrap().to_owned()
    };
    assert_eq!(
        deployment_line(&["--env", &env3, "--sys-root", &appliance_frontend]),
        "Deployment: frontend (the frontend NIC (PCI 0000:13:00.0) is present)"
    );
    // Inside the appliance the NICs win over the adapter list.
    assert_eq!(
        deployment_line(&["--env", &env3, "--sys-root", &appliance_default]),
        "Deployment: default (no frontend NIC (PCI 0000:13:00.0) is present)"
    );
    assert_eq!(
        deployment_line(&["--env", &env3, "--sys-root", &elsewhere]),
        "Deployment: frontend (the environment's EthernetAdapterSection lists 3 adapters)"
    );
    assert_eq!(
        deployment_line(&["--env", &env_none, "--sys-root", &elsewhere]),
        "Deployment: default (no NICs or adapter list to go by)"
    );
    assert_eq!(
        deployment_line(&[
            "--env",
            &env3,
            "--sys-root",
            &appliance_default,
            "--deployment",
            "frontend"
        ]),
        "Deployment: frontend (chosen with --deployment)"
    );
}

#[test]
fn frontend_values_in_the_default_configuration_are_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let env = write(dir.path(), "env.xml", &doc(&base_frontend(), None));
    let out = check(&["--env", &env, "--deployment", "default"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Frontend IP (network.frontend_ip):"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not used (Default configuration)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Warnings:\n  - Frontend IP (network.frontend_ip): \"192.168.100.2/24\" is ignored"
        ),
        "{stdout}"
    );
}

#[test]
fn frontend_configuration_without_gateways_fails() {
    let dir = tempfile::tempdir().unwrap();
    let props = with(
        base_frontend(),
        &[
            ("network.workload_gateway", None),
            ("network.frontend_gateway", None),
        ],
    );
    let env = write(dir.path(), "env.xml", &doc(&props, Some(3)));
    let out = check(&["--env", &env, "--sys-root", &sysfs(dir.path(), &[])]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "frontend deployment: the environment's EthernetAdapterSection lists 3 adapters"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("Workload Gateway (network.workload_gateway): not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Frontend Gateway (network.frontend_gateway): not set"),
        "{stderr}"
    );
}

#[test]
fn the_hardening_rules_hold_in_check_too() {
    let dir = tempfile::tempdir().unwrap();
    let props = with(
        base(),
        &[
            (
                "network.additional_workload_networks",
                Some("192.168.0.0/23"),
            ),
            ("network.nameservers", Some("127.0.0.1")),
            ("network.hostname", Some("localhost")),
        ],
    );
    let env = write(dir.path(), "env.xml", &doc(&props, None));
    let out = check(&["--env", &env]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("has 3 problems"), "{stderr}");
    for needle in [
        "  - Host Name (network.hostname): \"localhost\" is already in /etc/hosts",
        "  - DNS (network.nameservers): 127.0.0.1 is in 127.0.0.0/8 (loopback)",
        "  - Additional Workload Networks (network.additional_workload_networks): 192.168.0.0/23 overlaps the management subnet",
    ] {
        assert!(stderr.contains(needle), "{needle}\n{stderr}");
    }

    // A CA that expires soon: valid, with a warning.
    let ca = ca_between(ec_key(), "Soon CA", -300, 10, Some(true));
    let props = with(
        base(),
        &[
            ("appliance.ca_cert", Some(&ca.cert_pem())),
            ("appliance.ca_cert_key", Some(&ca.key_pkcs8_pem())),
        ],
    );
    let env = write(dir.path(), "env2.xml", &doc(&props, None));
    let out = check(&["--env", &env]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Warnings:\n  - TLS Certificate Authority Certificate (appliance.ca_cert): the certificate (CN=Soon CA) expires on"),
        "{stdout}"
    );
}

#[test]
fn an_ha_pair_is_shown_with_its_secret_masked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ec_ca("Pair CA");
    let props = with(
        base(),
        &[
            ("appliance.ca_cert", Some(&ca.cert_pem())),
            ("appliance.ca_cert_key", Some(&ca.key_pkcs8_pem())),
            ("ha.peer_ip", Some("192.168.0.3")),
            ("ha.management_vip", Some("192.168.0.10")),
            ("ha.role", Some("secondary")),
            ("ha.shared_secret", Some("pair-secret-77")),
        ],
    );
    let env = write(dir.path(), "env.xml", &doc(&props, Some(2)));
    let out = check(&["--env", &env]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for line in [
        "Peer Management IP (ha.peer_ip):",
        "Management Virtual IP (ha.management_vip):",
        "192.168.0.10/24",
        "secondary (VRRP priority 100)",
        "Virtual Router ID (ha.router_id):",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    let secret = stdout
        .lines()
        .find(|l| l.starts_with("Shared Secret (ha.shared_secret):"))
        .unwrap();
    assert!(secret.ends_with("********"), "{secret}");
    assert!(!stdout.contains("pair-secret-77") && !text(&out.stderr).contains("pair-secret-77"));
    // A single appliance says so.
    let env = write(dir.path(), "single.xml", &doc(&base(), Some(2)));
    let stdout = text(&check(&["--env", &env]).stdout);
    assert!(
        stdout.contains("not set: a single appliance, no HA pair"),
        "{stdout}"
    );
}
