//! `ova-builder convert`.

use std::process::ExitCode;

/// Options of `ova-builder convert`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ova-builder convert` is not available in this build yet")
}
