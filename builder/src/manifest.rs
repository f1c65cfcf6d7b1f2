//! The OVF manifest (`NAME.mf`): one line per package file, `SHA256(name)= hex`.
//!
//! vSphere parses these lines strictly: the algorithm name in upper case, no space between the
//! name and `=`, exactly one space after it, lower-case hex (see `docs/ova-format.md`). OpenSSL 3's
//! `SHA2-256(...)` and `sha256sum --tag`'s `SHA256 (name) = ` spellings are refused by vCenter,
//! so this module writes and accepts only the canonical form. SHA-256 is the default; SHA-512
//! and SHA-1 are opt-ins (SHA-1 manifests are refused by vCenter 6.5 and later).

use std::fmt;
use std::io::{self, Write};

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// A digest algorithm of manifest (and `.cert`) lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
    Sha1,
}

impl Algorithm {
    /// The name used in manifest lines: `SHA256`, `SHA512`, `SHA1`.
    pub fn manifest_name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
            Algorithm::Sha1 => "SHA1",
        }
    }

    /// The algorithm of a manifest-line name, if it is one vSphere knows.
    pub fn from_manifest_name(name: &str) -> Option<Algorithm> {
        match name {
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            "SHA1" => Some(Algorithm::Sha1),
            _ => None,
        }
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
            Algorithm::Sha1 => 20,
        }
    }

    /// The matching OpenSSL message digest (for signatures).
    pub fn message_digest(self) -> openssl::hash::MessageDigest {
        match self {
            Algorithm::Sha256 => openssl::hash::MessageDigest::sha256(),
            Algorithm::Sha512 => openssl::hash::MessageDigest::sha512(),
            Algorithm::Sha1 => openssl::hash::MessageDigest::sha1(),
        }
    }

    /// A fresh hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Box::new(Sha512::new())),
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
        }
    }

    /// Lower-case hex digest of `data`.
    pub fn hex_digest(self, data: &[u8]) -> String {
        let mut h = self.hasher();
        h.update(data);
        h.finish_hex()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.manifest_name())
    }
}

/// An incremental digest of one of the manifest algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Box<Sha512>),
    Sha1(Sha1),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
        }
    }

    /// The lower-case hex digest.
    pub fn finish_hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
            Hasher::Sha1(h) => hex::encode(h.finalize()),
        }
    }
}

/// A writer that digests everything written through it and counts the bytes, so that a large
/// file's digest and size are known the moment it is written, without reading it back.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: algorithm.hasher(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, self.hasher.finish_hex(), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer accepted is part of the file.
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub algorithm: Algorithm,
    pub name: String,
    /// Lower-case hex digest.
    pub digest: String,
}

/// A manifest: its entries in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not UTF-8 text")]
    NotText,
    #[error("manifest line {line}: {message}: `{text}` (expected `SHA256(name)= <hex digest>`)")]
    BadLine {
        line: usize,
        text: String,
        message: String,
    },
    #[error("manifest line {line}: `{name}` is listed twice")]
    Duplicate { line: usize, name: String },
    #[error("manifest has no entries")]
    Empty,
}

impl Manifest {
    /// Adds a line.
    pub fn push(&mut self, algorithm: Algorithm, name: &str, digest: &str) {
        self.entries.push(Entry {
            algorithm,
            name: name.to_string(),
            digest: digest.to_string(),
        });
    }

    /// The entry for a file name.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The manifest's text: `ALG(name)= hex` lines, each ending in `\n` (as ovftool writes them).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&format!("{}({})= {}\n", e.algorithm, e.name, e.digest));
        }
        out
    }

    /// Parses a manifest strictly (the spelling vSphere accepts). Blank lines are ignored and
    /// CRLF line ends tolerated.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::NotText)?;
        let mut manifest = Manifest::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.trim().is_empty() {
                continue;
            }
            let entry = parse_line(raw).map_err(|message| ManifestError::BadLine {
                line,
                text: raw.to_string(),
                message,
            })?;
            if manifest.get(&entry.name).is_some() {
                return Err(ManifestError::Duplicate {
                    line,
                    name: entry.name,
                });
            }
            manifest.entries.push(entry);
        }
        if manifest.entries.is_empty() {
            return Err(ManifestError::Empty);
        }
        Ok(manifest)
    }
}

/// Parses `ALG(name)= hex`; the error says what is wrong with the line.
pub(crate) fn parse_line(raw: &str) -> Result<Entry, String> {
    let Some(open) = raw.find('(') else {
        return Err("no `(` after the algorithm name".into());
    };
    let alg_name = &raw[..open];
    let algorithm = Algorithm::from_manifest_name(alg_name).ok_or_else(|| {
        format!("unknown algorithm `{alg_name}` (vSphere knows SHA256, SHA512 and SHA1)")
    })?;
    let Some(close) = raw.rfind(")= ") else {
        return Err("no `)= ` (a closing parenthesis, `=`, one space) after the file name".into());
    };
    if close < open {
        return Err("no `)= ` after the file name".into());
    }
    let name = &raw[open + 1..close];
    if name.is_empty() {
        return Err("empty file name".into());
    }
    let digest = &raw[close + 3..];
    if digest.len() != algorithm.digest_len() * 2
        || !digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "the digest must be {} lower-case hex digits",
            algorithm.digest_len() * 2
        ));
    }
    Ok(Entry {
        algorithm,
        name: name.to_string(),
        digest: digest.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn render_and_parse_round_trip() {
        let mut m = Manifest::default();
        let d = Algorithm::Sha256.hex_digest(b"abc");
        m.push(Algorithm::Sha256, "a.ovf", &d);
        let text = m.render();
        assert_eq!(
            text,
            "SHA256(a.ovf)= ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
        );
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn refuses_other_spellings() {
        let d = Algorithm::Sha256.hex_digest(b"abc");
        for bad in [
            format!("SHA2-256(a.ovf)= {d}"),
            format!("SHA256 (a.ovf) = {d}"),
            format!("SHA256(a.ovf)={d}"),
            format!("SHA256(a.ovf)= {}", d.to_uppercase()),
            format!("SHA256(a.ovf)= {}", &d[1..]),
        ] {
            let err = Manifest::parse(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, ManifestError::BadLine { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn hashing_writer_counts_and_digests() {
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha512);
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, digest, n) = w.finish();
        assert_eq!(buf, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(digest, Algorithm::Sha512.hex_digest(b"hello world"));
    }
}
