//! The transports: guestinfo through (fake) VMware Tools, the ISO CD-ROM, files; and
//! publishing a guestinfo key.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use firstboot::source::guestinfo::{Guestinfo, Tools, publish_with};
use firstboot::source::iso::{self, Iso};
use firstboot::source::{EnvSource, Published};

const DOC: &str = "<Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\"/>";

/// Tests of this file run one at a time: each writes a script and executes it, and a script
/// still open for writing in a process another test thread is forking at that moment (between
/// fork and exec the child holds every descriptor) cannot be executed (ETXTBSY). Seen as a rare
/// failure of these tests under load.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn tools(rpctool: PathBuf, vmtoolsd: PathBuf) -> Tools {
    Tools { rpctool, vmtoolsd }
}

#[test]
fn rpctool_no_value_found_is_no_environment() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // What vmware-rpctool really prints for an unset key.
    let rpc = script(
        dir.path(),
        "vmware-rpctool",
        "echo 'No value found'; exit 1",
    );
    let mut g = Guestinfo::with_tools(tools(rpc, dir.path().join("absent")));
    assert_eq!(g.fetch().unwrap(), None);
}

#[test]
fn rpctool_value_is_the_environment() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let rpc = script(
        dir.path(),
        "vmware-rpctool",
        &format!("[ \"$1\" = 'info-get guestinfo.ovfEnv' ] || exit 3; printf '%s' '{DOC}'"),
    );
    let mut g = Guestinfo::with_tools(tools(rpc, dir.path().join("absent")));
    let found = g.fetch().unwrap().unwrap();
    assert_eq!(found.bytes, DOC.as_bytes());
    assert!(
        found.description.contains("guestinfo.ovfEnv via"),
        "{}",
        found.description
    );
}

#[test]
fn vmtoolsd_is_used_when_rpctool_is_missing() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let vmtoolsd = script(
        dir.path(),
        "vmtoolsd",
        &format!(
            "[ \"$1\" = --cmd ] && [ \"$2\" = 'info-get guestinfo.ovfEnv' ] || exit 3; printf '%s' '{DOC}'"
        ),
    );
    let mut g = Guestinfo::with_tools(tools(dir.path().join("absent"), vmtoolsd));
    assert_eq!(g.fetch().unwrap().unwrap().bytes, DOC.as_bytes());
    // Empty output (an empty guestinfo value) is no environment either.
    let empty = script(dir.path(), "vmtoolsd-empty", "exit 0");
    let mut g = Guestinfo::with_tools(tools(dir.path().join("absent"), empty));
    assert_eq!(g.fetch().unwrap(), None);
}

#[test]
fn tool_failures_and_missing_tools_are_errors() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let rpc = script(
        dir.path(),
        "vmware-rpctool",
        "echo 'Permission denied' >&2; exit 1",
    );
    let err = Guestinfo::with_tools(tools(rpc, dir.path().join("absent")))
        .fetch()
        .unwrap_err();
    assert!(err.to_string().contains("Permission denied"), "{err}");
    let err = Guestinfo::with_tools(tools(dir.path().join("a"), dir.path().join("b")))
        .fetch()
        .unwrap_err();
    assert!(err.to_string().contains("expected open-vm-tools"), "{err}");
}

#[test]
fn publishing_sets_one_guestinfo_key() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("args");
    let rpc = script(
        dir.path(),
        "vmware-rpctool",
        &format!("printf '%s' \"$1\" > '{}'", log.display()),
    );
    let t = tools(rpc, dir.path().join("absent"));
    let status = "invalid configuration: Workload IP (network.workload_ip): …";
    assert_eq!(
        publish_with(&t, "appliance.firstboot.status", status).unwrap(),
        Published::Set
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("info-set guestinfo.appliance.firstboot.status {status}")
    );
    assert_eq!(
        publish_with(&t, "guestinfo.dataplaneapi.cacert", "TFMwdExTMUNS").unwrap(),
        Published::Set
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "info-set guestinfo.dataplaneapi.cacert TFMwdExTMUNS"
    );
    assert!(publish_with(&t, "appliance.firstboot.status", "two\nlines").is_err());
    assert!(publish_with(&t, "bad key", "x").is_err());
}

