//! Outputs that appear whole or not at all.
//!
//! Every output is first written to a hidden temporary file in the destination directory
//! (same file system, so the final step is a `rename`). Dropping an [`Outputs`] without
//! [`Outputs::commit`] — an error, a panic, or a cancellation observed through
//! [`Cancel`] — removes the temporaries. Intermediate files that are never published (the
//! VMDK before it goes into the OVA) are anonymous ([`scratch_file`]): the kernel frees them
//! even if the process is killed.

use std::fs::File;
use std::io;
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
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
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

/// An anonymous scratch file in `dir` (no name; freed by the kernel when closed).
pub fn scratch_file(dir: &Path) -> io::Result<File> {
    tempfile::tempfile_in(dir)
}

/// A cancellation flag raised by SIGINT/SIGTERM (or by a test).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag nobody raises but the caller.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// A flag raised by SIGINT and SIGTERM. A second signal while the first is being handled
    /// ends the process at once (the temporaries may then be left behind, hidden and named
    /// `.NAME.*.partial`).
    pub fn on_signals() -> io::Result<Cancel> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))?;
            signal_hook::flag::register(signal, Arc::clone(&flag))?;
        }
        Ok(Cancel(flag))
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

/// The error of an operation stopped by [`Cancel`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("cancelled by a signal (Ctrl-C); nothing was written")]
pub struct Cancelled;

/// A writer that fails with [`Cancelled`] once the flag is raised, so that long copies stop
/// promptly and their callers clean up through the ordinary error path.
pub struct CancellableWriter<W> {
    pub inner: W,
    cancel: Cancel,
}

impl<W> CancellableWriter<W> {
    pub fn new(inner: W, cancel: Cancel) -> Self {
        CancellableWriter { inner, cancel }
    }
}

impl<W: io::Write> io::Write for CancellableWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.cancel.check()?;
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
    fn cancelled_writer_fails() {
        let cancel = Cancel::new();
        let mut w = CancellableWriter::new(Vec::new(), cancel.clone());
        w.write_all(b"a").unwrap();
        cancel.raise();
        let err = w.write_all(b"b").unwrap_err();
        assert!(err.to_string().contains("cancelled"));
    }
}
