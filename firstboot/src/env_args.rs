//! The options `check` and `apply` share: where the OVF environment comes from and which
//! deployment configuration applies (one definition, flattened into both commands), and how a
//! failed load is reported.

use std::path::PathBuf;

use firstboot::config::Deployment;
use firstboot::deployment::SysRoot;
use firstboot::source::Transport;
use firstboot::{LoadError, LoadOptions};

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
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

impl EnvArgs {
    pub fn load_options(self) -> LoadOptions {
        let transport = match (self.env, self.transport) {
            (Some(path), _) => Transport::File(path),
            (None, TransportArg::Auto) => Transport::Auto,
            (None, TransportArg::Guestinfo) => Transport::Guestinfo,
            (None, TransportArg::Iso) => Transport::Iso,
        };
        LoadOptions {
            transport,
            deployment: self.deployment.map(|d| match d {
                DeploymentArg::Default => Deployment::Default,
                DeploymentArg::Frontend => Deployment::Frontend,
            }),
            sys_root: SysRoot(self.sys_root),
        }
    }
}

/// Every problem (and warning) of a failed load to stderr: the unit sends it to the journal and
/// the console, where the administrator looks.
pub fn report_load_error(e: &LoadError) {
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
