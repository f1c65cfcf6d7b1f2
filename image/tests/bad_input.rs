//! Truncated, corrupt, unsupported and unreadable inputs, and a full output disk: a clear
//! error, no panic, no hang.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use image::ImageError;
use image::vmdk::VmdkOptions;

/// Opens and converts `path` into memory; returns the error text (the test fails on success).
fn fails(path: &Path) -> String {
    let result = image::open(path).and_then(|mut src| {
        let mut sink = Vec::new();
        image::vmdk::write_stream_optimized(
            src.as_mut(),
            &mut sink,
            &VmdkOptions::default(),
            &|_, _| {},
        )
    });
    match result {
        Ok(_) => panic!("{} converted, expected an error", path.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(msg: &str, words: &[&str]) {
    for w in words {
        assert!(msg.contains(w), "error {msg:?} does not mention {w:?}");
    }
}

fn qemu(dir: &Path, name: &str, args: &[&str], raw: &Path) -> PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let out = sub.join("disk.img");
    run(Command::new("qemu-img")
        .arg("convert")
        .args(["-f", "raw"])
        .args(args)
        .arg(raw)
        .arg(&out));
    out
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn poke(path: &Path, at: u64, bytes: &[u8]) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, at)
        .unwrap();
}

#[test]
fn unreadable_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let msg = fails(&dir.path().join("missing.raw"));
    assert_mentions(&msg, &["missing.raw", "cannot open", "No such file"]);
    let msg = fails(dir.path());
    assert_mentions(&msg, &["directory"]);
}

#[test]
fn truncated_and_corrupt_vmdk() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    let raw = &disks[2].1; // mixed, 9 MiB

    // monolithicSparse cut in half: grains point past the end.
    let p = qemu(
        dir.path(),
        "ms-trunc",
        &["-O", "vmdk", "-o", "subformat=monolithicSparse"],
        raw,
    );
    let len = std::fs::metadata(&p).unwrap().len();
    truncate(&p, len / 2);
    assert_mentions(&fails(&p), &["corrupt VMDK", "beyond the end of the file"]);

    // monolithicSparse cut inside its header.
    truncate(&p, 100);
    assert_mentions(&fails(&p), &["corrupt VMDK", "header", "truncated"]);

    // Grain directory pointing outside the file.
    let p = qemu(
        dir.path(),
        "ms-gd",
        &["-O", "vmdk", "-o", "subformat=monolithicSparse"],
        raw,
    );
    poke(&p, 56, &u64::MAX.wrapping_sub(5).to_le_bytes());
    assert_mentions(&fails(&p), &["corrupt VMDK", "grain directory", "outside"]);

    // Bad header version.
    let p = qemu(
        dir.path(),
        "ms-ver",
        &["-O", "vmdk", "-o", "subformat=monolithicSparse"],
        raw,
    );
    poke(&p, 4, &9u32.to_le_bytes());
    assert_mentions(&fails(&p), &["unsupported VMDK", "version 9"]);

    // qemu-img's streamOptimized (tables at the start) cut in half.
    let p = qemu(
        dir.path(),
        "so-trunc",
        &["-O", "vmdk", "-o", "subformat=streamOptimized"],
        raw,
    );
    let len = std::fs::metadata(&p).unwrap().len();
    truncate(&p, len / 2);
    assert_mentions(&fails(&p), &["corrupt VMDK", "grain", "truncated"]);

    // Ours (tables at the end) without its end: no footer.
    let out = dir.path().join("ours-trunc.vmdk");
    convert(raw, &out, &VmdkOptions::default());
    let len = std::fs::metadata(&out).unwrap().len();
    truncate(&out, len - 1024);
    assert_mentions(&fails(&out), &["corrupt VMDK", "footer"]);
    let msg = image::vmdk::inspect(std::fs::File::open(&out).unwrap())
        .unwrap_err()
        .to_string();
    assert_mentions(&msg, &["footer"]);

    // streamOptimized with a damaged grain.
    let out = dir.path().join("ours.vmdk");
    convert(raw, &out, &VmdkOptions::default());
    let first_grain = 128 * 512u64; // after header + descriptor (overhead 128 sectors)
    poke(
        &out,
        first_grain + 12,
        &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0],
    );
    assert_mentions(&fails(&out), &["corrupt VMDK", "does not inflate"]);
    let msg = image::vmdk::inspect(std::fs::File::open(&out).unwrap())
        .unwrap_err()
        .to_string();
    assert_mentions(&msg, &["does not inflate"]);

    // monolithicFlat whose data file was truncated.
    let p = qemu(
        dir.path(),
        "flat",
        &["-O", "vmdk", "-o", "subformat=monolithicFlat"],
        raw,
    );
    let flat = p.parent().unwrap().join("disk-flat.img");
    truncate(&flat, 4096);
    assert_mentions(&fails(&p), &["disk-flat.img", "truncated"]);

    // twoGbMaxExtentSparse with an extent file missing.
    let p = qemu(
        dir.path(),
        "split",
        &["-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"],
        raw,
    );
    std::fs::remove_file(p.parent().unwrap().join("disk-s001.img")).unwrap();
    assert_mentions(
        &fails(&p),
        &["disk-s001.img", "cannot open the extent file"],
    );

    // A descriptor that is not one.
    let p = dir.path().join("garbage.vmdk");
    std::fs::write(
        &p,
        "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW lots FLAT \"x\" 0\n",
    )
    .unwrap();
    assert_mentions(&fails(&p), &["corrupt VMDK", "line 4", "not a number"]);
}

