//! What every input format yields: the virtual size, the allocated extents, and their data.
//! The VMDK writer consumes only this trait, so it never branches on the input format.

use crate::Format;
use crate::error::ImageError;

/// A byte range of the virtual disk, `[offset, offset + length)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub length: u64,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

/// A readable virtual disk.
///
/// Bytes outside [`DiskSource::extents`] read as zeros; bytes inside may be zeros too (an
/// allocated block may hold zeros), so consumers still check the data they read.
pub trait DiskSource: Send {
    /// The format the content was detected as.
    fn format(&self) -> Format;

    /// The size of the virtual disk in bytes.
    fn virtual_size(&self) -> u64;

    /// The allocated ranges: sorted, non-overlapping, inside `[0, virtual_size)`.
    fn extents(&mut self) -> Result<Vec<Extent>, ImageError>;

    /// Fills `buf` with the virtual disk's bytes at `offset`. The range must lie inside the
    /// virtual size.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageError>;
}

/// Sorts and merges touching or overlapping extents, drops empty ones and clips them to `size`.
pub(crate) fn normalize(mut extents: Vec<Extent>, size: u64) -> Vec<Extent> {
    extents.retain(|e| e.length > 0 && e.offset < size);
    extents.sort_by_key(|e| e.offset);
    let mut out: Vec<Extent> = Vec::with_capacity(extents.len());
    for e in extents {
        let end = e.end().min(size);
        match out.last_mut() {
            Some(last) if e.offset <= last.end() => {
                if end > last.end() {
                    last.length = end - last.offset;
                }
            }
            _ => out.push(Extent {
                offset: e.offset,
                length: end - e.offset,
            }),
        }
    }
    out
}

/// Reads the whole virtual disk into memory (tests and fuzzing; small disks only).
pub fn read_all(source: &mut dyn DiskSource) -> Result<Vec<u8>, ImageError> {
    let size = usize::try_from(source.virtual_size())
        .map_err(|_| ImageError::TooLarge("disk too large to read into memory".into()))?;
    let mut out = vec![0u8; size];
    for e in source.extents()? {
        let (start, end) = (e.offset as usize, e.end() as usize);
        source.read_at(e.offset, &mut out[start..end])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(offset: u64, length: u64) -> Extent {
        Extent { offset, length }
    }

    #[test]
    fn normalize_merges_sorts_and_clips() {
        let got = normalize(
            vec![x(10, 5), x(0, 4), x(4, 2), x(12, 10), x(30, 0), x(40, 100)],
            50,
        );
        assert_eq!(got, vec![x(0, 6), x(10, 12), x(40, 10)]);
    }
}
