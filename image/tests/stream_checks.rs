//! The stream checks `ova-builder verify` relies on: the full sequential check names the
//! sector and LBA of the damage; the quick check (header, descriptor, last three sectors)
//! reports each missing piece of a VMware-style stream as its own finding.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use image::vmdk::header::SparseHeader;
use image::vmdk::{StreamError, StreamFinding, VmdkOptions};

/// A 2 MiB disk with text in its first and its 20th grain, as a stream-optimized VMDK.
fn stream() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let mut disk = vec![0u8; 2 << 20];
    disk[..4096].copy_from_slice(&text(4096, 1));
    disk[20 * 65536..20 * 65536 + 4096].copy_from_slice(&text(4096, 2));
    std::fs::write(&raw, &disk).unwrap();
    let out = dir.path().join("disk.vmdk");
    convert(&raw, &out, &VmdkOptions::default());
    std::fs::read(&out).unwrap()
}

fn quick(bytes: &[u8]) -> Vec<StreamFinding> {
    let header = SparseHeader::parse(bytes).unwrap();
    let mut read_at = |offset: u64, buf: &mut [u8]| {
        let start = (offset as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    };
    image::vmdk::check_stream_quick(&header, bytes.len() as u64, &mut read_at)
}

#[test]
fn the_full_check_names_the_sector_and_lba_of_a_damaged_grain() {
    let good = stream();
    let info = image::vmdk::check_stream(&good[..]).unwrap();
    assert_eq!(info.grains, 2);

    // The second grain record starts after the first (one sector or more) at sector 128+.
    let second = (129..good.len() as u64 / 512)
        .find(|s| {
            let at = (*s * 512) as usize;
            u64::from_le_bytes(good[at..at + 8].try_into().unwrap()) == 20 * 128
                && good[at + 8..at + 12] != [0, 0, 0, 0]
        })
        .unwrap();
    let mut bad = good.clone();
    let at = (second * 512) as usize + 12;
    bad[at..at + 8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0]);
    match image::vmdk::check_stream(&bad[..]).unwrap_err() {
        StreamError::GrainInflate { sector, lba, .. } => {
            assert_eq!((sector, lba), (second, 20 * 128));
        }
        other => panic!("expected a grain that does not inflate, got {other}"),
    }
    // inspect() reports the same as a corrupt image.
    let e = image::vmdk::inspect(&bad[..]).unwrap_err().to_string();
    assert!(
        e.contains("corrupt VMDK")
            && e.contains(&format!(
                "grain at sector {second} (LBA 2560) does not inflate"
            )),
        "{e}"
    );
}

#[test]
fn the_quick_check_finds_each_missing_piece_of_the_end() {
    let good = stream();
    assert_eq!(quick(&good), []);
    let sectors = good.len() as u64 / 512;

    // The end-of-stream marker is not zero.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] = 1;
    assert_eq!(
        quick(&bad),
        [StreamFinding::NoEndOfStream {
            sector: sectors - 1
        }]
    );

    // No footer marker before the footer (the type field of the marker sector).
    let mut bad = good.clone();
    let marker = bad.len() - 3 * 512;
    bad[marker + 12] = 0;
    assert_eq!(
        quick(&bad),
        [StreamFinding::NoFooter {
            sector: sectors - 3
        }]
    );

    // Cut before its footer: the last sector is the footer marker.
    assert_eq!(
        quick(&good[..good.len() - 1024]),
        [StreamFinding::NoEndOfStream {
            sector: sectors - 3
        }]
    );
    // Too short to hold an end at all.
    let mut short = good[..1024].to_vec();
    short[512..].fill(0);
    assert!(quick(&short).contains(&StreamFinding::TooShortForEnd));
}

#[test]
fn the_quick_check_reads_flags_and_the_embedded_create_type() {
    let good = stream();

    // Without the stream flags nothing else is checked.
    let mut bad = good[..good.len() - 512].to_vec();
    bad[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        quick(&bad),
        [StreamFinding::NotStreamOptimized { flags: 1 }]
    );
    assert!(image::vmdk::has_stream_flags(&good[..512]));
    assert!(!image::vmdk::has_stream_flags(&bad[..512]));

    // The embedded descriptor says another createType.
    let mut bad = good.clone();
    let text = String::from_utf8_lossy(&bad[512..1024]).into_owned();
    let at = 512 + text.find("streamOptimized").unwrap();
    bad[at..at + 15].copy_from_slice(b"monolithicFlatX");
    assert_eq!(
        quick(&bad),
        [StreamFinding::CreateType("monolithicFlatX".into())]
    );
    bad[at..at + 15].copy_from_slice(b"\"oops\nRW 12x  \"");
    assert!(matches!(quick(&bad)[..], [StreamFinding::Descriptor(_)]));
}
