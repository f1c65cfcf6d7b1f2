//! Signing the manifest: the `NAME.cert` file that vSphere and ovftool read.
//!
//! Its form, as ovftool writes it: one line `SHA256(NAME.mf)= <hex signature>` — the private
//! key's signature (PKCS#1 v1.5 for RSA) over the manifest's bytes with that digest — followed
//! by the signer's certificate in PEM. Anyone can check it with OpenSSL:
//! `openssl dgst -sha256 -verify <(openssl x509 -pubkey -noout -in NAME.cert) -signature SIG NAME.mf`.

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509;

use crate::manifest::Algorithm;

/// Why the signing key and certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not an unencrypted PEM private key ({detail}); \
         an encrypted key can be decrypted with `openssl pkey -in KEY -out PLAIN.pem` \
         into a file readable only by you"
    )]
    Key { path: PathBuf, detail: String },
    #[error("{path} is not a PEM X.509 certificate: {detail}")]
    Cert { path: PathBuf, detail: String },
    #[error(
        "the key {key} does not match the certificate {cert} (certificate subject {subject}): \
         sign with the private key of that certificate"
    )]
    Mismatch {
        key: PathBuf,
        cert: PathBuf,
        subject: String,
    },
    #[error("signing failed: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

/// A private key with its certificate, checked to belong together.
pub struct Signer {
    key: PKey<Private>,
    cert: X509,
    cert_pem: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Signer")
            .field("subject", &subject_of(&self.cert))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads a PEM private key and a PEM certificate and checks that the certificate's public
    /// key is the key's: a mismatch is reported here, before any work is done.
    pub fn load(key_path: &Path, cert_path: &Path) -> Result<Signer, SignError> {
        let key_pem = std::fs::read(key_path).map_err(|source| SignError::Read {
            what: "signing key",
            path: key_path.to_path_buf(),
            source,
        })?;
        let cert_pem = std::fs::read(cert_path).map_err(|source| SignError::Read {
            what: "certificate",
            path: cert_path.to_path_buf(),
            source,
        })?;
        // The callback refuses to prompt for a passphrase: secrets never come from a terminal
        // prompt or a command line here.
        let key = PKey::private_key_from_pem_callback(&key_pem, |_buf| Ok(0)).map_err(|e| {
            SignError::Key {
                path: key_path.to_path_buf(),
                detail: first_reason(&e),
            }
        })?;
        let cert = X509::from_pem(&cert_pem).map_err(|e| SignError::Cert {
            path: cert_path.to_path_buf(),
            detail: first_reason(&e),
        })?;
        let public = cert.public_key()?;
        if !public.public_eq(&key) {
            return Err(SignError::Mismatch {
                key: key_path.to_path_buf(),
                cert: cert_path.to_path_buf(),
                subject: subject_of(&cert),
            });
        }
        let cert_pem = cert.to_pem()?;
        Ok(Signer {
            key,
            cert,
            cert_pem,
        })
    }

    /// The certificate's subject, for reports.
    pub fn subject(&self) -> String {
        subject_of(&self.cert)
    }

    /// Signs the manifest bytes and returns the content of the `.cert` file.
    pub fn cert_file(
        &self,
        algorithm: Algorithm,
        manifest_name: &str,
        manifest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let mut signer = openssl::sign::Signer::new(algorithm.message_digest(), &self.key)?;
        signer.update(manifest)?;
        let signature = signer.sign_to_vec()?;
        let mut out = format!(
            "{}({manifest_name})= {}\n",
            algorithm.manifest_name(),
            hex::encode(signature)
        )
        .into_bytes();
        out.extend_from_slice(&self.cert_pem);
        Ok(out)
    }
}

/// A parsed `.cert` file.
#[derive(Debug)]
pub struct CertFile {
    pub algorithm: Algorithm,
    /// The manifest file the signature line names.
    pub manifest_name: String,
    pub signature: Vec<u8>,
    pub cert: X509,
    /// Certificates after the signer's (intermediates), for chain verification.
    pub chain: Vec<X509>,
}

/// The outcome of checking a `.cert` against a manifest, with a message for each way it fails.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureProblem {
    #[error("the certificate file is malformed: {0}")]
    Malformed(String),
    #[error("the signature line names `{named}` but the manifest is `{actual}`")]
    WrongManifest { named: String, actual: String },
    #[error(
        "the certificate does not match the signature: the signature is {signature_bytes} bytes \
         long, but the certificate's {key} key makes {key_bytes}-byte signatures, so this \
         certificate ({subject}) is not the signer's"
    )]
    CertificateMismatch {
        signature_bytes: usize,
        key: String,
        key_bytes: usize,
        subject: String,
    },
    #[error(
        "the manifest was edited after signing: the signature is intact and made by the \
         enclosed certificate's key ({subject}), but over a manifest whose {algorithm} is \
         {signed}, while `{manifest}` now has {actual}"
    )]
    ManifestChanged {
        algorithm: Algorithm,
        manifest: String,
        subject: String,
        signed: String,
        actual: String,
    },
    #[error(
        "bad signature: the {algorithm} signature over `{manifest}` does not verify with the \
         public key of the enclosed certificate ({subject}); the signature bytes are damaged, \
         or the certificate is not the one whose key signed"
    )]
    BadSignature {
        algorithm: Algorithm,
        manifest: String,
        subject: String,
    },
}

