//! Shared harness: put the fuzzer's bytes in a file, open it with the given reader, walk the
//! extents and read a bounded amount of data; convert small disks to VMDK in memory. Any
//! panic, hang or runaway allocation is a bug; errors are fine.

use std::io::Write;
use std::path::PathBuf;

use image::DiskSource;

pub fn with_file(name: &str, data: &[u8], f: impl FnOnce(&std::path::Path)) {
    let dir = std::env::temp_dir().join(format!("image-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path: PathBuf = dir.join(name);
    if let Ok(mut file) = std::fs::File::create(&path) {
        if file.write_all(data).is_ok() {
            f(&path);
        }
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
