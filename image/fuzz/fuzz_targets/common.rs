//! Shared harness: put the fuzzer's bytes in a file, open it with the given reader, walk the
//! extents and read a bounded amount of data; convert small disks to VMDK in memory. Any
//! panic, hang or runaway allocation is a bug; errors are fine.
//!
//! One entry point per target (`TARGETS`); `image/tests/fuzz_replay.rs` includes this file
//! and feeds every committed seed and regression input to each of them.

use std::io::Write;
use std::path::PathBuf;

use image::DiskSource;

pub fn with_file(name: &str, data: &[u8], f: impl FnOnce(&std::path::Path)) {
    let dir = std::env::temp_dir().join(format!("image-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path: PathBuf = dir.join(name);
    if let Ok(mut file) = std::fs::File::create(&path)
        && file.write_all(data).is_ok()
    {
        f(&path);
    }
    let _ = std::fs::remove_file(&path);
}

pub fn exercise(mut src: Box<dyn DiskSource>) {
    let size = src.virtual_size();
    let Ok(extents) = src.extents() else { return };
    let mut budget: u64 = 8 << 20;
    let mut buf = vec![0u8; 1 << 16];
    for e in extents {
        assert!(e.offset + e.length <= size, "extent beyond the disk");
        let mut off = e.offset;
        while off < e.end() && budget > 0 {
            let n = (e.end() - off).min(buf.len() as u64).min(budget) as usize;
            if src.read_at(off, &mut buf[..n]).is_err() {
                return;
            }
            off += n as u64;
            budget -= n as u64;
        }
    }
    if size <= 32 << 20 {
        let mut sink = Vec::new();
        let opts = image::vmdk::VmdkOptions {
            threads: 1,
            ..Default::default()
        };
        if image::vmdk::write_stream_optimized(src.as_mut(), &mut sink, &opts, &|_, _| {}).is_ok() {
            // What we write must pass our own inspector.
            image::vmdk::inspect(&sink[..]).expect("our output fails inspection");
        }
    }
}

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target's name and entry point.
pub const TARGETS: [(&str, Target); 6] = [
    ("raw", raw),
    ("vmdk_sparse", vmdk_sparse),
    ("vmdk_descriptor", vmdk_descriptor),
    ("vmdk_inspect", vmdk_inspect),
    ("qcow2", qcow2),
    ("detect", detect),
];

/// The raw reader (`SEEK_DATA`/`SEEK_HOLE`, reads).
pub fn raw(data: &[u8]) {
    with_file("disk.raw", data, |p| {
        if let Ok(src) = image::raw::RawSource::open(p) {
            exercise(Box::new(src));
        }
    });
}

/// Hosted sparse / stream-optimized extents: the input gets a valid magic so the fuzzer
/// spends its time past the first check.
pub fn vmdk_sparse(data: &[u8]) {
    let mut d = b"KDMV".to_vec();
    d.extend_from_slice(data.get(4..).unwrap_or_default());
    with_file("disk.vmdk", &d, |p| {
        if let Ok(f) = std::fs::File::open(p)
            && let Ok(src) = image::vmdk::VmdkSource::open_sparse(f, p)
        {
            exercise(Box::new(src));
        }
    });
}

/// Text descriptors; extents may name "disk.vmdk" (the descriptor itself) and so reach the
/// flat and sparse extent readers too.
pub fn vmdk_descriptor(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = image::vmdk::descriptor::parse(text);
    with_file("disk.vmdk", data, |p| {
        if let Ok(src) = image::vmdk::VmdkSource::open_descriptor(text, p) {
            exercise(Box::new(src));
        }
    });
}

/// The stream-optimized checks used by `ova-builder verify`: the sequential validator and the
/// quick look at the header, embedded descriptor and last three sectors.
pub fn vmdk_inspect(data: &[u8]) {
    let _ = image::vmdk::inspect(data);
    if let Ok(header) = image::vmdk::header::SparseHeader::parse(data) {
        let mut read_at = |offset: u64, buf: &mut [u8]| {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            Ok(n)
        };
        let _ = image::vmdk::check_stream_quick(&header, data.len() as u64, &mut read_at);
    }
}

/// The qcow2 reader (imago + our header/L1 checks); the input gets a valid magic.
pub fn qcow2(data: &[u8]) {
    let mut d = b"QFI\xfb".to_vec();
    d.extend_from_slice(data.get(4..).unwrap_or_default());
    with_file("disk.qcow2", &d, |p| {
        if let Ok(src) = image::qcow2::Qcow2Source::open(p) {
            exercise(Box::new(src));
        }
    });
}

/// Format detection and whichever reader it picks.
pub fn detect(data: &[u8]) {
    with_file("disk.img", data, |p| {
        if let Ok(src) = image::open(p) {
            exercise(src);
        }
    });
}