/// An ISO 9660 image made by genisoimage, with `files` in its root.
fn make_iso(
    dir: &Path,
    name: &str,
    label: &str,
    files: &[(&str, &str)],
    extra: &[&str],
) -> Option<PathBuf> {
    let root = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&root).unwrap();
    for (file, content) in files {
        std::fs::write(root.join(file), content).unwrap();
    }
    let out = dir.join(name);
    testkit::run(
        Command::new("genisoimage")
            .args(["-quiet", "-V", label])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg(&root),
    );
    Some(out)
}

#[test]
fn iso_volume_is_found_by_label_and_read() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(other) = make_iso(
        dir.path(),
        "other.iso",
        "TOOLS",
        &[("readme.txt", "x")],
        &[],
    ) else {
        return;
    };
    let plain = make_iso(
        dir.path(),
        "plain.iso",
        "OVF ENV",
        &[("ovf-env.xml", DOC)],
        &[],
    )
    .unwrap();
    let joliet = make_iso(
        dir.path(),
        "joliet.iso",
        "OVF ENV",
        &[("ovf-env.xml", DOC)],
        &["-J", "-r"],
    )
    .unwrap();
    let not_iso = dir.path().join("disk.img");
    std::fs::write(&not_iso, vec![0u8; 64 * 1024]).unwrap();

    assert_eq!(
        iso::volume_label(&plain).unwrap().as_deref(),
        Some("OVF ENV")
    );
    assert_eq!(iso::volume_label(&other).unwrap().as_deref(), Some("TOOLS"));
    assert_eq!(iso::volume_label(&not_iso).unwrap(), None);

    for image in [&plain, &joliet] {
        // The non-ISO disk and the other CD come first; the labelled one is still chosen.
        let mut source =
            Iso::with_devices(vec![not_iso.clone(), other.clone(), image.clone()], false);
        let found = source.fetch().unwrap().unwrap();
        assert_eq!(found.bytes, DOC.as_bytes());
        assert!(
            found.description.ends_with("(OVF ENV)"),
            "{}",
            found.description
        );
    }
    // No ISO with the file: no environment.
    assert_eq!(
        Iso::with_devices(vec![not_iso, other], false)
            .fetch()
            .unwrap(),
        None
    );
}

/// With mounting enabled, an image file cannot be mounted (mount(2) needs a block device, and
/// unprivileged runs may not mount at all): the volume is then read directly, and nothing
/// stays mounted.
#[test]
fn iso_falls_back_to_reading_the_volume_and_leaves_nothing_mounted() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = make_iso(
        dir.path(),
        "env.iso",
        "OVF ENV",
        &[("ovf-env.xml", DOC)],
        &[],
    ) else {
        return;
    };
    let mut devices = vec![image.clone()];
    // As root, also through a real loop block device (mounted if the kernel has iso9660).
    let loopdev = Command::new("losetup")
        .args(["--find", "--show", "--read-only"])
        .arg(&image)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dev) = &loopdev {
        devices.insert(0, dev.clone());
    }
    for dev in &devices {
        let mut source = Iso::with_devices(vec![dev.clone()], true);
        let found = source.fetch();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        assert!(
            !mounts.contains("haproxy-firstboot-ovfenv"),
            "left mounted: {mounts}"
        );
        let found = found.unwrap().unwrap();
        assert_eq!(found.bytes, DOC.as_bytes(), "{}", dev.display());
    }
    if let Some(dev) = loopdev {
        let _ = Command::new("losetup").arg("-d").arg(dev).status();
    }
}

#[test]
fn file_source_reads_and_reports() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.xml");
    std::fs::write(&path, DOC).unwrap();
    let mut f = firstboot::source::file::File::new(path.clone());
    assert_eq!(f.fetch().unwrap().unwrap().bytes, DOC.as_bytes());
    let mut missing = firstboot::source::file::File::new(dir.path().join("nope.xml"));
    let err = missing.fetch().unwrap_err();
    assert!(err.to_string().contains("nope.xml"), "{err}");
}
