//! VMDK: the stream-optimized writer, the sparse/flat readers, and an inspector for what we
//! (or VMware) wrote.
//!
//! Hand-written: no maintained Rust crate reads hosted sparse or stream-optimized VMDKs
//! (`imago` 0.2 reads only FLAT/ZERO descriptor extents and refuses sparse data files) and
//! none writes stream-optimized ones; the format is small and documented by VMware
//! ("Virtual Disk Format 5.0").

pub mod descriptor;
pub mod header;
mod inspect;
mod reader;
mod writer;

pub use inspect::{VmdkInfo, inspect};
pub use reader::VmdkSource;

pub use writer::{
    AdapterType, DEFAULT_LEVEL, GRAIN_SECTORS, GTES_PER_GT, VmdkOptions, VmdkReport, geometry,
    render_descriptor, write_stream_optimized,
};
