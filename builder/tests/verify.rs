//! `ova-builder verify`: accepts what `build` writes; rejects each kind of damage with its own
//! check code and message (one test per case).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Fixture {
    dir: tempfile::TempDir,
    ova: PathBuf,
}

fn unsigned() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ova = build(&disk(dir.path()), &dir.path().join("out"), &[]);
    Fixture { dir, ova }
}

fn signed() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (ova, _) = build_signed(dir.path(), &[]);
    Fixture { dir, ova }
}

impl Fixture {
    fn edited(&self, edit: impl FnOnce(&mut Vec<Entry>)) -> PathBuf {
        rewrite(&self.ova, &self.dir.path().join("edited.ova"), edit)
    }
}

/// Asserts that verify fails, with a problem of `check` about `file` whose message contains
/// `words`; returns the report.
fn rejects(path: &Path, check: &str, file: &str, words: &str) -> serde_json::Value {
    let (ok, report) = verify_json(path);
    assert!(!ok, "verify accepted it: {report:#}");
    assert_eq!(report["ok"], false);
    let found = problems(&report, check);
    assert!(
        found.iter().any(|(f, m)| f == file && m.contains(words)),
        "no {check} problem for {file:?} saying {words:?}: {report:#}"
    );
    report
}

/// Replaces the manifest line of `name` with the SHA-256 of `data` (after an edit).
fn fix_manifest(members: &mut [Entry], name: &str, data: &[u8]) {
    let digest: String = openssl::sha::sha256(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mf = member(members, ".mf");
    let text = String::from_utf8(mf.data.clone()).unwrap();
    let fixed: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("SHA256({name})= ")) {
                format!("SHA256({name})= {digest}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    mf.data = fixed.into_bytes();
}

/// Edits the descriptor text and keeps the manifest consistent with it.
fn edit_descriptor(members: &mut [Entry], edit: impl FnOnce(String) -> String) {
    let ovf = member(members, ".ovf");
    let name = ovf.name();
    let text = edit(String::from_utf8(ovf.data.clone()).unwrap());
    ovf.data = text.clone().into_bytes();
    fix_manifest(members, &name, text.as_bytes());
}

#[test]
fn accepts_what_build_writes() {
    for f in [unsigned(), signed()] {
        let (ok, report) = verify_json(&f.ova);
        assert!(ok, "{report:#}");
        assert_eq!(report["kind"], "ova");
        assert_eq!(error_checks(&report), Vec::<String>::new());
        let files = report["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| f["digest_ok"] == true));
    }
    let f = signed();
    let (_, report) = verify_json(&f.ova);
    assert_eq!(report["signer"]["signature_ok"], true);
    // NAME.ova.sha256 beside it was checked too.
    assert_eq!(
        report["checksum_file"],
        format!("{}.sha256", f.ova.display())
    );
    assert!(
        report["signer"]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=release")
    );
    // The human form.
    let o = run(&["verify", f.ova.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("OK: "), "{}", stdout(&o));
    assert!(stdout(&o).contains("signed by CN=release"));
}

#[test]
fn accepts_an_ovf_with_its_files_beside_it() {
    if !have("tar") {
        return;
    }
    let f = signed();
    let x = f.dir.path().join("x");
    untar(&f.ova, &x, &[]);
    let ovf = x.join("haproxy-v1.2.3.ovf");
    let (ok, report) = verify_json(&ovf);
    assert!(ok, "{report:#}");
    assert_eq!(report["kind"], "ovf");
    assert_eq!(report["signer"]["signature_ok"], true);
    assert_eq!(report["files"].as_array().unwrap().len(), 2);
    // And a missing disk beside it is reported.
    std::fs::remove_file(x.join("haproxy-disk1.vmdk")).unwrap();
    rejects(&ovf, "missing-file", "haproxy-disk1.vmdk", "no such file");
}

#[test]
fn accepts_gnu_headers_and_the_manifest_at_the_end() {
    if !have("tar") {
        return;
    }
    let f = signed();
    let x = f.dir.path().join("x");
    untar(&f.ova, &x, &[]);
    // GNU tar's own format, and the .mf/.cert pair last: both are what vSphere accepts.
    let gnu = f.dir.path().join("gnu.ova");
    let o = Command::new("tar")
        .args([
            "--format=gnu",
            "-cf",
            gnu.to_str().unwrap(),
            "-C",
            x.to_str().unwrap(),
        ])
        .args([
            "haproxy-v1.2.3.ovf",
            "haproxy-disk1.vmdk",
            "haproxy-v1.2.3.mf",
            "haproxy-v1.2.3.cert",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&gnu).unwrap()[257..265], b"ustar  \x00");
    let (ok, report) = verify_json(&gnu);
    assert!(ok, "{report:#}");
    assert_eq!(report["signer"]["signature_ok"], true);
    // But not the pair split around the disk.
    let split = f.dir.path().join("split.ova");
    let o = Command::new("tar")
        .args([
            "--format=ustar",
            "-cf",
            split.to_str().unwrap(),
            "-C",
            x.to_str().unwrap(),
        ])
        .args([
            "haproxy-v1.2.3.ovf",
            "haproxy-v1.2.3.mf",
            "haproxy-disk1.vmdk",
            "haproxy-v1.2.3.cert",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    rejects(
        &split,
        "member-order",
        "haproxy-v1.2.3.mf",
        "must come together",
    );
}

#[test]
fn rejects_an_ova_that_does_not_match_its_checksum_file() {
    let f = unsigned();
    let sidecar = f.ova.with_extension("ova.sha256");
    let text = std::fs::read_to_string(&sidecar).unwrap();
    std::fs::write(&sidecar, format!("{}{}", "0".repeat(64), &text[64..])).unwrap();
    let report = rejects(
        &f.ova,
        "archive-digest",
        "haproxy-v1.2.3.ova.sha256",
        "the OVA's SHA-256 is",
    );
    assert_eq!(error_checks(&report), ["archive-digest"]);
}

#[test]
fn rejects_a_flipped_byte_in_the_vmdk() {
    let f = unsigned();
    let bad = f.edited(|m| {
        let vmdk = member(m, ".vmdk");
        let middle = vmdk.data.len() / 2;
        vmdk.data[middle] ^= 0x01;
    });
    let report = rejects(
        &bad,
        "manifest-digest",
        "haproxy-disk1.vmdk",
        "does not match the manifest",
    );
    // The deep check finds the damaged grain too.
    assert_eq!(error_checks(&report), ["vmdk-stream", "manifest-digest"]);
    // The human form: non-zero exit and the precise message on stderr.
    let o = run(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error[manifest-digest] haproxy-disk1.vmdk:"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).starts_with("FAILED: "), "{}", stdout(&o));
}

#[test]
fn rejects_an_edited_manifest() {
    // Signed: the signature shows that the manifest, not the disk, was edited.
    let f = signed();
    let bad = f.edited(|m| {
        let mf = member(m, ".mf");
        let text = String::from_utf8(mf.data.clone()).unwrap();
        let edited = text.replacen(
            "SHA256(haproxy-disk1.vmdk)= ",
            "SHA256(haproxy-disk1.vmdk)= 0",
            1,
        );
        // Keep the digest length valid: drop the last digit of that line.
        let edited: String = edited
            .lines()
            .map(|l| {
                if l.starts_with("SHA256(haproxy-disk1.vmdk)") {
                    format!("{}\n", &l[..l.len() - 1])
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        mf.data = edited.into_bytes();
    });
    rejects(
        &bad,
        "manifest-changed",
        "haproxy-v1.2.3.cert",
        "the manifest was edited after signing",
    );
}

#[test]
fn rejects_a_manifest_in_another_spelling() {
    // Unsigned, rewritten by `openssl dgst` (OpenSSL 3 spelling): vCenter refuses it.
    let f = unsigned();
    let bad = f.edited(|m| {
        let mf = member(m, ".mf");
        let text = String::from_utf8(mf.data.clone()).unwrap();
        mf.data = text.replace("SHA256(", "SHA2-256(").into_bytes();
    });
    rejects(
        &bad,
        "manifest-syntax",
        "haproxy-v1.2.3.mf",
        "unknown algorithm `SHA2-256`",
    );
}

#[test]
fn rejects_a_missing_file() {
    let f = unsigned();
    let bad = f.edited(|m| m.retain(|e| !e.name().ends_with(".vmdk")));
    let report = rejects(
        &bad,
        "missing-file",
        "haproxy-disk1.vmdk",
        "References lists `haproxy-disk1.vmdk` (id file1) but the package has no such file",
    );
    assert!(!problems(&report, "manifest-missing-file").is_empty());
}

#[test]
fn rejects_a_wrong_ovf_size() {
    let f = unsigned();
    let bad = f.edited(|m| {
        let size = member(m, ".vmdk").data.len();
        edit_descriptor(m, |xml| {
            let attr = format!("ovf:size=\"{size}\"");
            assert!(xml.contains(&attr));
            xml.replace(&attr, &format!("ovf:size=\"{}\"", size + 512))
        });
    });
    let report = rejects(
        &bad,
        "file-size",
        "haproxy-disk1.vmdk",
        "ovf:size in the descriptor is",
    );
    // The manifest was kept consistent: the size is the only error.
    assert_eq!(error_checks(&report), ["file-size"]);
}

#[test]
fn rejects_a_pax_format_ova() {
    if !have("python3") {
        return;
    }
    let f = unsigned();
    let x = f.dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let members = read_members(&f.ova);
    for m in &members {
        std::fs::write(x.join(m.name()), &m.data).unwrap();
    }
    let names: Vec<String> = members.iter().map(|m| m.name()).collect();
    let pax = f.dir.path().join("pax.ova");
    // Python's tarfile in its default (PAX) format, adding the files as they are on disk.
    let script = "import sys, tarfile, os\n\
        out, src, names = sys.argv[1], sys.argv[2], sys.argv[3:]\n\
        with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:\n\
        \x20   for n in names:\n\
        \x20       t.add(os.path.join(src, n), arcname=n)\n";
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&pax)
        .arg(&x)
        .args(&names)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = rejects(
        &pax,
        "pax-header",
        "haproxy-v1.2.3.ovf",
        "is a PAX extended header (as Python's tarfile",
    );
    assert_eq!(error_checks(&report), ["pax-header"; 3], "one per member");
}

#[test]
fn rejects_dot_slash_prefixed_names() {
    let f = unsigned();
    let bad = f.edited(|m| {
        for e in m.iter_mut() {
            let name = format!("./{}", e.name());
            e.set_raw_name(&name);
        }
    });
    rejects(
        &bad,
        "dot-slash-name",
        "./haproxy-v1.2.3.ovf",
        "starts with `./`",
    );
}

#[test]
fn rejects_a_parent_directory_member() {
    let f = unsigned();
    let bad = f.edited(|m| {
        let mut evil = m[1].clone();
        evil.set_raw_name("../etc/cron.d/evil");
        evil.data = b"* * * * * root sh -c id\n".to_vec();
        m.push(evil);
    });
    rejects(&bad, "parent-path", "../etc/cron.d/evil", "contains `..`");
}

#[test]
fn rejects_a_symlink_member() {
    let f = unsigned();
    let bad = f.edited(|m| {
        let mut link = m[1].clone();
        link.set_raw_name("haproxy-disk2.vmdk");
        link.header.set_entry_type(tar::EntryType::Symlink);
        link.header.set_link_name("/etc/shadow").unwrap();
        link.data.clear();
        m.push(link);
    });
    rejects(
        &bad,
        "link-member",
        "haproxy-disk2.vmdk",
        "a symbolic link to `/etc/shadow`",
    );
}

#[test]
fn rejects_a_bad_signature() {
    let f = signed();
    let bad = f.edited(|m| {
        let cert = member(m, ".cert");
        let mut text = String::from_utf8(cert.data.clone()).unwrap();
        // Flip one hex digit in the middle of the signature.
        let at = text.find("= ").unwrap() + 2 + 100;
        let digit = &text[at..at + 1];
        let flipped = if digit == "0" { "1" } else { "0" };
        text.replace_range(at..at + 1, flipped);
        cert.data = text.into_bytes();
    });
    let report = rejects(
        &bad,
        "bad-signature",
        "haproxy-v1.2.3.cert",
        "does not verify with the public key of the enclosed certificate",
    );
    // The files themselves are intact.
    assert_eq!(error_checks(&report), ["bad-signature"]);
}

#[test]
fn rejects_a_certificate_that_does_not_match() {
    let f = signed();
    // A certificate of another key (3072-bit): it cannot have made a 2048-bit signature.
    let (_, other) = signing_pair(f.dir.path(), "impostor", 3072);
    let other_pem = std::fs::read_to_string(other).unwrap();
    let swap = |pem: String| {
        move |m: &mut Vec<Entry>| {
            let cert = member(m, ".cert");
            let text = String::from_utf8(cert.data.clone()).unwrap();
            let first = text.split_once('\n').unwrap().0;
            cert.data = format!("{first}\n{pem}").into_bytes();
        }
    };
    let bad = f.edited(swap(other_pem));
    let report = rejects(
        &bad,
        "certificate-mismatch",
        "haproxy-v1.2.3.cert",
        "the certificate does not match the signature",
    );
    assert!(
        problems(&report, "certificate-mismatch")[0]
            .1
            .contains("CN=impostor")
    );
    // A certificate of another key of the same size: the signature does not verify with it.
    let (_, same_size) = signing_pair(f.dir.path(), "lookalike", 2048);
    let bad = f.edited(swap(std::fs::read_to_string(same_size).unwrap()));
    let report = rejects(
        &bad,
        "bad-signature",
        "haproxy-v1.2.3.cert",
        "the certificate is not the one whose key signed",
    );
    assert_eq!(report["signer"]["signature_ok"], false);
}

// More unsafe or malformed archives.

#[test]
fn rejects_an_absolute_member() {
    let f = unsigned();
    let bad = f.edited(|m| {
        let mut abs = m[1].clone();
        abs.set_raw_name("/etc/passwd");
        m.push(abs);
    });
    rejects(&bad, "absolute-path", "/etc/passwd", "an absolute path");
}

#[test]
fn rejects_duplicate_members() {
    let f = unsigned();
    let bad = f.edited(|m| {
        let dup = m[2].clone();
        m.push(dup);
    });
    rejects(
        &bad,
        "duplicate-member",
        "haproxy-disk1.vmdk",
        "repeats an earlier member",
    );
}

#[test]
fn rejects_a_device_member() {
    let f = unsigned();
    let bad = f.edited(|m| {
        let mut dev = m[1].clone();
        dev.set_raw_name("sda");
        dev.header.set_entry_type(tar::EntryType::Block);
        dev.data.clear();
        m.push(dev);
    });
    rejects(&bad, "special-member", "sda", "a device or FIFO");
}

#[test]
fn rejects_the_descriptor_out_of_place() {
    let f = unsigned();
    let bad = f.edited(|m| m.swap(0, 2));
    rejects(
        &bad,
        "member-order",
        "haproxy-v1.2.3.ovf",
        "must be the first",
    );
}

#[test]
fn rejects_a_capacity_that_disagrees_with_the_vmdk_header() {
    let f = unsigned();
    let bad = f.edited(|m| {
        edit_descriptor(m, |xml| {
            let attr = format!("ovf:capacity=\"{}\"", 4u64 << 20);
            assert!(xml.contains(&attr), "{xml}");
            xml.replace(&attr, &format!("ovf:capacity=\"{}\"", 8u64 << 20))
        });
    });
    let report = rejects(
        &bad,
        "disk-capacity",
        "haproxy-disk1.vmdk",
        "the VMDK header says 4194304 bytes",
    );
    assert_eq!(error_checks(&report), ["disk-capacity"]);
}

#[test]
fn rejects_an_undefined_configuration() {
    let f = unsigned();
    let bad = f.edited(|m| {
        edit_descriptor(m, |xml| {
            assert!(xml.contains("ovf:configuration=\"frontend\""));
            xml.replacen(
                "ovf:configuration=\"frontend\"",
                "ovf:configuration=\"frontnd\"",
                1,
            )
        });
    });
    rejects(
        &bad,
        "undefined-reference",
        "haproxy-v1.2.3.ovf",
        "ovf:configuration `frontnd`, which no DeploymentOption declares",
    );
}

#[test]
fn rejects_a_file_that_is_not_a_package() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.ova");
    std::fs::write(&path, vec![0x42u8; 2000]).unwrap();
    rejects(&path, "archive", "", "not a readable OVA");
    let o = run(&["verify", "/nonexistent/x.ova"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot read /nonexistent/x.ova"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn damaged_archives_give_reports_not_panics() {
    let f = signed();
    let bytes = std::fs::read(&f.ova).unwrap();
    let path = f.dir.path().join("damaged.ova");
    let progress = builder::progress::Progress::hidden();
    let verify = |b: &[u8]| {
        std::fs::write(&path, b).unwrap();
        builder::verify::verify(&path, &progress).unwrap().ok
    };
    // Bytes no reader looks at: the zero padding after each member's data.
    let members = builder::ova::scan(
        &mut std::fs::File::open(&f.ova).unwrap(),
        bytes.len() as u64,
    )
    .unwrap();
    let padding = |at: u64| {
        members.iter().any(|m| {
            at >= m.data_offset + m.size && at < m.data_offset + m.size.div_ceil(512) * 512
        })
    };
    // Truncated anywhere in the first 64 KiB (the VMDK runs past it): always refused.
    for n in (0..bytes.len().min(64 * 1024)).step_by(997) {
        assert!(!verify(&bytes[..n]), "accepted the first {n} bytes");
    }
    // A flipped byte in the headers, descriptor, manifest, certificate or disk: refused,
    // unless it is tar padding.
    for at in (0..bytes.len().min(40 * 1024)).step_by(131) {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        assert_eq!(verify(&b), padding(at as u64), "byte {at} flipped");
    }
    assert!(verify(&bytes));
}

#[test]
fn rejects_a_stream_vmdk_without_footer_and_end_of_stream_marker() {
    // qemu-img's streamOptimized output: valid for qemu, rejected by vSphere content libraries.
    let f = unsigned();
    let raw = disk(f.dir.path());
    let qemu_vmdk = f.dir.path().join("qemu.vmdk");
    let status = Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
        ])
        .arg(&raw)
        .arg(&qemu_vmdk)
        .status()
        .expect("qemu-img (package qemu-utils) must be installed");
    assert!(status.success());
    let qemu_bytes = std::fs::read(&qemu_vmdk).unwrap();
    let bad = f.edited(|m| {
        let vmdk = member(m, ".vmdk");
        let name = vmdk.name();
        let old_size = vmdk.data.len();
        vmdk.data = qemu_bytes.clone();
        vmdk.header.set_size(qemu_bytes.len() as u64);
        vmdk.header.set_cksum();
        fix_manifest(m, &name, &qemu_bytes);
        edit_descriptor(m, |xml| {
            xml.replace(
                &format!("ovf:size=\"{old_size}\""),
                &format!("ovf:size=\"{}\"", qemu_bytes.len()),
            )
        });
    });
    let report = rejects(
        &bad,
        "vmdk-header",
        "haproxy-disk1.vmdk",
        "end-of-stream marker",
    );
    // The deep check (which reads only complete streams) refuses it too.
    assert_eq!(error_checks(&report), ["vmdk-header", "vmdk-stream"]);
}

/// One grain's deflate data damaged and the manifest recomputed (an unsigned OVA cannot tell):
/// the deep check inflates every grain and names the one that fails.
#[test]
fn rejects_a_damaged_grain_even_with_a_recomputed_manifest() {
    let f = unsigned();
    let mut lba = 0;
    let bad = f.edited(|m| {
        let vmdk = member(m, ".vmdk");
        let name = vmdk.name();
        let data = &mut vmdk.data;
        // The first grain marker follows the header's overhead (sectors, at byte 64).
        let overhead = u64::from_le_bytes(data[64..72].try_into().unwrap()) as usize;
        let at = overhead * 512;
        lba = u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
        let size = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        assert!(size > 16, "no grain at sector {overhead}");
        for b in &mut data[at + 12 + size / 2..at + 12 + size / 2 + 8] {
            *b ^= 0x5a;
        }
        let data = data.clone();
        fix_manifest(m, &name, &data);
    });
    let report = rejects(
        &bad,
        "vmdk-stream",
        "haproxy-disk1.vmdk",
        "does not inflate",
    );
    assert_eq!(error_checks(&report), ["vmdk-stream"]);
    let (_, message) = &problems(&report, "vmdk-stream")[0];
    assert!(message.contains(&format!("LBA {lba}")), "{message}");
    // --no-deep skips it (the manifest matches, so nothing else is wrong).
    let o = run(&["verify", "--no-deep", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
