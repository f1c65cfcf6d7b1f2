//! One apply at a time per root: an exclusive `flock(2)` on `var/lib/haproxy-firstboot/lock`,
//! held for the whole transaction (recovery, reading what is on disk, commit) and whatever the
//! caller does with the result. A second run waits for it, bounded; the kernel releases the
//! lock when its holder exits, however it exits, and the descriptor is close-on-exec so no
//! child (ssh-keygen) keeps it.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::txn::STATE_DIR;

/// The lock file, relative to the root.
pub const LOCK: &str = "var/lib/haproxy-firstboot/lock";

/// How often a waiting run tries the lock again.
const RETRY: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another haproxy-firstboot run is applying a configuration to this root (it holds {}); \
         gave up after {waited_secs} s (see --lock-wait)",
        path.display()
    )]
    Busy { path: PathBuf, waited_secs: u64 },
}

/// Proof that this process alone applies to its root, until dropped.
#[derive(Debug)]
pub struct RootLock {
    _held: Flock<File>,
}

/// Takes the lock of `root`, waiting up to `wait` for another run to release it; `on_wait`
/// runs once if it has to wait (to say so).
pub fn lock_root(
    root: &Path,
    wait: Duration,
    on_wait: impl FnOnce(&Path),
) -> Result<RootLock, LockError> {
    let state = root.join(STATE_DIR);
    fs::create_dir_all(&state).map_err(|source| LockError::Io {
        op: "creating",
        path: state.clone(),
        source,
    })?;
    let path = root.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|source| LockError::Io {
            op: "opening",
            path: path.clone(),
            source,
        })?;
    let start = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(RootLock { _held: held }),
            Err((f, Errno::EWOULDBLOCK)) => file = f,
            Err((_, errno)) => {
                return Err(LockError::Io {
                    op: "locking",
                    path,
                    source: errno.into(),
                });
            }
        }
        if start.elapsed() >= wait {
            return Err(LockError::Busy {
                path,
                waited_secs: wait.as_secs(),
            });
        }
        if let Some(say) = on_wait.take() {
            say(&path);
        }
        std::thread::sleep(RETRY);
    }
}
