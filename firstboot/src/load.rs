//! The shared front half of `check` and `apply`: find the OVF environment, parse it, decide
//! the deployment, validate.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::config::{Deployment, ValidatedConfig};
use crate::definition::{self, ApplianceFacts};
use crate::deployment::{self, Reason, SysRoot};
use crate::env::{self, EnvError, Environment};
use crate::source::{self, FindError, SourceError, Transport};
use crate::validate::{self, Finding};

/// What to load and how.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Where the environment comes from (`Auto`: guestinfo, then the CD-ROM).
    pub transport: Transport,
    /// `--deployment`: overrides the NIC-based decision.
    pub deployment: Option<Deployment>,
    /// Where the frontend NIC is looked for (`/sys`; a fake tree in tests).
    pub sys_root: SysRoot,
}

impl LoadOptions {
    /// Read `--env FILE` (or the transports when `None`).
    pub fn with_env_file(env_file: Option<PathBuf>) -> Self {
        LoadOptions {
            transport: env_file.map_or(Transport::Auto, Transport::File),
            ..Self::default()
        }
    }
}

/// A validated configuration and where it came from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: ValidatedConfig,
    /// Non-fatal findings (DHCP management address, ignored frontend values, …).
    pub warnings: Vec<Finding>,
    /// The environment document as received.
    pub raw: Vec<u8>,
    /// SHA-256 of `raw`, lowercase hex (e.g. to tell whether the environment changed).
    pub digest: String,
    /// Where it came from, e.g. `guestinfo.ovfEnv via vmware-rpctool`.
    pub source: String,
    /// The parsed document (adapters, platform, every property).
    pub environment: Environment,
    /// Why this deployment was chosen.
    pub deployment_reason: Reason,
    /// The appliance definition's facts the configuration was validated against (labels for
    /// the summary).
    pub facts: &'static ApplianceFacts,
}

/// Why no configuration could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No transport had an environment (exit status 2).
    #[error("no OVF environment found; tried: {}", .tried.join("; "))]
    NoEnvironment { tried: Vec<String> },
    /// The environment exists but could not be read (exit status 2).
    #[error("cannot read the OVF environment: {0}")]
    Unreadable(#[from] SourceError),
    /// Not well-formed XML, or not an OVF environment (exit status 2).
    #[error("the OVF environment from {source_name} is unusable: {error}")]
    Malformed {
        source_name: String,
        error: EnvError,
    },
    /// Well-formed, but the properties break rules (exit status 1).
    #[error("the OVF environment from {source_name} is invalid:\n{invalid}")]
    Invalid {
        source_name: String,
        invalid: validate::Invalid,
        deployment: Deployment,
        deployment_reason: Reason,
    },
}

impl LoadError {
    /// Exit status of `check` (and `apply`): 1 invalid configuration, 2 no usable document.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Invalid { .. } => 1,
            _ => 2,
        }
    }

    /// One line for `guestinfo.appliance.firstboot.status` (no secrets: messages never contain
    /// password values, and key material is never echoed).
    pub fn status_line(&self) -> String {
        match self {
            LoadError::Invalid { invalid, .. } => {
                let first = invalid
                    .problems
                    .first()
                    .map(|p| crate::quote::one_line(&p.to_string(), FIRST_PROBLEM_CHARS))
                    .unwrap_or_default();
                let more = invalid.problems.len().saturating_sub(1);
                let tail = if more > 0 {
                    format!(" (and {more} more; see the console or journal)")
                } else {
                    String::new()
                };
                one_line(&format!("invalid configuration: {first}{tail}"))
            }
            other => one_line(&format!("error: {other}")),
        }
    }
}

/// Characters of the first problem in the status line (room left for the count of the others).
const FIRST_PROBLEM_CHARS: usize = 150;

/// Collapse line breaks and cut the message so it fits one short guestinfo value.
pub fn one_line(s: &str) -> String {
    crate::quote::one_line(s, crate::quote::STATUS_CHARS)
}

/// Find, parse and validate the OVF environment.
pub fn load(options: &LoadOptions) -> Result<Loaded, LoadError> {
    let fetched = source::find(&options.transport).map_err(|e| match e {
        FindError::NotFound { tried } => LoadError::NoEnvironment { tried },
        FindError::Failed(e) => LoadError::Unreadable(e),
    })?;
    load_bytes(fetched.bytes, fetched.description, options)
}

/// Parse and validate a document already in hand, against the built-in appliance definition
/// (the one place loading picks it).
pub fn load_bytes(
    raw: Vec<u8>,
    source_name: String,
    options: &LoadOptions,
) -> Result<Loaded, LoadError> {
    let environment = env::parse(&raw).map_err(|error| LoadError::Malformed {
        source_name: source_name.clone(),
        error,
    })?;
    let facts = definition::appliance();
    let (deployment, deployment_reason) =
        deployment::decide(options.deployment, &options.sys_root, &environment, facts);
    match validate::validate(&environment, deployment, facts) {
        Ok(valid) => Ok(Loaded {
            config: valid.config,
            warnings: valid.warnings,
            digest: hex::encode(Sha256::digest(&raw)),
            raw,
            source: source_name,
            environment,
            deployment_reason,
            facts,
        }),
        Err(invalid) => Err(LoadError::Invalid {
            source_name,
            invalid,
            deployment,
            deployment_reason,
        }),
    }
}
