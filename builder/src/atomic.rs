//! Outputs that appear whole or not at all.
//!
//! Every output is first written to a hidden temporary file in the destination directory
//! (same file system, so the final step is a `rename`). Dropping an [`Outputs`] without
//! [`Outputs::commit`] — an error, a panic, or a cancellation observed through
//! [`Interrupt`] — removes the temporaries. A single file is written with
//! [`write_atomically`]. Intermediate files that are never published (the
//! VMDK before it goes into the OVA) are anonymous ([`scratch_file`]): the kernel frees them
//! even if the process is killed.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Temporaries waiting to be renamed to their final names.
#[derive(Debug)]
pub struct Outputs {
    dir: PathBuf,
    pending: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Outputs {
    /// Outputs in `dir`, which is created if missing.
    pub fn new(dir: &Path) -> io::Result<Outputs> {
        std::fs::create_dir_all(dir)?;
        Ok(Outputs {
            dir: dir.to_path_buf(),
            pending: Vec::new(),
        })
    }

    /// The directory outputs go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new temporary for the output `name`; returns its index and an open handle.
    pub fn create(&mut self, name: &str) -> io::Result<(usize, File)> {
        self.create_named(OsStr::new(name))
    }

    fn create_named(&mut self, name: &OsStr) -> io::Result<(usize, File)> {
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(&self.dir)?;
        let file = temp.reopen()?;
        self.pending.push((temp, self.dir.join(name)));
        Ok((self.pending.len() - 1, file))
    }

    /// Renames every temporary to its final name, in the order they were created, with mode
    /// 0644 (temporaries are created 0600). Returns the final paths.
    pub fn commit(self) -> io::Result<Vec<PathBuf>> {
        use std::os::unix::fs::PermissionsExt;
        let mut done = Vec::new();
        for (temp, path) in self.pending {
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))?;
            temp.persist(&path).map_err(|e| e.error)?;
            done.push(path);
        }
        // Make the renames durable.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(done)
    }
}

/// Writes the file `path` whole or not at all: `write` fills a temporary beside it (buffered),
/// which is synced and renamed to `path` with mode 0644 only when `write` succeeds. On any
/// error the temporary is removed and `path` is untouched. The directory must exist.
pub fn write_atomically<T, E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut outputs = Outputs {
        dir: dir.to_path_buf(),
        pending: Vec::new(),
    };
    let (_, file) = outputs.create_named(name).map_err(|e| {
        with_context(
            e,
            &format!("cannot create a temporary file in {}", dir.display()),
        )
    })?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let value = write(&mut writer)?;
    let file = writer
        .into_inner()
        .map_err(|e| with_context(e.into_error(), "cannot write the output"))?;
    file.sync_all()
        .map_err(|e| with_context(e, "cannot flush the output to disk"))?;
    outputs.commit().map_err(|e| {
        with_context(
            e,
            &format!("cannot rename the output into place as {}", path.display()),
        )
    })?;
    Ok(value)
}

/// `error` with `what` in front of its message (its kind is kept).
fn with_context(error: io::Error, what: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

/// An anonymous scratch file in `dir` (no name; freed by the kernel when closed).
pub fn scratch_file(dir: &Path) -> io::Result<File> {
    tempfile::tempfile_in(dir)
}

/// An interruption flag raised by SIGINT/SIGTERM (or by a test): the way a long operation
/// learns that the user asked it to stop.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag nobody raises but the caller.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// A flag raised by SIGINT and SIGTERM. A second signal while the first is being handled
    /// ends the process at once (the temporaries may then be left behind, hidden and named
    /// `.NAME.*.partial`).
    pub fn on_signals() -> io::Result<Interrupt> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))?;
            signal_hook::flag::register(signal, Arc::clone(&flag))?;
        }
        Ok(Interrupt(flag))
    }

    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Interrupted-like error)` once the flag is raised.
    pub fn check(&self) -> io::Result<()> {
        if self.is_raised() {
            Err(io::Error::other(Cancelled))
        } else {
            Ok(())
        }
    }
}

/// The error of an operation stopped by [`Interrupt`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("cancelled by a signal (Ctrl-C); nothing was written")]
pub struct Cancelled;

/// A writer that fails with [`Cancelled`] once the flag is raised, so that long copies stop
/// promptly and their callers clean up through the ordinary error path.
pub struct CancellableWriter<W> {
    pub inner: W,
    interrupt: Interrupt,
}

impl<W> CancellableWriter<W> {
    pub fn new(inner: W, interrupt: Interrupt) -> Self {
        CancellableWriter { inner, interrupt }
    }
}

impl<W: io::Write> io::Write for CancellableWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.interrupt.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn dropped_outputs_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut out = Outputs::new(dir.path()).unwrap();
            let (_, mut f) = out.create("x.ova").unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn committed_outputs_get_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Outputs::new(dir.path()).unwrap();
        let (_, mut f) = out.create("x.ova").unwrap();
        f.write_all(b"whole").unwrap();
        let paths = out.commit().unwrap();
        assert_eq!(paths, vec![dir.path().join("x.ova")]);
        assert_eq!(std::fs::read(&paths[0]).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_atomically_publishes_whole_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.ovf");
        write_atomically(&path, |w| w.write_all(b"whole")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let failed: io::Result<()> = write_atomically(&path, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("failed half way"))
        });
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"whole",
            "the old file stays"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn cancelled_writer_fails() {
        let interrupt = Interrupt::new();
        let mut w = CancellableWriter::new(Vec::new(), interrupt.clone());
        w.write_all(b"a").unwrap();
        interrupt.raise();
        let err = w.write_all(b"b").unwrap_err();
        assert!(err.to_string().contains("cancelled"));
    }
}
