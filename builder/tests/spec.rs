//! `ova-builder spec`: the deployer's view, as a table and as `govc import.spec` JSON.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// The user-configurable properties of `docs/properties.md`, in descriptor order.
const KEYS: [&str; 22] = [
    "appliance.root_pwd",
    "appliance.permit_root_login",
    "appliance.ca_cert",
    "appliance.ca_cert_key",
    "network.hostname",
    "network.nameservers",
    "network.management_ip",
    "network.management_gateway",
    "network.workload_ip",
    "network.workload_gateway",
    "network.additional_workload_networks",
    "network.frontend_ip",
    "network.frontend_gateway",
    "loadbalance.service_ip_range",
    "loadbalance.dataplane_port",
    "loadbalance.haproxy_user",
    "loadbalance.haproxy_pwd",
    "ha.peer_ip",
    "ha.management_vip",
    "ha.router_id",
    "ha.role",
    "ha.shared_secret",
];

fn ova() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ova = build(&disk(dir.path()), &dir.path().join("out"), &[]);
    (dir, ova)
}

#[test]
fn govc_json_has_govc_shape_and_every_property() {
    let (_dir, ova) = ova();
    let o = run(&["spec", "--json", ova.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Field names and order as `govc import.spec` prints them.
    let order: Vec<usize> = [
        "\"Deployment\"",
        "\"DiskProvisioning\"",
        "\"IPAllocationPolicy\"",
        "\"IPProtocol\"",
        "\"PropertyMapping\"",
        "\"NetworkMapping\"",
        "\"MarkAsTemplate\"",
        "\"PowerOn\"",
        "\"InjectOvfEnv\"",
        "\"WaitForIP\"",
        "\"Name\"",
    ]
    .iter()
    .map(|k| {
        // Top-level fields only (two-space indentation of the pretty output).
        text.find(&format!("\n  {k}:"))
            .unwrap_or_else(|| panic!("{k} missing: {text}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(v["Deployment"], "default");
    assert_eq!(v["DiskProvisioning"], "flat");
    assert_eq!(v["IPAllocationPolicy"], "dhcpPolicy");
    assert_eq!(v["IPProtocol"], "IPv4");
    assert_eq!(v["Name"], serde_json::Value::Null);
    let keys: Vec<&str> = v["PropertyMapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, KEYS, "user-configurable properties only, in order");
    let value = |key: &str| {
        v["PropertyMapping"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["Key"] == key)
            .unwrap()["Value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(value("network.hostname"), "haproxy.local");
    assert_eq!(
        value("appliance.permit_root_login"),
        "True",
        "govc's boolean spelling"
    );
    assert_eq!(value("loadbalance.dataplane_port"), "5556");
    let networks: Vec<(&str, &str)> = v["NetworkMapping"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["Name"].as_str().unwrap(), n["Network"].as_str().unwrap()))
        .collect();
    assert_eq!(
        networks,
        [("Management", ""), ("Workload", ""), ("Frontend", "")]
    );
    // Another deployment option, and an unknown one.
    let o = run(&[
        "spec",
        "--json",
        "--deployment",
        "frontend",
        ova.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Deployment"], "frontend");
    let o = run(&[
        "spec",
        "--json",
        "--deployment",
        "front",
        ova.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("unknown deployment option `front` (the package has: default, frontend)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn table_shows_options_networks_and_every_property() {
    let (_dir, ova) = ova();
    let o = run(&["spec", ova.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("Deployment options:"));
    let line = |start: &str| {
        table
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line for {start}: {table}"))
            .to_string()
    };
    assert!(line("default ").contains("Default"));
    assert!(line("frontend ").contains("Frontend Network"));
    assert!(
        line("Frontend ").contains("frontend"),
        "network shown in frontend only"
    );
    assert!(line("Management ").contains("all"));
    for key in KEYS {
        assert!(table.contains(key), "{key} missing");
    }
    let pwd = line("appliance.root_pwd ");
    assert!(
        pwd.contains("password") && pwd.contains("MinLen(6) MaxLen(128)"),
        "{pwd}"
    );
    let fe = line("network.frontend_ip ");
    assert!(fe.contains("frontend"), "{fe}");
    assert!(line("network.hostname ").contains("\"haproxy.local\""));
    assert!(line("appliance.version ").contains("(fixed)"));
    assert!(line("appliance.version ").contains("\"1.2.3\""));
}

#[test]
fn full_json_and_ovf_input() {
    let (dir, ova) = ova();
    // The descriptor alone works as well as the OVA.
    let mut members = read_members(&ova);
    let ovf = dir.path().join("haproxy.ovf");
    std::fs::write(&ovf, &member(&mut members, ".ovf").data).unwrap();
    let o = run(&["spec", "--full", ovf.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let props = v["properties"].as_array().unwrap();
    let fe = props
        .iter()
        .find(|p| p["key"] == "network.frontend_gateway")
        .unwrap();
    assert_eq!(fe["configurations"], serde_json::json!(["frontend"]));
    assert_eq!(fe["category"], "2. Network Config");
    assert_eq!(fe["type_name"], "string");
    let pwd = props
        .iter()
        .find(|p| p["key"] == "loadbalance.haproxy_pwd")
        .unwrap();
    assert_eq!(pwd["password"], true);
    assert_eq!(v["deployment_options"][0]["id"], "default");
    assert_eq!(v["deployment_options"][0]["default"], true);
    // Not a package.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![1u8; 1024]).unwrap();
    let o = run(&["spec", junk.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("neither an OVF descriptor nor a readable OVA"),
        "{}",
        stderr(&o)
    );
}
