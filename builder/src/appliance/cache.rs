//! The build cache, kept between appliance builds:
//!
//! ```text
//! <cache>/lock                  held (flock) by the build using the cache
//! <cache>/apt/<id>/             an apt root per architecture and list of sources (apt.rs):
//!     var/lib/apt/lists/          the archive's indices, verified by apt at every build
//!     var/cache/apt/archives/     the package files, checked against them before use
//! <cache>/rootfs/<key>/         base root filesystems (base.rs), by the key of their inputs
//! <cache>/rootfs/<key>.recipe   what the key covers; written last, so a tree without it is
//!                               incomplete and is removed
//! ```
//!
//! The directory must be writable by root only: the package files are checked against the
//! archive's signed indices, but a base tree is used as it is (as any build directory is).

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::error::{StageError, io};

/// How many base trees are kept (each ~400 MiB): the current one and the one before, so that
/// going back and forth between two package sets (e.g. two mirrors) stays warm.
pub const KEEP_BASE_TREES: usize = 2;

/// The cache directory when none is given: `$XDG_CACHE_HOME/ova-builder`, else
/// `/var/cache/ova-builder` for root (the appliance build runs as root), else
/// `~/.cache/ova-builder`.
pub fn default_dir() -> PathBuf {
    default_dir_from(
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
        is_root(),
    )
}

/// [`default_dir`] from its inputs (testable).
pub fn default_dir_from(xdg: Option<PathBuf>, home: Option<PathBuf>, root: bool) -> PathBuf {
    match (xdg.filter(|p| p.is_absolute()), root, home) {
        (Some(xdg), _, _) => xdg.join("ova-builder"),
        (None, true, _) => PathBuf::from("/var/cache/ova-builder"),
        (None, false, Some(home)) => home.join(".cache/ova-builder"),
        (None, false, None) => PathBuf::from("/var/cache/ova-builder"),
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The cache, locked for this build.
pub struct Cache {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl Cache {
    /// Creates `dir` if needed and takes its lock, waiting (and saying so on stderr) while
    /// another build holds it: two builds never change the same entries at once.
    pub fn open(dir: &Path) -> Result<Cache, StageError> {
        fs::create_dir_all(dir).map_err(io("creating the cache directory", dir))?;
        // Absolute: the apt configuration and mmdebstrap's hooks name paths inside it.
        let dir = &fs::canonicalize(dir).map_err(io("resolving", dir))?;
        // apt's download sandbox (user _apt) must be able to reach the apt roots.
        let meta = fs::metadata(dir).map_err(io("stat", dir))?;
        if meta.permissions().mode() & 0o005 != 0o005 {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
        }
        let path = dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("opening", &path))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                eprintln!(
                    "waiting for another build that uses the cache {} …",
                    dir.display()
                );
                Flock::lock(file, FlockArg::LockExclusive)
                    .map_err(|(_, e)| io("locking", &path)(e.into()))?
            }
            Err((_, e)) => return Err(io("locking", &path)(e.into())),
        };
        Ok(Cache {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the base trees are.
    pub fn rootfs_dir(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}
