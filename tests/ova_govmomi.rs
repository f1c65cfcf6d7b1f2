//! A real third-party client accepts the OVA: govmomi (the Go library behind govc and
//! Terraform's vSphere provider) parses the descriptor and, in its in-process vCenter
//! simulator, creates the import spec and imports the VM for both deployment options with a
//! property mapping of test values: no errors, no warnings, 2 NICs for `default` and 3 for
//! `frontend`.
//!
//! The harness (`tests/govmomi/main.go`) is a package of the Go module in `tests/govmomi`, whose
//! go.mod and go.sum pin govmomi (the version `scripts/deps/go.tools` names); it is built with
//! the machine's Go from the module cache that `scripts/install-deps` filled. `ova-builder` must
//! be built first (`scripts/test` runs `cargo build --workspace --bins` before the tests).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::target_bin;
use testkit::run_output;

/// Builds the Go harness into `work`; returns its path, or `None` (skipped) without Go outside CI.
fn build_harness(work: &Path) -> Option<PathBuf> {
    let go = e2e::go()?;
    let out = work.join("ova-govmomi");
    let o = Command::new(go)
        .args(["build", "-trimpath", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("govmomi"))
        // The pinned modules only: go.sum must already have them, nothing is re-resolved.
        .env("GOFLAGS", "-mod=readonly")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "go build of tests/govmomi failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(out)
}

/// A small raw disk with some data in it.
fn disk(dir: &Path) -> PathBuf {
    let path = dir.join("disk.raw");
    let mut data = vec![0u8; 4 << 20];
    for (i, b) in data[..(1 << 20)].iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(&path, data).unwrap();
    path
}

/// Test values a deployer would type, by property key.
fn test_value(key: &str) -> Option<&'static str> {
    Some(match key {
        "appliance.root_pwd" => "Secr3t-root",
        "appliance.permit_root_login" => "True",
        "network.hostname" => "lb01.example.test",
        "network.nameservers" => "192.168.0.10, 192.168.0.11",
        "network.management_ip" => "192.168.0.2/24",
        "network.management_gateway" => "192.168.0.1",
        "network.workload_ip" => "192.168.10.2/24",
        "network.workload_gateway" => "192.168.10.1",
        "network.additional_workload_networks" => "192.168.20.0/24",
        "network.frontend_ip" => "192.168.100.2/24",
        "network.frontend_gateway" => "192.168.100.1",
        "loadbalance.service_ip_range" => "192.168.100.128/25",
        "loadbalance.dataplane_port" => "5556",
        "loadbalance.haproxy_user" => "admin",
        "loadbalance.haproxy_pwd" => "Secr3t-api",
        _ => return None,
    })
}

#[test]
fn govmomi_imports_the_ova_for_both_deployment_options() {
    let dir = tempfile::tempdir().unwrap();
    let Some(harness) = build_harness(dir.path()) else {
        return;
    };
    let builder = target_bin("ova-builder");
    let out = dir.path().join("out");
    run_output(
        Command::new(&builder)
            .args(["build", "--version", "1.2.3", "--disk"])
            .arg(disk(dir.path()))
            .arg("--out")
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    let ova = out.join("haproxy-v1.2.3.ova");

    // The deployer's options file, as `ova-builder spec --json` writes it (govc's shape),
    // filled in with test values.
    let spec = run_output(Command::new(&builder).args(["spec", "--json"]).arg(&ova));
    let mut options: serde_json::Value = serde_json::from_slice(&spec.stdout).unwrap();
    let mut filled = 0;
    for entry in options["PropertyMapping"].as_array_mut().unwrap() {
        let key = entry["Key"].as_str().unwrap().to_string();
        if let Some(value) = test_value(&key) {
            entry["Value"] = value.into();
            filled += 1;
        }
    }
    assert_eq!(
        filled, 15,
        "test values for the configurable properties: {options:#}"
    );
    let options_path = dir.path().join("options.json");
    std::fs::write(&options_path, serde_json::to_vec_pretty(&options).unwrap()).unwrap();

    let o = run_output(
        Command::new(&harness)
            .arg("-ova")
            .arg(&ova)
            .arg("-options")
            .arg(&options_path)
            .args(["-expect", "default=2,frontend=3"]),
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["descriptor"], "haproxy-v1.2.3.ovf");
    for (id, nics) in [("default", 2), ("frontend", 3)] {
        let d = &report["deployments"][id];
        assert_eq!(d["import_spec_nics"], nics, "{report:#}");
        assert_eq!(d["imported_nics"], nics, "{report:#}");
        assert_eq!(d["disks"], 1);
        assert_eq!(d["disk_capacity_kb"], 4096);
        assert_eq!(d["uploaded"], serde_json::json!(["haproxy-disk1.vmdk"]));
    }

    // The harness can fail: a wrong expectation and an unknown property are reported.
    let o = Command::new(&harness)
        .arg("-ova")
        .arg(&ova)
        .arg("-options")
        .arg(&options_path)
        .args(["-expect", "default=3"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("default: 2 NICs in the import spec"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    options["PropertyMapping"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"Key": "network.hostnme", "Value": "x"}));
    std::fs::write(&options_path, serde_json::to_vec_pretty(&options).unwrap()).unwrap();
    let o = Command::new(&harness)
        .arg("-ova")
        .arg(&ova)
        .arg("-options")
        .arg(&options_path)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("\"network.hostnme\" is not a property"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
