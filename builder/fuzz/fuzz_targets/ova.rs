#![no_main]
//! The OVA reader on arbitrary bytes: the raw tar walk in memory, then `verify` and `spec` on
//! the same bytes as a file. Any panic, hang or runaway allocation is a bug; errors and
//! failed reports are fine.

use std::io::Write;

use builder::ova::{ArchiveEnd, BLOCK, MAX_HEADERS, MemberKind, scan_archive};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    walk_in_memory(data);
    with_file(data, |path| {
        let progress = builder::progress::Progress::hidden();
        if let Ok(report) = builder::verify::verify(path, &progress) {
            if report.ok && report.kind == builder::verify::PackageKind::Ova {
                // What verify accepts, the walk reads, and nothing follows the end.
                let archive = scan_archive(&mut std::io::Cursor::new(data), data.len() as u64);
                assert!(
                    archive.is_ok_and(|a| matches!(a.end, ArchiveEnd::Clean | ArchiveEnd::Missing))
                );
            }
        }
        let _ = builder::spec::spec_of(path);
    });
});

/// Every member the walk returns lies inside the input.
fn walk_in_memory(data: &[u8]) {
    let len = data.len() as u64;
    let Ok(archive) = scan_archive(&mut std::io::Cursor::new(data), len) else {
        return;
    };
    assert!(archive.members.len() <= MAX_HEADERS);
    for m in &archive.members {
        assert_eq!(m.header_offset + BLOCK, m.data_offset);
        assert!(m.data_offset <= len);
        if m.kind == MemberKind::Regular {
            assert!(m.size <= len - m.data_offset, "member data past the end");
        }
    }
}

fn with_file(data: &[u8], f: impl FnOnce(&std::path::Path)) {
    let dir = std::env::temp_dir().join(format!("builder-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.ova");
    if let Ok(mut file) = std::fs::File::create(&path) {
        if file.write_all(data).is_ok() {
            f(&path);
        }
    }
    let _ = std::fs::remove_file(&path);
}
