//! `haproxy-firstboot check`: find and validate the OVF environment, print the effective
//! configuration or every problem. Changes nothing on disk.

use std::process::ExitCode;

use firstboot::load;
use firstboot::source::{self, STATUS_KEY};

/// Validate the OVF environment and print the effective configuration (secrets masked, LB
/// ranges as CIDRs) or every problem. Changes nothing on disk.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit status: 0 valid; 1 invalid configuration (every problem is listed); 2 no environment found,
unreadable, or not well-formed XML.

Examples:
  haproxy-firstboot check                       # in the appliance: guestinfo, then the CD-ROM
  haproxy-firstboot check --env ovf-env.xml     # a saved environment document
  haproxy-firstboot check --env ovf-env.xml --deployment frontend
  vmtoolsd --cmd 'info-get guestinfo.ovfEnv' > env.xml && haproxy-firstboot check --env env.xml")]
pub struct Args {
    #[command(flatten)]
    source: crate::env_args::EnvArgs,
    /// Publish the outcome as guestinfo.appliance.firstboot.status (no-op outside VMware).
    #[arg(long)]
    publish_status: bool,
}

pub fn run(args: Args) -> ExitCode {
    let options = args.source.load_options();
    match load(&options) {
        Ok(loaded) => {
            println!(
                "OVF environment: {} (sha256 {})",
                loaded.source, loaded.digest
            );
            println!(
                "Deployment: {} ({})",
                loaded.config.deployment().id(),
                loaded.deployment_reason
            );
            println!();
            print!("{}", firstboot::summary::text(loaded.facts, &loaded.config));
            if !loaded.warnings.is_empty() {
                println!();
                println!("Warnings:");
                for w in &loaded.warnings {
                    println!("  - {w}");
                }
            }
            if args.publish_status {
                publish(&format!(
                    "valid configuration ({} deployment)",
                    loaded.config.deployment().id()
                ));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            crate::env_args::report_load_error(&e);
            if args.publish_status {
                publish(&e.status_line());
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn publish(status: &str) {
    match source::publish_guestinfo(STATUS_KEY, status) {
        Ok(source::Published::Set) => {}
        Ok(source::Published::NotVmware) => {
            eprintln!("haproxy-firstboot: not a VMware VM: status not published to guestinfo");
        }
        Err(e) => eprintln!("haproxy-firstboot: cannot publish the status: {e}"),
    }
}
