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
        "truncated archive: member `{name}` declares {size} bytes at byte {offset}, \
         but the file is {len} bytes"
    )]
    TruncatedData {
        name: String,
        size: u64,
        offset: u64,
        len: u64,
    },
    #[error("header at byte {offset}: unreadable {field} field")]
    Field { offset: u64, field: &'static str },
    #[error("the archive has no members")]
    Empty,
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
}

/// Walks every header of the tar archive in `file` (of `len` bytes), without reading data.
pub fn scan<F: Read + Seek>(file: &mut F, len: u64) -> Result<Vec<Member>, ScanError> {
    let mut members = Vec::new();
    let mut offset = 0u64;
    let mut block = [0u8; BLOCK as usize];
    loop {
        if offset + BLOCK > len {
            if offset >= len && !members.is_empty() {
                // Missing end-of-archive blocks: GNU tar accepts it, so do we.
                break;
            }
            return Err(ScanError::TruncatedHeader { offset, len });
        }
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut block)?;
        if block.iter().all(|&b| b == 0) {
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        let computed: u32 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    b' ' as u32
                } else {
                    b as u32
                }
            })
            .sum();
        let stored = header.cksum().ok();
        if stored != Some(computed) {
            return Err(ScanError::Checksum {
                offset,
                stored,
                computed,
            });
        }
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
        let link = || {
            header
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let kind = match header.entry_type() {
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
        };
        let data_offset = offset + BLOCK;
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
        if data_offset + stored_size > len {
            return Err(ScanError::TruncatedData {
                name,
                size: stored_size,
                offset: data_offset,
                len,
            });
        }
        members.push(Member {
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
        });
        offset = data_offset + padded(stored_size);
    }
    if members.is_empty() {
        return Err(ScanError::Empty);
    }
    Ok(members)
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
