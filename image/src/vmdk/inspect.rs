//! Reads a stream-optimized VMDK from start to end, sequentially (a tar member works), checking
//! every structure: header, descriptor, each grain (it must inflate to its size), the grain
//! tables and directory (each entry must point at the grain marker for that LBA), the footer
//! and the end-of-stream marker. `ova-builder verify` uses it.

use std::io::Read;
use std::path::PathBuf;

use libdeflater::Decompressor;

use super::descriptor::{self, Descriptor};
use super::header::{
    FLAG_COMPRESSED, FLAG_MARKERS, GD_AT_END, MARKER_EOS, MARKER_FOOTER, MARKER_GD, MARKER_GT,
    Marker, SECTOR, SparseHeader, parse_marker,
};
use crate::error::ImageError;

/// What a stream-optimized VMDK says about itself, after checking it.
#[derive(Clone, Debug)]
pub struct VmdkInfo {
    pub header: SparseHeader,
    /// The footer (a copy of the header with the real grain directory offset), if present.
    pub footer: Option<SparseHeader>,
    pub descriptor: Descriptor,
    pub descriptor_text: String,
    /// Virtual size in bytes (header capacity × 512).
    pub capacity_bytes: u64,
    /// `createType` from the descriptor.
    pub create_type: Option<String>,
    /// `ddb.adapterType` from the descriptor.
    pub adapter_type: Option<String>,
    /// Number of grains stored.
    pub grains: u64,
    /// Uncompressed bytes of the stored grains.
    pub populated_bytes: u64,
    pub grain_tables: u64,
    pub has_grain_directory: bool,
    pub has_end_of_stream: bool,
    /// Bytes read, i.e. the file size.
    pub stream_bytes: u64,
}

const NAME: &str = "VMDK";

fn bad(detail: impl Into<String>) -> ImageError {
    ImageError::corrupt(PathBuf::from("<vmdk stream>"), NAME, detail)
}

struct Counted<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Counted<R> {
    /// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of file before any byte.
    fn read_full(&mut self, buf: &mut [u8], what: &str) -> Result<bool, ImageError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(bad(format!(
                        "the file ends inside the {what} at byte {}",
                        self.pos + got as u64
                    )));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ImageError::io(PathBuf::from("<vmdk stream>"), "read", e));
                }
            }
        }
        self.pos += got as u64;
        Ok(true)
    }

    /// Reads exactly `n` bytes, growing the buffer only as data arrives (a lying length in a
    /// damaged file cannot make us allocate much more than the file holds).
    fn need_vec(&mut self, n: u64, what: &str) -> Result<Vec<u8>, ImageError> {
        let mut v = Vec::new();
        (&mut self.inner)
            .take(n)
            .read_to_end(&mut v)
            .map_err(|e| ImageError::io(PathBuf::from("<vmdk stream>"), "read", e))?;
        self.pos += v.len() as u64;
        if (v.len() as u64) < n {
            return Err(bad(format!(
                "the file ends inside the {what} at byte {}",
                self.pos
            )));
        }
        Ok(v)
    }

    fn need(&mut self, buf: &mut [u8], what: &str) -> Result<(), ImageError> {
        if self.read_full(buf, what)? || buf.is_empty() {
            Ok(())
        } else {
            Err(bad(format!(
                "the file ends before the {what} at byte {}",
                self.pos
            )))
        }
    }
}

