//! The one error of the appliance's stages (root filesystem, disk, boot partition): each runs
//! external programs, reads and writes files and renders templates, and fails the same ways.
//! [`super::ApplianceError`] adds which stage it was.

use std::path::{Path, PathBuf};

use super::tool::ToolError;

/// Why a stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rendering {0}: {1}")]
    Template(&'static str, askama::Error),
    /// A file a Debian package provides is not installed: (path, package).
    #[error("{0} is missing: install the Debian package `{1}` (bash scripts/install-deps)")]
    Missing(&'static str, &'static str),
    /// What the stage was given, or found, cannot work (a disk too small, a unit without a
    /// name, a root filesystem without a kernel).
    #[error("{0}")]
    Invalid(String),
}

/// Maps an I/O error to [`StageError::Io`]: `what` was being done to `path`.
pub(crate) fn io(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StageError + use<> {
    let path = path.to_owned();
    move |source| StageError::Io { what, path, source }
}
