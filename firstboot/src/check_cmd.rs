//! `haproxy-firstboot check`: find and validate the OVF environment, print the effective
//! configuration or every problem. Changes nothing on disk.

use std::path::PathBuf;
use std::process::ExitCode;

use firstboot::config::Deployment;
use firstboot::deployment::SysRoot;
use firstboot::source::{self, STATUS_KEY, Transport};
use firstboot::{LoadError, LoadOptions, load};

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
    /// Read the OVF environment from this file instead of guestinfo or the CD-ROM.
    #[arg(long, value_name = "FILE", conflicts_with = "transport")]
    env: Option<PathBuf>,
    /// Which transport to read: `auto` tries guestinfo, then the ISO CD-ROM.
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    transport: TransportArg,
    /// The deployment configuration; default: decided by the frontend NIC's presence
    /// (PCI slot 224), else by the environment's adapter count, else `default`.
    #[arg(long, value_enum)]
    deployment: Option<DeploymentArg>,
    /// Publish the outcome as guestinfo.appliance.firstboot.status (no-op outside VMware).
    #[arg(long)]
    publish_status: bool,
    /// Root of sysfs, where the NICs are looked up (for tests).
    #[arg(long, value_name = "DIR", default_value = "/sys", hide = true)]
    sys_root: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum TransportArg {
    Auto,
    Guestinfo,
    Iso,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DeploymentArg {
    Default,
    Frontend,
}

pub fn run(args: Args) -> ExitCode {
    let transport = match (args.env, args.transport) {
        (Some(path), _) => Transport::File(path),
        (None, TransportArg::Auto) => Transport::Auto,
        (None, TransportArg::Guestinfo) => Transport::Guestinfo,
        (None, TransportArg::Iso) => Transport::Iso,
    };
    let options = LoadOptions {
        transport,
        deployment: args.deployment.map(|d| match d {
            DeploymentArg::Default => Deployment::Default,
            DeploymentArg::Frontend => Deployment::Frontend,
        }),
        sys_root: SysRoot(args.sys_root),
    };
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
            print!("{}", firstboot::summary::text(&loaded.config));
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
            report(&e);
            if args.publish_status {
                publish(&e.status_line());
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Every problem (and warning) to stderr: the unit sends it to the journal and the console.
fn report(e: &LoadError) {
    match e {
        LoadError::Invalid {
            source_name,
            invalid,
            deployment,
            deployment_reason,
        } => {
            eprintln!(
                "haproxy-firstboot: the OVF environment ({source_name}; {} deployment: \
                 {deployment_reason}) has {invalid}",
                deployment.id()
            );
            if !invalid.warnings.is_empty() {
                eprintln!("Warnings:");
                for w in &invalid.warnings {
                    eprintln!("  - {w}");
                }
            }
        }
        other => eprintln!("haproxy-firstboot: {other}"),
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
