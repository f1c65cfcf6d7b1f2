//! `ova-builder verify`.

use std::process::ExitCode;

/// Options of `ova-builder verify`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ova-builder verify` is not available in this build yet")
}
