//! The OVA container: a tar archive laid out the way vSphere accepts it.
//!
//! Writing ([`OvaWriter`]) produces ustar headers (GNU headers only for members over 8 GiB,
//! which ustar cannot describe), bare member names, owner 0/0 with empty owner names, mode
//! 0644 and one integer mtime for every member; no PAX headers ever. Reading ([`scan`]) walks
//! the raw headers so that `verify` can judge the format, the order and every member's type.

mod open;
mod read;
mod write;

pub use open::{PackageFile, SMALL_FILE_LIMIT, open_package};
pub use read::{
    Archive, ArchiveEnd, HeaderFormat, MAX_HEADERS, Member, MemberKind, ScanError, scan,
    scan_archive,
};
pub use write::{MEMBER_MODE, OvaWriter, USTAR_MAX_SIZE, WriteError, member_header};

/// Size of a tar block.
pub const BLOCK: u64 = 512;

/// `n` rounded up to whole tar blocks.
pub fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}
