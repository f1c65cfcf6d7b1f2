//! `ova-builder convert` end to end: output, summary, JSON, options, and bad input (clear
//! error, non-zero exit, no output or temporary file left behind), including a full disk.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn ova_builder(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ova-builder"))
        .arg("convert")
        .args(args)
        .env_remove("CI")
        .output()
        .unwrap()
}

fn os(s: &(impl AsRef<std::ffi::OsStr> + ?Sized)) -> &std::ffi::OsStr {
    s.as_ref()
}

fn mixed_disk(path: &Path) {
    let mut data = Vec::new();
    for i in 0..200_000u32 {
        data.extend_from_slice(format!("line {i} of the appliance disk\n").as_bytes());
    }
    data.resize(8 << 20, 0);
    let mut x = 88172645463325252u64;
    for b in &mut data[6 << 20..7 << 20] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(path, data).unwrap();
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn converts_with_summary_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("disk.raw");
    mixed_disk(&input);
    let out = dir.path().join("disk.vmdk");

    let o = ova_builder(&[input.as_os_str(), out.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("disk.raw (raw, 8.0 MiB virtual") && line.contains("disk.vmdk"),
        "{line}"
    );
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o644
    );

    let out2 = dir.path().join("ide.vmdk");
    let o = ova_builder(&[
        input.as_os_str(),
        out2.as_os_str(),
        os("--adapter-type"),
        os("ide"),
        os("--json"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["capacity_bytes"], 8 << 20);
    assert_eq!(v["input_format"], "raw");
    assert_eq!(v["output_bytes"], std::fs::metadata(&out2).unwrap().len());
    let info = image::vmdk::inspect(std::fs::File::open(&out2).unwrap()).unwrap();
    assert_eq!(info.adapter_type.as_deref(), Some("ide"));
    assert!(info.has_end_of_stream);
    assert_eq!(
        dir_entries(dir.path()),
        ["disk.raw", "disk.vmdk", "ide.vmdk"]
    );
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.vmdk");

    let missing = dir.path().join("missing.raw");
    let o = ova_builder(&[missing.as_os_str(), out.as_os_str()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing.raw") && err.contains("No such file"),
        "{err}"
    );

    // A stream-optimized VMDK with a damaged grain: fails half-way through the conversion.
    let input = dir.path().join("disk.raw");
    mixed_disk(&input);
    let good = dir.path().join("good.vmdk");
    assert!(
        ova_builder(&[input.as_os_str(), good.as_os_str()])
            .status
            .success()
    );
    let mut bytes = std::fs::read(&good).unwrap();
    let at = bytes.len() / 2 / 512 * 512;
    bytes[at..at + 4096].fill(0x55);
    let broken = dir.path().join("broken.vmdk");
    std::fs::write(&broken, bytes).unwrap();
    let o = ova_builder(&[broken.as_os_str(), out.as_os_str()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.vmdk") && err.contains("corrupt VMDK"),
        "{err}"
    );

    let o = ova_builder(&[
        input.as_os_str(),
        out.as_os_str(),
        os("--adapter-type"),
        os("scsi"),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected one of"));

    assert_eq!(
        dir_entries(dir.path()),
        ["broken.vmdk", "disk.raw", "good.vmdk"]
    );
}

#[test]
fn full_disk_is_a_clear_error_with_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("disk.raw");
    mixed_disk(&input);
    let tiny = dir.path().join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&tiny)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must be able to mount a tmpfs"
        );
        testkit::skipping("cannot mount a tmpfs (not root?)");
        return;
    }
    let out = tiny.join("out.vmdk");
    let o = ova_builder(&[input.as_os_str(), out.as_os_str()]);
    let entries = dir_entries(&tiny);
    let _ = Command::new("umount").arg(&tiny).status();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(entries.is_empty(), "left behind: {entries:?}");
}

/// A descriptor whose extent is an absolute path elsewhere: refused (naming the line and the
/// path, no output), converted only with `--allow-extents-outside`.
#[test]
fn extents_outside_the_descriptor_directory_need_the_flag() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, [0x5a; 4096]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("disk.vmdk");
    std::fs::write(
        &input,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
             createType=\"monolithicFlat\"\nRW 8 FLAT \"{}\" 0\n",
            secret.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out.vmdk");

    let o = ova_builder(&[input.as_os_str(), out.as_os_str()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "converted: {err}");
    for word in [
        "line 6",
        secret.to_str().unwrap(),
        "--allow-extents-outside",
    ] {
        assert!(err.contains(word), "{err:?} does not mention {word:?}");
    }
    assert_eq!(dir_entries(dir.path()), ["disk.vmdk"]);

    let o = ova_builder(&[
        input.as_os_str(),
        out.as_os_str(),
        os("--allow-extents-outside"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.exists());
}
