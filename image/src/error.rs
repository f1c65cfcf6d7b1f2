//! The one error type of the crate: every variant says what was wrong, where, and what was
//! expected, so that a caller can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong while reading a disk image or writing a VMDK.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The operating system refused an operation on a file (open, read, seek, write).
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The content of an image file contradicts its format.
    #[error("{path}: corrupt {format} image: {detail}")]
    Corrupt {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    /// The image is valid but uses a variant or feature this crate does not read.
    #[error("{path}: unsupported {format} image: {detail}")]
    Unsupported {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    /// A VMDK descriptor names an extent file outside its own directory (refused unless the
    /// caller allows it: a descriptor must not make us read arbitrary files into a disk).
    #[error(
        "{path}: the extent on line {line} {detail}; move the extent beside the descriptor, \
         or pass --allow-extents-outside if that file is really part of the disk"
    )]
    ExtentOutside {
        path: PathBuf,
        line: usize,
        /// What it names, where that resolves to, and the descriptor's directory.
        detail: String,
    },
    /// Writing the output failed (for example: the disk is full).
    #[error("cannot write the VMDK output: {0}")]
    Write(#[source] std::io::Error),
    /// The disk is too large for the output format.
    #[error("{0}")]
    TooLarge(String),
    /// A caller-supplied option is invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

impl ImageError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        ImageError::Io {
            path: path.into(),
            action,
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        format: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ImageError::Corrupt {
            path: path.into(),
            format,
            detail: detail.into(),
        }
    }

    pub(crate) fn unsupported(
        path: impl Into<PathBuf>,
        format: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ImageError::Unsupported {
            path: path.into(),
            format,
            detail: detail.into(),
        }
    }
}
