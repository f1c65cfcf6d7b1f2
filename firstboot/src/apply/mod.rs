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
pub use txn::{OpCounter, Recovery, TxnError};

/// The status record (mode 0600): what was applied (see [`Status`]). No secrets: the
/// configuration is identified by its fingerprint, in which every secret is a salted crypt hash.
pub const STATUS: &str = "var/lib/haproxy-firstboot/status.json";

/// The [`Status::format`] this version writes. Format 1 named `config_fingerprint`
/// `environment_sha256`; records of either format are read.
pub const STATUS_FORMAT: u32 = 2;

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
    /// Fail the file operation after this many: only in builds for the crash tests (`cfg(test)`
    /// or the `fault-injection` feature); the shipped binary has no such hook.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fault_after: Option<u64>,
    /// Told what recovery found before anything else happens, so it is known even when the
    /// rest of the run fails.
    pub on_recovery: fn(&Recovery),
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Report {
    /// The applied configuration's fingerprint (`fingerprint()` in this module; as in the
    /// status record).
    pub config_fingerprint: String,
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
    /// [`STATUS_FORMAT`] when written by this version.
    pub format: u32,
    /// The applied configuration's fingerprint (`fingerprint()` in this module; what it covers
    /// is in docs/firstboot-files.md).
    #[serde(alias = "environment_sha256")]
    pub config_fingerprint: String,
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

/// The validated configuration's fingerprint: SHA-256 (hex) of one `key=value` line per
/// setting, in a fixed order, with every secret as its SHA-512 crypt under `salt` and a supplied
/// CA certificate as its SHA-256 (the list is in docs/firstboot-files.md). Identifies what was
/// applied without revealing a secret; equal environments give equal fingerprints on one
/// appliance (the salt is kept in the status record).
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
    // A single appliance adds nothing here: its fingerprint is the one earlier releases gave.
    if let Some(ha) = cfg.ha() {
        add(
            "ha",
            format!(
                "node {} peer {} vip {} router_id {} role {}",
                ha.node(),
                ha.peer(),
                ha.vip(),
                ha.router_id(),
                ha.role().id()
            ),
        );
        add(
            "ha_secret",
            crypt::sha512_crypt_with_salt(ha.secret().expose(), salt)?,
        );
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
    let mut ops = op_counter(opts);
    let recovery = txn::recover(root, &mut ops)?;
    (opts.on_recovery)(&recovery);
    let previous = read_status(root);
    let salt = FingerprintSalt::kept_or_new(previous.as_ref())?;
    let config_fingerprint = fingerprint(cfg, &salt.bytes)?;
    let tls = resolve_tls(cfg, root, previous.as_ref())?;
    let existing_haproxy = read_opt(root, render::HAPROXY_CFG)?;
    let haproxy_hash = dataplane_password_hash(cfg, existing_haproxy.as_deref())?;
    let existing_shadow = read_opt(root, render::SHADOW)?;
    let root_password = root_password(cfg, previous.as_ref(), existing_shadow.as_deref())?;

    let inputs = Inputs {
        tls: &tls,
        haproxy_password_hash: &haproxy_hash,
        root_password: root_password.new_hash.as_deref().map(|h| (h, today_days())),
        existing_shadow: existing_shadow.as_deref(),
        existing_haproxy_cfg: existing_haproxy.as_deref(),
    };
    let rendered = render::render(cfg, &inputs)?;
    let shadow_kept = root_password.new_hash.is_none() && existing_shadow.is_some();
    let listed = listed_files(&rendered.files, shadow_kept);
    let status = Status {
        format: STATUS_FORMAT,
        config_fingerprint: config_fingerprint.clone(),
        deployment: cfg.deployment().id().to_string(),
        fingerprint_salt: salt.hex,
        root_shadow_hash_sha256: root_password.shadow_hash_sha256,
        files: listed,
        supplied_ca_sha256: (tls.ca_origin == tls::CaOrigin::Supplied)
            .then(|| sha256_hex(tls.ca_cert_pem.as_bytes())),
    };
    let files = files_to_write(root, rendered.files, &status)?;
    let (changed, removed) = commit_differences(root, &files, &rendered.remove, &mut ops)?;
    Ok(Report {
        config_fingerprint,
        changed,
        removed,
        recovery,
        ca_cert_pem: tls.ca_cert_pem,
        notes: root_password.note.into_iter().collect(),
    })
}

/// The files the status record lists: every rendered one, and `/etc/shadow` also when it is
/// kept as it is (then not rendered). SSH host keys are generated once, not listed.
fn listed_files(rendered: &[RenderedFile], shadow_kept: bool) -> Vec<String> {
    let mut listed: Vec<String> = rendered.iter().map(|f| f.path.clone()).collect();
    if shadow_kept {
        listed.push(render::SHADOW.into());
    }
    listed.sort();
    listed
}

#[cfg(any(test, feature = "fault-injection"))]
fn op_counter(opts: &ApplyOptions) -> OpCounter {
    OpCounter::failing_after(opts.fault_after)
}

#[cfg(not(any(test, feature = "fault-injection")))]
fn op_counter(_opts: &ApplyOptions) -> OpCounter {
    OpCounter::new()
}

/// The salt of the secrets' fingerprints, as in the status record (hex) and as bytes.
struct FingerprintSalt {
    hex: String,
    bytes: Vec<u8>,
}

impl FingerprintSalt {
    /// The earlier run's salt, so the fingerprint stays stable; a new random one without a
    /// usable earlier one.
    fn kept_or_new(previous: Option<&Status>) -> Result<Self, ApplyError> {
        let hex = match previous {
            Some(s) if hex::decode(&s.fingerprint_salt).is_ok_and(|b| b.len() == 12) => {
                s.fingerprint_salt.clone()
            }
            _ => {
                let mut b = [0u8; 12];
                openssl::rand::rand_bytes(&mut b).map_err(crypt::CryptError::from)?;
                hex::encode(b)
            }
        };
        let bytes = hex::decode(&hex).unwrap_or_default();
        Ok(FingerprintSalt { hex, bytes })
    }
}

/// The CA and server certificate to use: those on disk where still valid for `cfg`, except a
/// CA an earlier environment supplied and `cfg` no longer does.
fn resolve_tls(
    cfg: &ValidatedConfig,
    root: &Path,
    previous: Option<&Status>,
) -> Result<TlsMaterial, ApplyError> {
    let mut existing_tls = ExistingTls {
        ca_cert_pem: read_opt(root, render::CA_CERT)?,
        ca_key_pem: read_opt(root, render::CA_KEY)?,
        server_cert_pem: read_opt(root, render::SERVER_CERT)?,
        server_key_pem: read_opt(root, render::SERVER_KEY)?,
    };
    if cfg.ca().is_none() && was_supplied_ca(previous, &existing_tls) {
        // The environment is the source of truth: a CA it no longer supplies is not kept.
        existing_tls.ca_cert_pem = None;
        existing_tls.ca_key_pem = None;
    }
    Ok(tls::resolve(cfg, &existing_tls)?)
}

/// The Data Plane API user's hash: the one in haproxy.cfg while it still matches the password
/// (so an unchanged environment rewrites nothing), else a new one.
fn dataplane_password_hash(
    cfg: &ValidatedConfig,
    existing_haproxy_cfg: Option<&str>,
) -> Result<String, ApplyError> {
    match existing_haproxy_cfg.and_then(|t| render::userlist_hash(t, cfg.haproxy_user())) {
        Some(h) if h.starts_with("$6$") && crypt::verify(cfg.haproxy_password().expose(), &h) => {
            Ok(h)
        }
        _ => Ok(crypt::sha512_crypt(cfg.haproxy_password().expose())?),
    }
}

/// What to do with root's password.
struct RootPassword {
    /// The hash to write to /etc/shadow, if any.
    new_hash: Option<String>,
    /// For the status record: SHA-256 of the root hash first boot last wrote.
    shadow_hash_sha256: Option<String>,
    /// For the console, when the password is left alone although the environment differs.
    note: Option<String>,
}

/// Root's password is the initial one: set when first boot never set it, or when it is still
/// the one first boot set and the environment now gives another; a password changed in the OS
/// since is left alone.
fn root_password(
    cfg: &ValidatedConfig,
    previous: Option<&Status>,
    existing_shadow: Option<&str>,
) -> Result<RootPassword, ApplyError> {
    let current_hash = existing_shadow.and_then(render::shadow_root_hash);
    let ours = match (previous, current_hash) {
        (None, _) => true,
        (Some(st), Some(cur)) => {
            st.root_shadow_hash_sha256.as_deref() == Some(&sha256_hex(cur.as_bytes()))
        }
        (Some(st), None) => st.root_shadow_hash_sha256.is_none(),
    };
    let already_set = current_hash.is_some_and(|h| crypt::verify(cfg.root_password().expose(), h));
    let mut note = None;
    let new_hash = if ours && !already_set {
        Some(crypt::sha512_crypt(cfg.root_password().expose())?)
    } else {
        if !ours && !already_set {
            note = Some(
                "root password: changed in the OS since first boot set it; left as it is".into(),
            );
        }
        None
    };
    let shadow_hash_sha256 = match (&new_hash, current_hash) {
        (Some(h), _) => Some(sha256_hex(h.as_bytes())),
        (None, Some(cur)) if ours => Some(sha256_hex(cur.as_bytes())),
        _ => previous.and_then(|p| p.root_shadow_hash_sha256.clone()),
    };
    Ok(RootPassword {
        new_hash,
        shadow_hash_sha256,
        note,
    })
}

/// Everything the run may write: the rendered files, SSH host keys still missing, the status
/// record, and secret files whose mode is narrowed.
fn files_to_write(
    root: &Path,
    mut files: Vec<RenderedFile>,
    status: &Status,
) -> Result<Vec<RenderedFile>, ApplyError> {
    // Generated once and not listed in the status (see `listed_files`).
    files.extend(sshkeys::missing_host_keys(root).map_err(ApplyError::SshKeys)?);
    let status_text = serde_json::to_string_pretty(status)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .unwrap_or_default();
    files.push(RenderedFile::text(STATUS, status_text, 0o600));
    let narrowed = narrow_modes(root, &mut files)?;
    files.extend(narrowed);
    Ok(files)
}

/// Commits, in one transaction, the files whose content or mode differ and the removal of
/// those of `remove` that exist; returns what changed and, of that, what was removed.
fn commit_differences(
    root: &Path,
    files: &[RenderedFile],
    remove: &[String],
    ops: &mut OpCounter,
) -> Result<(Vec<String>, Vec<String>), ApplyError> {
    let mut changes = Vec::new();
    let mut changed = Vec::new();
    for f in files {
        if !unchanged(&root.join(&f.path), &f.contents, f.mode) {
            changed.push(f.path.clone());
            changes.push(txn::Change::Write(f));
        }
    }
    let mut removed = Vec::new();
    for r in remove {
        if root.join(r).symlink_metadata().is_ok() {
            changed.push(r.clone());
            removed.push(r.clone());
            changes.push(txn::Change::Remove(r.clone()));
        }
    }
    if !changes.is_empty() {
        txn::commit(root, &changes, ops)?;
    }
    Ok((changed, removed))
}

#[cfg(test)]
mod tests;
