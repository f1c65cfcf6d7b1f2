//! "OVA or OVF?": a package is given either as an OVA (a tar archive) or as an OVF
//! descriptor with its files beside it. A descriptor is XML, so its first byte after an
//! optional UTF-8 byte-order mark and white space is `<`; anything else is read as a tar.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest descriptor, manifest or certificate read into memory.
pub const SMALL_FILE_LIMIT: u64 = 64 << 20;

/// An opened package file.
#[derive(Debug)]
pub enum PackageFile {
    /// An OVF descriptor; the files it references are in `dir`.
    Descriptor {
        file: File,
        len: u64,
        dir: PathBuf,
        /// The descriptor's file name.
        name: String,
    },
    /// An OVA (or something that is not XML, to be judged as one).
    Archive { file: File, len: u64 },
}

/// Opens `path` and tells an OVF descriptor from an OVA by its first bytes.
pub fn open_package(path: &Path) -> io::Result<PackageFile> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = vec![0u8; 512.min(len as usize)];
    file.read_exact(&mut head)?;
    if !looks_like_xml(&head) {
        return Ok(PackageFile::Archive { file, len });
    }
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(PackageFile::Descriptor {
        file,
        len,
        dir,
        name,
    })
}

fn looks_like_xml(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_a_descriptor_anything_else_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        let ovf = dir.path().join("a.ovf");
        std::fs::write(&ovf, "\u{feff}\n  <?xml version=\"1.0\"?><Envelope/>").unwrap();
        match open_package(&ovf).unwrap() {
            PackageFile::Descriptor { dir: d, name, .. } => {
                assert_eq!(d, dir.path());
                assert_eq!(name, "a.ovf");
            }
            other => panic!("{other:?}"),
        }
        let ova = dir.path().join("a.ova");
        std::fs::write(&ova, "a.ovf\0").unwrap();
        assert!(matches!(
            open_package(&ova).unwrap(),
            PackageFile::Archive { len: 6, .. }
        ));
        assert!(open_package(&dir.path().join("missing")).is_err());
    }
}
