//! `haproxy-firstboot`: thin glue over the `firstboot` library.

use clap::{Parser, Subcommand};

mod apply_cmd;
mod check_cmd;
mod env_args;

/// Read the vApp properties (OVF environment), validate them, and apply the appliance's
/// configuration.
#[derive(Parser)]
#[command(name = "haproxy-firstboot", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the environment and print the effective configuration or every problem.
    Check(check_cmd::Args),
    /// Validate, render and atomically apply the configuration.
    Apply(apply_cmd::Args),
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Check(args) => check_cmd::run(args),
        Command::Apply(args) => apply_cmd::run(args),
    }
}
