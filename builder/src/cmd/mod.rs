//! One module per `ova-builder` subcommand. Each exposes `Args` (clap) and
//! `run(Args) -> anyhow::Result<ExitCode>`; the binary only dispatches.

pub mod appliance;
pub mod build;
pub mod convert;
pub mod descriptor;
pub mod spec;
pub mod verify;
