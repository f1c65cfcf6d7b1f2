//! Signer pinning: whose signature `verify` accepts, beyond "the signature verifies with the
//! enclosed certificate". Without a pin anyone can re-sign an OVA with a certificate of the
//! same subject; `--trust CA.pem` requires the certificate to chain to that CA (OpenSSL's
//! verification, at the current time) and `--signer-sha256` pins the certificate itself.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509StoreContext};

use crate::sign::CertFile;

use super::{Check, Findings};

/// A certificate's SHA-256 fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(cert: &X509) -> Option<Fingerprint> {
        let digest = cert.digest(openssl::hash::MessageDigest::sha256()).ok()?;
        <[u8; 32]>::try_from(&digest[..]).ok().map(Fingerprint)
    }
}

/// `openssl x509 -fingerprint -sha256` format: `AB:CD:…`.
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        f.write_str(&parts.join(":"))
    }
}

/// Why a `--signer-sha256` value is not a fingerprint.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a SHA-256 fingerprint: expected 64 hexadecimal digits, colons optional, as \
     `openssl x509 -noout -fingerprint -sha256 -in CERT.pem` prints them"
)]
pub struct BadFingerprint(String);

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    /// Accepts `AB:CD:…`, `abcd…`, and openssl's whole line `sha256 Fingerprint=AB:CD:…`.
    fn from_str(text: &str) -> Result<Fingerprint, BadFingerprint> {
        let trimmed = text.trim();
        let value = match trimmed.split_once('=') {
            Some((label, value)) if label.to_ascii_lowercase().contains("fingerprint") => value,
            _ => trimmed,
        };
        let digits: String = value.chars().filter(|&c| c != ':').collect();
        let bytes = hex::decode(&digits).map_err(|_| BadFingerprint(text.to_string()))?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Fingerprint)
            .map_err(|_| BadFingerprint(text.to_string()))
    }
}

/// Why `--trust` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the trusted CA file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the trusted CA file {path} holds no PEM certificate: {detail}")]
    NoCertificate { path: PathBuf, detail: String },
}

/// The CA certificates of `--trust`.
pub struct TrustAnchors {
    path: PathBuf,
    store: X509Store,
}

impl std::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TrustAnchors {
    /// Loads every PEM certificate of `path` as a trusted root.
    pub fn load(path: &Path) -> Result<TrustAnchors, TrustError> {
        let pem = std::fs::read(path).map_err(|source| TrustError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let no_cert = |detail: String| TrustError::NoCertificate {
            path: path.to_path_buf(),
            detail,
        };
        let certs = X509::stack_from_pem(&pem).map_err(|e| no_cert(e.to_string()))?;
        if certs.is_empty() {
            return Err(no_cert("the file is empty".into()));
        }
        let mut builder = X509StoreBuilder::new().map_err(|e| no_cert(e.to_string()))?;
        for cert in certs {
            builder.add_cert(cert).map_err(|e| no_cert(e.to_string()))?;
        }
        Ok(TrustAnchors {
            path: path.to_path_buf(),
            store: builder.build(),
        })
    }

    /// `Err(reason)` when `cert` (with the intermediates `chain`) does not chain to a root.
    fn check(&self, cert: &X509, chain: &[X509]) -> Result<(), String> {
        let outcome = (|| {
            let mut untrusted = Stack::new()?;
            for c in chain {
                untrusted.push(c.clone())?;
            }
            let mut ctx = X509StoreContext::new()?;
            ctx.init(&self.store, cert, &untrusted, |ctx| {
                let ok = ctx.verify_cert()?;
                Ok((ok, ctx.error().error_string().to_string()))
            })
        })();
        match outcome {
            Ok((true, _)) => Ok(()),
            Ok((false, reason)) => Err(reason),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Who must have signed the package.
#[derive(Debug, Default)]
pub struct SignerPins {
    /// `--trust`: the certificate must chain to one of these.
    pub trust: Option<TrustAnchors>,
    /// `--signer-sha256`: the certificate must be this one.
    pub sha256: Option<Fingerprint>,
}

/// Checks the package's signer (`None`: unsigned, or its `.cert` unreadable) against the pins.
pub(crate) fn check(
    pins: &SignerPins,
    signer: Option<&CertFile>,
    cert_name: Option<&str>,
    findings: &mut Findings,
) {
    if let Some(trust) = &pins.trust {
        let problem = match signer {
            None => Some(unsigned(cert_name)),
            Some(parsed) => trust.check(&parsed.cert, &parsed.chain).err().map(|why| {
                format!(
                    "the signing certificate ({}, SHA-256 {}) does not chain to a CA of {}: {why}",
                    parsed.subject(),
                    parsed.fingerprint(),
                    trust.path.display()
                )
            }),
        };
        if let Some(message) = problem {
            findings.error(Check::SignerTrust, cert_name, message);
        }
    }
    if let Some(pinned) = &pins.sha256 {
        let problem = match signer {
            None => Some(unsigned(cert_name)),
            Some(parsed) if Fingerprint::of(&parsed.cert).as_ref() == Some(pinned) => None,
            Some(parsed) => Some(format!(
                "the signing certificate ({}) has SHA-256 fingerprint {}, but --signer-sha256 \
                 requires {pinned}: someone else signed this package",
                parsed.subject(),
                parsed.fingerprint()
            )),
        };
        if let Some(message) = problem {
            findings.error(Check::SignerFingerprint, cert_name, message);
        }
    }
}

fn unsigned(cert_name: Option<&str>) -> String {
    match cert_name {
        None => "the package is unsigned (no .cert), but a signer is required".into(),
        Some(_) => "the certificate file cannot be read, so the required signer is unproven".into(),
    }
}
