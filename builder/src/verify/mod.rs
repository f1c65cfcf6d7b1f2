//! `verify`: everything a release engineer wants checked before an OVA is published.
//!
//! The checks, each reported as a [`Problem`] with its own [`Check`] code and a message that
//! names the file, what was found and what is expected:
//! - the container (OVA only): ustar or GNU headers, no PAX or GNU long-name records, bare
//!   member names (no absolute paths, `..`, `./`, directories), regular files only (no links,
//!   devices, directories), no duplicates; the `.ovf` first, `.mf` and `.cert` together right
//!   after it (or both at the end), then the files in `References` order; nothing but zero
//!   blocks after the end-of-archive (no member hidden after a lone zero block, no trailing
//!   bytes). The walk's memory is bounded whatever the headers claim;
//! - the manifest: strict syntax, every listed file present with the listed digest, every
//!   package file listed;
//! - the signature (when a `.cert` is present): it verifies over the manifest with the
//!   enclosed certificate's key; with [`SignerPins`], the certificate chains to a trusted CA
//!   and/or has the pinned SHA-256 fingerprint;
//! - the descriptor: it parses; every `References` file exists with its `ovf:size`; each
//!   disk's capacity is not 0 and equals its VMDK header's; each `ovf:configuration`, network connection,
//!   file and disk reference names something the descriptor defines.
//!
//! Both an `.ova` and an `.ovf` with its files beside it can be checked.

mod deep;
mod descriptor;
mod members;
mod package;
mod signer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::manifest::{Algorithm, Manifest};
use crate::progress::Progress;
use crate::sign::{CertFile, SignatureProblem};

use package::Package;
pub use package::PackageKind;
pub use signer::{BadFingerprint, Fingerprint, SignerPins, TrustAnchors, TrustError};

/// How bad a problem is. Errors make `verify` fail; warnings are reported only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Which rule a problem breaks (a stable code, also in `--json` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The file is not a readable tar archive.
    Archive,
    /// A tar header after the end-of-archive zero block(s), which `tar -i` extracts.
    HiddenMember,
    /// Bytes that are not zero after the end-of-archive.
    TrailingData,
    /// A header is neither ustar nor GNU.
    TarFormat,
    /// A PAX extended or global header.
    PaxHeader,
    /// A GNU long-name or long-link record.
    GnuLongName,
    AbsolutePath,
    ParentPath,
    DotSlashName,
    Subdirectory,
    LinkMember,
    SpecialMember,
    DirectoryMember,
    DuplicateMember,
    MemberOrder,
    NoDescriptor,
    Descriptor,
    MissingFile,
    FileSize,
    UnreferencedFile,
    Compression,
    NoManifest,
    ManifestSyntax,
    ManifestMissingFile,
    ManifestDigest,
    NotInManifest,
    WeakDigest,
    SignatureMalformed,
    CertificateMismatch,
    BadSignature,
    ManifestChanged,
    CertificateValidity,
    /// The signing certificate does not chain to a `--trust` CA.
    SignerTrust,
    /// The signing certificate is not the `--signer-sha256` one.
    SignerFingerprint,
    VmdkHeader,
    /// A stream-optimized disk's grains or tables are damaged (the deep check).
    VmdkStream,
    DiskCapacity,
    /// The OVA does not match its `NAME.ova.sha256` beside it.
    ArchiveDigest,
    UndefinedReference,
    DuplicateId,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub check: Check,
    /// The package file (or member) concerned, when there is one.
    pub file: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let check = serde_json::to_value(self.check)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match &self.file {
            Some(file) => write!(f, "{sev}[{check}] {file}: {}", self.message),
            None => write!(f, "{sev}[{check}] {}", self.message),
        }
    }
}

/// A file of the package as `verify` saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileReport {
    pub name: String,
    pub size: u64,
    /// `ALG:hex` of the file, when the manifest lists it and it was hashed.
    pub digest: Option<String>,
    /// Whether the digest matched the manifest.
    pub digest_ok: Option<bool>,
}

/// Who signed the package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignerReport {
    pub subject: String,
    pub sha256_fingerprint: String,
    pub not_after: String,
    pub signature_ok: bool,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub path: PathBuf,
    pub kind: PackageKind,
    pub descriptor: Option<String>,
    pub manifest: Option<String>,
    pub certificate: Option<String>,
    pub signer: Option<SignerReport>,
    pub files: Vec<FileReport>,
    /// The `NAME.ova.sha256` file checked, when there is one beside the OVA.
    pub checksum_file: Option<PathBuf>,
    pub problems: Vec<Problem>,
    pub ok: bool,
}

