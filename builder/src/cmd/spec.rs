//! `ova-builder spec`.

use std::process::ExitCode;

/// Options of `ova-builder spec`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ova-builder spec` is not available in this build yet")
}
