//! `ova-builder appliance` refuses a bad Data Plane API choice before any work: both
//! `--dataplaneapi` and `--no-dataplaneapi`, or a `--dataplaneapi` that is not an executable
//! for this machine, and it writes nothing.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn ova_builder() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ova-builder"))
}

#[test]
fn dataplaneapi_and_no_dataplaneapi_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let out = ova_builder()
        .args([
            "appliance",
            "--no-dataplaneapi",
            "--dataplaneapi",
            "/bin/true",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_dataplaneapi_that_does_not_run_is_refused_before_any_work() {
    // `appliance` checks for root first; the check under test comes right after.
    if !testkit::is_root() {
        testkit::skipping("ova-builder appliance needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("dataplaneapi");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'not for this machine' >&2\nexit 126\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (path, says) in [
        (broken.clone(), "not for this machine"),
        (dir.path().join("missing"), "No such file"),
    ] {
        let out = ova_builder()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["appliance", "--dataplaneapi"])
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!dir.path().join("out").exists(), "nothing is written");
    }
}
