//! Inputs in every supported format, made by qemu-img, are detected from their content and
//! convert to the identical VMDK.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use image::vmdk::VmdkOptions;
use image::{Format, VmdkKind};

#[test]
fn every_input_format_converts_to_the_same_bytes() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    for (name, raw) in [&disks[2], &disks[3], &disks[4]] {
        let out = dir.path().join("out.vmdk");
        convert(raw, &out, &VmdkOptions::default());
        let reference = std::fs::read(&out).unwrap();

        let cases: Vec<(&str, Vec<&str>, Format)> = vec![
            (
                "monolithicSparse",
                vec!["-O", "vmdk", "-o", "subformat=monolithicSparse"],
                Format::Vmdk(VmdkKind::MonolithicSparse),
            ),
            (
                "twoGbMaxExtentSparse",
                vec!["-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"],
                Format::Vmdk(VmdkKind::TwoGbMaxExtentSparse),
            ),
            (
                "streamOptimized",
                vec!["-O", "vmdk", "-o", "subformat=streamOptimized"],
                Format::Vmdk(VmdkKind::StreamOptimized),
            ),
            (
                "monolithicFlat",
                vec!["-O", "vmdk", "-o", "subformat=monolithicFlat"],
                Format::Vmdk(VmdkKind::MonolithicFlat),
            ),
            (
                "twoGbMaxExtentFlat",
                vec!["-O", "vmdk", "-o", "subformat=twoGbMaxExtentFlat"],
                Format::Vmdk(VmdkKind::TwoGbMaxExtentFlat),
            ),
            ("qcow2", vec!["-O", "qcow2"], Format::Qcow2),
            ("qcow2-compressed", vec!["-c", "-O", "qcow2"], Format::Qcow2),
            (
                "qcow2-v2",
                vec!["-O", "qcow2", "-o", "compat=0.10"],
                Format::Qcow2,
            ),
        ];
        for (label, args, format) in cases {
            let sub = dir.path().join(label);
            std::fs::create_dir_all(&sub).unwrap();
            // A misleading file name: detection must use the content.
            let input = sub.join("disk.img");
            run(Command::new("qemu-img")
                .arg("convert")
                .args(["-f", "raw"])
                .args(&args)
                .arg(raw)
                .arg(&input));
            assert_eq!(image::detect(&input).unwrap(), format, "{name} as {label}");
            let again = sub.join("out.vmdk");
            convert(&input, &again, &VmdkOptions::default());
            assert!(
                std::fs::read(&again).unwrap() == reference,
                "{name} as {label}: output differs from the raw input's"
            );
        }
        // Our own output as input.
        let again = dir.path().join("again").join("out.vmdk");
        std::fs::create_dir_all(again.parent().unwrap()).unwrap();
        convert(&out, &again, &VmdkOptions::default());
        assert!(
            std::fs::read(&again).unwrap() == reference,
            "{name}: re-converting our output"
        );
    }
}

#[test]
fn raw_sparse_extents_follow_the_holes() {
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    let (_, sparse) = &disks[4];
    let mut src = image::open(sparse).unwrap();
    assert_eq!(src.format(), Format::Raw);
    let ext = src.extents().unwrap();
    let data: u64 = ext.iter().map(|e| e.length).sum();
    // Three islands, well under the 64 MiB size (file systems allocate in 4 KiB blocks).
    assert!(data < 2 << 20, "{ext:?}");
    assert!(ext.len() >= 3, "{ext:?}");
}
