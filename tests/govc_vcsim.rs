//! govc against vcsim: the client CI users import OVAs with, and the vCenter simulator, both at
//! the govmomi version `scripts/deps/go.tools` pins (built into `.tools/bin/` by
//! `scripts/install-deps`).
//!
//! - `govc import.spec` of a built OVA and `ova-builder spec --json` print the same document,
//!   byte for byte (same keys in the same order).
//! - `govc import.ova -options` with every property filled in (multi-line PEM values included)
//!   imports each deployment option with no warning: 2 or 3 VMXNET3 NICs in order on the mapped
//!   networks, every vApp property value as passed, the disk present.
//! - With `InjectOvfEnv`, the `guestinfo.ovfEnv` that govc makes vcsim write passes
//!   `haproxy-firstboot check` for that deployment.
//! - `-m` (check uploads against the manifest): vcsim's NFC upload reports no checksum, so govc
//!   refuses any manifest there; the test asserts that exact limitation, so a vcsim that starts
//!   supporting SHA-256 manifests makes it fail and be extended.
//!
//! `ova-builder` and `haproxy-firstboot` must be built first (`cargo build --workspace --bins`).
//! Everything listens on 127.0.0.1 only.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::target_bin;
use testkit::run;

#[test]
fn govc_imports_the_ova_into_vcsim_for_both_deployment_options() {
    let builder = target_bin("ova-builder");
    let firstboot = target_bin("haproxy-firstboot");
    let dir = tempfile::tempdir().unwrap();
    let ova = small_ova(&builder, dir.path());
    e2e::vcsim::import_and_check(&ova, &builder, &firstboot, 4096);
}

/// A small OVA of this project's definition.
fn small_ova(builder: &Path, dir: &Path) -> PathBuf {
    let disk = dir.join("disk.raw");
    let mut data = vec![0u8; 4 << 20];
    for (i, b) in data[..(1 << 20)].iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(&disk, data).unwrap();
    let out = dir.join("out");
    run(Command::new(builder)
        .args(["build", "--version", "1.2.3", "--disk"])
        .arg(&disk)
        .arg("--out")
        .arg(&out)
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    out.join("haproxy-v1.2.3.ova")
}
