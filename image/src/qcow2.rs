//! qcow2 (as written by qemu-img and Packer's QEMU builder), read through `imago`: a maintained
//! qcow2 implementation by a QEMU block-layer maintainer, in its fully synchronous mode (no
//! async runtime). It handles qcow2 v2 and v3, L1/L2 tables and deflate-compressed clusters;
//! what it refuses (zstd compression, extended L2 entries, encryption, backing files, external
//! data files) becomes an "unsupported" error here. Packer's QEMU builder writes none of those.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use imago::file::File;
use imago::io_buffers::{IoBufferMut, IoVectorMut};
use imago::qcow2::Qcow2;
use imago::{DenyImplicitOpenGate, FormatAccess, FormatDriverBuilder, Storage, StorageOpenOptions};

use crate::Format;
use crate::error::ImageError;
use crate::source::{DiskSource, Extent, normalize};

const NAME: &str = "qcow2";

/// A qcow2 image opened for reading.
pub struct Qcow2Source {
    access: FormatAccess<File>,
    path: PathBuf,
    size: u64,
    layout: Layout,
    /// imago panicked once; its state is not to be trusted any more.
    poisoned: bool,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

/// Mask of the L2 table offset in an L1 entry, and of the data offset in a standard L2 entry.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_COMPRESSED: u64 = 1 << 62;
const L2_ZERO: u64 = 1;
const FEATURE_NAME_TABLE: u32 = 0x6803_f857;
const FEATURE_NAME_ENTRY: usize = 48;

/// What we read of the header and the L1 table ourselves.
struct Layout {
    file_len: u64,
    cluster_bits: u32,
    /// The L1 table: one entry per L2 table, 0 when that range of the disk is unallocated.
    l1: Vec<u64>,
}

/// Checks what imago leaves to the caller or trusts:
/// - encryption (imago ignores `crypt_method`; clusters would come out as ciphertext);
/// - header extensions imago would index out of range (see [`check_extensions`]);
/// - metadata beyond the end of the file (imago reads past the end as zeros, so a truncated
///   image would silently turn into zeros).
fn check_header(path: &Path) -> Result<Layout, ImageError> {
    let corrupt = |d: String| ImageError::corrupt(path, NAME, d);
    let f = std::fs::File::open(path).map_err(|e| ImageError::io(path, "open", e))?;
    let file_len = f
        .metadata()
        .map_err(|e| ImageError::io(path, "stat", e))?
        .len();
    let mut head = [0u8; 104];
    if file_len < 48 {
        return Err(corrupt(format!(
            "the file is {file_len} bytes, too short for a qcow2 header"
        )));
    }
    let head_len = head.len().min(file_len as usize);
    f.read_exact_at(&mut head[..head_len], 0)
        .map_err(|e| ImageError::io(path, "read the header of", e))?;
    let crypt = be32(&head, 32);
    if crypt != 0 {
        return Err(ImageError::unsupported(
            path,
            NAME,
            format!(
                "encrypted image (crypt_method {crypt}); decrypt it first with qemu-img convert"
            ),
        ));
    }
    let cluster_bits = be32(&head, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(corrupt(format!(
            "cluster_bits {cluster_bits} (expected 9 to 21)"
        )));
    }
    if be32(&head, 4) >= 3 {
        check_extensions(&f, path, be32(&head, 100), 1 << cluster_bits, file_len)?;
    }
    let l1 = read_l1(&f, path, &head, 1 << cluster_bits, file_len)?;
    Ok(Layout {
        file_len,
        cluster_bits,
        l1,
    })
}

/// Walks the header extensions of a v3 image (they lie in the first cluster, after
/// `header_length` bytes) and refuses a feature-name table whose length is not a whole number
/// of 48-byte entries: imago 0.2.6 (`HeaderExtension::deserialize`) slices every 48-byte chunk
/// from byte 2 and panics on a last chunk of one byte. Other extension errors are imago's.
fn check_extensions(
    f: &std::fs::File,
    path: &Path,
    header_length: u32,
    cluster: u64,
    file_len: u64,
) -> Result<(), ImageError> {
    let mut at = u64::from(header_length);
    let end = cluster.min(file_len);
    while at + 8 <= end {
        let mut ext = [0u8; 8];
        f.read_exact_at(&mut ext, at)
            .map_err(|e| ImageError::io(path, "read the header extensions of", e))?;
        let (kind, len) = (be32(&ext, 0), be32(&ext, 4));
        if kind == 0 {
            break;
        }
        if kind == FEATURE_NAME_TABLE && !(len as usize).is_multiple_of(FEATURE_NAME_ENTRY) {
            return Err(ImageError::corrupt(
                path,
                NAME,
                format!(
                    "the feature-name table header extension at byte {at} is {len} bytes long, \
                     not a multiple of {FEATURE_NAME_ENTRY} (one entry is {FEATURE_NAME_ENTRY} bytes)"
                ),
            ));
        }
        at += 8 + u64::from(len).next_multiple_of(8);
    }
    Ok(())
}

/// Reads the L1 table and checks that it and every L2 table it names lie inside the file.
fn read_l1(
    f: &std::fs::File,
    path: &Path,
    head: &[u8],
    cluster: u64,
    file_len: u64,
) -> Result<Vec<u64>, ImageError> {
    let corrupt = |d: String| ImageError::corrupt(path, NAME, d);
    let l1_size = u64::from(be32(head, 36));
    let l1_offset = be64(head, 40);
    let l1_end = l1_offset.checked_add(l1_size * 8);
    if l1_size > 0 && l1_end.is_none_or(|e| e > file_len) {
        return Err(corrupt(format!(
            "the L1 table ({l1_size} entries at byte {l1_offset}) lies beyond the end of the {file_len}-byte file (truncated?)"
        )));
    }
    if l1_size > (file_len / 8) {
        return Err(corrupt(format!(
            "{l1_size} L1 entries cannot fit in the file"
        )));
    }
    let mut raw = vec![0u8; (l1_size * 8) as usize];
    f.read_exact_at(&mut raw, l1_offset)
        .map_err(|e| ImageError::io(path, "read the L1 table of", e))?;
    let l1: Vec<u64> = raw.chunks_exact(8).map(|e| be64(e, 0)).collect();
    for (i, e) in l1.iter().enumerate() {
        let l2 = e & OFFSET_MASK;
        if l2 != 0 && l2.saturating_add(cluster) > file_len {
            return Err(corrupt(format!(
                "L2 table {i} at byte {l2} lies beyond the end of the {file_len}-byte file (truncated?)"
            )));
        }
    }
    Ok(l1)
}

fn classify(path: &Path, e: std::io::Error) -> ImageError {
    use std::io::ErrorKind::*;
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower.contains("unrecognized incompatible feature") || lower.contains("unsupported") {
        return ImageError::unsupported(path, NAME, text);
    }
    match e.kind() {
        Unsupported | PermissionDenied => {
            let detail = if text.contains("denied") {
                format!(
                    "{text}: images with a backing file or an external data file must be flattened first (qemu-img convert -O qcow2)"
                )
            } else {
                text
            };
            ImageError::unsupported(path, NAME, detail)
        }
        InvalidData | InvalidInput | UnexpectedEof => ImageError::corrupt(path, NAME, text),
        _ => ImageError::io(path, "read", e),
    }
}

/// Runs a call into imago, turning a panic into a corrupt-image error: a bug in the library
/// must not bring down the caller (the input is untrusted).
fn contained<T>(path: &Path, call: impl FnOnce() -> std::io::Result<T>) -> Result<T, ImageError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(|e| classify(path, e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ImageError::corrupt(
                path,
                NAME,
                format!("the qcow2 library (imago) failed on this file: {what}"),
            ))
        }
    }
}

