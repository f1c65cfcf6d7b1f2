//! The options `check` and `apply` share: where the OVF environment comes from and which
//! deployment configuration applies. One definition, flattened into both commands.

use std::path::PathBuf;

use firstboot::LoadOptions;
use firstboot::config::Deployment;
use firstboot::deployment::SysRoot;
use firstboot::source::Transport;

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
