//! Helpers shared by the image integration tests: test disks, external tools.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::vmdk::{VmdkOptions, VmdkReport};

#[allow(unused_imports)] // each test target includes this module; not all use these
pub use testkit::{have, run};

/// Whether Python's pyvmdk (libvmdk's bindings) imports; when it does not, testkit says so (a
/// failure in CI, a skip of this check elsewhere).
pub fn have_pyvmdk() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pyvmdk"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        testkit::missing("pyvmdk (libvmdk-python, scripts/deps/image.pip)");
    }
    ok
}

/// A small deterministic pseudo-random generator (xorshift), so test disks need no crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Text-like bytes (compressible, not trivially).
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "the",
        "kernel",
        "haproxy",
        "load",
        "balancer",
        "vsphere",
        "appliance",
        "disk",
        "grain",
        "table",
        "\n",
        "0123456789",
    ];
    let mut r = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(WORDS[(r.next() % 12) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

/// The test disks of the issue: name and path of a raw file.
pub fn make_disks(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    const MIB: usize = 1 << 20;
    let mut out = Vec::new();

    let p = dir.join("zero.raw");
    std::fs::write(&p, vec![0u8; 4 * MIB]).unwrap();
    out.push(("all-zero", p));

    let p = dir.join("random.raw");
    let mut b = vec![0u8; 3 * MIB];
    Rng::new(7).fill(&mut b);
    std::fs::write(&p, &b).unwrap();
    out.push(("random", p));

    let p = dir.join("mixed.raw");
    let mut f = File::create(&p).unwrap();
    f.write_all(&text(3 * MIB, 1)).unwrap();
    let mut b = vec![0u8; 2 * MIB];
    Rng::new(9).fill(&mut b);
    f.write_all(&b).unwrap();
    f.write_all(&vec![0u8; 3 * MIB]).unwrap();
    f.write_all(&text(MIB, 2)).unwrap();
    drop(f);
    out.push(("mixed", p));

    // 5 MiB + 3 sectors: the last grain is partial.
    let p = dir.join("odd.raw");
    let mut b = text(5 * MIB + 3 * 512, 3);
    b[5 * MIB + 1000] = 0xff;
    std::fs::write(&p, &b).unwrap();
    out.push(("non-grain-multiple", p));

    // 64 MiB sparse file with a few data islands, one straddling a grain boundary and one
    // in the second grain table.
    let p = dir.join("sparse.raw");
    let f = File::create(&p).unwrap();
    f.set_len(64 * MIB as u64).unwrap();
    f.write_all_at(&text(100_000, 4), 65_536 - 512).unwrap();
    f.write_all_at(&text(MIB, 5), 40 * MIB as u64 + 4096)
        .unwrap();
    f.write_all_at(b"last sector", 64 * MIB as u64 - 512)
        .unwrap();
    drop(f);
    out.push(("sparse", p));
    out
}

pub fn convert(input: &Path, output: &Path, opts: &VmdkOptions) -> VmdkReport {
    let mut src = image::open(input).unwrap();
    let mut f = std::io::BufWriter::new(File::create(output).unwrap());
    let r = image::vmdk::write_stream_optimized(src.as_mut(), &mut f, opts, &|_, _| {}).unwrap();
    f.flush().unwrap();
    r
}

/// sha256 of the disk as pyvmdk (libvmdk) reads it.
pub fn pyvmdk_sha256(vmdk: &Path) -> String {
    run(Command::new("python3").arg("-c").arg(
        "import sys, hashlib, pyvmdk\n\
         h = pyvmdk.handle(); h.open(sys.argv[1]); h.open_extent_data_files()\n\
         size = h.get_media_size(); d = hashlib.sha256(); off = 0\n\
         while off < size:\n    n = min(1 << 20, size - off); d.update(h.read_buffer_at_offset(n, off)); off += n\n\
         print(size, d.hexdigest())\n",
    ).arg(vmdk))
    .trim()
    .to_string()
}

pub fn sha256_file_padded(path: &Path) -> String {
    use sha2::Digest;
    let mut data = std::fs::read(path).unwrap();
    let size = data.len().div_ceil(512) * 512;
    data.resize(size, 0);
    format!("{} {}", size, hex(&sha2::Sha256::digest(&data)))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
