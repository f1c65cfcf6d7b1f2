//! Our stream-optimized output against independent readers: qemu-img (compare, check) and
//! libvmdk (pyvmdk), for an all-zero disk, random data, a mixed image, a size that is not a
//! multiple of the grain, and a sparse raw file.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use image::vmdk::VmdkOptions;

#[test]
fn qemu_img_and_libvmdk_read_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = have("qemu-img");
    let py = have_pyvmdk();
    for (name, raw) in make_disks(dir.path()) {
        let out = dir.path().join(format!("{name}.vmdk"));
        let report = convert(&raw, &out, &VmdkOptions::default());
        let raw_len = std::fs::metadata(&raw).unwrap().len();
        assert_eq!(report.capacity_bytes, raw_len.div_ceil(512) * 512, "{name}");
        assert_eq!(
            report.output_bytes,
            std::fs::metadata(&out).unwrap().len(),
            "{name}"
        );

        // Populated size = bytes of the non-zero grains.
        let data = std::fs::read(&raw).unwrap();
        let nonzero: u64 = data
            .chunks(65536)
            .filter(|g| g.iter().any(|b| *b != 0))
            .map(|g| (g.len().div_ceil(512) * 512) as u64)
            .sum();
        assert_eq!(report.populated_bytes, nonzero, "{name}");

        // Our own reader reads it back.
        let mut back = image::open(&out).unwrap();
        let mut got = image::read_all(back.as_mut()).unwrap();
        got.truncate(data.len());
        assert!(got == data, "{name}: our reader disagrees");

        if qemu {
            let cmp = run(Command::new("qemu-img")
                .args(["compare", "-f", "raw", "-F", "vmdk"])
                .arg(&raw)
                .arg(&out));
            assert!(cmp.contains("identical"), "{name}: {cmp}");
            let check = run(Command::new("qemu-img")
                .args(["check", "-f", "vmdk"])
                .arg(&out));
            assert!(check.contains("No errors"), "{name}: {check}");
            let info = run(Command::new("qemu-img")
                .args(["info", "--output=json"])
                .arg(&out));
            assert!(
                info.contains("\"create-type\": \"streamOptimized\""),
                "{name}: {info}"
            );
        }
        if py {
            assert_eq!(
                pyvmdk_sha256(&out),
                sha256_file_padded(&raw),
                "{name}: libvmdk disagrees"
            );
        }
    }
}

#[test]
fn output_is_deterministic_and_independent_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    let (_, mixed) = &disks[2];
    let a = dir.path().join("a.vmdk");
    let b = dir.path().join("b.vmdk");
    convert(
        mixed,
        &a,
        &VmdkOptions {
            threads: 1,
            ..Default::default()
        },
    );
    convert(
        mixed,
        &b,
        &VmdkOptions {
            threads: 7,
            ..Default::default()
        },
    );
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());

    // Different content, different CID.
    let (_, random) = &disks[1];
    convert(random, &b, &VmdkOptions::default());
    let ia = image::vmdk::inspect(std::fs::File::open(&a).unwrap()).unwrap();
    let ib = image::vmdk::inspect(std::fs::File::open(&b).unwrap()).unwrap();
    assert_ne!(ia.descriptor.cid, ib.descriptor.cid);
}

#[test]
fn progress_reaches_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    let (_, sparse) = &disks[4];
    let mut src = image::open(sparse).unwrap();
    let seen = std::cell::RefCell::new(Vec::new());
    let mut sink = Vec::new();
    image::vmdk::write_stream_optimized(
        src.as_mut(),
        &mut sink,
        &VmdkOptions::default(),
        &|d, t| seen.borrow_mut().push((d, t)),
    )
    .unwrap();
    let seen = seen.into_inner();
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress goes forward"
    );
    assert_eq!(seen.last().copied(), Some((64 << 20, 64 << 20)));
}
