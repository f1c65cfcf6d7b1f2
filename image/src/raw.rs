//! Raw disk images: the file is the disk. Holes are found with `SEEK_DATA`/`SEEK_HOLE`, so a
//! 100 GiB sparse file costs what its data costs.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{Whence, lseek};

use crate::Format;
use crate::error::ImageError;
use crate::source::{DiskSource, Extent, normalize};

/// A raw image file (or block device).
pub struct RawSource {
    file: File,
    path: PathBuf,
    size: u64,
}

impl RawSource {
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let file = File::open(path).map_err(|e| ImageError::io(path, "open", e))?;
        Self::from_file(file, path)
    }

    pub(crate) fn from_file(mut file: File, path: &Path) -> Result<Self, ImageError> {
        // Seeking to the end also gives the size of block devices, whose metadata says 0.
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| ImageError::io(path, "find the size of", e))?;
        Ok(RawSource {
            file,
            path: path.to_path_buf(),
            size,
        })
    }
}

/// Data ranges of `file` inside `[start, end)` from `SEEK_DATA`/`SEEK_HOLE`; the whole range
/// when the file system cannot say.
pub(crate) fn data_ranges(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
) -> Result<Vec<Extent>, ImageError> {
    let whole = vec![Extent {
        offset: start,
        length: end - start,
    }];
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let data = match lseek(file, to_off(pos), Whence::SeekData) {
            Ok(o) => o as u64,
            Err(Errno::ENXIO) => break, // no data after pos
            Err(Errno::EINVAL | Errno::EOPNOTSUPP) => return Ok(whole),
            Err(e) => {
                return Err(ImageError::io(
                    path,
                    "look for data (SEEK_DATA) in",
                    e.into(),
                ));
            }
        };
        if data >= end {
            break;
        }
        let hole = match lseek(file, to_off(data), Whence::SeekHole) {
            Ok(o) => (o as u64).min(end),
            Err(Errno::ENXIO) => end,
            Err(Errno::EINVAL | Errno::EOPNOTSUPP) => return Ok(whole),
            Err(e) => {
                return Err(ImageError::io(
                    path,
                    "look for holes (SEEK_HOLE) in",
                    e.into(),
                ));
            }
        };
        if hole <= data {
            break;
        }
        out.push(Extent {
            offset: data,
            length: hole - data,
        });
        pos = hole;
    }
    Ok(out)
}

fn to_off(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl DiskSource for RawSource {
    fn format(&self) -> Format {
        Format::Raw
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn extents(&mut self) -> Result<Vec<Extent>, ImageError> {
        Ok(normalize(
            data_ranges(&self.file, &self.path, 0, self.size)?,
            self.size,
        ))
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| ImageError::io(&self.path, "read", e))
    }
}
