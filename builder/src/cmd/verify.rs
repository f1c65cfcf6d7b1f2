//! `ova-builder verify`: check an OVA (or an OVF with its files) before publishing it.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::progress::Progress;
use crate::verify::{Severity, verify_with};

const EXAMPLES: &str = "\
Examples:
  ova-builder verify dist/haproxy-v1.2.3.ova
  ova-builder verify --json dist/haproxy-v1.2.3.ova > verify.json
  ova-builder verify exported/haproxy.ovf        # the .mf, .cert and disks beside it

Checks: ustar/GNU headers only (no PAX), bare regular members (no absolute paths, `..`, `./`,
links, devices, duplicates); the .ovf first, .mf and .cert right after it (or both last), then
the References files in order; every manifest digest; the signature and certificate; every
References file present with its ovf:size; disk capacities against the VMDK headers; every
configuration, network, disk and file reference defined; FILE.sha256 beside an OVA, when
present. Exit status 0 when no error was found, 1 otherwise; warnings do not fail.";

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
    /// Inflate every grain of each stream-optimized disk and check its tables (the default;
    /// about as fast as the manifest digest, see docs/benchmarks/vmdk.md).
    #[arg(long, overrides_with = "no_deep")]
    pub deep: bool,
    /// Skip the deep check of stream-optimized disks.
    #[arg(long, overrides_with = "deep")]
    pub no_deep: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = verify_with(&args.file, &Progress::auto(), !args.no_deep)?;
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
                Some(s) => format!(", signed by {}", s.subject),
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
