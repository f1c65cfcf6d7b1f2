//! `ova-builder build`.

use std::process::ExitCode;

/// Options of `ova-builder build`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ova-builder build` is not available in this build yet")
}
