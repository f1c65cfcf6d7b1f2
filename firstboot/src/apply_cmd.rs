//! `haproxy-firstboot apply`.

use std::process::ExitCode;

/// Options of `haproxy-firstboot apply`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("haproxy-firstboot apply: not available in this build yet");
    ExitCode::from(2)
}
