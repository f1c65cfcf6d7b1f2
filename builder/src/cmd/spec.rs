//! `ova-builder spec`: deployment options, networks and properties of an OVA.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::spec::spec_of;

const EXAMPLES: &str = "\
Examples:
  # What a deployer must fill in, as a table
  ova-builder spec dist/haproxy-v1.2.3.ova

  # govc's options JSON: edit the values and networks, then deploy with govc
  ova-builder spec --json dist/haproxy-v1.2.3.ova > options.json
  govc import.ova -options options.json dist/haproxy-v1.2.3.ova

  # The same for the Frontend Network configuration
  ova-builder spec --json --deployment frontend dist/haproxy-v1.2.3.ova

  # Everything known about every property, as JSON
  ova-builder spec --full dist/haproxy-v1.2.3.ova";

/// Options of `ova-builder spec`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// An OVA, or an OVF descriptor.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the options JSON of `govc import.spec` instead of a table.
    #[arg(long, conflicts_with = "full")]
    pub json: bool,
    /// Print every detail (types, qualifiers, labels, descriptions, categories) as JSON.
    #[arg(long)]
    pub full: bool,
    /// Deployment option to put in the govc JSON (default: the package's default).
    #[arg(long, value_name = "ID", requires = "json")]
    pub deployment: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = spec_of(&args.file)?;
    if args.full {
        println!("{}", serde_json::to_string_pretty(&spec)?);
    } else if args.json {
        let options = spec.govc_options(args.deployment.as_deref())?;
        println!("{}", serde_json::to_string_pretty(&options)?);
    } else {
        print!("{}", spec.render_table());
    }
    Ok(ExitCode::SUCCESS)
}
