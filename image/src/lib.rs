//! Disk images in, stream-optimized VMDK out.
//!
//! Every input format yields the same thing — a [`DiskSource`]: the virtual size, the
//! allocated extents, and their data — and the VMDK writer consumes only that.
//!
//! # Public API
//!
//! ```text
//! image::open(path) -> Result<Box<dyn DiskSource>, ImageError>      // format detected from content
//! image::detect(path) -> Result<Format, ImageError>
//! trait DiskSource: Send {
//!     fn format(&self) -> Format;
//!     fn virtual_size(&self) -> u64;
//!     fn extents(&mut self) -> Result<Vec<Extent>, ImageError>;    // sorted, merged, allocated
//!     fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageError>;
//! }
//! image::vmdk::write_stream_optimized(
//!     source: &mut dyn DiskSource, out: &mut impl Write, &VmdkOptions,
//!     progress: &dyn Fn(done_bytes, total_bytes)) -> Result<VmdkReport, ImageError>
//! VmdkOptions { adapter_type: AdapterType, hw_version: u32, tools_version: u32,
//!               file_name: String, level: i32, threads: usize }    // Default: lsilogic, 4, 2147483647
//! VmdkReport { capacity_bytes, populated_bytes, output_bytes, grains }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod raw;
pub mod source;
pub mod vmdk;

use std::path::Path;

pub use error::ImageError;
pub use source::{DiskSource, Extent, read_all};

/// An input format, as detected from the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
    /// A VMDK; the variant is its `createType`.
    Vmdk(VmdkKind),
}

/// The VMDK variants we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmdkKind {
    MonolithicSparse,
    TwoGbMaxExtentSparse,
    StreamOptimized,
    MonolithicFlat,
    TwoGbMaxExtentFlat,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::Raw => f.write_str("raw"),
            Format::Qcow2 => f.write_str("qcow2"),
            Format::Vmdk(k) => write!(f, "vmdk ({})", k.create_type()),
        }
    }
}

impl VmdkKind {
    pub fn create_type(self) -> &'static str {
        match self {
            VmdkKind::MonolithicSparse => "monolithicSparse",
            VmdkKind::TwoGbMaxExtentSparse => "twoGbMaxExtentSparse",
            VmdkKind::StreamOptimized => "streamOptimized",
            VmdkKind::MonolithicFlat => "monolithicFlat",
            VmdkKind::TwoGbMaxExtentFlat => "twoGbMaxExtentFlat",
        }
    }
}

/// Opens a disk image, detecting its format from the content (not the file name).
pub fn open(path: impl AsRef<Path>) -> Result<Box<dyn DiskSource>, ImageError> {
    let path = path.as_ref();
    Ok(Box::new(raw::RawSource::open(path)?))
}
