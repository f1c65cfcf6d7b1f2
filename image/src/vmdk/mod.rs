//! VMDK: the stream-optimized writer, the sparse/flat readers, and an inspector for what we
//! (or VMware) wrote.
//!
//! Hand-written: no maintained Rust crate reads hosted sparse or stream-optimized VMDKs
//! (`imago` 0.2 reads only FLAT/ZERO descriptor extents and refuses sparse data files) and
//! none writes stream-optimized ones; the format is small and documented by VMware
//! ("Virtual Disk Format 5.0").

mod adapter;
mod check;
pub mod descriptor;
pub mod header;
mod inspect;
mod layout;
mod pipeline;
mod reader;
mod writer;

pub use adapter::AdapterType;
pub use check::{StreamFinding, check_stream_quick, has_stream_flags};
pub use descriptor::{geometry, render_descriptor};
pub use inspect::{StreamError, VmdkInfo, check_stream, inspect};
pub use reader::VmdkSource;

pub use writer::{
    DEFAULT_LEVEL, GRAIN_SECTORS, GTES_PER_GT, VmdkOptions, VmdkReport, write_stream_optimized,
};