impl Report {
    /// The errors (not the warnings).
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    /// Whether a problem with this check was found.
    pub fn has(&self, check: Check) -> bool {
        self.problems.iter().any(|p| p.check == check)
    }
}

/// Why `verify` could not even start.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Problems as they are found.
#[derive(Default)]
pub(crate) struct Findings(Vec<Problem>);

impl Findings {
    pub(crate) fn error(&mut self, check: Check, file: Option<&str>, message: impl Into<String>) {
        self.push(Severity::Error, check, file, message.into());
    }

    pub(crate) fn warn(&mut self, check: Check, file: Option<&str>, message: impl Into<String>) {
        self.push(Severity::Warning, check, file, message.into());
    }

    fn push(&mut self, severity: Severity, check: Check, file: Option<&str>, message: String) {
        self.0.push(Problem {
            severity,
            check,
            file: file.map(str::to_string),
            message,
        });
    }
}

/// Checks the package at `path`: an OVA, or an OVF descriptor with its files beside it
/// (recognised by content, not by name). Package problems are in the report; only a file
/// that cannot be read at all is an `Err`.
pub fn verify(path: &Path, progress: &Progress) -> Result<Report, VerifyError> {
    verify_with(path, &VerifyOptions::default(), progress)
}

/// How thorough [`verify_with`] is.
#[derive(Debug)]
pub struct VerifyOptions {
    /// The signer must satisfy these pins.
    pub pins: SignerPins,
    /// Also inflate every grain of each stream-optimized disk (`deep.rs`); the default.
    pub deep: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            pins: SignerPins::default(),
            deep: true,
        }
    }
}

