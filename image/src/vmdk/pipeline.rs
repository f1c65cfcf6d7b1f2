//! The read/compress half of the writer: one thread reads the input once, in LBA order, in
//! batches of grains; all cores compress batches; the calling thread gets them back in LBA
//! order. A fixed pool of batch buffers bounds the memory: the reader cannot run more than
//! `window` batches ahead of the writer, whatever the disk size.

use std::collections::BTreeMap;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use libdeflater::{CompressionLvl, Compressor};

use super::header::SECTOR;
use super::writer::{GRAIN_BYTES, GRAIN_SECTORS, GTES_PER_GT};
use crate::error::ImageError;
use crate::source::{DiskSource, Extent};

/// Grains per work batch (1 MiB of input).
pub(super) const BATCH_GRAINS: usize = 16;

/// A run of grains of one grain table, read and then compressed.
pub(super) struct Batch {
    seq: u64,
    /// Grain index of each grain in `data` (consecutive runs, one grain table).
    grains: Vec<u64>,
    /// Valid bytes of each grain (less than a grain only at the end of the disk).
    pub(super) lens: Vec<usize>,
    pub(super) data: Vec<u8>,
    /// Compressed grain records, each sector-aligned.
    pub(super) out: Vec<u8>,
    /// (grain index, sector offset inside `out`, position in `data`) of each written grain.
    pub(super) written: Vec<(u64, u64, usize)>,
    pub(super) populated: u64,
    /// Virtual-disk offset reached after this batch (progress).
    pub(super) done: u64,
}

impl Batch {
    fn new() -> Self {
        Batch {
            seq: 0,
            grains: Vec::with_capacity(BATCH_GRAINS),
            lens: Vec::with_capacity(BATCH_GRAINS),
            data: vec![0; BATCH_GRAINS * GRAIN_BYTES as usize],
            out: Vec::new(),
            written: Vec::with_capacity(BATCH_GRAINS),
            populated: 0,
            done: 0,
        }
    }

    /// The valid bytes of the `i`-th grain of the batch.
    pub(super) fn grain_data(&self, i: usize) -> &[u8] {
        let g = GRAIN_BYTES as usize;
        &self.data[i * g..i * g + self.lens[i]]
    }
}

/// How the pipeline runs.
pub(super) struct Settings {
    pub(super) level: CompressionLvl,
    /// Compression threads (at least 1).
    pub(super) threads: usize,
    /// Batch buffers in flight.
    pub(super) window: usize,
}

/// Reads the grains of `extents` from `source`, compresses them on `settings.threads` threads
/// and hands each batch to `accept` in LBA order. `accept` returns the batches it is done
/// with; their buffers are reused, and `progress(done, virtual size)` is called for each.
pub(super) fn run(
    source: &mut dyn DiskSource,
    extents: &[Extent],
    settings: &Settings,
    mut accept: impl FnMut(Batch) -> Result<Vec<Batch>, ImageError>,
    progress: &dyn Fn(u64, u64),
) -> Result<(), ImageError> {
    let virtual_size = source.virtual_size();
    let grain_list = GrainIter::new(extents);
    std::thread::scope(|scope| {
        let (pool_tx, pool_rx) = bounded::<Batch>(settings.window);
        for _ in 0..settings.window {
            let _ = pool_tx.send(Batch::new());
        }
        let (work_tx, work_rx) = bounded::<Batch>(settings.window);
        let (done_tx, done_rx) = unbounded::<Result<Batch, ImageError>>();

        {
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                read_batches(source, grain_list, virtual_size, pool_rx, work_tx, done_tx)
            });
        }
        for _ in 0..settings.threads {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let level = settings.level;
            scope.spawn(move || compress_batches(level, work_rx, done_tx));
        }
        drop(work_rx);
        drop(done_tx);

        // Everything below runs on the calling thread; returning drops the channels, which
        // stops the other threads.
        let mut pending: BTreeMap<u64, Batch> = BTreeMap::new();
        let mut next = 0u64;
        for msg in done_rx.iter() {
            let batch = msg?;
            pending.insert(batch.seq, batch);
            while let Some(batch) = pending.remove(&next) {
                next += 1;
                for b in accept(batch)? {
                    progress(b.done.min(virtual_size), virtual_size);
                    let _ = pool_tx.send(b);
                }
            }
        }
        if !pending.is_empty() {
            return Err(ImageError::Write(std::io::Error::other(
                "internal error: the compression pipeline lost a batch",
            )));
        }
        Ok(())
    })
}

/// The grains that intersect the allocated extents, in order, each once.
struct GrainIter<'a> {
    extents: &'a [Extent],
    i: usize,
    next: u64,
}

impl<'a> GrainIter<'a> {
    fn new(extents: &'a [Extent]) -> Self {
        GrainIter {
            extents,
            i: 0,
            next: 0,
        }
    }
}

impl Iterator for GrainIter<'_> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        loop {
            let e = self.extents.get(self.i)?;
            let first = e.offset / GRAIN_BYTES;
            let last = (e.end() - 1) / GRAIN_BYTES;
            let g = self.next.max(first);
            if g <= last {
                self.next = g + 1;
                return Some(g);
            }
            self.i += 1;
        }
    }
}

