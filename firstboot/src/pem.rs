//! Repair of pasted PEM (`appliance.ca_cert`, `appliance.ca_cert_key`) and the checks of the
//! supplied CA with real X.509 and key parsers (OpenSSL).
//!
//! Text pasted into the vSphere wizard arrives damaged in known ways: newlines turned into
//! spaces, newlines deleted, CRLF, literal `\n`, or the whole PEM base64-encoded (the
//! documentation tells users they "may need to Base64-encode" it). The repair finds the
//! `-----BEGIN …-----`/`-----END …-----` markers wherever they are, drops every whitespace
//! character from the base64 body and decodes it; nothing else about the text is trusted.
//!
//! Hand-written rather than using a PEM crate: the PEM crates parse well-formed PEM only, and
//! the damaged forms (markers glued to the body, spaces in place of line breaks) are exactly
//! what has to be accepted here. Decoding the DER afterwards is OpenSSL's job.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use foreign_types::ForeignTypeRef as _;
use openssl::ec::EcKey;
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509Ref};

/// One PEM block found in the input: its label and decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub label: String,
    pub der: Vec<u8>,
    /// Legacy OpenSSL encryption headers (`Proc-Type: 4,ENCRYPTED`) were present.
    pub encrypted_headers: bool,
}

/// The label of a PEM block as messages show it. Labels are part of the pasted text, which
/// may be a private key: only the standard labels (RFC 7468 and OpenSSL's legacy ones) are
/// shown, anything else by its length alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Label {
    Known(&'static str),
    Unrecognised { chars: usize },
}

/// Labels that may be shown: public vocabulary, never secret text.
const KNOWN_LABELS: &[&str] = &[
    "CERTIFICATE",
    "X509 CERTIFICATE",
    "TRUSTED CERTIFICATE",
    "CERTIFICATE REQUEST",
    "NEW CERTIFICATE REQUEST",
    "X509 CRL",
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "RSA PRIVATE KEY",
    "DSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "EC PARAMETERS",
    "DH PARAMETERS",
    "PKCS7",
    "CMS",
    "ATTRIBUTE CERTIFICATE",
];

impl Label {
    pub fn of(label: &str) -> Label {
        match KNOWN_LABELS.iter().find(|k| **k == label) {
            Some(known) => Label::Known(known),
            None => Label::Unrecognised {
                chars: label.chars().count(),
            },
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Known(l) => write!(f, "-----BEGIN {l}-----"),
            Label::Unrecognised { chars } => {
                write!(f, "an unrecognised label of {chars} characters")
            }
        }
    }
}

/// What is wrong with pasted PEM. `Display` says what was found and what is expected, and
/// never quotes the pasted text (it may be a private key): blocks are referred to by number,
/// labels through [`Label`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error(
        "no PEM block found; expected text starting with -----BEGIN CERTIFICATE----- (or the same base64-encoded)"
    )]
    NoCertificate,
    #[error(
        "no PEM block found; expected text starting with -----BEGIN PRIVATE KEY----- (or the same base64-encoded)"
    )]
    NoKey,
    #[error(
        "the BEGIN line of block {block} is damaged: no ----- after a label of capital letters, \
         digits and spaces; expected -----BEGIN, a label such as CERTIFICATE or PRIVATE KEY, \
         and -----"
    )]
    DamagedBegin { block: usize },
    #[error("block {block} ({label}) has no matching -----END line")]
    Unterminated { block: usize, label: Label },
    #[error("the body of block {block} ({label}) is not valid base64")]
    BadBase64 { block: usize, label: Label },
    #[error("certificate {index} is not a valid X.509 certificate ({detail})")]
    BadCertificate { index: usize, detail: String },
    #[error(
        "the private key is encrypted; expected an unencrypted key (decrypt it with `openssl pkey -in key.pem -out plain.pem`)"
    )]
    EncryptedKey,
    #[error(
        "the {label} block is not a valid private key ({detail}); expected a PKCS#1, PKCS#8 or SEC1 (EC) key"
    )]
    BadKey { label: Label, detail: String },
    #[error("found {found}; expected a certificate (-----BEGIN CERTIFICATE-----)")]
    NotACertificate { found: Label },
    #[error(
        "found {found}; expected a private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
    )]
    NotAKey { found: Label },
    #[error("found {count} private keys; expected exactly one")]
    SeveralKeys { count: usize },
}

