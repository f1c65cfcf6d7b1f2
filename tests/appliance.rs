//! One appliance build per test run, shared by the tests that boot it (the boot test and the
//! lab): the first of them builds it with `ova-builder appliance` (the default build: this
//! repository's binaries and units, its Data Plane API), into `target/appliance-test/<key>/`;
//! the next one with the same inputs reuses it. The key is a SHA-256 of everything the build
//! reads from the repository — ova-builder, haproxy-firstboot, every Data Plane API binary
//! ova-builder may pick, the units, the appliance definition and the build's options — so a
//! changed input is a new build, never a stale one. A build is made in a temporary directory
//! and renamed into place once complete: a killed run leaves nothing half-built to reuse.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use testkit::workspace;

use crate::{Clock, target_bin};

/// The appliance version of the shared build (the OVA's product version, the disk's UUIDs).
pub const VERSION: &str = "0.0.0-test";
/// The build's time: fixed, so the same inputs give the same bytes.
const SOURCE_DATE_EPOCH: &str = "1763683200";

/// What `ova-builder appliance` produced.
pub struct Built {
    pub ova_builder: PathBuf,
    /// Its `--json` report.
    pub report: serde_json::Value,
    pub raw: PathBuf,
    pub has_dataplaneapi: bool,
}

/// The appliance's options: a raw disk and the OVA, and `APPLIANCE_DATAPLANEAPI=PATH` when set.
fn options(out: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "appliance",
        "--version",
        VERSION,
        "--raw",
        "--json",
        "--out",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(out.into());
    args.push("--firstboot".into());
    args.push(target_bin("haproxy-firstboot").into());
    args.push("--units".into());
    args.push(workspace().join("firstboot/systemd").into());
    if let Some(api) = std::env::var_os("APPLIANCE_DATAPLANEAPI") {
        args.push("--dataplaneapi".into());
        args.push(api);
    }
    args
}

/// Every file the build reads from the repository, in a fixed order.
fn inputs() -> Vec<PathBuf> {
    let ws = workspace();
    let mut files = vec![target_bin("ova-builder"), target_bin("haproxy-firstboot")];
    // ova-builder's own choice of Data Plane API (cmd/appliance.rs): any of these may be it.
    for candidate in [
        "target/release/haproxy-dataplaneapi",
        "target/debug/haproxy-dataplaneapi",
        ".tools/bin/dataplaneapi",
    ] {
        files.push(ws.join(candidate));
    }
    files.extend(std::env::var_os("APPLIANCE_DATAPLANEAPI").map(PathBuf::from));
    for dir in ["firstboot/systemd", "builder/appliance"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(ws.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        files.extend(entries);
    }
    files
}

/// The build's key: its options and the content of every input (a missing one counts too).
fn key(args: &[std::ffi::OsString]) -> String {
    let mut h = Sha256::new();
    for a in args {
        h.update(a.as_encoded_bytes());
        h.update([0]);
    }
    for file in inputs() {
        h.update(file.as_os_str().as_encoded_bytes());
        match std::fs::read(&file) {
            Ok(bytes) => {
                h.update(b"=");
                h.update(Sha256::digest(&bytes));
            }
            Err(_) => h.update(b"-"),
        }
    }
    hex::encode(&h.finalize()[..8])
}

/// The shared build: reused when a complete one of the same inputs exists, else made now (and
/// every other shared build removed: they are stale).
pub fn shared_build(clock: &Clock) -> Built {
    let root = workspace().join("target/appliance-test");
    // The key covers the options, whose --out names a fixed placeholder (the real directory
    // holds the key itself).
    let key = key(&options(Path::new("OUT")));
    let dir = root.join(&key);
    let report_file = dir.join("report.json");
    if let Ok(text) = std::fs::read_to_string(&report_file) {
        clock.log(format!(
            "reusing the appliance built for these inputs: {}",
            dir.display()
        ));
        let report: serde_json::Value = serde_json::from_str(&text).expect("report.json");
        return built(report);
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let tmp = root.join(format!("{key}.partial"));
    let report = build(&tmp.join("out"), clock);
    std::fs::write(tmp.join("report.json"), report.to_string()).expect("report.json");
    std::fs::rename(&tmp, &dir)
        .unwrap_or_else(|e| panic!("{} → {}: {e}", tmp.display(), dir.display()));
    // Paths in the report named the temporary directory.
    let text = std::fs::read_to_string(&report_file).expect("report.json");
    let fixed = text.replace(&format!("{key}.partial"), &key);
    std::fs::write(&report_file, &fixed).expect("report.json");
    built(serde_json::from_str(&fixed).expect("report.json"))
}

fn built(report: serde_json::Value) -> Built {
    let raw = PathBuf::from(report["raw_disk"].as_str().expect("raw_disk in the report"));
    let has_dataplaneapi = report["dataplaneapi"].is_object();
    Built {
        ova_builder: target_bin("ova-builder"),
        report,
        raw,
        has_dataplaneapi,
    }
}

fn build(out: &Path, clock: &Clock) -> serde_json::Value {
    let mut cmd = Command::new(target_bin("ova-builder"));
    cmd.args(options(out))
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    clock.log(format!("building the shared appliance: {cmd:?}"));
    let output = cmd.output().unwrap_or_else(|e| panic!("ova-builder: {e}"));
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            let _ = writeln!(err, "    {line}");
        }
    }
    assert!(
        output.status.success(),
        "ova-builder appliance failed ({})",
        output.status
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the --json report");
    match report["dataplaneapi"].as_object() {
        Some(api) => clock.log(format!(
            "the appliance includes the Data Plane API: {api:?}"
        )),
        None => {
            clock.log("the appliance has NO Data Plane API (none built, no APPLIANCE_DATAPLANEAPI)")
        }
    }
    clock.log(format!(
        "ok: appliance built in {:.1} s",
        report["total_seconds"].as_f64().unwrap_or(0.0)
    ));
    report
}
