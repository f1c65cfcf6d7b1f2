//! The stream layout half of the writer: header and embedded descriptor, the compressed grain
//! records in LBA order, a grain table after the grains it maps, and at the end the grain
//! directory, the footer and the end-of-stream marker. Runs on the calling thread.

use std::io::Write;

use sha2::{Digest, Sha256};

use super::descriptor::render_descriptor;
use super::header::{
    MARKER_EOS, MARKER_FOOTER, MARKER_GD, MARKER_GT, SECTOR, SparseHeader, marker,
};
use super::pipeline::Batch;
use super::writer::{GRAIN_BYTES, GTES_PER_GT, VmdkOptions};
use crate::error::ImageError;

/// How much of the start of the disk the content IDs hash.
pub(super) const ID_PREFIX_BYTES: u64 = 16 << 20;

/// Hashes what the CID and long content ID derive from. A stream has to start with its
/// descriptor and the input is read once, so the IDs cannot hash the whole disk: they hash the
/// capacity, the options and the non-zero grains of the first 16 MiB (boot sector, partition
/// table, file-system superblocks with their UUIDs), which the writer holds back before
/// writing the header. Never the clock or a random source: same input, same bytes, whatever
/// the input format.
struct IdHasher(Sha256);

impl IdHasher {
    fn new(capacity: u64, opts: &VmdkOptions) -> Self {
        let mut h = Sha256::new();
        h.update(b"ova-builder streamOptimized v1");
        h.update(capacity.to_le_bytes());
        h.update(opts.adapter_type.as_str());
        h.update(opts.hw_version.to_le_bytes());
        h.update(opts.tools_version.to_le_bytes());
        IdHasher(h)
    }

    fn grain(&mut self, index: u64, data: &[u8]) {
        self.0.update(index.to_le_bytes());
        self.0.update(data);
    }

    fn finish(self) -> (u32, String) {
        let d = self.0.finalize();
        let mut cid = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
        if cid >= 0xffff_fffe {
            cid = 0x0fff_fffe; // ffffffff and fffffffe mean "no parent" / "invalid"
        }
        let long: String = d[4..16].iter().map(|b| format!("{b:02x}")).collect();
        (cid, format!("{long}{cid:08x}"))
    }
}

/// Counts what goes out and maps write errors.
struct Out<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write> Out<'_, W> {
    fn put(&mut self, b: &[u8]) -> Result<(), ImageError> {
        self.inner.write_all(b).map_err(ImageError::Write)?;
        self.bytes += b.len() as u64;
        Ok(())
    }

    fn sector(&self) -> u64 {
        self.bytes / SECTOR
    }
}

/// What the finished stream holds.
pub(super) struct Written {
    pub(super) output_bytes: u64,
    pub(super) populated_bytes: u64,
    pub(super) grains: u64,
}

/// Writes batches in LBA order and keeps the grain table being filled and the grain
/// directory.
pub(super) struct StreamWriter<'a, 'o, W: Write> {
    out: Out<'o, W>,
    header: SparseHeader,
    /// Until the header is written: the ID hash and the batches held back for it.
    ids: Option<IdHasher>,
    held: Vec<Batch>,
    options: &'a VmdkOptions,
    gd: Vec<u32>,
    gt: Vec<u32>,
    gt_index: Option<u64>,
    populated: u64,
    grains: u64,
}

impl<'a, 'o, W: Write> StreamWriter<'a, 'o, W> {
    /// A writer for a disk of `header.capacity` sectors; nothing is written before the
    /// first 16 MiB of the disk have been seen (the content IDs hash them).
    pub(super) fn new(out: &'o mut W, header: SparseHeader, options: &'a VmdkOptions) -> Self {
        let capacity_bytes = header.capacity * SECTOR;
        let num_gts = header
            .capacity
            .div_ceil(header.grain_size)
            .div_ceil(GTES_PER_GT);
        StreamWriter {
            out: Out {
                inner: out,
                bytes: 0,
            },
            header,
            ids: Some(IdHasher::new(capacity_bytes, options)),
            held: Vec::new(),
            options,
            gd: vec![0u32; num_gts as usize],
            gt: vec![0u32; GTES_PER_GT as usize],
            gt_index: None,
            populated: 0,
            grains: 0,
        }
    }

