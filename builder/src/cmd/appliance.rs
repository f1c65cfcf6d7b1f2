//! `ova-builder appliance`.

use std::process::ExitCode;

/// Options of `ova-builder appliance`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ova-builder appliance` is not available in this build yet")
}