/// [`verify`] with `options`.
pub fn verify_with(
    path: &Path,
    options: &VerifyOptions,
    progress: &Progress,
) -> Result<Report, VerifyError> {
    let mut findings = Findings::default();
    let package = Package::open(path, &mut findings).map_err(|source| VerifyError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut report = Report {
        path: path.to_path_buf(),
        kind: package.kind(),
        descriptor: None,
        manifest: None,
        certificate: None,
        signer: None,
        files: Vec::new(),
        checksum_file: None,
        problems: Vec::new(),
        ok: false,
    };
    // The OVA's own digest (NAME.ova.sha256) is computed beside the other checks, on another
    // core; its findings come last, as when it ran after them.
    let sidecar = std::thread::scope(|scope| {
        let sidecar = (report.kind == PackageKind::Ova).then(|| {
            scope.spawn(|| {
                let mut found = Findings::default();
                let file = check_checksum_file(path, &mut found, &Progress::hidden());
                (file, found)
            })
        });
        if let Some(package) = package.usable() {
            check_package(package, options, &mut report, &mut findings, progress);
        }
        sidecar.map(|handle| handle.join())
    });
    match sidecar {
        Some(Ok((file, found))) => {
            report.checksum_file = file;
            findings.0.extend(found.0);
        }
        Some(Err(_)) => findings.error(
            Check::ArchiveDigest,
            None,
            "the check of the OVA's digest stopped unexpectedly (a bug)",
        ),
        None => {}
    }
    report.problems = findings.0;
    let ok = report.errors().next().is_none();
    report.ok = ok;
    Ok(report)
}

fn check_package(
    package: &Package,
    options: &VerifyOptions,
    report: &mut Report,
    findings: &mut Findings,
    progress: &Progress,
) {
    let Some(ovf_name) = package.descriptor_name() else {
        findings.error(
            Check::NoDescriptor,
            None,
            "the package has no .ovf descriptor member",
        );
        return;
    };
    report.descriptor = Some(ovf_name.clone());
    let names = package.names();
    let manifest_name = single_with_suffix(&names, ".mf", findings);
    let cert_name = single_with_suffix(&names, ".cert", findings);
    report.manifest = manifest_name.clone();
    report.certificate = cert_name.clone();

    let envelope = read_descriptor(package, &ovf_name, findings);
    if let Some(envelope) = &envelope {
        if package.kind() == PackageKind::Ova {
            members::check_order(
                package,
                &ovf_name,
                manifest_name.as_deref(),
                cert_name.as_deref(),
                envelope,
                findings,
            );
        }
        descriptor::check(package, &ovf_name, envelope, findings);
    }

    let manifest = manifest_name
        .as_deref()
        .and_then(|mf| read_manifest(package, mf, findings));
    if manifest_name.is_none() {
        findings.warn(
            Check::NoManifest,
            None,
            "no .mf manifest: nothing proves the files are intact (vSphere deploys it, but \
             cannot check it)",
        );
    }
    let special = [manifest_name.as_deref(), cert_name.as_deref()];
    let content = content_files(package, &ovf_name, envelope.as_ref(), special);
    // The deep check (inflating every grain) and the manifest's digests each read every disk:
    // on two cores they run side by side (the second read comes from the page cache), and the
    // deep check's findings keep their place before the digests'. Its bar is the one shown:
    // it is the longer of the two.
    let at = findings.0.len();
    let deep = std::thread::scope(|scope| {
        let deep = options.deep.then(|| {
            scope.spawn(|| {
                let mut found = Findings::default();
                self::deep::check(package, &content, &mut found, progress);
                found
            })
        });
        let hashing = if options.deep {
            Progress::hidden()
        } else {
            *progress
        };
        match &manifest {
            Some((mf, _, manifest)) => {
                check_manifest(package, mf, manifest, &content, report, findings, &hashing)
            }
            None => list_unhashed(package, &content, report),
        }
        deep.map(|handle| handle.join())
    });
    match deep {
        Some(Ok(found)) => {
            findings.0.splice(at..at, found.0);
        }
        Some(Err(_)) => findings.error(
            Check::VmdkStream,
            None,
            "the deep check of the disks stopped unexpectedly (a bug): the disks are not checked",
        ),
        None => {}
    }

    let manifest_state = match &manifest {
        Some((mf, bytes, _)) => ManifestState::Read(mf, bytes),
        None if manifest_name.is_none() => ManifestState::Absent,
        None => ManifestState::Unreadable,
    };
    let signer = cert_name
        .as_deref()
        .and_then(|cert| check_certificate(package, cert, manifest_state, report, findings));
    signer::check(
        &options.pins,
        signer.as_ref(),
        cert_name.as_deref(),
        findings,
    );
}

/// The package files the descriptor's content is in: all but the manifest and certificate.
fn content_files(
    package: &Package,
    ovf_name: &str,
    envelope: Option<&ovf::Envelope>,
    special: [Option<&str>; 2],
) -> Vec<String> {
    let special: BTreeSet<&str> = special.into_iter().flatten().collect();
    package
        .content_names(ovf_name, envelope)
        .into_iter()
        .filter(|n| !special.contains(n.as_str()))
        .collect()
}

/// The manifest a signature covers, as far as it could be read.
#[derive(Clone, Copy)]
enum ManifestState<'a> {
    Absent,
    /// Present but unreadable or malformed (reported already).
    Unreadable,
    /// Its name and bytes.
    Read(&'a str, &'a [u8]),
}

/// The certificate `cert` and the signature over the manifest.
fn check_certificate(
    package: &Package,
    cert: &str,
    manifest: ManifestState<'_>,
    report: &mut Report,
    findings: &mut Findings,
) -> Option<CertFile> {
    match manifest {
        ManifestState::Absent => {
            findings.error(
                Check::SignatureMalformed,
                Some(cert),
                "a certificate without a manifest: the signature covers the .mf file, which \
                 is missing",
            );
            None
        }
        ManifestState::Unreadable => None,
        ManifestState::Read(mf, bytes) => {
            check_signature(package, cert, mf, bytes, report, findings)
        }
    }
}

/// The descriptor, parsed; `None` (and a finding) when it cannot be read or parsed.
fn read_descriptor(
    package: &Package,
    ovf_name: &str,
    findings: &mut Findings,
) -> Option<ovf::Envelope> {
    let problem = match package.read_small(ovf_name) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => match ovf::read(text) {
                Ok(envelope) => return Some(envelope),
                Err(e) => format!("the descriptor does not parse: {e}"),
            },
            Err(e) => format!("the descriptor is not UTF-8 ({e})"),
        },
        Err(e) => format!("cannot read the descriptor: {e}"),
    };
    findings.error(Check::Descriptor, Some(ovf_name), problem);
    None
}

