//! `haproxy-firstboot`: thin glue over the `firstboot` library.

fn main() -> std::process::ExitCode {
    eprintln!("haproxy-firstboot: commands `check` and `apply` are not available in this build yet");
    std::process::ExitCode::from(2)
}
