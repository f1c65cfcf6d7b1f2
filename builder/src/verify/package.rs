//! The package being verified: the members of an OVA, or an `.ovf` and the files beside it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::manifest::Algorithm;
use crate::ova::{self, Member, PackageFile, SMALL_FILE_LIMIT};

use super::{Check, Findings, members};

/// What kind of package was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// A tar archive.
    Ova,
    /// A descriptor with its files in the same directory.
    Ovf,
}

pub(crate) struct Package {
    inner: Inner,
}

enum Inner {
    Ova {
        file: File,
        /// Regular members with safe names, first occurrence of each name, in archive order.
        members: Vec<Member>,
        /// False when the archive could not be walked at all.
        readable: bool,
    },
    Dir {
        dir: PathBuf,
        ovf: String,
    },
}

impl Package {
    /// Opens the package and, for an OVA, checks every member's header (findings go to
    /// `findings`). Only an unreadable file is an error.
    pub(crate) fn open(path: &Path, findings: &mut Findings) -> io::Result<Package> {
        let (mut file, len) = match ova::open_package(path)? {
            PackageFile::Descriptor { dir, name, .. } => {
                return Ok(Package {
                    inner: Inner::Dir { dir, ovf: name },
                });
            }
            PackageFile::Archive { file, len } => (file, len),
        };
        match ova::scan_archive(&mut file, len) {
            Ok(archive) => {
                let members = members::check_headers(&archive.members, findings);
                members::check_end(&archive.end, findings);
                Ok(Package {
                    inner: Inner::Ova {
                        file,
                        members,
                        readable: true,
                    },
                })
            }
            Err(e) => {
                findings.error(
                    Check::Archive,
                    None,
                    format!("not a readable OVA (tar) nor an OVF descriptor: {e}"),
                );
                Ok(Package {
                    inner: Inner::Ova {
                        file,
                        members: Vec::new(),
                        readable: false,
                    },
                })
            }
        }
    }

    pub(crate) fn kind(&self) -> PackageKind {
        match self.inner {
            Inner::Ova { .. } => PackageKind::Ova,
            Inner::Dir { .. } => PackageKind::Ovf,
        }
    }

    /// The package, if it can be checked further.
    pub(crate) fn usable(&self) -> Option<&Package> {
        match self.inner {
            Inner::Ova {
                readable: false, ..
            } => None,
            _ => Some(self),
        }
    }

    /// The OVA members in order (empty for a directory).
    pub(crate) fn members(&self) -> &[Member] {
        match &self.inner {
            Inner::Ova { members, .. } => members,
            Inner::Dir { .. } => &[],
        }
    }

    /// The descriptor's name: the first `.ovf` member, or the `.ovf` file given.
    pub(crate) fn descriptor_name(&self) -> Option<String> {
        match &self.inner {
            Inner::Ova { members, .. } => members
                .iter()
                .find(|m| m.name.ends_with(".ovf"))
                .map(|m| m.name.clone()),
            Inner::Dir { ovf, .. } => Some(ovf.clone()),
        }
    }

    /// Names of the package's files that a manifest or certificate could be: every member,
    /// or (directory) the `NAME.mf` and `NAME.cert` beside `NAME.ovf`.
    pub(crate) fn names(&self) -> Vec<String> {
        match &self.inner {
            Inner::Ova { members, .. } => members.iter().map(|m| m.name.clone()).collect(),
            Inner::Dir { dir, ovf } => {
                let stem = ovf.strip_suffix(".ovf").unwrap_or(ovf);
                [format!("{stem}.mf"), format!("{stem}.cert")]
                    .into_iter()
                    .filter(|n| dir.join(n).is_file())
                    .collect()
            }
        }
    }

    /// The package's content files: every member, or (directory) the `.ovf` and the
    /// referenced files that exist.
    pub(crate) fn content_names(&self, ovf: &str, envelope: Option<&ovf::Envelope>) -> Vec<String> {
        match &self.inner {
            Inner::Ova { members, .. } => members.iter().map(|m| m.name.clone()).collect(),
            Inner::Dir { .. } => {
                let mut names = vec![ovf.to_string()];
                for file in envelope.map(|e| e.references.as_slice()).unwrap_or(&[]) {
                    if self.size(&file.href).is_some() && !names.contains(&file.href) {
                        names.push(file.href.clone());
                    }
                }
                names
            }
        }
    }

    fn dir_path(dir: &Path, name: &str) -> Option<PathBuf> {
        // Only bare names are looked up beside the descriptor.
        (members::name_problem(name).is_none()).then(|| dir.join(name))
    }

    /// The size of a file, if the package has it.
    pub(crate) fn size(&self, name: &str) -> Option<u64> {
        match &self.inner {
            Inner::Ova { members, .. } => members.iter().find(|m| m.name == name).map(|m| m.size),
            Inner::Dir { dir, .. } => {
                let path = Self::dir_path(dir, name)?;
                let meta = std::fs::metadata(path).ok()?;
                meta.is_file().then_some(meta.len())
            }
        }
    }

    /// Reads up to `buf.len()` bytes of a file from `offset`; returns how many were read.
    pub(crate) fn read_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.size(name).ok_or_else(|| not_found(name))?;
        if offset >= size {
            return Ok(0);
        }
        let want = buf.len().min((size - offset) as usize);
        match &self.inner {
            Inner::Ova { file, members, .. } => {
                let m = members
                    .iter()
                    .find(|m| m.name == name)
                    .ok_or_else(|| not_found(name))?;
                file.read_exact_at(&mut buf[..want], m.data_offset + offset)?;
            }
            Inner::Dir { dir, .. } => {
                let path = Self::dir_path(dir, name).ok_or_else(|| not_found(name))?;
                File::open(path)?.read_exact_at(&mut buf[..want], offset)?;
            }
        }
        Ok(want)
    }

    /// Reads a small file (descriptor, manifest, certificate) whole.
    pub(crate) fn read_small(&self, name: &str) -> io::Result<Vec<u8>> {
        let size = self.size(name).ok_or_else(|| not_found(name))?;
        if size > SMALL_FILE_LIMIT {
            return Err(io::Error::other(format!(
                "{size} bytes is too large for a descriptor, manifest or certificate"
            )));
        }
        let mut buf = vec![0u8; size as usize];
        let n = self.read_at(name, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The hex digest of a file; `progress` gets the bytes hashed so far.
    pub(crate) fn hash(
        &self,
        name: &str,
        algorithm: Algorithm,
        progress: &dyn Fn(u64),
    ) -> io::Result<String> {
        let size = self.size(name).ok_or_else(|| not_found(name))?;
        let mut hasher = algorithm.hasher();
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < size {
            let n = self.read_at(name, done, &mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("`{name}` ended early"),
                ));
            }
            hasher.update(&buf[..n]);
            done += n as u64;
            progress(done);
        }
        Ok(hasher.finish_hex())
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no file `{name}` in the package"),
    )
}