impl CertFile {
    /// Parses the signature line and the PEM certificate after it.
    pub fn parse(bytes: &[u8]) -> Result<CertFile, SignatureProblem> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| SignatureProblem::Malformed("not UTF-8 text".into()))?;
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        let first = first.strip_suffix('\r').unwrap_or(first);
        let (alg_name, after) = first.split_once('(').ok_or_else(|| {
            SignatureProblem::Malformed(format!(
                "first line `{}` is not `SHA256(NAME.mf)= <hex signature>`",
                shorten(first)
            ))
        })?;
        let algorithm = Algorithm::from_manifest_name(alg_name).ok_or_else(|| {
            SignatureProblem::Malformed(format!("unknown digest algorithm `{alg_name}`"))
        })?;
        let (manifest_name, sig_hex) = after.rsplit_once(")= ").ok_or_else(|| {
            SignatureProblem::Malformed(format!(
                "first line `{}` is not `SHA256(NAME.mf)= <hex signature>`",
                shorten(first)
            ))
        })?;
        let signature = hex::decode(sig_hex.trim()).map_err(|e| {
            SignatureProblem::Malformed(format!("the signature is not hex digits ({e})"))
        })?;
        if signature.is_empty() {
            return Err(SignatureProblem::Malformed("the signature is empty".into()));
        }
        let cert = X509::from_pem(rest.as_bytes()).map_err(|e| {
            SignatureProblem::Malformed(format!(
                "no PEM certificate after the signature line ({})",
                first_reason(&e)
            ))
        })?;
        // Anything after the first certificate that is not PEM certificates is ignored.
        let chain = X509::stack_from_pem(rest.as_bytes())
            .map(|all| all.into_iter().skip(1).collect())
            .unwrap_or_default();
        Ok(CertFile {
            algorithm,
            manifest_name: manifest_name.to_string(),
            signature,
            cert,
            chain,
        })
    }

    /// The certificate's subject.
    pub fn subject(&self) -> String {
        subject_of(&self.cert)
    }

    /// SHA-256 fingerprint of the certificate, as `openssl x509 -fingerprint -sha256` prints it.
    pub fn fingerprint(&self) -> String {
        crate::verify::Fingerprint::of(&self.cert)
            .map(|f| f.to_string())
            .unwrap_or_default()
    }

    /// Checks the signature over the manifest `manifest_name` with the enclosed certificate.
    pub fn check(&self, manifest_name: &str, manifest: &[u8]) -> Result<(), SignatureProblem> {
        if self.manifest_name != manifest_name {
            return Err(SignatureProblem::WrongManifest {
                named: self.manifest_name.clone(),
                actual: manifest_name.to_string(),
            });
        }
        let public = self
            .cert
            .public_key()
            .map_err(|e| SignatureProblem::Malformed(first_reason(&e)))?;
        // RSA signatures are exactly as long as the modulus: a length that does not fit proves
        // that this certificate is not the one whose key signed.
        if let Ok(rsa) = public.rsa() {
            let key_bytes = rsa.size() as usize;
            if key_bytes != self.signature.len() {
                return Err(SignatureProblem::CertificateMismatch {
                    signature_bytes: self.signature.len(),
                    key: format!("{}-bit RSA", public.bits()),
                    key_bytes,
                    subject: self.subject(),
                });
            }
        } else if public.id() == openssl::pkey::Id::EC && self.signature.len() > public.size() {
            return Err(SignatureProblem::CertificateMismatch {
                signature_bytes: self.signature.len(),
                key: format!("{}-bit EC", public.bits()),
                key_bytes: public.size(),
                subject: self.subject(),
            });
        }
        if verify_with(&public, self.algorithm, manifest, &self.signature) {
            return Ok(());
        }
        // For RSA the signed digest can be recovered: if it decodes, the signature and the
        // certificate belong together and only the manifest changed.
        if let Some(signed) = recover_digest(&public, self.algorithm, &self.signature) {
            return Err(SignatureProblem::ManifestChanged {
                algorithm: self.algorithm,
                manifest: manifest_name.to_string(),
                subject: self.subject(),
                signed: hex::encode(signed),
                actual: self.algorithm.hex_digest(manifest),
            });
        }
        Err(SignatureProblem::BadSignature {
            algorithm: self.algorithm,
            manifest: manifest_name.to_string(),
            subject: self.subject(),
        })
    }
}

/// The digest inside an RSA PKCS#1 v1.5 signature, if the signature decodes with this key.
fn recover_digest(public: &PKey<Public>, algorithm: Algorithm, sig: &[u8]) -> Option<Vec<u8>> {
    public.rsa().ok()?;
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(public).ok()?;
    ctx.verify_recover_init().ok()?;
    ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1).ok()?;
    let md = match algorithm {
        Algorithm::Sha256 => openssl::md::Md::sha256(),
        Algorithm::Sha512 => openssl::md::Md::sha512(),
        Algorithm::Sha1 => openssl::md::Md::sha1(),
    };
    ctx.set_signature_md(md).ok()?;
    let mut out = vec![0u8; sig.len()];
    let n = ctx.verify_recover(sig, Some(&mut out)).ok()?;
    out.truncate(n);
    (n == algorithm.digest_len()).then_some(out)
}

fn verify_with(public: &PKey<Public>, algorithm: Algorithm, data: &[u8], sig: &[u8]) -> bool {
    let Ok(mut verifier) = openssl::sign::Verifier::new(algorithm.message_digest(), public) else {
        return false;
    };
    verifier.update(data).is_ok() && verifier.verify(sig).unwrap_or(false)
}

/// `CN=..., O=...` of a certificate.
pub fn subject_of(cert: &X509) -> String {
    let parts: Vec<String> = cert
        .subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect();
    if parts.is_empty() {
        "no subject".into()
    } else {
        parts.join(", ")
    }
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|x| x.reason().map(str::to_string))
        .unwrap_or_else(|| e.to_string())
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 60 {
        let head: String = s.chars().take(60).collect();
        format!("{head}…")
    } else {
        s.to_string()
    }
}
