//! Parses our stream-optimized output byte by byte, independently of the crate's own parser,
//! and checks it against VMware's layout: header, descriptor, grain markers, grain tables,
//! grain directory, footer and the final end-of-stream marker.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::*;
use image::vmdk::{AdapterType, VmdkOptions};

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

// One walk through the file, field by field, in file order.
#[allow(clippy::too_many_lines)]
#[test]
fn header_descriptor_and_markers_are_as_vmware_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let disks = make_disks(dir.path());
    let (_, sparse) = &disks[4]; // 64 MiB, data in two grain tables
    let out = dir.path().join("appliance-disk1.vmdk");
    let opts = VmdkOptions {
        adapter_type: AdapterType::BusLogic,
        hw_version: 4,
        tools_version: 12352,
        file_name: "appliance-disk1.vmdk".into(),
        ..Default::default()
    };
    let report = convert(sparse, &out, &opts);
    let b = std::fs::read(&out).unwrap();
    assert_eq!(b.len() % 512, 0);
    assert_eq!(report.output_bytes as usize, b.len());

    // Header.
    assert_eq!(&b[0..4], b"KDMV");
    assert_eq!(u32le(&b, 4), 3, "version");
    assert_eq!(u32le(&b, 8), 0x30001, "flags");
    let capacity = u64le(&b, 12);
    assert_eq!(capacity, (64 << 20) / 512);
    assert_eq!(u64le(&b, 20), 128, "grain size");
    assert_eq!(u64le(&b, 28), 1, "descriptor offset");
    let desc_size = u64le(&b, 36);
    assert!(desc_size >= 1);
    assert_eq!(u32le(&b, 44), 512, "GTEs per GT");
    assert_eq!(u64le(&b, 48), 0, "rgdOffset");
    assert_eq!(u64le(&b, 56), u64::MAX, "gdOffset = GD_AT_END");
    let overhead = u64le(&b, 64);
    assert_eq!(overhead, 128);
    assert_eq!(b[72], 0, "uncleanShutdown");
    assert_eq!(&b[73..77], b"\n \r\n");
    assert_eq!(u16::from_le_bytes([b[77], b[78]]), 1, "deflate");

    // Descriptor.
    let desc = &b[512..512 + desc_size as usize * 512];
    let text =
        String::from_utf8(desc[..desc.iter().position(|c| *c == 0).unwrap()].to_vec()).unwrap();
    assert!(text.starts_with("# Disk DescriptorFile\n"), "{text}");
    for line in [
        "version=1",
        "parentCID=ffffffff",
        "createType=\"streamOptimized\"",
        &format!("RW {capacity} SPARSE \"appliance-disk1.vmdk\""),
        "ddb.adapterType = \"buslogic\"",
        "ddb.virtualHWVersion = \"4\"",
        "ddb.toolsVersion = \"12352\"",
        "ddb.geometry.heads = \"255\"",
        "ddb.geometry.sectors = \"63\"",
        "ddb.geometry.cylinders = \"9\"",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let cid = text.lines().find_map(|l| l.strip_prefix("CID=")).unwrap();
    assert_eq!(cid.len(), 8);
    let long = text
        .lines()
        .find_map(|l| l.strip_prefix("ddb.longContentID = \""))
        .unwrap();
    assert_eq!(long.len(), 33);
    assert!(long.trim_end_matches('"').ends_with(cid));

    // Walk the stream.
    let mut pos = overhead as usize * 512;
    let mut grains: HashMap<u64, u64> = HashMap::new(); // sector -> lba
    let mut tables: HashMap<u64, Vec<u32>> = HashMap::new(); // sector -> entries
    let mut gd_at = None;
    let mut footer_at = None;
    let mut last_lba = None;
    loop {
        let (val, size, kind) = (u64le(&b, pos), u32le(&b, pos + 8), u32le(&b, pos + 12));
        if size != 0 {
            assert_eq!(val % 128, 0, "grain LBA on a grain boundary");
            assert!(last_lba.is_none_or(|l| val > l), "grains in LBA order");
            last_lba = Some(val);
            // zlib header: CM = 8 (deflate), FCHECK valid.
            let (cmf, flg) = (b[pos + 12], b[pos + 13]);
            assert_eq!(cmf & 0x0f, 8);
            assert_eq!((u16::from(cmf) * 256 + u16::from(flg)) % 31, 0);
            grains.insert(pos as u64 / 512, val);
            pos += (12 + size as usize).div_ceil(512) * 512;
            continue;
        }
        assert!(
            b[pos + 16..pos + 512].iter().all(|c| *c == 0),
            "marker padding is zero"
        );
        match kind {
            1 => {
                assert_eq!(val, 4, "GT is 4 sectors");
                let t = (0..512).map(|i| u32le(&b, pos + 512 + i * 4)).collect();
                tables.insert(pos as u64 / 512 + 1, t);
                pos += 512 + 2048;
            }
            2 => {
                gd_at = Some(pos as u64 / 512 + 1);
                pos += 512 + val as usize * 512;
            }
            3 => {
                assert_eq!(val, 1);
                footer_at = Some(pos + 512);
                pos += 1024;
            }
            0 => {
                assert_eq!(val, 0);
                assert_eq!(
                    pos + 512,
                    b.len(),
                    "end-of-stream marker is the last sector"
                );
                assert!(
                    b[pos..].iter().all(|c| *c == 0),
                    "EOS marker is a zero sector"
                );
                break;
            }
            k => panic!("unknown marker {k} at {pos}"),
        }
    }
    // Footer = header with the real GD offset, right before the EOS marker.
    let footer_at = footer_at.unwrap();
    assert_eq!(footer_at + 1024, b.len());
    assert_eq!(&b[footer_at..footer_at + 56], &b[0..56]);
    assert_eq!(u64le(&b, footer_at + 56), gd_at.unwrap());
    assert_eq!(&b[footer_at + 64..footer_at + 512], &b[64..512]);

    // GD -> GT -> grain markers, for every stored grain. The data sits in GT 0 and GT 1
    // (40 MiB is past the first table's 32 MiB).
    let gd = gd_at.unwrap() as usize * 512;
    assert_eq!(tables.len(), 2);
    let mut referenced = 0;
    for gt_i in 0..2u64 {
        let gt_sector = u64::from(u32le(&b, gd + gt_i as usize * 4));
        let t = &tables[&gt_sector];
        for (j, &e) in t.iter().enumerate() {
            if e != 0 {
                assert_eq!(grains[&u64::from(e)], (gt_i * 512 + j as u64) * 128);
                referenced += 1;
            }
        }
    }
    assert_eq!(referenced, grains.len());
    assert_eq!(report.grains as usize, grains.len());

    // The crate's own inspector agrees.
    let info = image::vmdk::inspect(std::fs::File::open(&out).unwrap()).unwrap();
    assert!(info.has_end_of_stream && info.has_grain_directory);
    assert_eq!(info.capacity_bytes, 64 << 20);
    assert_eq!(info.adapter_type.as_deref(), Some("buslogic"));
    assert_eq!(info.create_type.as_deref(), Some("streamOptimized"));
    assert_eq!(info.grains, report.grains);
    assert_eq!(info.populated_bytes, report.populated_bytes);
    assert_eq!(info.stream_bytes, report.output_bytes);
}

#[test]
fn ide_geometry_and_empty_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("empty.raw");
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = dir.path().join("empty.vmdk");
    let opts = VmdkOptions {
        adapter_type: AdapterType::Ide,
        ..Default::default()
    };
    let report = convert(&raw, &out, &opts);
    assert_eq!(report.populated_bytes, 0);
    assert_eq!(report.grains, 0);
    // header + descriptor area + GD marker + GD + footer marker + footer + EOS.
    assert!(report.output_bytes < 80 * 1024, "{}", report.output_bytes);
    let info = image::vmdk::inspect(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(info.capacity_bytes, 1 << 30);
    assert_eq!(info.descriptor.ddb("ddb.geometry.heads"), Some("16"));
    assert_eq!(info.descriptor.ddb("ddb.geometry.cylinders"), Some("2081"));
    assert_eq!(info.adapter_type.as_deref(), Some("ide"));
}
