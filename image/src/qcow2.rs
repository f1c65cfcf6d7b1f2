//! qcow2 (as written by qemu-img and Packer's QEMU builder), read through `imago`: a maintained
//! qcow2 implementation by a QEMU block-layer maintainer, in its fully synchronous mode (no
//! async runtime). It handles refcounts, L1/L2 tables, extended L2 entries, subclusters and
//! deflate-compressed clusters; what it refuses (zstd compression, encryption, backing files,
//! external data files) becomes an "unsupported" error here.

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
}

fn classify(path: &Path, e: std::io::Error) -> ImageError {
    use std::io::ErrorKind::*;
    let text = e.to_string();
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
