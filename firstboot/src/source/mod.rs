//! Where the OVF environment comes from. Every transport is a [`EnvSource`]; nothing
//! downstream knows which one ran.
//!
//! Order when no transport is chosen ([`Transport::Auto`]):
//! 1. VMware guestinfo `guestinfo.ovfEnv` (transport `com.vmware.guestInfo`, the appliance's
//!    declared transport): through the VMware backdoor when the CPU is VMware's, else through
//!    `vmware-rpctool` / `vmtoolsd --cmd`;
//! 2. the OVF `iso` transport: `ovf-env.xml` on an ISO 9660 CD-ROM (label `OVF ENV` first),
//!    mounted read-only and unmounted again.
//!
//! `--env FILE` ([`Transport::File`]) reads a file instead, for tests and debugging.

use std::path::PathBuf;

pub mod file;
pub mod guestinfo;
pub mod iso;

#[cfg(target_arch = "x86_64")]
mod backdoor;

pub use guestinfo::{Published, publish_guestinfo};

/// The guestinfo key the outcome of first boot is published in
/// (`guestinfo.appliance.firstboot.status`).
pub const STATUS_KEY: &str = "appliance.firstboot.status";
/// The guestinfo key the CA certificate (base64 of the PEM) is published in, for the
/// Supervisor's Workload Management wizard (`guestinfo.dataplaneapi.cacert`).
pub const CACERT_KEY: &str = "dataplaneapi.cacert";

/// Why a transport could not deliver the environment (it exists but failed; "not present" is
/// `Ok(None)` from [`EnvSource::fetch`]).
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct SourceError {
    pub source_name: String,
    pub message: String,
}

impl SourceError {
    pub fn new(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        SourceError {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}

/// One way the OVF environment can arrive.
pub trait EnvSource {
    /// Human-readable name, e.g. `guestinfo.ovfEnv (VMware backdoor)` or `file /tmp/env.xml`.
    fn describe(&self) -> String;
    /// The document's bytes; `Ok(None)` when this transport has no environment.
    fn fetch(&mut self) -> Result<Option<Fetched>, SourceError>;
}

/// A document and where exactly it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// e.g. `guestinfo.ovfEnv via vmware-rpctool`, `ovf-env.xml on /dev/sr0 (OVF ENV)`.
    pub description: String,
}

/// Which transport(s) to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Guestinfo, then the CD-ROM.
    #[default]
    Auto,
    Guestinfo,
    Iso,
    File(PathBuf),
}

/// The sources to try, in order, for a transport choice.
pub fn sources(transport: &Transport) -> Vec<Box<dyn EnvSource>> {
    match transport {
        Transport::Auto => vec![
            Box::new(guestinfo::Guestinfo::new()),
            Box::new(iso::Iso::new()),
        ],
        Transport::Guestinfo => vec![Box::new(guestinfo::Guestinfo::new())],
        Transport::Iso => vec![Box::new(iso::Iso::new())],
        Transport::File(path) => vec![Box::new(file::File::new(path.clone()))],
    }
}

/// Outcome of trying every source.
#[derive(Debug)]
pub enum FindError {
    /// No source had an environment; the list says what was tried and what each said.
    NotFound { tried: Vec<String> },
    /// A source failed in a way that must not be skipped (the chosen file is unreadable).
    Failed(SourceError),
}

/// Try the sources in order; the first document found wins. A source that fails is reported
/// in the `tried` list and the next one is tried, except for an explicit `--env FILE`.
pub fn find(transport: &Transport) -> Result<Fetched, FindError> {
    let mut tried = Vec::new();
    for mut source in sources(transport) {
        match source.fetch() {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => tried.push(format!("{}: no environment", source.describe())),
            Err(e) if matches!(transport, Transport::File(_)) => return Err(FindError::Failed(e)),
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(FindError::NotFound { tried })
}