/// What one L2 table entry says about its cluster.
enum Cluster {
    /// Reads as zeros (unallocated, or the zero flag).
    Zero,
    /// Data in the file at this byte offset, `len` bytes at most (compressed data is shorter).
    Data { host: u64, len: u64 },
}

fn decode_l2(entry: u64, cluster_bits: u32) -> Cluster {
    if entry & L2_COMPRESSED != 0 {
        // Compressed: the offset takes the low 62 - (cluster_bits - 8) bits. Its length may
        // end inside the last sector of the file, so only its first byte must be in the file;
        // imago reports a short read.
        let offset_bits = 62 - (cluster_bits - 8);
        return Cluster::Data {
            host: entry & ((1u64 << offset_bits) - 1),
            len: 1,
        };
    }
    let host = entry & OFFSET_MASK;
    if host == 0 || entry & L2_ZERO != 0 {
        Cluster::Zero
    } else {
        Cluster::Data {
            host,
            len: 1 << cluster_bits,
        }
    }
}

impl Qcow2Source {
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let layout = check_header(path)?;
        let storage = File::open(StorageOpenOptions::new().filename(path).write(false))
            .map_err(|e| ImageError::io(path, "open", e))?;
        let qcow2 = contained(path, || {
            Qcow2::<File>::builder(storage).open(DenyImplicitOpenGate::default())
        })?;
        let access = FormatAccess::new(qcow2);
        let size = access.size();
        Ok(Qcow2Source {
            access,
            path: path.to_path_buf(),
            size,
            layout,
            poisoned: false,
        })
    }

    fn corrupt(&self, detail: String) -> ImageError {
        ImageError::corrupt(&self.path, NAME, detail)
    }

    /// The allocated clusters of the L2 table at `l2_at`, which maps the disk from `base`.
    fn l2_extents(
        &self,
        file: &std::fs::File,
        l2_at: u64,
        base: u64,
        out: &mut Vec<Extent>,
    ) -> Result<(), ImageError> {
        let bits = self.layout.cluster_bits;
        let mut table = vec![0u8; 1 << bits];
        file.read_exact_at(&mut table, l2_at)
            .map_err(|e| ImageError::io(&self.path, "read an L2 table of", e))?;
        for (j, entry) in table.chunks_exact(8).enumerate() {
            let guest = base.saturating_add((j as u64) << bits);
            if guest >= self.size {
                break;
            }
            if let Cluster::Data { host, len } = decode_l2(be64(entry, 0), bits) {
                if host.saturating_add(len) > self.layout.file_len {
                    return Err(self.corrupt(format!(
                        "the data of guest offset {guest} lies at byte {host}, beyond the end of the {}-byte file (truncated?)",
                        self.layout.file_len
                    )));
                }
                out.push(Extent {
                    offset: guest,
                    length: 1 << bits,
                });
            }
        }
        Ok(())
    }
}

