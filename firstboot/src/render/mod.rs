//! Validated configuration → the appliance's files (path, contents, mode). No I/O.
//!
//! Everything random or kept from an earlier run (TLS material, password hashes, the current
//! `/etc/shadow` and the Data Plane API's sections of `haproxy.cfg`) comes in through
//! [`Inputs`], so the same inputs always give the same files (the golden tests rely on it).

mod firewall;
pub mod ha;
mod haproxy;
pub mod network;
mod system;

use std::fmt;

use crate::config::{Deployment, ValidatedConfig};
use crate::tls::TlsMaterial;

pub use firewall::NFTABLES_CONF;
pub use haproxy::{HAPROXY_CFG, userlist_hash};
pub use system::{SHADOW, shadow_root_hash};

/// One file to write, relative to the target root (no leading `/`).
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub contents: Vec<u8>,
    /// Permission bits (e.g. `0o600` for private keys).
    pub mode: u32,
}

impl RenderedFile {
    /// A text file; a missing final newline is added (askama drops the template's last one).
    pub fn text(path: impl Into<String>, contents: impl Into<String>, mode: u32) -> Self {
        let mut contents = contents.into();
        if !contents.is_empty() && !contents.ends_with('\n') {
            contents.push('\n');
        }
        RenderedFile {
            path: path.into(),
            contents: contents.into_bytes(),
            mode,
        }
    }
}

/// Paths and sizes only: contents may be secret.
impl fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:o}, {} bytes)",
            self.path,
            self.mode,
            self.contents.len()
        )
    }
}

/// What the renderer needs besides the configuration.
pub struct Inputs<'a> {
    pub tls: &'a TlsMaterial,
    /// SHA-512 crypt of the Data Plane API user's password.
    pub haproxy_password_hash: &'a str,
    /// A new root password to put into `/etc/shadow`: (SHA-512 crypt hash, day of the change
    /// in days since 1970-01-01). `None` leaves `/etc/shadow` alone.
    pub root_password: Option<(&'a str, u64)>,
    /// The current `/etc/shadow`, if any (other entries are kept as they are).
    pub existing_shadow: Option<&'a str>,
    /// The current `haproxy.cfg`, if any: its sections written by the Data Plane API are kept.
    pub existing_haproxy_cfg: Option<&'a str>,
}

/// The files to write and the files to remove (outputs of another deployment configuration or
/// of an earlier release).
#[derive(Debug)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    pub remove: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("rendering a template failed: {0}")]
    Template(#[from] askama::Error),
}

pub const CA_CERT: &str = "etc/haproxy/ca.crt";
pub const CA_KEY: &str = "etc/haproxy/ca.key";
pub const SERVER_CERT: &str = "etc/haproxy/server.crt";
pub const SERVER_KEY: &str = "etc/haproxy/server.key";

/// Renders every file of the appliance's configuration.
pub fn render(cfg: &ValidatedConfig, inputs: &Inputs<'_>) -> Result<Rendered, RenderError> {
    let mut files = Vec::new();
    network::render(cfg, &mut files)?;
    system::render(cfg, inputs, &mut files)?;
    let tls = inputs.tls;
    for (path, pem, mode) in [
        (CA_CERT, &tls.ca_cert_pem, 0o644),
        (CA_KEY, &tls.ca_key_pem, 0o600),
        (SERVER_CERT, &tls.server_cert_pem, 0o644),
        (SERVER_KEY, &tls.server_key_pem, 0o600),
    ] {
        files.push(RenderedFile::text(path, pem.clone(), mode));
    }
    haproxy::render(cfg, inputs, &mut files)?;
    firewall::render(cfg, &mut files)?;
    ha::render(cfg, &mut files)?;
    // The environment file the unit of earlier releases read: left behind, it would look like
    // the Data Plane API's settings but no longer be them.
    let mut remove = vec![haproxy::OBSOLETE_DATAPLANEAPI_CFG.to_string()];
    if cfg.deployment() == Deployment::Default {
        remove.push(network::network_path(network::Nic::Frontend));
    }
    if cfg.ha().is_none() {
        // A single appliance (again): no keepalived, no pair's secret.
        remove.extend(ha::HA_FILES.iter().map(|f| (*f).to_string()));
    }
    Ok(Rendered { files, remove })
}

#[cfg(test)]
pub(crate) mod fixtures;