fn read_batches(
    source: &mut dyn DiskSource,
    mut grains: GrainIter<'_>,
    virtual_size: u64,
    pool: Receiver<Batch>,
    work: Sender<Batch>,
    done: Sender<Result<Batch, ImageError>>,
) {
    let mut seq = 0u64;
    let mut carry: Option<u64> = grains.next();
    while let Some(first) = carry {
        let Ok(mut batch) = pool.recv() else { return };
        batch.seq = seq;
        seq += 1;
        batch.grains.clear();
        batch.lens.clear();
        let gt = first / GTES_PER_GT;
        batch.grains.push(first);
        carry = None;
        for g in grains.by_ref() {
            if g / GTES_PER_GT != gt || batch.grains.len() == BATCH_GRAINS {
                carry = Some(g);
                break;
            }
            batch.grains.push(g);
        }
        if let Err(e) = fill(source, &mut batch, virtual_size) {
            let _ = done.send(Err(e));
            return;
        }
        if work.send(batch).is_err() {
            return;
        }
    }
}

/// Reads the batch's grains, one read per run of consecutive grains; zero-fills past the end.
fn fill(
    source: &mut dyn DiskSource,
    batch: &mut Batch,
    virtual_size: u64,
) -> Result<(), ImageError> {
    let g = GRAIN_BYTES as usize;
    let n = batch.grains.len();
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && batch.grains[j] == batch.grains[j - 1] + 1 {
            j += 1;
        }
        let start = batch.grains[i] * GRAIN_BYTES;
        let end = (batch.grains[j - 1] + 1) * GRAIN_BYTES;
        let valid = end.min(virtual_size) - start;
        let buf = &mut batch.data[i * g..j * g];
        source.read_at(start, &mut buf[..valid as usize])?;
        buf[valid as usize..].fill(0);
        i = j;
    }
    let capacity = virtual_size.div_ceil(SECTOR) * SECTOR;
    for &grain in &batch.grains {
        let start = grain * GRAIN_BYTES;
        batch
            .lens
            .push((capacity.min(start + GRAIN_BYTES) - start) as usize);
    }
    batch.done = (batch.grains[n - 1] + 1) * GRAIN_BYTES;
    Ok(())
}

fn is_zero(b: &[u8]) -> bool {
    let chunks = b.chunks_exact(64);
    let rest = chunks.remainder();
    chunks.into_iter().all(|c| {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            acc |= u64::from_ne_bytes(a);
        }
        acc == 0
    }) && rest.iter().all(|x| *x == 0)
}

/// Deflates one grain into `out` (zlib-wrapped); returns the compressed length.
///
/// Incompressible grains (compressed or encrypted data) are the most expensive to deflate and
/// gain nothing, so a 4 KiB probe at level 1 decides: when the probe does not shrink, the whole
/// grain is deflated at level 1, which stores it as compactly as any level would; only if that
/// unexpectedly shrinks it is the grain deflated again at the chosen level.
fn deflate_grain(
    best: &mut Compressor,
    fast: &mut Compressor,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, libdeflater::CompressionError> {
    const PROBE: usize = 4096;
    if data.len() > 2 * PROBE {
        let mut probe = [0u8; PROBE + 64];
        let n = fast.zlib_compress(&data[..PROBE], &mut probe)?;
        if n * 100 >= PROBE * 97 {
            let n = fast.zlib_compress(data, out)?;
            if n * 100 >= data.len() * 97 {
                return Ok(n);
            }
        }
    }
    best.zlib_compress(data, out)
}

fn compress_batches(
    level: CompressionLvl,
    work: Receiver<Batch>,
    done: Sender<Result<Batch, ImageError>>,
) {
    let mut c = Compressor::new(level);
    let mut fast = Compressor::new(CompressionLvl::new(1).unwrap_or(level));
    let g = GRAIN_BYTES as usize;
    for mut batch in work.iter() {
        batch.out.clear();
        batch.written.clear();
        batch.populated = 0;
        let bound = c.zlib_compress_bound(g).max(fast.zlib_compress_bound(g));
        for (i, (&grain, &len)) in batch.grains.iter().zip(&batch.lens).enumerate() {
            let data = &batch.data[i * g..i * g + len];
            if is_zero(data) {
                continue;
            }
            let start = batch.out.len();
            batch.out.resize(start + 12 + bound, 0);
            let n = match deflate_grain(&mut c, &mut fast, data, &mut batch.out[start + 12..]) {
                Ok(n) => n,
                Err(e) => {
                    let _ = done.send(Err(ImageError::Write(std::io::Error::other(format!(
                        "deflate failed on grain {grain}: {e}"
                    )))));
                    return;
                }
            };
            batch.out[start..start + 8].copy_from_slice(&(grain * GRAIN_SECTORS).to_le_bytes());
            batch.out[start + 8..start + 12].copy_from_slice(&(n as u32).to_le_bytes());
            let record = ((12 + n) as u64).div_ceil(SECTOR) * SECTOR;
            batch.out.truncate(start + 12 + n);
            batch.out.resize(start + record as usize, 0);
            batch.written.push((grain, start as u64 / SECTOR, i));
            batch.populated += len as u64;
        }
        if done.send(Ok(batch)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grain_iter_visits_each_touched_grain_once() {
        let g = GRAIN_BYTES;
        let ex = [
            Extent {
                offset: 10,
                length: 5,
            },
            Extent {
                offset: g - 1,
                length: 2,
            },
            Extent {
                offset: 5 * g,
                length: 2 * g,
            },
        ];
        let got: Vec<u64> = GrainIter::new(&ex).collect();
        assert_eq!(got, vec![0, 1, 5, 6]);
    }

    #[test]
    fn zero_check() {
        let mut b = vec![0u8; 65536 + 3];
        assert!(is_zero(&b));
        b[65538] = 1;
        assert!(!is_zero(&b));
        b[65538] = 0;
        b[100] = 1;
        assert!(!is_zero(&b));
    }
}
