//! `ova-builder`: thin command-line glue over the `ovf`, `image` and `builder` libraries.

use clap::{Parser, Subcommand};

use builder::cmd;

/// Build, verify and inspect vSphere appliance OVAs.
#[derive(Parser)]
#[command(name = "ova-builder", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the OVF descriptor for an appliance definition.
    Descriptor(cmd::descriptor::Args),
    /// Convert a disk (raw, VMDK, qcow2) into a streamOptimized VMDK.
    Convert(cmd::convert::Args),
    /// Build an OVA from a definition and a disk.
    Build(cmd::build::Args),
    /// Check an OVA (or an OVF with its files) before publishing it.
    Verify(cmd::verify::Args),
    /// Print what a deployer needs: deployment options, networks, properties.
    Spec(cmd::spec::Args),
    /// Build the whole HAProxy appliance (root filesystem, bootable disk, OVA) without a hypervisor.
    Appliance(cmd::appliance::Args),
    /// Internal: mmdebstrap's extract hook during `appliance` (dpkg's path filters applied to
    /// the extracted essential packages).
    #[command(hide = true)]
    ApplianceFilterPaths(cmd::appliance::FilterPathsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Descriptor(args) => cmd::descriptor::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::Build(args) => cmd::build::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Spec(args) => cmd::spec::run(args),
        Command::Appliance(args) => cmd::appliance::run(args),
        Command::ApplianceFilterPaths(args) => cmd::appliance::filter_paths(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line. The libraries' typed errors already name their
/// source in their own message, so a cause whose text is already there is not repeated.
fn error_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
