//! `ova-builder verify`: check an OVA (or an OVF with its files) before publishing it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::progress::Progress;
use crate::verify::{Fingerprint, Severity, SignerPins, TrustAnchors, VerifyOptions, verify_with};

const EXAMPLES: &str = "\
Examples:
  ova-builder verify dist/haproxy-v1.2.3.ova
  ova-builder verify --json dist/haproxy-v1.2.3.ova > verify.json
  ova-builder verify exported/haproxy.ovf        # the .mf, .cert and disks beside it

  # Only accept the release signer: its CA, and/or its certificate's fingerprint
  ova-builder verify --trust release-ca.pem dist/haproxy-v1.2.3.ova
  ova-builder verify --signer-sha256 \"$(openssl x509 -noout -fingerprint -sha256 -in release.pem)\" \\
      dist/haproxy-v1.2.3.ova

Checks: ustar/GNU headers only (no PAX), bare regular members (no absolute paths, `..`, `./`,
links, devices, duplicates, nothing but zeros after the end-of-archive, no member hidden after a
lone zero block); the .ovf first, .mf and .cert right after it (or both last), then
the References files in order; every manifest digest; the signature and certificate; every
References file present with its ovf:size; disk capacities (not 0) against the VMDK headers; every
configuration, network, disk and file reference defined; FILE.sha256 beside an OVA, when
present; with --trust / --signer-sha256, the signer. The signer's subject and SHA-256
fingerprint are always printed: without a pin, anyone can re-sign with a certificate of the
same subject. Memory stays bounded whatever the input. Exit status 0 when no error was found, 1 otherwise; warnings do not fail.";

/// Options of `ova-builder verify`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The OVA, or an OVF descriptor with its files beside it.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// Require the signing certificate to chain to a CA in this PEM file (OpenSSL's
    /// verification, at the current time).
    #[arg(long, value_name = "CA.pem")]
    pub trust: Option<PathBuf>,
    /// Require the signing certificate to have this SHA-256 fingerprint, as `openssl x509
    /// -noout -fingerprint -sha256` prints it (colons optional).
    #[arg(long, value_name = "FINGERPRINT")]
    pub signer_sha256: Option<Fingerprint>,
    /// Inflate every grain of each stream-optimized disk and check its tables (the default;
    /// see docs/benchmarks/vmdk.md for its cost).
    #[arg(long, overrides_with = "no_deep")]
    pub deep: bool,
    /// Skip the deep check of stream-optimized disks.
    #[arg(long, overrides_with = "deep")]
    pub no_deep: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let trust = match &args.trust {
        Some(path) => Some(TrustAnchors::load(path).context("--trust")?),
        None => None,
    };
    let options = VerifyOptions {
        pins: SignerPins {
            trust,
            sha256: args.signer_sha256,
        },
        deep: !args.no_deep,
    };
    let report = verify_with(&args.file, &options, &Progress::auto())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for problem in &report.problems {
            eprintln!("{problem}");
        }
        let errors = report
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        let warnings = report.problems.len() - errors;
        if report.ok {
            let signed = match &report.signer {
                Some(s) => format!(
                    ", signed by {} (SHA-256 fingerprint {})",
                    s.subject, s.sha256_fingerprint
                ),
                None => ", unsigned".to_string(),
            };
            println!(
                "OK: {} ({} files checked{signed}{})",
                args.file.display(),
                report.files.len(),
                if warnings > 0 {
                    format!(", {warnings} warning(s)")
                } else {
                    String::new()
                }
            );
        } else {
            if let Some(s) = &report.signer {
                eprintln!(
                    "signer: {} (SHA-256 fingerprint {})",
                    s.subject, s.sha256_fingerprint
                );
            }
            println!(
                "FAILED: {}: {errors} error(s), {warnings} warning(s)",
                args.file.display()
            );
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