/// Longest label accepted on a BEGIN line (the longest standard one has 23 characters).
const MAX_LABEL_CHARS: usize = 64;

/// Undo the transport damage and split the text into PEM blocks.
///
/// Accepts: well-formed PEM; newlines replaced by spaces or deleted; CRLF or CR line ends;
/// literal `\n` / `\r\n` escape sequences; any of these base64-encoded as a whole (possibly
/// with line breaks); several blocks in a row (chains, `EC PARAMETERS` + key).
pub fn blocks(input: &str) -> Result<Vec<Block>, PemError> {
    let text = unescape_newlines(input);
    if text.contains("-----BEGIN") {
        return split_blocks(&text);
    }
    // Base64 of the whole PEM: decode and try again (once, no recursion on garbage).
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if let Ok(decoded) = STANDARD.decode(compact.as_bytes())
        && let Ok(decoded) = String::from_utf8(decoded)
    {
        let decoded = unescape_newlines(&decoded);
        if decoded.contains("-----BEGIN") {
            return split_blocks(&decoded);
        }
    }
    Ok(Vec::new())
}

/// Literal `\r\n`, `\n`, `\r` (backslash sequences from JSON/shell quoting) and CRLF → LF.
fn unescape_newlines(input: &str) -> String {
    input
        .replace("\\r\\n", "\n")
        .replace("\\n", "\n")
        .replace("\\r", "\n")
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

fn split_blocks(text: &str) -> Result<Vec<Block>, PemError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let block = out.len() + 1;
        let after = &rest[begin + "-----BEGIN ".len()..];
        let (label, body_and_rest) = begin_label(after).ok_or(PemError::DamagedBegin { block })?;
        // Labels may have had their own separators damaged; normalise runs of whitespace.
        let label = label.split_whitespace().collect::<Vec<_>>().join(" ");
        let unterminated = || PemError::Unterminated {
            block,
            label: Label::of(&label),
        };
        let end = body_and_rest.find("-----END ").ok_or_else(unterminated)?;
        let body = &body_and_rest[..end];
        let tail = &body_and_rest[end + "-----END ".len()..];
        let end_label_end = tail.find("-----").ok_or_else(unterminated)?;
        rest = &tail[end_label_end + "-----".len()..];

        // Legacy encrypted PEM carries RFC 1421 headers before the body. The body is not
        // needed: an encrypted key is refused anyway.
        let encrypted_headers = body.contains("Proc-Type:") || body.contains("DEK-Info:");
        let der = if encrypted_headers {
            Vec::new()
        } else {
            let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD
                .decode(b64.as_bytes())
                .map_err(|_| PemError::BadBase64 {
                    block,
                    label: Label::of(&label),
                })?
        };
        out.push(Block {
            label,
            der,
            encrypted_headers,
        });
    }
    Ok(out)
}

/// The label of a BEGIN line (the text after `-----BEGIN ` up to the next `-----`), when it
/// looks like one: at most [`MAX_LABEL_CHARS`] capital letters, digits and whitespace.
/// Anything else means the line's closing dashes were lost and the text runs into the body.
/// Returns the label and the text after the line.
fn begin_label(after_begin: &str) -> Option<(&str, &str)> {
    let (label, rest) = after_begin.split_once("-----")?;
    let plausible = label.chars().count() <= MAX_LABEL_CHARS
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c.is_whitespace());
    plausible.then_some((label, rest))
}

