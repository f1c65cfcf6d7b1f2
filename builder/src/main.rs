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
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
