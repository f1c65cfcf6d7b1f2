//! Quick checks of a stream-optimized VMDK that read only its header, embedded descriptor
//! and last three sectors, whatever the disk size: what `ova-builder verify` checks of every
//! disk an OVF declares stream-optimized. (The full check, every grain and table, is
//! [`super::check_stream`].)

use super::descriptor;
use super::header::{
    FLAG_COMPRESSED, FLAG_MARKERS, MARKER_FOOTER, SECTOR, SparseHeader, marker_type,
};

/// A problem the quick checks find.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamFinding {
    /// The header lacks the flags of compressed grains with markers (0x30000); no other
    /// check is made then.
    #[error("the header flags {flags:#x} lack compressed grains with markers (0x30000)")]
    NotStreamOptimized { flags: u32 },
    #[error("it is too short to end with a footer and an end-of-stream marker")]
    TooShortForEnd,
    /// `sector`: the last sector of the file.
    #[error("its last sector is not the end-of-stream marker (an all-zero sector)")]
    NoEndOfStream { sector: u64 },
    /// `sector`: where the footer marker should be.
    #[error("it does not end with a footer marker and footer before the end-of-stream marker")]
    NoFooter { sector: u64 },
    /// The embedded descriptor's `createType` (empty when it has none).
    #[error("the embedded descriptor says createType=\"{0}\"")]
    CreateType(String),
    /// The embedded descriptor does not parse (the parser's message).
    #[error("the embedded descriptor does not parse: {0}")]
    Descriptor(String),
}

/// Whether the first sector is a sparse extent header with any of the stream-optimized flags
/// (compressed grains, markers): a file the full check should read.
pub fn has_stream_flags(first_sector: &[u8]) -> bool {
    SparseHeader::parse(first_sector).is_ok_and(|h| h.flags & (FLAG_COMPRESSED | FLAG_MARKERS) != 0)
}

/// Checks a file of `size` bytes whose header is `header`, reading it with
/// `read_at(offset, buf) -> bytes read`: the stream-optimized flags, then the end (footer
/// marker, footer, end-of-stream marker; qemu-img's streams lack them and vSphere content
/// libraries reject such disks) and the embedded descriptor's `createType`. A descriptor
/// that cannot be read is not reported (the header checks cover its place).
pub fn check_stream_quick(
    header: &SparseHeader,
    size: u64,
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
) -> Vec<StreamFinding> {
    if !header.is_stream_optimized() {
        return vec![StreamFinding::NotStreamOptimized {
            flags: header.flags,
        }];
    }
    let mut findings: Vec<StreamFinding> = check_end(size, read_at).into_iter().collect();
    findings.extend(check_embedded_descriptor(header, read_at));
    findings
}

/// The last three sectors: footer marker, footer (a header), end-of-stream marker.
fn check_end(
    size: u64,
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
) -> Option<StreamFinding> {
    let mut tail = [0u8; 3 * SECTOR as usize];
    let len = tail.len() as u64;
    let complete = size >= len && read_at(size - len, &mut tail).is_ok_and(|n| n == tail.len());
    if !complete {
        return Some(StreamFinding::TooShortForEnd);
    }
    let (marker, rest) = tail.split_at(SECTOR as usize);
    let (footer, eos) = rest.split_at(SECTOR as usize);
    let last = size / SECTOR - 1;
    if eos.iter().any(|&b| b != 0) {
        return Some(StreamFinding::NoEndOfStream { sector: last });
    }
    if marker_type(marker) != MARKER_FOOTER || !SparseHeader::has_magic(footer) {
        return Some(StreamFinding::NoFooter { sector: last - 2 });
    }
    None
}

/// The embedded descriptor says `createType="streamOptimized"`.
fn check_embedded_descriptor(
    header: &SparseHeader,
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
) -> Option<StreamFinding> {
    let size = header.descriptor_size.saturating_mul(SECTOR).min(1 << 20) as usize;
    if header.descriptor_offset == 0 || size == 0 {
        return None;
    }
    let mut buf = vec![0u8; size];
    let n = read_at(header.descriptor_offset.saturating_mul(SECTOR), &mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    match descriptor::parse(text.trim_end_matches('\0')) {
        Ok(d) if d.create_type.as_deref() == Some("streamOptimized") => None,
        Ok(d) => Some(StreamFinding::CreateType(d.create_type.unwrap_or_default())),
        Err(e) => Some(StreamFinding::Descriptor(e)),
    }
}