/// The manifest `mf`: (name, bytes, parsed); `None` (and a finding) when it cannot be read
/// or parsed.
fn read_manifest(
    package: &Package,
    mf: &str,
    findings: &mut Findings,
) -> Option<(String, Vec<u8>, Manifest)> {
    let bytes = match package.read_small(mf) {
        Ok(b) => b,
        Err(e) => {
            findings.error(Check::ManifestSyntax, Some(mf), format!("cannot read: {e}"));
            return None;
        }
    };
    match Manifest::parse(&bytes) {
        Ok(m) => Some((mf.to_string(), bytes, m)),
        Err(e) => {
            findings.error(Check::ManifestSyntax, Some(mf), e.to_string());
            None
        }
    }
}

/// Without a manifest the files are reported with their sizes only.
fn list_unhashed(package: &Package, content: &[String], report: &mut Report) {
    for name in content {
        report.files.push(FileReport {
            name: name.clone(),
            size: package.size(name).unwrap_or(0),
            digest: None,
            digest_ok: None,
        });
    }
}

/// Checks `FILE.sha256` (sha256sum format, as `build` writes it) when it exists.
fn check_checksum_file(
    path: &Path,
    findings: &mut Findings,
    progress: &Progress,
) -> Option<PathBuf> {
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".sha256");
    let sidecar = PathBuf::from(sidecar);
    let shown = sidecar
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = match read_checksum_file(&sidecar) {
        Ok(Some(text)) => text,
        Ok(None) => return None,
        Err(e) => {
            findings.error(Check::ArchiveDigest, Some(&shown), e);
            return Some(sidecar);
        }
    };
    let expected = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let actual = (|| -> std::io::Result<String> {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let stage = progress.stage("checksum", file.metadata()?.len());
        let mut hasher = Algorithm::Sha256.hasher();
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            done += n as u64;
            stage.set(done);
        }
        stage.finish();
        Ok(hasher.finish_hex())
    })();
    match actual {
        Ok(actual) if actual == expected => {}
        Ok(actual) => findings.error(
            Check::ArchiveDigest,
            Some(&shown),
            format!(
                "the OVA's SHA-256 is {actual}, but {shown} says `{}`",
                text.trim()
            ),
        ),
        Err(e) => findings.error(
            Check::ArchiveDigest,
            Some(&shown),
            format!("cannot hash the OVA: {e}"),
        ),
    }
    Some(sidecar)
}

