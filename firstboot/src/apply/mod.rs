//! Validated configuration → files in a target root, atomically and idempotently.
//!
//! [`apply`]: recover an interrupted run ([`txn::recover`]), read what an earlier run left
//! (TLS material, password hashes, `/etc/shadow`, the Data Plane API's part of haproxy.cfg,
//! SSH host keys), decide what to keep, render, and commit only the files whose content or
//! mode differ — with the status record — in one crash-safe transaction ([`txn::commit`]).
//! Applying the same environment again changes nothing.
//!
//! Rules beyond the rendering: a CA an earlier environment supplied is not kept once the
//! environment stops supplying it (a new one is generated, as on a first boot without one);
//! secret files first boot keeps (`/etc/shadow`, SSH host keys) never stay wider than 0640 /
//! 0600 and are never widened. The caller holds the root's lock ([`lock_root`]).

mod lock;
mod sshkeys;
pub mod txn;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Addressing, ValidatedConfig};
use crate::crypt;
use crate::render::{self, Inputs, RenderedFile};
use crate::tls::{self, ExistingTls, TlsMaterial};

pub use lock::{LOCK, LockError, RootLock, lock_root};
pub use txn::{Io, Recovery, TxnError};

/// The status record: what was applied from which environment. No secrets: the environment
/// is a SHA-256 over its values with every secret replaced by its SHA-512 crypt under a salt
/// kept in the record (mode 0600).
pub const STATUS: &str = "var/lib/haproxy-firstboot/status.json";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Txn(#[from] TxnError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Crypt(#[from] crypt::CryptError),
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating SSH host keys: {0}")]
    SshKeys(String),
}

