//! `ova-builder appliance` refuses a bad Data Plane API choice before any work: both
//! `--dataplaneapi` and `--no-dataplaneapi`, or a `--dataplaneapi` that is not an executable
//! for this machine, and it writes nothing. Without `--dataplaneapi` it takes this
//! repository's own server, and the OVF product's full version names it.
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

/// A haproxy-firstboot stand-in and a units directory with its service, for runs of
/// `appliance` that stop before any work. Returns (firstboot, units).
fn fake_inputs(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let firstboot = dir.join("haproxy-firstboot");
    std::fs::write(&firstboot, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&firstboot, std::fs::Permissions::from_mode(0o755)).unwrap();
    let units = dir.join("units");
    std::fs::create_dir(&units).unwrap();
    std::fs::write(units.join("haproxy-firstboot.service"), "[Unit]\n").unwrap();
    (firstboot, units)
}

fn set_mtime(path: &std::path::Path, seconds: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
        .unwrap();
}

#[test]
fn an_invalid_source_date_epoch_is_refused_as_build_refuses_it() {
    if !testkit::is_root() {
        testkit::skipping("ova-builder appliance needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (firstboot, units) = fake_inputs(dir.path());
    let appliance = ova_builder()
        .args(["appliance", "--no-dataplaneapi", "--firstboot"])
        .arg(&firstboot)
        .arg("--units")
        .arg(&units)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    let build = ova_builder()
        .args(["build", "--disk"])
        .arg(&firstboot)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    let appliance_err = String::from_utf8_lossy(&appliance.stderr);
    let build_err = String::from_utf8_lossy(&build.stderr);
    assert_eq!(appliance.status.code(), Some(1), "{appliance_err}");
    assert_eq!(build.status.code(), Some(1), "{build_err}");
    for err in [&appliance_err, &build_err] {
        assert!(err.contains("SOURCE_DATE_EPOCH=\"yesterday\""), "{err}");
        assert!(err.contains("seconds since 1970"), "{err}");
    }
    assert_eq!(
        appliance_err.lines().last(),
        build_err.lines().last(),
        "one parser, one message"
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn without_source_date_epoch_the_newest_input_gives_the_time_not_the_clock() {
    if !testkit::is_root() {
        testkit::skipping("ova-builder appliance needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (firstboot, units) = fake_inputs(dir.path());
    let definition = dir.path().join("appliance.toml");
    std::fs::write(
        &definition,
        builder::appliance::definition::HAPROXY_DEFINITION,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("eula.txt"),
        builder::appliance::definition::HAPROXY_EULA,
    )
    .unwrap();
    set_mtime(&firstboot, 1_500_000_000);
    set_mtime(&units.join("haproxy-firstboot.service"), 1_400_000_000);
    set_mtime(&definition, 1_600_000_000);
    // A regular file where the output directory's parent should be: the build stops right
    // after choosing its time, before any work.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let out = ova_builder()
        .args(["appliance", "--no-dataplaneapi", "--firstboot"])
        .arg(&firstboot)
        .arg("--units")
        .arg(&units)
        .arg("--definition")
        .arg(&definition)
        .arg("--out")
        .arg(blocker.join("out"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1600000000"), "{stderr}");
    assert!(
        stderr.contains(&definition.display().to_string()),
        "{stderr}"
    );
}

/// Without `--dataplaneapi`, the repository's release build of its own server goes in (the
/// current directory is searched first, so a stand-in there wins), and the product's full
/// version names the version it prints. The build then stops before any work (see above).
#[test]
fn by_default_the_repositorys_own_server_goes_in_and_the_full_version_names_it() {
    if !testkit::is_root() {
        testkit::skipping("ova-builder appliance needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (firstboot, units) = fake_inputs(dir.path());
    let repo = dir.path().join("repo");
    let ours = repo.join("target/release/haproxy-dataplaneapi");
    let go = repo.join(".tools/bin/dataplaneapi");
    for (path, says) in [
        (
            &ours,
            "haproxy-dataplaneapi 9.8.7 (HAProxy Data Plane API v2)",
        ),
        (&go, "HAProxy Data Plane API v2.9.27"),
    ] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\necho '{says}'\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let out = ova_builder()
        .current_dir(&repo)
        .args(["appliance", "--version", "1.2.3", "--firstboot"])
        .arg(&firstboot)
        .arg("--units")
        .arg(&units)
        .arg("--out")
        .arg(blocker.join("out"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Data Plane API: target/release/haproxy-dataplaneapi \
             (haproxy-dataplaneapi 9.8.7 (HAProxy Data Plane API v2))"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "OVF product full version: 1.2.3; Data Plane API: haproxy-dataplaneapi 9.8.7 \
             (HAProxy Data Plane API v2)\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("v2.9.27"), "{stderr}");
}
