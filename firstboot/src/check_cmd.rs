//! `haproxy-firstboot check`.

use std::process::ExitCode;

/// Options of `haproxy-firstboot check`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("haproxy-firstboot check: not available in this build yet");
    ExitCode::from(2)
}