#[test]
fn unsupported_variants() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("vmfs.vmdk");
    std::fs::write(&p, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"vmfsSparse\"\nRW 2048 VMFSSPARSE \"x-delta.vmdk\"\n").unwrap();
    assert_mentions(&fails(&p), &["unsupported VMDK", "vmfsSparse"]);

    let p = dir.path().join("child.vmdk");
    std::fs::write(&p, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=87654321\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"base.vmdk\"\nRW 2048 FLAT \"x-flat.vmdk\" 0\n").unwrap();
    assert_mentions(&fails(&p), &["unsupported VMDK", "parent"]);

    let p = dir.path().join("cowd.vmdk");
    std::fs::write(&p, b"COWD\x01\x00\x00\x00 and more").unwrap();
    assert_mentions(&fails(&p), &["unsupported", "COWD"]);

    if !have("qemu-img") {
        return;
    }
    let disks = make_disks(dir.path());
    let raw = &disks[2].1;
    let p = qemu(
        dir.path(),
        "zstd",
        &["-c", "-O", "qcow2", "-o", "compression_type=zstd"],
        raw,
    );
    assert_mentions(&fails(&p), &["unsupported qcow2", "compression type"]);

    let base = qemu(dir.path(), "base", &["-O", "qcow2"], raw);
    let child = dir.path().join("base").join("child.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-f", "qcow2", "-F", "qcow2", "-b", "disk.img"])
        .arg(&child));
    let _ = base;
    assert_mentions(&fails(&child), &["unsupported qcow2", "backing file"]);

    let enc = dir.path().join("enc.qcow2");
    run(Command::new("qemu-img")
        .args([
            "create",
            "-f",
            "qcow2",
            "--object",
            "secret,id=s0,data=abcdef",
        ])
        .args(["-o", "encrypt.format=luks,encrypt.key-secret=s0"])
        .arg(&enc)
        .arg("4M"));
    assert_mentions(&fails(&enc), &["unsupported qcow2", "encrypted"]);

    let vhdx = dir.path().join("disk.vhdx");
    run(Command::new("qemu-img")
        .args(["create", "-f", "vhdx"])
        .arg(&vhdx)
        .arg("4M"));
    assert_mentions(&fails(&vhdx), &["unsupported VHDX"]);
}

#[test]
fn truncated_and_corrupt_qcow2() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    let raw = &disks[2].1;

    let p = qemu(dir.path(), "trunc", &["-O", "qcow2"], raw);
    let len = std::fs::metadata(&p).unwrap().len();
    truncate(&p, len / 2);
    assert_mentions(
        &fails(&p),
        &["corrupt qcow2", "beyond the end", "truncated"],
    );

    truncate(&p, 20);
    assert_mentions(&fails(&p), &["corrupt qcow2", "too short"]);

    // L1 table offset far beyond the file.
    let p = qemu(dir.path(), "l1", &["-O", "qcow2"], raw);
    poke(&p, 40, &0x7fff_0000_0000_0000u64.to_be_bytes());
    assert_mentions(&fails(&p), &["corrupt qcow2", "L1 table"]);

    // Compressed qcow2 with a damaged compressed cluster.
    let p = qemu(dir.path(), "comp", &["-c", "-O", "qcow2"], raw);
    let data = std::fs::read(&p).unwrap();
    let len = data.len() as u64;
    poke(&p, len - 70_000, &[0xff; 4096]);
    let _ = fails(&p); // must not panic or hang; the message comes from the reader
}

/// A writer whose disk fills up after `room` bytes.
struct FullDisk {
    room: usize,
}

impl Write for FullDisk {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = b.len().min(self.room);
        self.room -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn full_output_disk_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    for room in [0, 1000, 200_000, 3 << 20] {
        let mut src = image::open(&disks[1].1).unwrap();
        let err = image::vmdk::write_stream_optimized(
            src.as_mut(),
            &mut FullDisk { room },
            &VmdkOptions::default(),
            &|_, _| {},
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::Write(_)), "{err:?}");
        assert_mentions(&err.to_string(), &["cannot write", "No space left"]);
    }
}

