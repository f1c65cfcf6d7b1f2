//! The stream-optimized VMDK writer.
//!
//! Layout, as VMware writes it ("Virtual Disk Format 5.0", stream-optimized compressed sparse
//! extent): header (version 3, flags 0x30001, `gdOffset = GD_AT_END`), embedded descriptor, then
//! for every non-zero 64 KiB grain a grain marker `{lba, size}` followed by its zlib-wrapped
//! deflate data, padded to a sector; after the grains of each grain table, a GT marker and the
//! table; at the end a GD marker and the grain directory, a footer marker and the footer (the
//! header with the real `gdOffset`), and the end-of-stream marker.
//!
//! Two halves: [`super::pipeline`] reads and compresses the grains on all cores,
//! [`super::layout`] writes them in stream order on the calling thread.

use std::io::Write;

use libdeflater::CompressionLvl;

use super::adapter::AdapterType;
use super::descriptor::render_descriptor;
use super::header::{
    COMPRESS_DEFLATE, FLAG_COMPRESSED, FLAG_MARKERS, FLAG_VALID_NEWLINE, GD_AT_END, SECTOR,
    SparseHeader,
};
use super::layout::{ID_PREFIX_BYTES, StreamWriter};
use super::pipeline::{self, BATCH_GRAINS};
use crate::error::ImageError;
use crate::source::DiskSource;

/// Grain size in sectors (64 KiB grains).
pub const GRAIN_SECTORS: u64 = 128;
pub(super) const GRAIN_BYTES: u64 = GRAIN_SECTORS * SECTOR;
/// Grain table entries per grain table.
pub const GTES_PER_GT: u64 = 512;
/// The largest disk we write (VMware's limit is 62 TB); keeps the grain directory small.
const MAX_CAPACITY: u64 = 64 << 40;
/// The libdeflate level, chosen by measurement (docs/benchmarks/vmdk.md).
pub const DEFAULT_LEVEL: i32 = 6;

/// What to put in the descriptor, and how hard to work.
#[derive(Clone, Debug)]
pub struct VmdkOptions {
    /// `ddb.adapterType`; must match the controller in the OVF descriptor.
    pub adapter_type: AdapterType,
    /// `ddb.virtualHWVersion` (VMware writes "4" in stream-optimized disks).
    pub hw_version: u32,
    /// `ddb.toolsVersion` (2147483647 = tools managed by the guest, e.g. open-vm-tools).
    pub tools_version: u32,
    /// The extent file name in the descriptor (usually the VMDK's own file name).
    pub file_name: String,
    /// libdeflate compression level, 1–12.
    pub level: i32,
    /// Compression threads; 0 = one per core.
    pub threads: usize,
}

impl Default for VmdkOptions {
    fn default() -> Self {
        VmdkOptions {
            adapter_type: AdapterType::LsiLogic,
            hw_version: 4,
            tools_version: 2_147_483_647,
            file_name: "disk.vmdk".into(),
            level: DEFAULT_LEVEL,
            threads: 0,
        }
    }
}

/// What was written, for the OVF descriptor and the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmdkReport {
    /// Virtual size (`ovf:capacity`), rounded up to whole sectors.
    pub capacity_bytes: u64,
    /// Bytes of the non-zero grains (`ovf:populatedSize`).
    pub populated_bytes: u64,
    /// Bytes written to the output (`ovf:size`).
    pub output_bytes: u64,
    /// Number of grains written.
    pub grains: u64,
}

/// Writes `source` as a stream-optimized VMDK to `out`, calling `progress(done, total)` (bytes
/// of the virtual disk) as it goes. `out` receives one sequential stream (no seeking), so it
/// may be a hashing writer, a pipe or a file.
pub fn write_stream_optimized<W: Write>(
    source: &mut dyn DiskSource,
    out: &mut W,
    options: &VmdkOptions,
    progress: &dyn Fn(u64, u64),
) -> Result<VmdkReport, ImageError> {
    let settings = pipeline_settings(options)?;
    let virtual_size = source.virtual_size();
    let capacity_sectors = virtual_size.div_ceil(SECTOR);
    if capacity_sectors * SECTOR > MAX_CAPACITY {
        return Err(ImageError::TooLarge(format!(
            "a {virtual_size}-byte disk is larger than a VMDK can hold (64 TiB)"
        )));
    }
    let extents = source.extents()?;
    let mut writer = StreamWriter::new(out, stream_header(capacity_sectors, options), options);
    pipeline::run(
        source,
        &extents,
        &settings,
        |batch| writer.accept(batch),
        progress,
    )?;
    let written = writer.finish()?;
    progress(virtual_size, virtual_size);
    Ok(VmdkReport {
        capacity_bytes: capacity_sectors * SECTOR,
        populated_bytes: written.populated_bytes,
        output_bytes: written.output_bytes,
        grains: written.grains,
    })
}

/// The compression level, threads and buffers the options ask for.
fn pipeline_settings(options: &VmdkOptions) -> Result<pipeline::Settings, ImageError> {
    let level = CompressionLvl::new(options.level).map_err(|_| {
        ImageError::InvalidOption(format!(
            "compression level {} (expected 1 to 12)",
            options.level
        ))
    })?;
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // At least enough batches to hold the ID prefix back without stalling the reader.
    let window =
        (threads * 4).max(ID_PREFIX_BYTES.div_ceil(GRAIN_BYTES) as usize / BATCH_GRAINS + 2);
    Ok(pipeline::Settings {
        level,
        threads,
        window,
    })
}

/// The header of the stream (the footer repeats it with the real `gdOffset`). The descriptor
/// area is sized for the longest descriptor of this capacity, at least 20 sectors.
fn stream_header(capacity_sectors: u64, options: &VmdkOptions) -> SparseHeader {
    let desc_len = render_descriptor(capacity_sectors, 0, &"0".repeat(32), options).len();
    let desc_sectors = (desc_len as u64).div_ceil(SECTOR).max(20);
    let overhead = (1 + desc_sectors).div_ceil(GRAIN_SECTORS) * GRAIN_SECTORS;
    SparseHeader {
        version: 3,
        flags: FLAG_VALID_NEWLINE | FLAG_COMPRESSED | FLAG_MARKERS,
        capacity: capacity_sectors,
        grain_size: GRAIN_SECTORS,
        descriptor_offset: 1,
        descriptor_size: desc_sectors,
        num_gtes_per_gt: GTES_PER_GT as u32,
        rgd_offset: 0,
        gd_offset: GD_AT_END,
        overhead,
        unclean_shutdown: false,
        compress_algorithm: COMPRESS_DEFLATE,
    }
}
