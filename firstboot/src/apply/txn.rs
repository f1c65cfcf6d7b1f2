//! A crash-safe multi-file transaction in a target root.
//!
//! 1. every new file is staged next to its target (`.NAME.hfb-new`, same directory, so the
//!    same filesystem), with its mode and the target's owner, and fsynced; the directories too;
//! 2. the journal (`var/lib/haproxy-firstboot/transaction.json`: the renames and removals to
//!    do) is written to a temporary, fsynced and renamed into place — **the commit point**;
//! 3. each staged file is renamed over its target, removed files are unlinked, directories
//!    fsynced;
//! 4. the journal is removed.
//!
//! [`recover`] runs before anything else at every start: with a journal it completes steps 3–4
//! (roll forward: every rename in the journal is idempotent), without one it deletes stray
//! staged files (roll back: nothing was visible yet). So after a crash at any point, the next
//! run — which the unit orders before every consumer of these files — first restores either
//! the complete old or the complete new configuration.
//!
//! A journal that cannot be trusted — unparsable (empty, truncated), or naming a path that is
//! not a plain file name in one of [`MANAGED_DIRS`] inside the root — is never acted on: the
//! staged files (none provably complete) are deleted, the journal removed, and the run goes on
//! to write every file whose content differs, which repairs a half-done transaction.
//!
//! Every file operation goes through [`OpCounter`]; in builds for the crash tests it can inject
//! a fault after N operations, and the crash tests walk N over every point of a transaction.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::render::RenderedFile;

pub const STATE_DIR: &str = "var/lib/haproxy-firstboot";
pub const JOURNAL: &str = "var/lib/haproxy-firstboot/transaction.json";
const STAGED_SUFFIX: &str = ".hfb-new";

/// Directories that can hold staged files (every parent of a file first boot writes).
pub const MANAGED_DIRS: &[&str] = &[
    "etc",
    "etc/haproxy",
    "etc/keepalived",
    "etc/ssh",
    "etc/ssh/sshd_config.d",
    "etc/systemd/network",
    "etc/sysctl.d",
    "etc/systemd/system",
    "etc/systemd/system/keepalived.service.d",
    "etc/systemd/system/dataplaneapi.service.d",
    "etc/vmware",
    STATE_DIR,
];

#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Only in builds for the crash tests (see [`OpCounter`]).
    #[cfg(any(test, feature = "fault-injection"))]
    #[error("fault injected after {0} file operations")]
    InjectedFault(u64),
    #[error("the transaction journal {} is unreadable: {detail}", path.display())]
    Journal { path: PathBuf, detail: String },
    #[error("refusing to write {path:?}: not a file in a directory first boot manages ({detail})")]
    OutsideManagedDirs { path: String, detail: String },
}

/// Runs the transaction's file operations one by one, naming each in its error, and counts
/// them. In builds for the crash tests (`cfg(test)` or the `fault-injection` feature) it can
/// fail the operation after the first N, as a crash there would; other builds have no such
/// hook.
#[derive(Debug, Default)]
pub struct OpCounter {
    done: u64,
    #[cfg(any(test, feature = "fault-injection"))]
    fail_after: Option<u64>,
}

impl OpCounter {
    /// A counter that never injects a fault.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter that fails the operation after the first `fail_after` (none when `None`).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn failing_after(fail_after: Option<u64>) -> Self {
        OpCounter {
            done: 0,
            fail_after,
        }
    }

    /// Number of operations performed so far.
    pub fn count(&self) -> u64 {
        self.done
    }

    fn run<T>(
        &mut self,
        op: &'static str,
        path: &Path,
        f: impl FnOnce() -> io::Result<T>,
    ) -> Result<T, TxnError> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.fail_after.is_some_and(|n| self.done >= n) {
            return Err(TxnError::InjectedFault(self.done));
        }
        self.done += 1;
        f().map_err(|source| TxnError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
#[serde(tag = "do", rename_all = "snake_case")]
enum Entry {
    Rename { staged: String, target: String },
    Remove { target: String },
}

#[derive(Serialize, Deserialize, Debug)]
struct Journal {
    entries: Vec<Entry>,
}

/// One change to make.
pub enum Change<'a> {
    Write(&'a RenderedFile),
    Remove(String),
}

fn staged_name(target: &str) -> String {
    match target.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}{STAGED_SUFFIX}"),
        None => format!(".{target}{STAGED_SUFFIX}"),
    }
}

fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn fsync_dir(ops: &mut OpCounter, dir: &Path) -> Result<(), TxnError> {
    ops.run("fsync directory", dir, || File::open(dir)?.sync_all())
}

/// Writes `contents` to `path` (created with `mode`, owned like `owner_of` if that exists)
/// and fsyncs it.
fn write_file(
    ops: &mut OpCounter,
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner_of: &Path,
) -> Result<(), TxnError> {
    let mut file = ops.run("create", path, || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
    })?;
    ops.run("write", path, || file.write_all(contents))?;
    // The umask may have narrowed the mode given at creation; set it exactly.
    ops.run("chmod", path, || {
        file.set_permissions(fs::Permissions::from_mode(mode))
    })?;
    if let Ok(meta) = fs::metadata(owner_of) {
        ops.run("chown", path, || {
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))
        })?;
    }
    ops.run("fsync", path, || file.sync_all())
}

/// Runs one transaction: stage, commit (journal), rename, clean up.
pub fn commit(root: &Path, changes: &[Change<'_>], ops: &mut OpCounter) -> Result<(), TxnError> {
    for change in changes {
        let target = match change {
            Change::Write(f) => &f.path,
            Change::Remove(t) => t,
        };
        confined(root, target).map_err(|detail| TxnError::OutsideManagedDirs {
            path: target.clone(),
            detail,
        })?;
    }
    let journal = stage(root, changes, ops)?;
    write_journal(root, &journal, ops)?;
    // Committed: from here on, a crash is completed by `recover`.
    finish(root, &journal, ops)
}

/// Step 1: writes every new file next to its target and fsyncs them and their directories;
/// returns the journal of the renames and removals to do.
fn stage(root: &Path, changes: &[Change<'_>], ops: &mut OpCounter) -> Result<Journal, TxnError> {
    let mut entries = Vec::new();
    let mut dirs = BTreeSet::new();
    for change in changes {
        match change {
            Change::Write(f) => {
                let dir = root.join(parent_of(&f.path));
                if !dir.is_dir() {
                    ops.run("create directory", &dir, || fs::create_dir_all(&dir))?;
                }
                let staged = staged_name(&f.path);
                write_file(
                    ops,
                    &root.join(&staged),
                    &f.contents,
                    f.mode,
                    &root.join(&f.path),
                )?;
                dirs.insert(parent_of(&f.path).to_string());
                entries.push(Entry::Rename {
                    staged,
                    target: f.path.clone(),
                });
            }
            Change::Remove(target) => {
                dirs.insert(parent_of(target).to_string());
                entries.push(Entry::Remove {
                    target: target.clone(),
                });
            }
        }
    }
    for d in &dirs {
        fsync_dir(ops, &root.join(d))?;
    }
    Ok(Journal { entries })
}

/// Step 2, the commit point: the journal is written to a temporary, fsynced and renamed into
/// place.
fn write_journal(root: &Path, journal: &Journal, ops: &mut OpCounter) -> Result<(), TxnError> {
    let state = root.join(STATE_DIR);
    if !state.is_dir() {
        ops.run("create directory", &state, || fs::create_dir_all(&state))?;
    }
    let text = serde_json::to_vec_pretty(journal).map_err(|e| TxnError::Journal {
        path: root.join(JOURNAL),
        detail: e.to_string(),
    })?;
    let tmp = root.join(staged_name(JOURNAL));
    write_file(ops, &tmp, &text, 0o600, &tmp)?;
    let jpath = root.join(JOURNAL);
    ops.run("rename", &jpath, || fs::rename(&tmp, &jpath))?;
    fsync_dir(ops, &state)
}

/// Steps 3 and 4: renames and removes what the journal says, then removes the journal.
fn finish(root: &Path, journal: &Journal, ops: &mut OpCounter) -> Result<(), TxnError> {
    let mut dirs = BTreeSet::new();
    for e in &journal.entries {
        match e {
            Entry::Rename { staged, target } => {
                let (s, t) = (root.join(staged), root.join(target));
                if s.exists() {
                    ops.run("rename", &t, || fs::rename(&s, &t))?;
                }
                dirs.insert(parent_of(target).to_string());
            }
            Entry::Remove { target } => {
                let t = root.join(target);
                if t.symlink_metadata().is_ok() {
                    ops.run("remove", &t, || fs::remove_file(&t))?;
                }
                dirs.insert(parent_of(target).to_string());
            }
        }
    }
    for d in &dirs {
        fsync_dir(ops, &root.join(d))?;
    }
    let jpath = root.join(JOURNAL);
    ops.run("remove", &jpath, || fs::remove_file(&jpath))?;
    fsync_dir(ops, &root.join(STATE_DIR))
}

/// Is `rel` a plain file name in one of [`MANAGED_DIRS`], whose directory resolves inside
/// `root`? `Err` says why not.
fn confined(root: &Path, rel: &str) -> Result<(), String> {
    let path = Path::new(rel);
    if !path.components().all(|c| matches!(c, Component::Normal(_))) || rel.is_empty() {
        return Err("not a relative path of plain names".into());
    }
    let dir = parent_of(rel);
    if !MANAGED_DIRS.contains(&dir) {
        return Err(format!("{dir:?} is not a managed directory"));
    }
    // A managed directory (or one above it) may be a symlink: it must still lead into the root.
    match (fs::canonicalize(root.join(dir)), fs::canonicalize(root)) {
        (Ok(real_dir), Ok(real_root)) if real_dir.starts_with(&real_root) => Ok(()),
        (Ok(real_dir), _) => Err(format!("{dir:?} leads to {}", real_dir.display())),
        (Err(e), _) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        (Err(e), _) => Err(format!("resolving {dir:?}: {e}")),
    }
}

/// Parses the journal and checks every path in it; `Err` says what is wrong.
fn parse_journal(root: &Path, text: &[u8]) -> Result<Journal, String> {
    let journal: Journal = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    for e in &journal.entries {
        let target = match e {
            Entry::Rename { staged, target } => {
                if *staged != staged_name(target) {
                    return Err(format!("{staged:?} is not the staged name of {target:?}"));
                }
                target
            }
            Entry::Remove { target } => target,
        };
        confined(root, target).map_err(|why| format!("{target:?}: {why}"))?;
    }
    Ok(journal)
}

/// What [`recover`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    Clean,
    /// A committed transaction was completed.
    RolledForward,
    /// An uncommitted transaction's staged files were deleted.
    RolledBack,
    /// The journal was damaged (the reason): it was removed and the staged files deleted.
    DamagedJournal(String),
}

/// Completes or rolls back an interrupted transaction (see the module documentation).
pub fn recover(root: &Path, ops: &mut OpCounter) -> Result<Recovery, TxnError> {
    let jpath = root.join(JOURNAL);
    if jpath.symlink_metadata().is_ok() {
        let text = ops.run("read", &jpath, || fs::read(&jpath))?;
        match parse_journal(root, &text) {
            Ok(journal) => {
                finish(root, &journal, ops)?;
                return Ok(Recovery::RolledForward);
            }
            Err(why) => {
                delete_staged(root, ops)?;
                ops.run("remove", &jpath, || fs::remove_file(&jpath))?;
                fsync_dir(ops, &root.join(STATE_DIR))?;
                return Ok(Recovery::DamagedJournal(why));
            }
        }
    }
    Ok(if delete_staged(root, ops)? {
        Recovery::RolledBack
    } else {
        Recovery::Clean
    })
}

/// Deletes every staged file in the managed directories; were there any?
fn delete_staged(root: &Path, ops: &mut OpCounter) -> Result<bool, TxnError> {
    let mut found = false;
    for d in MANAGED_DIRS {
        let dir = root.join(d);
        let Ok(list) = fs::read_dir(&dir) else {
            continue;
        };
        let mut stray = Vec::new();
        for entry in list.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(STAGED_SUFFIX) {
                stray.push(entry.path());
            }
        }
        for p in stray {
            found = true;
            ops.run("remove", &p, || fs::remove_file(&p))?;
        }
    }
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn staged_names() {
        assert_eq!(staged_name("etc/hosts"), "etc/.hosts.hfb-new");
        assert_eq!(staged_name("x"), ".x.hfb-new");
    }

    #[test]
    fn only_plain_names_in_managed_dirs_are_confined() {
        let root = tempfile::tempdir().unwrap();
        assert!(confined(root.path(), "etc/hosts").is_ok());
        assert!(confined(root.path(), JOURNAL).is_ok());
        for bad in [
            "",
            "../x",
            "/etc/hosts",
            "etc/../etc/hosts",
            "etc/./hosts",
            "usr/bin/x",
            "etc/haproxy/sub/x",
            "hosts",
        ] {
            assert!(confined(root.path(), bad).is_err(), "{bad:?}");
        }
    }
}