/// A stream-optimized VMDK's footer replaces the header's grain directory offset and table
/// size: a footer claiming 0 entries per grain table is an error, not a division by zero.
#[test]
fn stream_optimized_footer_with_zero_entries_per_table() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    std::fs::write(&raw, text(256 << 10, 7)).unwrap();
    let vmdk = dir.path().join("disk.vmdk");
    convert(&raw, &vmdk, &VmdkOptions::default());
    // Our writer ends with: footer marker, footer, end-of-stream marker.
    let len = std::fs::metadata(&vmdk).unwrap().len();
    poke(&vmdk, len - 1024 + 44, &0u32.to_le_bytes());
    assert_mentions(
        &fails(&vmdk),
        &["corrupt VMDK", "footer", "0 grain table entries per table"],
    );
}

/// A qcow2 feature-name table whose length is not a multiple of 48 bytes (48n+1 made imago
/// 0.2.6 index out of range) is refused before imago sees the file.
#[test]
fn qcow2_feature_name_table_of_odd_length() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    let p = qemu(dir.path(), "feat", &["-O", "qcow2"], &disks[0].1);
    let data = std::fs::read(&p).unwrap();
    let header_length = u32::from_be_bytes(data[100..104].try_into().unwrap()) as usize;
    // Find the feature-name table extension (type 0x6803f857) and make its length 48n+1.
    let mut at = header_length;
    loop {
        let kind = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
        let len = u32::from_be_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        assert_ne!(kind, 0, "qemu-img wrote no feature-name table");
        if kind == 0x6803_f857 {
            let n = len / 48;
            assert!(n >= 1);
            // The last entry's first byte stays a valid feature type (0 = incompatible).
            poke(
                &p,
                at as u64 + 4,
                &((48 * (n - 1) + 1) as u32).to_be_bytes(),
            );
            break;
        }
        at += 8 + len.div_ceil(8) * 8;
    }
    assert_mentions(
        &fails(&p),
        &["corrupt qcow2", "feature-name table", "multiple of 48"],
    );
}

/// A tiny qcow2 claiming an enormous virtual size: listing its extents walks the tables in
/// the file, not the claimed size block by block (which took months through imago).
#[test]
fn qcow2_claiming_a_huge_disk_is_listed_from_its_tables() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("small.raw");
    let mut data = vec![0u8; 1 << 20];
    data[..4096].copy_from_slice(&text(4096, 3));
    std::fs::write(&raw, &data).unwrap();
    let p = qemu(dir.path(), "huge", &["-O", "qcow2"], &raw);
    poke(&p, 24, &(1u64 << 62).to_be_bytes()); // the header's size field
    let mut src = match image::open(&p) {
        Ok(src) => src,
        // Refusing the header outright is fine too, as long as it is an error.
        Err(e) => return assert_mentions(&e.to_string(), &["qcow2"]),
    };
    assert_eq!(src.virtual_size(), 1 << 62);
    let extents = src.extents().unwrap();
    assert_eq!(
        extents,
        vec![image::Extent {
            offset: 0,
            length: 65536
        }]
    );
}

/// A descriptor whose FLAT extent is `name`, 8 sectors, in `dir/disk.vmdk`.
fn flat_descriptor(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join("disk.vmdk");
    let text = format!(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
         createType=\"monolithicFlat\"\n\n# Extent description\nRW 8 FLAT \"{name}\" 0\n"
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// Extents are confined to the descriptor's directory: an absolute path, `..` or a symlink
/// out of it is refused, naming the extent line and the path.
#[test]
fn descriptor_extents_outside_its_directory_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, [0x5a; 4096]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("vm");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(dir.path().join("next-door"), [0x5a; 4096]).unwrap();
    std::os::unix::fs::symlink(&secret, sub.join("link")).unwrap();

    let absolute = secret.to_str().unwrap();
    for name in [absolute, "../next-door", "link"] {
        let p = flat_descriptor(&sub, name);
        let msg = fails(&p);
        assert_mentions(
            &msg,
            &["line 8", name, "outside", "--allow-extents-outside"],
        );
        // Allowed explicitly, the same descriptor reads the file.
        let options = image::OpenOptions {
            allow_extents_outside: true,
        };
        let mut src = image::open_with(&p, &options).unwrap();
        assert_eq!(image::read_all(src.as_mut()).unwrap(), vec![0x5a; 4096]);
    }
    // Inside the directory (also through a subdirectory) is fine by default.
    std::fs::create_dir(sub.join("extents")).unwrap();
    std::fs::write(sub.join("extents/flat"), [7; 4096]).unwrap();
    let p = flat_descriptor(&sub, "extents/flat");
    let mut src = image::open(&p).unwrap();
    assert_eq!(image::read_all(src.as_mut()).unwrap(), vec![7; 4096]);
}