/// Repair and parse the certificates of `appliance.ca_cert` (one or a chain), in input order.
pub fn certificates(input: &str) -> Result<Vec<X509>, PemError> {
    let blocks = blocks(input)?;
    if blocks.is_empty() {
        return Err(PemError::NoCertificate);
    }
    let mut certs = Vec::new();
    for block in &blocks {
        match block.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                let cert = X509::from_der(&block.der).map_err(|e| PemError::BadCertificate {
                    index: certs.len() + 1,
                    detail: first_reason(&e),
                })?;
                certs.push(cert);
            }
            other => {
                return Err(PemError::NotACertificate {
                    found: Label::of(other),
                });
            }
        }
    }
    Ok(certs)
}

/// Repair and parse the private key of `appliance.ca_cert_key` (PKCS#1 RSA, PKCS#8, SEC1 EC;
/// an `EC PARAMETERS` block before the key is skipped). Encrypted keys are refused without
/// ever asking for a passphrase.
pub fn private_key(input: &str) -> Result<PKey<Private>, PemError> {
    let blocks = blocks(input)?;
    if blocks.is_empty() {
        return Err(PemError::NoKey);
    }
    let keys: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.label != "EC PARAMETERS")
        .collect();
    let [block] = keys.as_slice() else {
        if keys.is_empty() {
            return Err(PemError::NoKey);
        }
        return Err(PemError::SeveralKeys { count: keys.len() });
    };
    if block.label == "ENCRYPTED PRIVATE KEY" || block.encrypted_headers {
        return Err(PemError::EncryptedKey);
    }
    let bad = |e: openssl::error::ErrorStack| PemError::BadKey {
        label: Label::of(&block.label),
        detail: first_reason(&e),
    };
    match block.label.as_str() {
        "PRIVATE KEY" => PKey::private_key_from_pkcs8(&block.der).map_err(bad),
        "RSA PRIVATE KEY" => Rsa::private_key_from_der(&block.der)
            .and_then(PKey::from_rsa)
            .map_err(bad),
        "EC PRIVATE KEY" => EcKey::private_key_from_der(&block.der)
            .and_then(PKey::from_ec_key)
            .map_err(bad),
        other => Err(PemError::NotAKey {
            found: Label::of(other),
        }),
    }
}

/// Whether the certificate carries basicConstraints CA:TRUE.
pub fn is_ca(cert: &X509) -> bool {
    // SAFETY: `cert` is a valid, owned X509 for the duration of the call;
    // X509_get_extension_flags only reads (and caches) the decoded extensions. The openssl
    // crate has no safe accessor for basicConstraints.
    let flags = unsafe { openssl_sys::X509_get_extension_flags(cert.as_ptr()) };
    flags & openssl_sys::EXFLAG_CA != 0
}

/// A short, stable reason from an OpenSSL error stack (no file/line noise).
fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|err| err.reason().map(str::to_owned))
        .unwrap_or_else(|| "unreadable DER".to_owned())
}

/// Subject of a certificate in one line, for messages.
pub fn subject(cert: &X509Ref) -> String {
    cert.subject_name()
        .entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The index of the first certificate whose public key is the public half of `key`.
pub fn matching_certificate(certs: &[X509], key: &PKeyRef<Private>) -> Option<usize> {
    certs.iter().position(|c| {
        c.public_key()
            .map(|public| public.public_eq(key))
            .unwrap_or(false)
    })
}

/// The certificates as one PEM text: `certs[first]` first, then the others in input order.
pub fn chain_pem(certs: &[X509], first: usize) -> Result<String, ErrorStack> {
    let rest = certs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, c)| c);
    let mut chain = String::new();
    for c in certs.get(first).into_iter().chain(rest) {
        chain.push_str(&String::from_utf8_lossy(&c.to_pem()?));
    }
    Ok(chain)
}

/// The private key as unencrypted PKCS#8 PEM.
pub fn pkcs8_pem(key: &PKeyRef<Private>) -> Result<String, ErrorStack> {
    Ok(String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned())
}
