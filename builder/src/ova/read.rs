//! Walking an OVA's raw tar headers.
//!
//! `tar::Archive` folds PAX and GNU extension headers into the entries it yields, and reads
//! member data sequentially; `verify` needs to see those extension headers (to refuse them)
//! and to know where each member's data lies (to hash it in place). So the walk over the
//! 512-byte blocks is written here; the `tar` crate still decodes every header field.

use std::io::{self, Read, Seek, SeekFrom};

use super::{BLOCK, padded};

/// The header dialect of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderFormat {
    /// POSIX ustar (`ustar\0` `00`).
    Ustar,
    /// GNU tar (`ustar  \0`).
    Gnu,
    /// Anything else (old V7 headers without a magic, or unknown).
    Other,
}

/// What a member is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "target")]
pub enum MemberKind {
    Regular,
    Directory,
    Symlink(String),
    HardLink(String),
    CharDevice,
    BlockDevice,
    Fifo,
    /// A PAX extended header (`x`).
    PaxHeader,
    /// A PAX global header (`g`).
    PaxGlobalHeader,
    /// A GNU long-name or long-link record (`L`, `K`).
    GnuLongName,
    /// Any other type flag.
    Other(String),
}

/// One raw header of the archive and where its data is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// The name as stored (ustar prefix joined), lossily decoded.
    pub name: String,
    pub kind: MemberKind,
    pub format: HeaderFormat,
    pub size: u64,
    pub header_offset: u64,
    pub data_offset: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// The most headers an archive may have: an OVA has a handful of members, and the list of
/// them is the only memory the walk uses that grows with the input.
pub const MAX_HEADERS: usize = 10_000;

/// Why the archive cannot be walked.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(
        "not a tar archive: the block at byte {offset} has checksum {stored:?} but its bytes sum to {computed}"
    )]
    Checksum {
        offset: u64,
        stored: Option<u32>,
        computed: u32,
    },
    #[error("truncated archive: the header at byte {offset} is cut off (file is {len} bytes)")]
    TruncatedHeader { offset: u64, len: u64 },
    #[error(
        "member `{name}` (header at byte {header_offset}) declares {size} bytes of data from \
         byte {offset}, past the end of the file ({len} bytes): the archive is truncated or \
         its size field lies"
    )]
    TruncatedData {
        name: String,
        header_offset: u64,
        size: u64,
        offset: u64,
        len: u64,
    },
    #[error("header at byte {offset}: unreadable {field} field")]
    Field { offset: u64, field: &'static str },
    #[error("more than {limit} tar headers; an OVA holds a handful of files")]
    TooManyHeaders { limit: usize },
    #[error("the archive has no members")]
    Empty,
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
}

/// What follows the last member's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveEnd {
    /// Zero blocks (one or more) up to the end of the file: the end-of-archive marker and
    /// any zero padding to tar's record size.
    Clean,
    /// The file ends right after the last member, without end-of-archive blocks (GNU tar
    /// accepts it).
    Missing,
    /// A valid tar header after the end-of-archive zero block(s): `tar -i` (ignore zeros)
    /// and some other readers extract it, a normal `tar` does not.
    HiddenMember {
        /// Where the zero blocks begin.
        end: u64,
        header_offset: u64,
        name: String,
    },
    /// Bytes that are not zero after the end-of-archive zero block(s).
    TrailingData {
        /// Where the zero blocks begin.
        end: u64,
        /// The first byte that is not zero.
        offset: u64,
    },
}

/// The headers of an archive and how it ends.
#[derive(Debug, Clone)]
pub struct Archive {
    pub members: Vec<Member>,
    pub end: ArchiveEnd,
}

/// Walks every header of the tar archive in `file` (of `len` bytes), without reading data;
/// what follows the end-of-archive is not judged (see [`scan_archive`]).
pub fn scan<F: Read + Seek>(file: &mut F, len: u64) -> Result<Vec<Member>, ScanError> {
    scan_archive(file, len).map(|archive| archive.members)
}

