//! `ova-builder descriptor`.

use std::process::ExitCode;

/// Options of `ova-builder descriptor`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ova-builder descriptor` is not available in this build yet")
}
