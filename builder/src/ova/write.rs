//! Writing OVA members.
//!
//! Headers come from the `tar` crate; the member stream (header, data, zero padding, two zero
//! blocks at the end) is written here rather than by `tar::Builder` because large members are
//! copied file-to-file with `copy_file_range` (which `std::io::copy` uses between two `File`s on
//! Linux) while the archive's own SHA-256 is computed alongside, and `tar::Builder` only sees a
//! `dyn Write`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use super::{BLOCK, padded};

/// The largest member size a ustar header can hold (11 octal digits: 8 GiB − 1).
pub const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// The mode of every member.
pub const MEMBER_MODE: u32 = 0o644;

/// Why a member could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "member name `{0}` is not a bare file name (1 to 100 printable ASCII characters, \
         no `/`, not `.` or `..`)"
    )]
    BadName(String),
    #[error("member `{name}`: its source ended after {got} of its {expected} bytes")]
    Short {
        name: String,
        got: u64,
        expected: u64,
    },
    #[error("writing the OVA: {0}")]
    Io(#[from] io::Error),
}

/// The header of a regular member: ustar, or GNU when the size needs it; bare name, mode
/// 0644, uid/gid 0, empty owner names, the given integer mtime.
pub fn member_header(name: &str, size: u64, mtime: u64) -> Result<tar::Header, WriteError> {
    let bare = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if !bare {
        return Err(WriteError::BadName(name.to_string()));
    }
    let mut header = if size > USTAR_MAX_SIZE {
        tar::Header::new_gnu()
    } else {
        tar::Header::new_ustar()
    };
    header
        .set_path(name)
        .map_err(|_| WriteError::BadName(name.to_string()))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(MEMBER_MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_device_major(0)?;
    header.set_device_minor(0)?;
    header.set_cksum();
    Ok(header)
}

/// Writes an OVA member by member into a file, computing the archive's SHA-256 as it goes.
pub struct OvaWriter {
    out: File,
    digest: Sha256,
    position: u64,
    mtime: u64,
}

impl OvaWriter {
    /// A writer at the start of `out`; every member gets `mtime`.
    pub fn new(out: File, mtime: u64) -> Self {
        OvaWriter {
            out,
            digest: Sha256::new(),
            position: 0,
            mtime,
        }
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.digest.update(bytes);
        self.position += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let fill = (padded(size) - size) as usize;
        self.put(&[0u8; BLOCK as usize][..fill])
    }

    /// Appends a member held in memory.
    pub fn append_bytes(&mut self, name: &str, data: &[u8]) -> Result<(), WriteError> {
        let header = member_header(name, data.len() as u64, self.mtime)?;
        self.put(header.as_bytes())?;
        self.put(data)?;
        self.pad(data.len() as u64)?;
        Ok(())
    }

    /// Appends the first `size` bytes of `source` as a member. The bytes are copied in the
    /// kernel (`copy_file_range`) while a second thread reads them for the archive digest.
    /// `progress` is called with the number of bytes hashed so far.
    pub fn append_file(
        &mut self,
        name: &str,
        source: &File,
        size: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), WriteError> {
        let header = member_header(name, size, self.mtime)?;
        self.put(header.as_bytes())?;
        let mut reader = source.try_clone()?;
        reader.seek(SeekFrom::Start(0))?;
        let digest = &mut self.digest;
        let out = &mut self.out;
        let (copied, hashed) = std::thread::scope(|scope| {
            let hasher = scope.spawn(move || hash_range(source, size, digest, progress));
            let copied = io::copy(&mut reader.take(size), out);
            let hashed = match hasher.join() {
                Ok(result) => result,
                Err(_) => Err(io::Error::other("the hashing thread panicked")),
            };
            (copied, hashed)
        });
        let copied = copied?;
        let hashed = hashed?;
        if copied != size || hashed != size {
            return Err(WriteError::Short {
                name: name.to_string(),
                got: copied.min(hashed),
                expected: size,
            });
        }
        self.position += size;
        self.pad(size)?;
        Ok(())
    }

    /// Writes the end-of-archive blocks, flushes the file to disk and returns it with the
    /// archive's hex SHA-256 and size.
    pub fn finish(mut self) -> Result<(File, String, u64), WriteError> {
        self.put(&[0u8; 2 * BLOCK as usize])?;
        self.out.flush()?;
        self.out.sync_all()?;
        let digest = hex::encode(self.digest.finalize());
        Ok((self.out, digest, self.position))
    }
}

/// Feeds `size` bytes of `file` from offset 0 into `digest`; returns how many it read.
fn hash_range(
    file: &File,
    size: u64,
    digest: &mut Sha256,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < size {
        let want = (size - done).min(buf.len() as u64) as usize;
        let n = file.read_at(&mut buf[..want], done)?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_ustar_with_fixed_owner_and_mode() {
        let h = member_header("a.ovf", 10, 1_700_000_000).unwrap();
        let bytes = h.as_bytes();
        assert_eq!(&bytes[257..265], b"ustar\x0000");
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.mtime().unwrap(), 1_700_000_000);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(&bytes[0..5], b"a.ovf");
    }

    #[test]
    fn large_members_get_gnu_headers() {
        let h = member_header("big.vmdk", 9 << 30, 0).unwrap();
        assert_eq!(&h.as_bytes()[257..265], b"ustar  \x00");
        assert_eq!(h.entry_size().unwrap(), 9 << 30);
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "./a.ovf",
            "../a",
            "/a",
            "a/b",
            "..",
            "a b",
            &"x".repeat(101),
        ] {
            assert!(member_header(bad, 1, 0).is_err(), "{bad:?}");
        }
    }
}