/// Walks every header of the tar archive in `file` (of `len` bytes) and everything after the
/// end-of-archive. Memory stays bounded (at most [`MAX_HEADERS`] members, one block and a
/// 64 KiB buffer), and every offset is checked against `len`, whatever the headers say.
pub fn scan_archive<F: Read + Seek>(file: &mut F, len: u64) -> Result<Archive, ScanError> {
    let mut members = Vec::new();
    let mut offset = 0u64;
    let mut block = [0u8; BLOCK as usize];
    let end = loop {
        // Invariant: offset <= len, so no sum below can overflow.
        if len - offset < BLOCK {
            if offset == len && !members.is_empty() {
                break ArchiveEnd::Missing;
            }
            return Err(ScanError::TruncatedHeader { offset, len });
        }
        read_block(file, offset, &mut block)?;
        if block.iter().all(|&b| b == 0) {
            break after_end(file, offset, len)?;
        }
        if members.len() == MAX_HEADERS {
            return Err(ScanError::TooManyHeaders { limit: MAX_HEADERS });
        }
        let (member, stored_size) = parse_header(&block, offset, len)?;
        // `stored_size <= len - data_offset` was checked; padding may pass the end only at
        // the very end of the file, which the next turn of the loop handles.
        offset = member
            .data_offset
            .saturating_add(padded(stored_size))
            .min(len);
        members.push(member);
    };
    if members.is_empty() {
        return Err(ScanError::Empty);
    }
    Ok(Archive { members, end })
}

fn read_block<F: Read + Seek>(file: &mut F, offset: u64, block: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(block)
}

/// Whether the block is a tar header: its checksum matches its bytes.
fn checksum_matches(block: &[u8; BLOCK as usize]) -> Result<(), (Option<u32>, u32)> {
    let computed: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    let stored = tar::Header::from_byte_slice(block).cksum().ok();
    if stored == Some(computed) {
        Ok(())
    } else {
        Err((stored, computed))
    }
}

/// Decodes the header block at `offset` (of a file of `len` bytes); returns the member and
/// the number of data bytes it occupies in the archive.
fn parse_header(
    block: &[u8; BLOCK as usize],
    offset: u64,
    len: u64,
) -> Result<(Member, u64), ScanError> {
    checksum_matches(block).map_err(|(stored, computed)| ScanError::Checksum {
        offset,
        stored,
        computed,
    })?;
    let header = tar::Header::from_byte_slice(block);
    let field = |field| ScanError::Field { offset, field };
    let magic = &block[257..265];
    let format = if magic == b"ustar\x0000" {
        HeaderFormat::Ustar
    } else if magic == b"ustar  \x00" {
        HeaderFormat::Gnu
    } else {
        HeaderFormat::Other
    };
    let size = header.entry_size().map_err(|_| field("size"))?;
    let kind = member_kind(header);
    // Only regular members and extension records carry data in the archive.
    let stored_size = match kind {
        MemberKind::Regular
        | MemberKind::PaxHeader
        | MemberKind::PaxGlobalHeader
        | MemberKind::GnuLongName
        | MemberKind::Other(_) => size,
        _ => 0,
    };
    let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
    let data_offset = offset + BLOCK; // the caller checked offset + BLOCK <= len
    if stored_size > len - data_offset {
        return Err(ScanError::TruncatedData {
            name,
            header_offset: offset,
            size: stored_size,
            offset: data_offset,
            len,
        });
    }
    let member = Member {
        name,
        kind,
        format,
        size,
        header_offset: offset,
        data_offset,
        mode: header.mode().map_err(|_| field("mode"))?,
        uid: header.uid().map_err(|_| field("uid"))?,
        gid: header.gid().map_err(|_| field("gid"))?,
        mtime: header.mtime().map_err(|_| field("mtime"))?,
    };
    Ok((member, stored_size))
}

