//! `ova-builder build`: definition + disk → signed, reproducible OVA.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::atomic::{Cancelled, Interrupt};
use crate::manifest::Algorithm;
use crate::package::{self, BuildError, BuildRequest};
use crate::progress::Progress;
use crate::sign::Signer;
use crate::source_date::source_date;

const EXAMPLES: &str = "\
Examples:
  # The HAProxy appliance OVA from a built disk (any of raw, qcow2, VMDK)
  ova-builder build --disk disk.qcow2 --version 1.2.3 --out dist
  #   -> dist/haproxy-v1.2.3.ova and dist/haproxy-v1.2.3.ova.sha256

  # Signed, reproducible, with a machine-readable summary for CI
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) ova-builder build --disk disk.raw \\
      --version 1.2.3 --sign-key release.key --sign-cert release.pem --out dist --json

  # Another appliance definition, another output name
  ova-builder build --definition my-appliance.toml --disk my.vmdk --name my-appliance --out dist

The archive holds NAME.ovf first, then NAME.mf (SHA256(file)= hex lines) and NAME.cert (when
signing), then the VMDK; ustar headers, owner 0/0, mode 0644. Every timestamp (tar mtimes, the
build-date property) is --source-date-epoch when given, else SOURCE_DATE_EPOCH when set (whole
seconds since 1970; anything else is an error), else the disk's modification time (the newest
of the inputs): two builds of the same inputs are byte-identical. Outputs appear only when complete; an error or
Ctrl-C leaves nothing behind.";

/// Options of `ova-builder build`.
// These doc comments are also the --help text, where `<VERSION>` is meant literally: escaping
// it for rustdoc would change --help, so rustdoc may read it as an unclosed HTML tag here.
#[allow(rustdoc::invalid_html_tags)]
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The appliance disk: raw, qcow2 or VMDK (detected from the content).
    #[arg(long, value_name = "DISK")]
    pub disk: PathBuf,
    /// Appliance definition (TOML). Default: the built-in HAProxy appliance.
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
    /// Release version. Default: the definition's product.version.
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Base name of the outputs. Default: <appliance id>-v<version>, e.g. haproxy-v1.2.3.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Where the base image came from, recorded in a provenance property.
    #[arg(long, value_name = "SOURCE")]
    pub base_image: Option<String>,
    /// Digest of the manifest lines. vCenter 6.5+ refuses sha1.
    #[arg(long, value_enum, default_value_t = Algorithm::Sha256)]
    pub manifest: Algorithm,
    /// PEM private key to sign the manifest with (unencrypted; keep it mode 0600).
    #[arg(long, value_name = "KEY.pem", requires = "sign_cert")]
    pub sign_key: Option<PathBuf>,
    /// PEM certificate of the signing key, enclosed in NAME.cert.
    #[arg(long, value_name = "CERT.pem", requires = "sign_key")]
    pub sign_cert: Option<PathBuf>,
    /// Seconds since the epoch for every timestamp. Default: $SOURCE_DATE_EPOCH, else the
    /// disk's modification time (the newest modification time among the inputs).
    #[arg(long, value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,
    /// Deflate level of the VMDK, 1-12 (default chosen by benchmark).
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,
    /// Compression threads (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Print a JSON summary (paths, sizes, digests, duration) on standard output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Everything that can be checked is checked before any work is done.
    let signer = match (&args.sign_key, &args.sign_cert) {
        (Some(key), Some(cert)) => Some(Signer::load(key, cert)?),
        _ => None,
    };
    let definition = crate::appliance::definition::load_definition(args.definition.as_deref())?;
    let source_date_epoch = source_date(args.source_date_epoch, &[&args.disk])?.seconds;
    let interrupt = Interrupt::on_signals().context("cannot install the Ctrl-C handler")?;
    let request = BuildRequest {
        disk: args.disk.clone(),
        definition: &definition,
        out_dir: args.out.clone(),
        name: args.name.clone(),
        version: args.version.clone(),
        base_image: args.base_image.clone(),
        full_version: None,
        source_date_epoch,
        manifest: args.manifest,
        signer: signer.as_ref(),
        level: args.level,
        threads: args.threads,
        progress: Progress::auto(),
        interrupt,
    };
    let report = match package::build(&request) {
        Ok(report) => report,
        Err(BuildError::Cancelled(Cancelled)) => {
            eprintln!("ova-builder build: cancelled; no output was written");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {} ({} bytes, {} members{}) and {} in {:.1} s",
            report.ova.display(),
            report.ova_bytes,
            report.members.len(),
            report
                .signed_by
                .as_deref()
                .map(|s| format!(", signed by {s}"))
                .unwrap_or_default(),
            report.sha256_file.display(),
            report.duration_seconds
        );
        println!("sha256 {}", report.ova_sha256);
    }
    Ok(ExitCode::SUCCESS)
}
