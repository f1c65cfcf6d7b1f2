//! `verify` and `spec` on archives whose tar structure lies: sizes that wrap the offset
//! arithmetic, members hidden after a lone zero block, bytes after the end-of-archive, and a
//! disk of capacity 0. Each must be refused with a clear report, never a hang or a panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// An unsigned OVA as `build` writes it, and its bytes.
fn built() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let ova = build(&disk(dir.path()), &dir.path().join("out"), &[]);
    let bytes = std::fs::read(&ova).unwrap();
    (dir, ova, bytes)
}

/// Header offsets of the members, from the honest scan.
fn header_offsets(ova: &Path, len: usize) -> Vec<u64> {
    let mut file = std::fs::File::open(ova).unwrap();
    builder::ova::scan(&mut file, len as u64)
        .unwrap()
        .iter()
        .map(|m| m.header_offset)
        .collect()
}

/// Where the end-of-archive zero blocks start: after the last member's padded data.
fn end_of_members(ova: &Path, len: usize) -> usize {
    let mut file = std::fs::File::open(ova).unwrap();
    let members = builder::ova::scan(&mut file, len as u64).unwrap();
    let last = members.last().unwrap();
    (last.data_offset + last.size.div_ceil(512) * 512) as usize
}

/// Recomputes the checksum of the header block at `at`.
fn fix_checksum(bytes: &mut [u8], at: usize) {
    let block = &mut bytes[at..at + 512];
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

fn verify_in_process(path: &Path) -> builder::verify::Report {
    builder::verify::verify(path, &builder::progress::Progress::hidden()).unwrap()
}

fn checks(report: &builder::verify::Report) -> Vec<String> {
    report
        .errors()
        .map(|p| {
            serde_json::to_value(p.check)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn a_base256_size_near_2_pow_64_is_refused_not_looped_on() {
    let (dir, ova, mut bytes) = built();
    let second = header_offsets(&ova, bytes.len())[1] as usize;
    // GNU base-256 size: a size that, added to the data offset and padded, wraps the
    // 64-bit offset back onto this very header.
    let size = 0u64.wrapping_sub(512);
    let field = &mut bytes[second + 124..second + 136];
    field.fill(0);
    field[0] = 0x80;
    field[4..].copy_from_slice(&size.to_be_bytes());
    fix_checksum(&mut bytes, second);
    let path = dir.path().join("lying.ova");
    std::fs::write(&path, &bytes).unwrap();

    let report = verify_in_process(&path);
    assert!(!report.ok);
    assert_eq!(checks(&report), ["archive"], "{:#?}", report.problems);
    let message = &report.problems[0].message;
    assert!(message.contains(&size.to_string()), "{message}");
    assert!(message.contains("past the end of the file"), "{message}");

    let err = builder::spec::spec_of(&path).unwrap_err().to_string();
    assert!(err.contains("past the end of the file"), "{err}");
}

#[test]
fn every_size_that_can_overflow_is_refused() {
    let (dir, ova, bytes) = built();
    let offsets = header_offsets(&ova, bytes.len());
    let path = dir.path().join("lying.ova");
    for &at in &offsets {
        let at = at as usize;
        for size in [
            u64::MAX,
            u64::MAX - 511,
            u64::MAX - 1023,
            1 << 63,
            (bytes.len() - at) as u64,
        ] {
            let mut b = bytes.clone();
            let field = &mut b[at + 124..at + 136];
            field.fill(0);
            field[0] = 0x80;
            field[4..].copy_from_slice(&size.to_be_bytes());
            fix_checksum(&mut b, at);
            std::fs::write(&path, &b).unwrap();
            let report = verify_in_process(&path);
            assert!(!report.ok, "size {size} at header {at} accepted");
            assert!(checks(&report).contains(&"archive".to_string()));
        }
    }
}

/// GNU tar with `--ignore-zeros` (`-i`) lists the member hidden after a lone zero block.
#[test]
fn a_member_hidden_after_a_lone_zero_block_is_refused() {
    let (dir, ova, bytes) = built();
    let end = end_of_members(&ova, bytes.len());
    let mut b = bytes[..end].to_vec();
    b.extend_from_slice(&[0u8; 512]);
    let mut header = tar::Header::new_ustar();
    header.set_path("evil.sh").unwrap();
    header.set_size(5);
    header.set_mode(0o755);
    header.set_cksum();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(b"boom\n");
    b.resize(b.len().div_ceil(512) * 512 + 1024, 0);
    let path = dir.path().join("hidden.ova");
    std::fs::write(&path, &b).unwrap();

    if have("tar") {
        let o = Command::new("tar")
            .args(["-tif", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(stdout(&o).contains("evil.sh"), "tar -i: {}", stdout(&o));
    }
    let report = verify_in_process(&path);
    assert!(!report.ok);
    assert_eq!(checks(&report), ["hidden-member"], "{:#?}", report.problems);
    let p = &report.problems[0];
    assert_eq!(p.file.as_deref(), Some("evil.sh"));
    assert!(
        p.message.contains(&format!("byte {}", end + 512)),
        "{}",
        p.message
    );
    assert!(p.message.contains("tar -i"), "{}", p.message);
}

#[test]
fn bytes_after_the_end_of_archive_are_refused() {
    let (dir, ova, bytes) = built();
    let end = end_of_members(&ova, bytes.len());
    for (what, extra) in [
        ("text", b"appended after the archive".to_vec()),
        ("one byte far in", {
            let mut v = vec![0u8; 8192];
            v[5000] = 1;
            v
        }),
    ] {
        let mut b = bytes.clone();
        b.extend_from_slice(&extra);
        let path = dir.path().join("trailing.ova");
        std::fs::write(&path, &b).unwrap();
        let report = verify_in_process(&path);
        assert!(!report.ok, "{what}: accepted");
        assert_eq!(
            checks(&report),
            ["trailing-data"],
            "{what}: {:#?}",
            report.problems
        );
        let first_nonzero = bytes.len() + extra.iter().position(|&x| x != 0).unwrap();
        let message = &report.problems[0].message;
        assert!(
            message.contains(&format!("byte {first_nonzero}")),
            "{what}: {message}"
        );
        assert!(
            message.contains(&format!("byte {end}")),
            "{what}: {message}"
        );
    }
    // Zero padding after the end-of-archive (tar's 10 KiB records) is fine.
    let mut b = bytes.clone();
    b.resize(b.len() + 10240, 0);
    let path = dir.path().join("padded.ova");
    std::fs::write(&path, &b).unwrap();
    let report = verify_in_process(&path);
    assert!(report.ok, "{:#?}", report.problems);
}

#[test]
fn a_disk_of_capacity_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ova = build(&disk(dir.path()), &dir.path().join("out"), &[]);
    let mut members = read_members(&ova);
    // Capacity 0 both in the descriptor and in the VMDK header, so that they agree.
    let vmdk = member(&mut members, ".vmdk");
    vmdk.data[12..20].copy_from_slice(&0u64.to_le_bytes());
    let vmdk_name = vmdk.name();
    let vmdk_data = vmdk.data.clone();
    let ovf = member(&mut members, ".ovf");
    let ovf_name = ovf.name();
    let capacity = format!("ovf:capacity=\"{}\"", 4u64 << 20);
    let text = String::from_utf8(ovf.data.clone()).unwrap();
    assert!(text.contains(&capacity), "{text}");
    let text = text.replace(&capacity, "ovf:capacity=\"0\"");
    ovf.data = text.clone().into_bytes();
    let mf = member(&mut members, ".mf");
    let digest = |d: &[u8]| hex::encode(openssl::sha::sha256(d));
    mf.data = format!(
        "SHA256({ovf_name})= {}\nSHA256({vmdk_name})= {}\n",
        digest(text.as_bytes()),
        digest(&vmdk_data)
    )
    .into_bytes();
    let path = dir.path().join("zero.ova");
    write_members(&path, &members);

    let (ok, report) = verify_json(&path);
    assert!(!ok, "{report:#}");
    let found = problems(&report, "disk-capacity");
    assert!(
        found.iter().any(|(_, m)| m.contains("capacity 0")),
        "{report:#}"
    );
}

#[test]
fn spec_refuses_a_huge_descriptor_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.ovf");
    let file = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &file, b"<?xml version=\"1.0\"?>").unwrap();
    // Sparse: 1 GiB of apparent size costs nothing on disk.
    file.set_len(1 << 30).unwrap();
    let err = builder::spec::spec_of(&path).unwrap_err().to_string();
    assert!(err.contains("too large"), "{err}");
    assert!(err.contains(&(1u64 << 30).to_string()), "{err}");
}

#[test]
fn a_huge_checksum_file_is_refused_without_reading_it() {
    let (_dir, ova, _) = built();
    let mut sidecar = ova.as_os_str().to_owned();
    sidecar.push(".sha256");
    let file = std::fs::File::create(&sidecar).unwrap();
    file.set_len(1 << 30).unwrap(); // sparse
    let report = verify_in_process(&ova);
    assert!(!report.ok);
    assert_eq!(
        checks(&report),
        ["archive-digest"],
        "{:#?}",
        report.problems
    );
    assert!(
        report.problems[0].message.contains("too large"),
        "{}",
        report.problems[0].message
    );
}