impl DiskSource for Qcow2Source {
    fn format(&self) -> Format {
        Format::Qcow2
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    /// Walks the L1 and L2 tables that are in the file (not the claimed virtual size), so
    /// the work is bounded by the file's size: each L2 table is read once.
    fn extents(&mut self) -> Result<Vec<Extent>, ImageError> {
        let file =
            std::fs::File::open(&self.path).map_err(|e| ImageError::io(&self.path, "open", e))?;
        let bits = self.layout.cluster_bits;
        let per_l2 = 1u64 << (bits - 3);
        let mut seen = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (i, entry) in self.layout.l1.iter().enumerate() {
            let l2_at = entry & OFFSET_MASK;
            let base = (i as u64).saturating_mul(per_l2).saturating_mul(1 << bits);
            if base >= self.size {
                break;
            }
            if l2_at == 0 {
                continue;
            }
            if let Some(other) = seen.insert(l2_at, i) {
                return Err(self.corrupt(format!(
                    "L1 entries {other} and {i} both name the L2 table at byte {l2_at}"
                )));
            }
            self.l2_extents(&file, l2_at, base, &mut out)?;
        }
        Ok(normalize(out, self.size))
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageError> {
        if self.poisoned {
            return Err(self.corrupt("an earlier read failed inside the qcow2 library".into()));
        }
        let iov: IoVectorMut<'_> = IoBufferMut::from(std::io::IoSliceMut::new(buf)).into();
        let access = &self.access;
        let result = contained(&self.path, || access.readv(iov, offset));
        if matches!(result, Err(ImageError::Corrupt { .. })) {
            // Possibly a contained panic: do not call into the library again.
            self.poisoned = true;
        }
        result
    }
}
