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
use imago::{
    DenyImplicitOpenGate, FormatAccess, FormatDriverBuilder, Mapping, Storage, StorageOpenOptions,
};

use crate::Format;
use crate::error::ImageError;
use crate::source::{DiskSource, Extent, normalize};

const NAME: &str = "qcow2";

/// A qcow2 image opened for reading.
pub struct Qcow2Source {
    access: FormatAccess<File>,
    path: PathBuf,
    size: u64,
    file_len: u64,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

/// Checks what imago leaves to the caller, returning the file length:
/// - encryption (imago ignores `crypt_method`; clusters would come out as ciphertext);
/// - metadata beyond the end of the file (imago reads past the end as zeros, so a truncated
///   image would silently turn into zeros).
fn check_header(path: &Path) -> Result<u64, ImageError> {
    let corrupt = |d: String| ImageError::corrupt(path, NAME, d);
    let f = std::fs::File::open(path).map_err(|e| ImageError::io(path, "open", e))?;
    let file_len = f
        .metadata()
        .map_err(|e| ImageError::io(path, "stat", e))?
        .len();
    let mut head = [0u8; 48];
    if file_len < head.len() as u64 {
        return Err(corrupt(format!(
            "the file is {file_len} bytes, too short for a qcow2 header"
        )));
    }
    f.read_exact_at(&mut head, 0)
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
    let cluster = 1u64 << cluster_bits;
    let l1_size = u64::from(be32(&head, 36));
    let l1_offset = be64(&head, 40);
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
    let mut l1 = vec![0u8; (l1_size * 8) as usize];
    f.read_exact_at(&mut l1, l1_offset)
        .map_err(|e| ImageError::io(path, "read the L1 table of", e))?;
    for (i, e) in l1.chunks_exact(8).enumerate() {
        let l2 = be64(e, 0) & 0x00ff_ffff_ffff_fe00;
        if l2 != 0 && l2.saturating_add(cluster) > file_len {
            return Err(corrupt(format!(
                "L2 table {i} at byte {l2} lies beyond the end of the {file_len}-byte file (truncated?)"
            )));
        }
    }
    Ok(file_len)
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

impl Qcow2Source {
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let file_len = check_header(path)?;
        let storage = File::open(StorageOpenOptions::new().filename(path).write(false))
            .map_err(|e| ImageError::io(path, "open", e))?;
        let qcow2 = Qcow2::<File>::builder(storage)
            .open(DenyImplicitOpenGate::default())
            .map_err(|e| classify(path, e))?;
        let access = FormatAccess::new(qcow2);
        let size = access.size();
        Ok(Qcow2Source {
            access,
            path: path.to_path_buf(),
            size,
            file_len,
        })
    }
}

impl DiskSource for Qcow2Source {
    fn format(&self) -> Format {
        Format::Qcow2
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn extents(&mut self) -> Result<Vec<Extent>, ImageError> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        while offset < self.size {
            let (mapping, len) = self
                .access
                .get_mapping(offset, self.size - offset)
                .map_err(|e| classify(&self.path, e))?;
            if len == 0 {
                break;
            }
            match mapping {
                Mapping::Zero { .. } => {}
                Mapping::Eof { .. } => break,
                Mapping::Raw { offset: host, .. } if host.saturating_add(len) > self.file_len => {
                    return Err(ImageError::corrupt(
                        &self.path,
                        NAME,
                        format!(
                            "the data of guest offset {offset} lies at byte {host}, beyond the end of the {}-byte file (truncated?)",
                            self.file_len
                        ),
                    ));
                }
                _ => out.push(Extent {
                    offset,
                    length: len,
                }),
            }
            offset += len;
        }
        Ok(normalize(out, self.size))
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageError> {
        let iov: IoVectorMut<'_> = IoBufferMut::from(std::io::IoSliceMut::new(buf)).into();
        self.access
            .readv(iov, offset)
            .map_err(|e| classify(&self.path, e))
    }
}