/// The text of a `sha256sum` file (`None` when there is none); a few hundred bytes at most
/// are expected, so only a little more is ever read.
fn read_checksum_file(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    const LIMIT: u64 = 4096;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let mut text = String::new();
    file.take(LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it as text: {e}"))?;
    if text.len() as u64 > LIMIT {
        return Err(format!(
            "too large for a checksum file (over {LIMIT} bytes); expected one line \
             `<sha256>  NAME.ova`"
        ));
    }
    Ok(Some(text))
}

fn single_with_suffix(names: &[String], suffix: &str, findings: &mut Findings) -> Option<String> {
    let found: Vec<&String> = names.iter().filter(|n| n.ends_with(suffix)).collect();
    if found.len() > 1 {
        findings.error(
            Check::DuplicateMember,
            None,
            format!(
                "{} files end in `{suffix}` ({}); a package has at most one",
                found.len(),
                found
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    found.first().map(|s| s.to_string())
}

fn check_manifest(
    package: &Package,
    mf: &str,
    manifest: &Manifest,
    content: &[String],
    report: &mut Report,
    findings: &mut Findings,
    progress: &Progress,
) {
    let total: u64 = manifest
        .entries
        .iter()
        .filter_map(|e| package.size(&e.name))
        .sum();
    let stage = progress.stage("verifying", total);
    let mut done = 0u64;
    for entry in &manifest.entries {
        if entry.algorithm == Algorithm::Sha1 {
            findings.warn(
                Check::WeakDigest,
                Some(mf),
                format!(
                    "`{}` is listed with SHA1, which vCenter 6.5 and later refuse; use SHA256",
                    entry.name
                ),
            );
        }
        if !content.contains(&entry.name) {
            let why = if package.size(&entry.name).is_some() {
                "is the manifest or certificate itself, which a manifest must not list"
            } else {
                "is not in the package"
            };
            findings.error(
                Check::ManifestMissingFile,
                Some(mf),
                format!("the manifest lists `{}`, which {why}", entry.name),
            );
            continue;
        }
        let size = package.size(&entry.name).unwrap_or(0);
        match package.hash(&entry.name, entry.algorithm, &|n| stage.set(done + n)) {
            Ok(actual) => {
                let ok = actual == entry.digest;
                if !ok {
                    findings.error(
                        Check::ManifestDigest,
                        Some(&entry.name),
                        format!(
                            "the content does not match the manifest: {} is {actual}, the \
                             manifest says {}; the file was changed or damaged after the \
                             manifest was written",
                            entry.algorithm, entry.digest
                        ),
                    );
                }
                report.files.push(FileReport {
                    name: entry.name.clone(),
                    size,
                    digest: Some(format!("{}:{actual}", entry.algorithm)),
                    digest_ok: Some(ok),
                });
            }
            Err(e) => findings.error(
                Check::ManifestDigest,
                Some(&entry.name),
                format!("cannot read it to check its digest: {e}"),
            ),
        }
        done += size;
    }
    stage.finish();
    for name in content {
        if manifest.get(name).is_none() {
            findings.error(
                Check::NotInManifest,
                Some(name),
                format!("the file is not listed in the manifest `{mf}`"),
            );
            report.files.push(FileReport {
                name: name.clone(),
                size: package.size(name).unwrap_or(0),
                digest: None,
                digest_ok: None,
            });
        }
    }
}

fn check_signature(
    package: &Package,
    cert: &str,
    mf: &str,
    manifest_bytes: &[u8],
    report: &mut Report,
    findings: &mut Findings,
) -> Option<CertFile> {
    let bytes = match package.read_small(cert) {
        Ok(b) => b,
        Err(e) => {
            findings.error(
                Check::SignatureMalformed,
                Some(cert),
                format!("cannot read: {e}"),
            );
            return None;
        }
    };
    let parsed = match CertFile::parse(&bytes) {
        Ok(c) => c,
        Err(e) => {
            findings.error(Check::SignatureMalformed, Some(cert), e.to_string());
            return None;
        }
    };
    check_self_signature(&parsed, cert, findings);
    let result = parsed.check(mf, manifest_bytes);
    if let Err(problem) = &result {
        let check = match problem {
            SignatureProblem::Malformed(_) | SignatureProblem::WrongManifest { .. } => {
                Check::SignatureMalformed
            }
            SignatureProblem::CertificateMismatch { .. } => Check::CertificateMismatch,
            SignatureProblem::BadSignature { .. } => Check::BadSignature,
            SignatureProblem::ManifestChanged { .. } => Check::ManifestChanged,
        };
        findings.error(check, Some(cert), problem.to_string());
    }
    check_validity_period(&parsed, cert, findings);
    report.signer = Some(SignerReport {
        subject: parsed.subject(),
        sha256_fingerprint: parsed.fingerprint(),
        not_after: parsed.cert.not_after().to_string(),
        signature_ok: result.is_ok(),
    });
    Some(parsed)
}

/// A self-signed certificate can be checked on its own: a damaged one no longer verifies
/// with its own key. (Others are checked by the deployer against its trusted roots.)
fn check_self_signature(parsed: &CertFile, cert: &str, findings: &mut Findings) {
    let cert_x = &parsed.cert;
    let self_issued = cert_x
        .issuer_name()
        .try_cmp(cert_x.subject_name())
        .is_ok_and(|o| o.is_eq());
    if !self_issued {
        return;
    }
    let intact = cert_x
        .public_key()
        .and_then(|k| cert_x.verify(&k))
        .unwrap_or(false);
    if !intact {
        findings.error(
            Check::SignatureMalformed,
            Some(cert),
            format!(
                "the enclosed self-signed certificate ({}) is damaged: its own signature \
                 does not verify",
                parsed.subject()
            ),
        );
    }
}

/// An expired or not-yet-valid signing certificate is a warning: vSphere still imports.
fn check_validity_period(parsed: &CertFile, cert: &str, findings: &mut Findings) {
    let cert_x = &parsed.cert;
    let Ok(now) = openssl::asn1::Asn1Time::days_from_now(0) else {
        return;
    };
    if cert_x.not_after() < now {
        findings.warn(
            Check::CertificateValidity,
            Some(cert),
            format!(
                "the certificate ({}) expired on {}; vSphere shows the package as signed \
                 with an expired certificate",
                parsed.subject(),
                cert_x.not_after()
            ),
        );
    } else if cert_x.not_before() > now {
        findings.warn(
            Check::CertificateValidity,
            Some(cert),
            format!(
                "the certificate ({}) is not valid before {}",
                parsed.subject(),
                cert_x.not_before()
            ),
        );
    }
}