/// Where and how to apply.
pub struct ApplyOptions {
    /// The target root (`/` on the appliance).
    pub root: PathBuf,
    /// Fail the file operation after this many (crash tests only).
    pub fault_after: Option<u64>,
    /// Told what recovery found before anything else happens, so it is known even when the
    /// rest of the run fails.
    pub on_recovery: fn(&Recovery),
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Report {
    /// SHA-256 fingerprint of the applied environment (as in the status record).
    pub environment_sha256: String,
    /// Files written or removed, relative to the root; empty when nothing changed.
    pub changed: Vec<String>,
    /// Those of `changed` that were removed.
    pub removed: Vec<String>,
    /// What recovery found from an earlier, interrupted run.
    pub recovery: Recovery,
    /// The CA certificate (chain) now in place, to publish.
    pub ca_cert_pem: String,
    /// Notes for the console (e.g. root password left alone).
    pub notes: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub format: u32,
    pub environment_sha256: String,
    pub deployment: String,
    /// Salt of the secrets' fingerprints (random, per appliance).
    pub fingerprint_salt: String,
    /// SHA-256 of the root password hash first boot last wrote to /etc/shadow, if it did.
    pub root_shadow_hash_sha256: Option<String>,
    /// Every file the configuration consists of (relative to the root).
    pub files: Vec<String>,
    /// SHA-256 of `ca.crt` when it is the CA the environment supplied (absent when the
    /// appliance generated it): once the environment stops supplying it, it is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplied_ca_sha256: Option<String>,
}

fn read_opt(root: &Path, rel: &str) -> Result<Option<String>, ApplyError> {
    let path = root.join(rel);
    match fs::read(&path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ApplyError::Read { path, source }),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Reads the status record of an earlier run, if any and readable.
pub fn read_status(root: &Path) -> Option<Status> {
    let text = fs::read(root.join(STATUS)).ok()?;
    serde_json::from_slice(&text).ok()
}

fn today_days() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

/// The environment's fingerprint: every value in a fixed order, secrets as salted crypt hashes.
fn fingerprint(cfg: &ValidatedConfig, salt: &[u8]) -> Result<String, ApplyError> {
    let addressing = |a: &Addressing| match a {
        Addressing::Dhcp => "dhcp".to_string(),
        Addressing::Static { address, gateway } => format!("{address} via {gateway:?}"),
    };
    let mut text = String::new();
    let mut add = |k: &str, v: String| {
        text.push_str(k);
        text.push('=');
        text.push_str(&v);
        text.push('\n');
    };
    add("deployment", cfg.deployment().id().to_string());
    add("hostname", cfg.hostname().to_string());
    add("nameservers", format!("{:?}", cfg.nameservers()));
    add("management", addressing(cfg.management()));
    add("workload", addressing(cfg.workload()));
    add(
        "frontend",
        cfg.frontend().map(addressing).unwrap_or_default(),
    );
    add(
        "additional_workload_networks",
        format!("{:?}", cfg.additional_workload_networks()),
    );
    add("lb_ranges", format!("{:?}", cfg.lb_ranges()));
    add("dataplane_port", cfg.dataplane_port().to_string());
    add("haproxy_user", cfg.haproxy_user().to_string());
    add("permit_root_login", cfg.permit_root_login().to_string());
    add(
        "haproxy_password",
        crypt::sha512_crypt_with_salt(cfg.haproxy_password().expose(), salt)?,
    );
    add(
        "root_password",
        crypt::sha512_crypt_with_salt(cfg.root_password().expose(), salt)?,
    );
    match cfg.ca() {
        Some(ca) => {
            add("ca_cert_sha256", sha256_hex(ca.cert_chain_pem().as_bytes()));
            add(
                "ca_key",
                crypt::sha512_crypt_with_salt(ca.key_pkcs8_pem().expose(), salt)?,
            );
        }
        None => add("ca", "generated".to_string()),
    }
    Ok(sha256_hex(text.as_bytes()))
}

/// Does the file at `path` already have exactly `contents` and `mode`?
fn unchanged(path: &Path, contents: &[u8], mode: u32) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_file()
        && meta.permissions().mode() & 0o7777 == mode
        && fs::read(path).is_ok_and(|c| c == contents)
}

/// Files with secrets first boot keeps but may not rewrite, with the widest mode they may have.
fn mode_capped_files() -> Vec<(String, u32)> {
    let mut capped = vec![(render::SHADOW.to_string(), 0o640)];
    capped.extend(sshkeys::host_key_files());
    capped
}

/// Never widens the mode of an existing file with secrets: a rendered one keeps the stricter
/// of its mode and the file's (e.g. a 0000 `/etc/shadow`); one not rendered but wider than
/// allowed is returned, same content, with its mode narrowed.
fn narrow_modes(root: &Path, files: &mut [RenderedFile]) -> Result<Vec<RenderedFile>, ApplyError> {
    let mut narrowed = Vec::new();
    for (rel, widest) in mode_capped_files() {
        let path = root.join(&rel);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        match files.iter_mut().find(|f| f.path == rel) {
            Some(f) => f.mode &= mode,
            None if mode & !widest != 0 => {
                let contents = fs::read(&path).map_err(|source| ApplyError::Read {
                    path: path.clone(),
                    source,
                })?;
                narrowed.push(RenderedFile {
                    path: rel,
                    contents,
                    mode: mode & widest,
                });
            }
            None => {}
        }
    }
    Ok(narrowed)
}

/// Is the CA on disk the one an earlier environment supplied (per the status record)?
fn was_supplied_ca(previous: Option<&Status>, existing: &ExistingTls) -> bool {
    match (
        previous.and_then(|p| p.supplied_ca_sha256.as_deref()),
        &existing.ca_cert_pem,
    ) {
        (Some(supplied), Some(on_disk)) => supplied == sha256_hex(on_disk.as_bytes()),
        _ => false,
    }
}

/// Recovers an interrupted run, then applies `cfg` to `opts.root`, whose lock the caller holds
/// (see [`lock_root`]).
pub fn apply(
    cfg: &ValidatedConfig,
    opts: &ApplyOptions,
    _lock: &RootLock,
) -> Result<Report, ApplyError> {
    let root = opts.root.as_path();
    let mut io = Io::new(opts.fault_after);
    let recovery = txn::recover(root, &mut io)?;
    (opts.on_recovery)(&recovery);
    let previous = read_status(root);
    let mut notes = Vec::new();

    // Secrets' fingerprint salt: kept from the earlier run so the fingerprint is stable.
    let salt_hex = match &previous {
        Some(s) if hex::decode(&s.fingerprint_salt).is_ok_and(|b| b.len() == 12) => {
            s.fingerprint_salt.clone()
        }
        _ => {
            let mut b = [0u8; 12];
            openssl::rand::rand_bytes(&mut b).map_err(crypt::CryptError::from)?;
            hex::encode(b)
        }
    };
    let salt = hex::decode(&salt_hex).unwrap_or_default();
    let environment_sha256 = fingerprint(cfg, &salt)?;

    // TLS.
    let mut existing_tls = ExistingTls {
        ca_cert_pem: read_opt(root, render::CA_CERT)?,
        ca_key_pem: read_opt(root, render::CA_KEY)?,
        server_cert_pem: read_opt(root, render::SERVER_CERT)?,
        server_key_pem: read_opt(root, render::SERVER_KEY)?,
    };
    if cfg.ca().is_none() && was_supplied_ca(previous.as_ref(), &existing_tls) {
        // The environment is the source of truth: a CA it no longer supplies is not kept.
        existing_tls.ca_cert_pem = None;
        existing_tls.ca_key_pem = None;
    }
    let tls: TlsMaterial = tls::resolve(cfg, &existing_tls)?;
    let supplied_ca_sha256 =
        (tls.ca_origin == tls::CaOrigin::Supplied).then(|| sha256_hex(tls.ca_cert_pem.as_bytes()));

    // The Data Plane API user's hash: kept while it still matches the password.
    let existing_haproxy = read_opt(root, render::HAPROXY_CFG)?;
    let haproxy_hash = match existing_haproxy
        .as_deref()
        .and_then(|t| render::userlist_hash(t, cfg.haproxy_user()))
    {
        Some(h) if h.starts_with("$6$") && crypt::verify(cfg.haproxy_password().expose(), &h) => h,
        _ => crypt::sha512_crypt(cfg.haproxy_password().expose())?,
    };

    // Root's password is the initial one: set when first boot never set it, or when it is
    // still the one first boot set and the environment now gives another; a password
    // changed in the OS since is left alone.
    let existing_shadow = read_opt(root, "etc/shadow")?;
    let current_root_hash = existing_shadow
        .as_deref()
        .and_then(render::shadow_root_hash)
        .map(str::to_string);
    let ours = match (&previous, &current_root_hash) {
        (None, _) => true,
        (Some(st), Some(cur)) => {
            st.root_shadow_hash_sha256.as_deref() == Some(&sha256_hex(cur.as_bytes()))
        }
        (Some(st), None) => st.root_shadow_hash_sha256.is_none(),
    };
    let already_set = current_root_hash
        .as_deref()
        .is_some_and(|h| crypt::verify(cfg.root_password().expose(), h));
    let new_root_hash = if ours && !already_set {
        Some(crypt::sha512_crypt(cfg.root_password().expose())?)
    } else {
        if !ours && !already_set {
            notes.push(
                "root password: changed in the OS since first boot set it; left as it is".into(),
            );
        }
        None
    };
    let root_shadow_hash_sha256 = match (&new_root_hash, &current_root_hash) {
        (Some(h), _) => Some(sha256_hex(h.as_bytes())),
        (None, Some(cur)) if ours => Some(sha256_hex(cur.as_bytes())),
        _ => previous
            .as_ref()
            .and_then(|p| p.root_shadow_hash_sha256.clone()),
    };

    let day = today_days();
    let inputs = Inputs {
        tls: &tls,
        haproxy_password_hash: &haproxy_hash,
        root_password: new_root_hash.as_deref().map(|h| (h, day)),
        existing_shadow: existing_shadow.as_deref(),
        existing_haproxy_cfg: existing_haproxy.as_deref(),
    };
    let rendered = render::render(cfg, &inputs)?;
    let mut files = rendered.files;
    // The status lists the configuration's files; SSH host keys are generated once, not listed.
    let mut listed: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    files.extend(sshkeys::missing_host_keys(root).map_err(ApplyError::SshKeys)?);
    if new_root_hash.is_none() && existing_shadow.is_some() {
        listed.push("etc/shadow".into());
    }
    listed.sort();
    let status = Status {
        format: 1,
        environment_sha256: environment_sha256.clone(),
        deployment: cfg.deployment().id().to_string(),
        fingerprint_salt: salt_hex,
        root_shadow_hash_sha256,
        files: listed,
        supplied_ca_sha256,
    };
    let status_text = serde_json::to_string_pretty(&status)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .unwrap_or_default();
    files.push(RenderedFile::text(STATUS, status_text, 0o600));
    let narrowed = narrow_modes(root, &mut files)?;
    files.extend(narrowed);

    let mut changes = Vec::new();
    let mut changed = Vec::new();
    for f in &files {
        if !unchanged(&root.join(&f.path), &f.contents, f.mode) {
            changed.push(f.path.clone());
            changes.push(txn::Change::Write(f));
        }
    }
    let mut removed = Vec::new();
    for r in &rendered.remove {
        if root.join(r).symlink_metadata().is_ok() {
            changed.push(r.clone());
            removed.push(r.clone());
            changes.push(txn::Change::Remove(r.clone()));
        }
    }
    if !changes.is_empty() {
        txn::commit(root, &changes, &mut io)?;
    }
    Ok(Report {
        environment_sha256,
        changed,
        removed,
        recovery,
        ca_cert_pem: tls.ca_cert_pem,
        notes,
    })
}

#[cfg(test)]
mod tests;
