//! haproxy.cfg on disk, the one source of truth: the current snapshot (re-read when the file
//! changes under us, e.g. haproxy-firstboot at boot) and the commit pipeline — render the
//! candidate next to the file, fsync it, `haproxy -c` it, rename it into place, fsync the
//! directory. A crash at any point leaves the old file or the new one, never a mix; an invalid
//! candidate changes nothing and its `haproxy -c` message is returned.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::auth::Users;
use crate::cfg::Document;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {cause}")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("haproxy refused the configuration: {0}")]
    Invalid(String),
    #[error("cannot run {haproxy} -c: {reason}")]
    Check { haproxy: PathBuf, reason: String },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |cause| StoreError::Io {
        action,
        path: path.to_path_buf(),
        cause,
    }
}

/// One version of the configuration, as parsed, with the users allowed to use the API.
#[derive(Debug)]
pub struct Snapshot {
    pub doc: Document,
    pub users: Users,
}

impl Snapshot {
    pub fn version(&self) -> u64 {
        self.doc.version
    }
}

/// What identifies the file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

pub struct Store {
    path: PathBuf,
    haproxy: PathBuf,
    userlist: String,
    cached: RwLock<Option<(FileId, Arc<Snapshot>)>>,
    /// Held for the whole of a change: read, modify, check, rename.
    writer: tokio::sync::Mutex<()>,
}

/// Proof that the caller holds the writer lock.
pub struct WriteGuard<'a>(#[allow(dead_code)] tokio::sync::MutexGuard<'a, ()>);

const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

impl Store {
    pub fn new(path: PathBuf, haproxy: PathBuf, userlist: String) -> Store {
        Store {
            path,
            haproxy,
            userlist,
            cached: RwLock::new(None),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The userlist whose users may use the API.
    pub fn userlist(&self) -> &str {
        &self.userlist
    }

    /// The candidate's path: next to the file, so that a rename replaces it atomically and
    /// relative paths in it mean the same when haproxy checks it.
    fn candidate_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "haproxy.cfg".into());
        self.path
            .with_file_name(format!(".{name}.dataplaneapi-candidate"))
    }

    /// Removes a candidate left by a crash (it never replaced the file).
    pub fn remove_stale_candidate(&self) {
        let _ = fs::remove_file(self.candidate_path());
    }

    pub async fn lock(&self) -> WriteGuard<'_> {
        WriteGuard(self.writer.lock().await)
    }

    /// The configuration as it is on disk now.
    pub fn current(&self) -> Result<Arc<Snapshot>, StoreError> {
        let meta = fs::metadata(&self.path).map_err(io("read", &self.path))?;
        let id = FileId::of(&meta);
        if let Some((cached_id, snap)) = self.read_cache().as_ref()
            && *cached_id == id
        {
            return Ok(snap.clone());
        }
        let text = fs::read_to_string(&self.path).map_err(io("read", &self.path))?;
        let snap = Arc::new(self.snapshot(Document::parse(&text)));
        self.write_cache(id, snap.clone());
        Ok(snap)
    }

    fn snapshot(&self, doc: Document) -> Snapshot {
        let users = Users::from_document(&doc, &self.userlist);
        Snapshot { doc, users }
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Option<(FileId, Arc<Snapshot>)>> {
        // The cache is replaced whole, so a panic elsewhere cannot leave it half-written.
        self.cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_cache(&self, id: FileId, snap: Arc<Snapshot>) {
        let mut c = self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c = Some((id, snap));
    }

    /// Checks `doc` with `haproxy -c` and, if it passes, makes it the configuration.
    pub async fn commit(
        &self,
        _guard: &WriteGuard<'_>,
        doc: Document,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let text = doc.render();
        let candidate = self.candidate_path();
        write_synced(&candidate, text.as_bytes(), Some(&self.path))?;
        if let Err(e) = self.check(&candidate).await {
            let _ = fs::remove_file(&candidate);
            return Err(e);
        }
        fs::rename(&candidate, &self.path).map_err(io("replace", &self.path))?;
        sync_dir(&self.path)?;
        let meta = fs::metadata(&self.path).map_err(io("read", &self.path))?;
        let snap = Arc::new(self.snapshot(doc));
        self.write_cache(FileId::of(&meta), snap.clone());
        Ok(snap)
    }

    /// `haproxy -c` on a file written next to the configuration; nothing is kept.
    pub async fn validate_only(
        &self,
        _guard: &WriteGuard<'_>,
        doc: &Document,
    ) -> Result<(), StoreError> {
        let candidate = self.candidate_path();
        write_synced(&candidate, doc.render().as_bytes(), Some(&self.path))?;
        let result = self.check(&candidate).await;
        let _ = fs::remove_file(&candidate);
        result
    }

    async fn check(&self, candidate: &Path) -> Result<(), StoreError> {
        let run = tokio::process::Command::new(&self.haproxy)
            // Not -q: haproxy 2.6 then keeps its alerts to itself.
            .arg("-c")
            .arg("-f")
            .arg(candidate)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let failed = |reason: String| StoreError::Check {
            haproxy: self.haproxy.clone(),
            reason,
        };
        let out = tokio::time::timeout(CHECK_TIMEOUT, run)
            .await
            .map_err(|_| failed(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())))?
            .map_err(|e| failed(e.to_string()))?;
        if out.status.success() {
            return Ok(());
        }
        let mut message = String::from_utf8_lossy(&out.stderr).into_owned();
        message.push_str(&String::from_utf8_lossy(&out.stdout));
        // The user knows the file by its real name, not the candidate's.
        let message = message.replace(
            &candidate.display().to_string(),
            &self.path.display().to_string(),
        );
        Err(StoreError::Invalid(summarize(&message)))
    }
}

/// haproxy's messages without blank lines and the noise of its exit summary, bounded.
fn summarize(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && *l != "Configuration file is valid" && !l.starts_with("[NOTICE]")
        })
        .collect();
    let mut out = lines.join("\n");
    if out.is_empty() {
        out = "haproxy -c failed without a message".into();
    }
    if out.len() > 4096 {
        let mut cut = 4096;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Writes `path` (created or truncated) and fsyncs it; with `like`, takes that file's mode and
/// owner, so a replacement is readable by exactly whom the original was.
pub fn write_synced(path: &Path, bytes: &[u8], like: Option<&Path>) -> Result<(), StoreError> {
    let original = like.and_then(|l| fs::metadata(l).ok());
    let mode = original
        .as_ref()
        .map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io("write", path))?;
    if let Some(m) = &original {
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io("write", path))?;
        // Only root can give a file away; as another user the file stays ours, which is fine.
        let _ = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()));
    }
    f.write_all(bytes).map_err(io("write", path))?;
    f.sync_all().map_err(io("sync", path))
}

/// Fsyncs the directory holding `path`, so a rename in it is durable.
pub fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", dir))
}

/// Writes `path` atomically: a synced temporary beside it, renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    write_synced(&tmp, bytes, None)?;
    fs::rename(&tmp, path).map_err(io("replace", path))?;
    sync_dir(path)
}

/// Replaces `path` by a rename, without fsync: a crash of the process leaves the old or the new
/// file; only a power loss may lose the change. For a transaction's working copy, which the
/// Supervisor rewrites with every object it adds (hundreds per transaction), and which is
/// checked whole at commit, so a lost or stale copy is refused, never half-applied.
pub fn replace_unsynced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("replace", path))
}