/// Reads and checks a whole stream-optimized VMDK.
pub fn inspect(reader: impl Read) -> Result<VmdkInfo, ImageError> {
    let mut r = Counted {
        inner: reader,
        pos: 0,
    };
    let mut sector = [0u8; 512];
    r.need(&mut sector, "header")?;
    let header = SparseHeader::parse(&sector).map_err(bad)?;
    header.check_readable().map_err(|(_, d)| bad(d))?;
    if header.flags & (FLAG_COMPRESSED | FLAG_MARKERS) != FLAG_COMPRESSED | FLAG_MARKERS {
        return Err(ImageError::unsupported(
            PathBuf::from("<vmdk stream>"),
            NAME,
            format!(
                "header flags {:#x} are not those of a stream-optimized VMDK (compressed grains with markers, 0x30000)",
                header.flags
            ),
        ));
    }
    if header.descriptor_offset != 1 || header.descriptor_size == 0 || header.descriptor_size > 2048
    {
        return Err(bad(format!(
            "descriptor at sector {} with {} sectors (expected right after the header)",
            header.descriptor_offset, header.descriptor_size
        )));
    }
    if header.overhead < 1 + header.descriptor_size || header.overhead > 1 << 20 {
        return Err(bad(format!("overhead of {} sectors", header.overhead)));
    }
    let lead = r.need_vec((header.overhead - 1) * SECTOR, "descriptor")?;
    let desc_bytes = &lead[..(header.descriptor_size * SECTOR) as usize];
    let end = desc_bytes
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(desc_bytes.len());
    let descriptor_text = String::from_utf8(desc_bytes[..end].to_vec())
        .map_err(|_| bad("the descriptor is not UTF-8 text"))?;
    let descriptor =
        descriptor::parse(&descriptor_text).map_err(|e| bad(format!("descriptor {e}")))?;
    drop(lead);

    let grain_bytes = header.grain_size * SECTOR;
    let capacity_bytes = header.capacity * SECTOR;
    let mut decompressor = Decompressor::new();
    let mut inflated = vec![0u8; grain_bytes as usize];
    let mut record = Vec::new();
    // (sector of the grain marker, lba) in stream order, to check the tables against.
    let mut grains_at: Vec<(u64, u64)> = Vec::new();
    let mut tables: Vec<(u64, Vec<u32>)> = Vec::new();
    let mut gd: Option<(u64, Vec<u32>)> = None;
    let mut footer = None;
    let mut has_eos = false;
    let mut populated = 0u64;
    let mut last_lba: Option<u64> = None;

    loop {
        let at = r.pos / SECTOR;
        if !r.read_full(&mut sector, "marker")? {
            break;
        }
        match parse_marker(&sector) {
            Marker::Grain { lba, size } => {
                let total = (12 + size as u64).div_ceil(SECTOR) * SECTOR;
                if size as u64 > 2 * grain_bytes + 1024 {
                    return Err(bad(format!(
                        "grain at sector {at} claims {size} compressed bytes"
                    )));
                }
                if lba >= header.capacity || lba % header.grain_size != 0 {
                    return Err(bad(format!(
                        "grain at sector {at} has LBA {lba} (capacity {} sectors, grains of {})",
                        header.capacity, header.grain_size
                    )));
                }
                if last_lba.is_some_and(|l| lba <= l) {
                    return Err(bad(format!(
                        "grain at sector {at} (LBA {lba}) is out of LBA order"
                    )));
                }
                last_lba = Some(lba);
                record.resize(total as usize, 0);
                record[..512].copy_from_slice(&sector);
                r.need(&mut record[512..], "grain")?;
                let expect = grain_bytes.min(capacity_bytes - lba * SECTOR) as usize;
                let n = decompressor
                    .zlib_decompress(&record[12..12 + size as usize], &mut inflated)
                    .map_err(|e| {
                        bad(format!(
                            "grain at sector {at} (LBA {lba}) does not inflate: {e}"
                        ))
                    })?;
                if n != expect && n != grain_bytes as usize {
                    return Err(bad(format!(
                        "grain at sector {at} (LBA {lba}) inflates to {n} bytes, expected {expect}"
                    )));
                }
                populated += expect as u64;
                grains_at.push((at, lba));
            }
            Marker::Meta { num_sectors, kind } => {
                let per_gt = u64::from(header.num_gtes_per_gt);
                let gt_sectors = (per_gt * 4).div_ceil(SECTOR);
                let gd_sectors = (header.capacity.div_ceil(header.grain_size).div_ceil(per_gt) * 4)
                    .div_ceil(SECTOR);
                let expected = match kind {
                    MARKER_GT => gt_sectors,
                    MARKER_GD => gd_sectors,
                    MARKER_FOOTER => 1,
                    _ => 0,
                };
                if num_sectors != expected {
                    return Err(bad(format!(
                        "marker of type {kind} at sector {at} announces {num_sectors} sectors, expected {expected}"
                    )));
                }
                match kind {
                    MARKER_EOS => {
                        has_eos = true;
                        let mut extra = [0u8; 1];
                        if r.read_full(&mut extra, "end")? {
                            return Err(bad(format!(
                                "data follows the end-of-stream marker at sector {at}"
                            )));
                        }
                        break;
                    }
                    MARKER_GT => {
                        let body = r.need_vec(num_sectors * SECTOR, "grain table")?;
                        tables.push((at + 1, le_u32s(&body)));
                    }
                    MARKER_GD => {
                        let body = r.need_vec(num_sectors * SECTOR, "grain directory")?;
                        gd = Some((at + 1, le_u32s(&body)));
                    }
                    MARKER_FOOTER => {
                        let mut f = [0u8; 512];
                        r.need(&mut f, "footer")?;
                        let f = SparseHeader::parse(&f).map_err(|e| bad(format!("footer: {e}")))?;
                        footer = Some(f);
                    }
                    other => {
                        return Err(bad(format!("unknown marker type {other} at sector {at}")));
                    }
                }
            }
        }
    }

    // The directory and tables must describe exactly the grains in the stream.
    let has_gd = gd.is_some();
    if let Some(f) = &footer {
        if f.capacity != header.capacity || f.grain_size != header.grain_size {
            return Err(bad(
                "the footer disagrees with the header on capacity or grain size",
            ));
        }
        let gd_sector = gd.as_ref().map(|g| g.0);
        if header.gd_offset == GD_AT_END && Some(f.gd_offset) != gd_sector {
            return Err(bad(format!(
                "the footer points at sector {} for the grain directory, which is at {:?}",
                f.gd_offset, gd_sector
            )));
        }
    }
    if let Some((_, gd_entries)) = &gd {
        let per_gt = header.num_gtes_per_gt as u64;
        let mut referenced = 0u64;
        for (i, &gt_sector) in gd_entries.iter().enumerate() {
            if gt_sector == 0 {
                continue;
            }
            let Some((_, gt)) = tables.iter().find(|(s, _)| *s == gt_sector as u64) else {
                return Err(bad(format!(
                    "grain directory entry {i} points at sector {gt_sector}, where no grain table is"
                )));
            };
            for (j, &gte) in gt.iter().enumerate().take(per_gt as usize) {
                if gte == 0 {
                    continue;
                }
                let lba = (i as u64 * per_gt + j as u64) * header.grain_size;
                match grains_at.binary_search_by_key(&(gte as u64), |g| g.0) {
                    Ok(k) if grains_at[k].1 == lba => referenced += 1,
                    _ => {
                        return Err(bad(format!(
                            "grain table entry for LBA {lba} points at sector {gte}, where that grain is not"
                        )));
                    }
                }
            }
        }
        if referenced != grains_at.len() as u64 {
            return Err(bad(format!(
                "{} grains in the stream but {referenced} referenced by the grain tables",
                grains_at.len()
            )));
        }
    }

    Ok(VmdkInfo {
        capacity_bytes,
        create_type: descriptor.create_type.clone(),
        adapter_type: descriptor.ddb("ddb.adapterType").map(str::to_string),
        header,
        footer,
        descriptor,
        descriptor_text,
        grains: grains_at.len() as u64,
        populated_bytes: populated,
        grain_tables: tables.len() as u64,
        has_grain_directory: has_gd,
        has_end_of_stream: has_eos,
        stream_bytes: r.pos,
    })
}

fn le_u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