fn member_kind(header: &tar::Header) -> MemberKind {
    let link = || {
        header
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => MemberKind::Regular,
        tar::EntryType::Directory => MemberKind::Directory,
        tar::EntryType::Symlink => MemberKind::Symlink(link()),
        tar::EntryType::Link => MemberKind::HardLink(link()),
        tar::EntryType::Char => MemberKind::CharDevice,
        tar::EntryType::Block => MemberKind::BlockDevice,
        tar::EntryType::Fifo => MemberKind::Fifo,
        tar::EntryType::XHeader => MemberKind::PaxHeader,
        tar::EntryType::XGlobalHeader => MemberKind::PaxGlobalHeader,
        tar::EntryType::GNULongName | tar::EntryType::GNULongLink => MemberKind::GnuLongName,
        other => MemberKind::Other(format!("{:?}", other.as_byte() as char)),
    }
}

/// Judges everything from the first end-of-archive zero block at `end` to the end of the
/// file: it must all be zero. The first block that is not is reported as a hidden member
/// when it is a valid header, as trailing data otherwise.
fn after_end<F: Read + Seek>(file: &mut F, end: u64, len: u64) -> Result<ArchiveEnd, ScanError> {
    let mut buf = vec![0u8; 64 << 10];
    let mut at = end;
    file.seek(SeekFrom::Start(at))?;
    while at < len {
        let want = usize::try_from(len - at).map_or(buf.len(), |left| left.min(buf.len()));
        let chunk = buf.get_mut(..want).unwrap_or_default();
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().position(|&b| b != 0) {
            let first = at + i as u64;
            return nonzero_after_end(file, end, first, len);
        }
        at += want as u64;
    }
    Ok(ArchiveEnd::Clean)
}

fn nonzero_after_end<F: Read + Seek>(
    file: &mut F,
    end: u64,
    first: u64,
    len: u64,
) -> Result<ArchiveEnd, ScanError> {
    // Block-aligned like every header; `first >= end` and `end` is aligned.
    let block_start = first - (first - end) % BLOCK;
    let mut block = [0u8; BLOCK as usize];
    if len - block_start >= BLOCK {
        read_block(file, block_start, &mut block)?;
        if checksum_matches(&block).is_ok() {
            let name = String::from_utf8_lossy(&tar::Header::from_byte_slice(&block).path_bytes())
                .into_owned();
            return Ok(ArchiveEnd::HiddenMember {
                end,
                header_offset: block_start,
                name,
            });
        }
    }
    Ok(ArchiveEnd::TrailingData { end, offset: first })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ova::OvaWriter;

    #[test]
    fn scans_what_the_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ova");
        let data_path = dir.path().join("d");
        std::fs::write(&data_path, vec![7u8; 1000]).unwrap();
        let mut w = OvaWriter::new(std::fs::File::create(&path).unwrap(), 42);
        w.append_bytes("a.ovf", b"<Envelope/>").unwrap();
        w.append_bytes("a.mf", b"x").unwrap();
        let data = std::fs::File::open(&data_path).unwrap();
        w.append_file("a.vmdk", &data, 1000, &|_| {}).unwrap();
        let (_, digest, size) = w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(
            digest,
            crate::manifest::Algorithm::Sha256.hex_digest(&bytes)
        );
        let mut f = std::fs::File::open(&path).unwrap();
        let members = scan(&mut f, size).unwrap();
        let names: Vec<_> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a.ovf", "a.mf", "a.vmdk"]);
        assert!(members.iter().all(|m| m.format == HeaderFormat::Ustar));
        assert!(members.iter().all(|m| m.kind == MemberKind::Regular));
        assert_eq!(members[2].size, 1000);
        let start = members[2].data_offset as usize;
        assert_eq!(&bytes[start..start + 1000], &vec![7u8; 1000][..]);
        // The tar crate reads it too.
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        assert_eq!(archive.entries().unwrap().count(), 3);
    }
}