    /// Takes the next batch in LBA order; returns the batches that are done with.
    pub(super) fn accept(&mut self, batch: Batch) -> Result<Vec<Batch>, ImageError> {
        let Some(ids) = self.ids.as_mut() else {
            self.write_batch(&batch)?;
            return Ok(vec![batch]);
        };
        for &(grain, _, i) in &batch.written {
            if grain * GRAIN_BYTES < ID_PREFIX_BYTES {
                ids.grain(grain, batch.grain_data(i));
            }
        }
        let past_prefix = batch.done >= ID_PREFIX_BYTES;
        self.held.push(batch);
        if past_prefix {
            self.start_if_held()?;
            return Ok(std::mem::take(&mut self.held));
        }
        Ok(Vec::new())
    }

    /// Writes the header and descriptor (once), then the held-back batches.
    fn start_if_held(&mut self) -> Result<(), ImageError> {
        let Some(ids) = self.ids.take() else {
            return Ok(());
        };
        let (cid, long_cid) = ids.finish();
        let descriptor = render_descriptor(self.header.capacity, cid, &long_cid, self.options);
        self.out.put(&self.header.to_bytes())?;
        let mut lead = descriptor.into_bytes();
        lead.resize(((self.header.overhead - 1) * SECTOR) as usize, 0);
        self.out.put(&lead)?;
        let held = std::mem::take(&mut self.held);
        for b in &held {
            self.write_batch(b)?;
        }
        self.held = held;
        Ok(())
    }

    fn write_batch(&mut self, batch: &Batch) -> Result<(), ImageError> {
        if let Some(&(first, _, _)) = batch.written.first() {
            let this_gt = first / GTES_PER_GT;
            if self.gt_index != Some(this_gt) {
                self.flush_gt()?;
                self.gt_index = Some(this_gt);
            }
            let base = self.out.sector();
            for &(grain, sector, _) in &batch.written {
                self.gt[(grain % GTES_PER_GT) as usize] = sector_u32(base + sector)?;
            }
            self.out.put(&batch.out)?;
            self.grains += batch.written.len() as u64;
        }
        self.populated += batch.populated;
        Ok(())
    }

    /// Writes the grain table being filled (if it maps any grain) and notes it in the grain
    /// directory.
    fn flush_gt(&mut self) -> Result<(), ImageError> {
        let Some(i) = self.gt_index else {
            return Ok(());
        };
        if self.gt.iter().all(|e| *e == 0) {
            return Ok(());
        }
        let table: Vec<u8> = self.gt.iter().flat_map(|e| e.to_le_bytes()).collect();
        let sectors = (table.len() as u64).div_ceil(SECTOR);
        self.out.put(&marker(sectors, MARKER_GT))?;
        self.gd[i as usize] = sector_u32(self.out.sector())?;
        self.out.put(&table)?;
        self.gt.fill(0);
        Ok(())
    }

    /// Writes what is still held back, the last grain table, the grain directory, the footer
    /// and the end-of-stream marker.
    pub(super) fn finish(mut self) -> Result<Written, ImageError> {
        self.start_if_held()?;
        self.flush_gt()?;
        let gd_bytes: Vec<u8> = self.gd.iter().flat_map(|e| e.to_le_bytes()).collect();
        let gd_sectors = (gd_bytes.len() as u64).div_ceil(SECTOR);
        self.out.put(&marker(gd_sectors, MARKER_GD))?;
        self.header.gd_offset = self.out.sector();
        let mut padded = gd_bytes;
        padded.resize((gd_sectors * SECTOR) as usize, 0);
        self.out.put(&padded)?;
        self.out.put(&marker(1, MARKER_FOOTER))?;
        self.out.put(&self.header.to_bytes())?;
        self.out.put(&marker(0, MARKER_EOS))?;
        self.out.inner.flush().map_err(ImageError::Write)?;
        Ok(Written {
            output_bytes: self.out.bytes,
            populated_bytes: self.populated,
            grains: self.grains,
        })
    }
}

/// A sector number as a grain table or directory entry holds it.
fn sector_u32(sector: u64) -> Result<u32, ImageError> {
    u32::try_from(sector)
        .map_err(|_| ImageError::TooLarge("the VMDK would exceed 2 TiB of compressed data".into()))
}
