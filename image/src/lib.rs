//! Disk images in, stream-optimized VMDK out.
//!
//! Every input format yields the same thing — a [`DiskSource`]: the virtual size, the
//! allocated extents, and their data — and the VMDK writer consumes only that.
//!
//! # Public API
//!
//! ```text
//! image::open(path) -> Result<Box<dyn DiskSource>, ImageError>   // format detected from content
//! image::open_with(path, &OpenOptions { allow_extents_outside })  // VMDK extents may leave
//!                                                                 // the descriptor's directory
//! image::detect(path) -> Result<Format, ImageError>               // Raw | Qcow2 | Vmdk(VmdkKind)
//! image::read_all(&mut dyn DiskSource) -> Result<Vec<u8>, _>     // small disks (tests)
//!
//! trait DiskSource: Send {
//!     fn format(&self) -> Format;
//!     fn virtual_size(&self) -> u64;                               // bytes
//!     fn extents(&mut self) -> Result<Vec<Extent>, ImageError>;    // allocated, sorted, merged
//!     fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageError>;
//! }
//! struct Extent { offset: u64, length: u64 }
//!
//! image::vmdk::write_stream_optimized(
//!     source: &mut dyn DiskSource,
//!     out: &mut W,                       // W: Write; one sequential stream, never seeks
//!     options: &VmdkOptions,
//!     progress: &dyn Fn(u64, u64),       // (done_bytes, total_bytes) of the virtual disk
//! ) -> Result<VmdkReport, ImageError>
//! struct VmdkOptions { adapter_type: AdapterType, hw_version: u32, tools_version: u32,
//!                      file_name: String, level: i32, threads: usize }
//!     // Default: lsilogic, 4, 2147483647, "disk.vmdk", DEFAULT_LEVEL, 0 (= all cores)
//! enum AdapterType { Ide, BusLogic, LsiLogic, LegacyEsx }  // ddb.adapterType; FromStr, as_str()
//!     // also image::AdapterType
//! struct VmdkReport { capacity_bytes, populated_bytes, output_bytes, grains }  // all u64
//!     // capacity_bytes -> ovf:capacity, populated_bytes -> ovf:populatedSize,
//!     // output_bytes -> ovf:size
//!
//! image::vmdk::inspect(reader: impl Read) -> Result<VmdkInfo, ImageError>
//!     // reads a stream-optimized VMDK sequentially (a tar member works) and checks every
//!     // grain, table, the footer and the end-of-stream marker
//! image::vmdk::check_stream(reader: impl Read) -> Result<VmdkInfo, StreamError>
//!     // the same, with a typed error naming the sector / LBA of the damage
//! image::vmdk::check_stream_quick(&SparseHeader, size, read_at) -> Vec<StreamFinding>
//!     // header flags, footer and end-of-stream marker, embedded createType: reads only the
//!     // header, descriptor and last three sectors
//! struct VmdkInfo { capacity_bytes, create_type: Option<String>, adapter_type: Option<String>,
//!                   grains, populated_bytes, has_end_of_stream, has_grain_directory,
//!                   stream_bytes, header, footer, descriptor, descriptor_text, .. }
//! ```
//!
//! Errors ([`ImageError`]) name the file, say what is wrong and what was expected:
//! `Io` (the OS refused), `Corrupt`, `Unsupported` (a valid variant we do not read),
//! `Write` (the output failed, e.g. disk full), `TooLarge`, `InvalidOption`, `ExtentOutside`
//! (a VMDK descriptor names a file outside its directory; see [`OpenOptions`]).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod qcow2;
pub mod raw;
pub mod source;
pub mod vmdk;

use std::path::Path;

pub use error::ImageError;
pub use source::{DiskSource, Extent, read_all};
pub use vmdk::AdapterType;

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

/// What the first bytes of a file say it is.
enum Probe {
    Raw,
    Qcow2,
    VmdkSparse,
    VmdkDescriptor,
    Unsupported(&'static str),
}

fn probe(head: &[u8]) -> Probe {
    let at = |o: usize, m: &[u8]| head.len() >= o + m.len() && &head[o..o + m.len()] == m;
    if at(0, b"QFI\xfb") {
        Probe::Qcow2
    } else if vmdk::header::SparseHeader::has_magic(head) {
        Probe::VmdkSparse
    } else if at(0, b"COWD") {
        Probe::Unsupported("VMDK ESX/VMFS sparse extent (COWD)")
    } else if at(0, b"conectix") {
        Probe::Unsupported("VHD")
    } else if at(0, b"vhdxfile") {
        Probe::Unsupported("VHDX")
    } else if at(0, b"QED\0") {
        Probe::Unsupported("QED")
    } else if at(0x40, &[0x7f, 0x10, 0xda, 0xbe]) {
        Probe::Unsupported("VirtualBox VDI")
    } else if vmdk::descriptor::looks_like_descriptor(head) {
        Probe::VmdkDescriptor
    } else {
        Probe::Raw
    }
}

/// How [`open_with`] treats what an image refers to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Let a VMDK descriptor's extent files lie outside the descriptor's directory (absolute
    /// paths, `..`, symlinks leading out). Off by default: a descriptor from elsewhere could
    /// otherwise copy any readable file (e.g. /etc/shadow) into the output disk.
    pub allow_extents_outside: bool,
}

/// Opens a disk image, detecting its format from the content (not the file name), with the
/// default [`OpenOptions`].
pub fn open(path: impl AsRef<Path>) -> Result<Box<dyn DiskSource>, ImageError> {
    open_with(path, &OpenOptions::default())
}

/// Opens a disk image, detecting its format from the content (not the file name).
pub fn open_with(
    path: impl AsRef<Path>,
    options: &OpenOptions,
) -> Result<Box<dyn DiskSource>, ImageError> {
    use std::io::Read;
    let path = path.as_ref();
    let mut file = std::fs::File::open(path).map_err(|e| ImageError::io(path, "open", e))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(ImageError::io(
            path,
            "read",
            std::io::Error::other("it is a directory, not a disk image"),
        ));
    }
    let mut head = Vec::with_capacity(4096);
    (&mut file)
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| ImageError::io(path, "read", e))?;
    Ok(match probe(&head) {
        Probe::Raw => Box::new(raw::RawSource::from_file(file, path)?),
        Probe::Qcow2 => Box::new(qcow2::Qcow2Source::open(path)?),
        Probe::VmdkSparse => Box::new(vmdk::VmdkSource::open_sparse(file, path)?),
        Probe::VmdkDescriptor => {
            let mut text = Vec::new();
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(0))
                .map_err(|e| ImageError::io(path, "read", e))?;
            file.take(1 << 20)
                .read_to_end(&mut text)
                .map_err(|e| ImageError::io(path, "read", e))?;
            let text = String::from_utf8(text).map_err(|_| {
                ImageError::corrupt(path, "VMDK", "the descriptor is not UTF-8 text")
            })?;
            Box::new(vmdk::VmdkSource::open_descriptor_with(
                &text, path, options,
            )?)
        }
        Probe::Unsupported(what) => {
            return Err(ImageError::unsupported(
                path,
                what,
                "this format is not read; convert it to raw, qcow2 or VMDK first",
            ));
        }
    })
}

/// Detects the format of an image from its content.
pub fn detect(path: impl AsRef<Path>) -> Result<Format, ImageError> {
    Ok(open(path)?.format())
}
