//! The stream-optimized VMDK writer.
//!
//! Layout, as VMware writes it ("Virtual Disk Format 5.0", stream-optimized compressed sparse
//! extent): header (version 3, flags 0x30001, `gdOffset = GD_AT_END`), embedded descriptor, then
//! for every non-zero 64 KiB grain a grain marker `{lba, size}` followed by its zlib-wrapped
//! deflate data, padded to a sector; after the grains of each grain table, a GT marker and the
//! table; at the end a GD marker and the grain directory, a footer marker and the footer (the
//! header with the real `gdOffset`), and the end-of-stream marker.
//!
//! Pipeline: one thread reads the input once, in LBA order, in batches of grains; all cores
//! compress batches; the calling thread writes them back in LBA order. A fixed pool of batch
//! buffers bounds the memory: the reader cannot run more than `window` batches ahead of the
//! writer, whatever the disk size.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::str::FromStr;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use libdeflater::{CompressionLvl, Compressor};
use sha2::{Digest, Sha256};

use super::header::{
    COMPRESS_DEFLATE, FLAG_COMPRESSED, FLAG_MARKERS, FLAG_VALID_NEWLINE, GD_AT_END, MARKER_EOS,
    MARKER_FOOTER, MARKER_GD, MARKER_GT, SECTOR, SparseHeader, marker,
};
use crate::error::ImageError;
use crate::source::{DiskSource, Extent};

/// Grain size in sectors (64 KiB grains).
pub const GRAIN_SECTORS: u64 = 128;
const GRAIN_BYTES: u64 = GRAIN_SECTORS * SECTOR;
/// Grain table entries per grain table.
pub const GTES_PER_GT: u64 = 512;
/// The largest disk we write (VMware's limit is 62 TB); keeps the grain directory small.
const MAX_CAPACITY: u64 = 64 << 40;
/// Grains per work batch (1 MiB of input).
const BATCH_GRAINS: usize = 16;
/// The libdeflate level, chosen by measurement (docs/benchmarks/vmdk.md).
pub const DEFAULT_LEVEL: i32 = 6;

/// `ddb.adapterType`: the controller the disk is attached to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdapterType {
    Ide,
    BusLogic,
    #[default]
    LsiLogic,
    LsiSas1068,
    Pvscsi,
}

impl AdapterType {
    pub const ALL: [AdapterType; 5] = [
        AdapterType::Ide,
        AdapterType::BusLogic,
        AdapterType::LsiLogic,
        AdapterType::LsiSas1068,
        AdapterType::Pvscsi,
    ];

    /// The descriptor spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterType::Ide => "ide",
            AdapterType::BusLogic => "buslogic",
            AdapterType::LsiLogic => "lsilogic",
            AdapterType::LsiSas1068 => "lsisas1068",
            AdapterType::Pvscsi => "pvscsi",
        }
    }
}

impl fmt::Display for AdapterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AdapterType {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AdapterType::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ImageError::InvalidOption(format!(
                    "adapter type {s:?} (expected one of: ide, buslogic, lsilogic, lsisas1068, pvscsi)"
                ))
            })
    }
}

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

struct Batch {
    seq: u64,
    /// Grain index of each grain in `data` (consecutive runs, one grain table).
    grains: Vec<u64>,
    /// Valid bytes of each grain (less than a grain only at the end of the disk).
    lens: Vec<usize>,
    data: Vec<u8>,
    /// Compressed grain records, each sector-aligned.
    out: Vec<u8>,
    /// (grain index, sector offset inside `out`, position in `data`) of each written grain.
    written: Vec<(u64, u64, usize)>,
    populated: u64,
    /// Virtual-disk offset reached after this batch (progress).
    done: u64,
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
}

/// Geometry VMware uses for the adapter: (cylinders, heads, sectors).
pub fn geometry(adapter: AdapterType, capacity_sectors: u64) -> (u64, u64, u64) {
    let (heads, sectors, max_cyl) = match adapter {
        AdapterType::Ide => (16, 63, 16383),
        _ => (255, 63, 65535),
    };
    let cyl = capacity_sectors.div_ceil(heads * sectors).min(max_cyl);
    (cyl, heads, sectors)
}

fn sanitize_file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    if clean.trim().is_empty() {
        "disk.vmdk".into()
    } else {
        clean
    }
}

/// How much of the start of the disk the content IDs hash.
const ID_PREFIX_BYTES: u64 = 16 << 20;

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

/// Renders the embedded descriptor.
pub fn render_descriptor(
    capacity_sectors: u64,
    cid: u32,
    long_cid: &str,
    opts: &VmdkOptions,
) -> String {
    let (c, h, s) = geometry(opts.adapter_type, capacity_sectors);
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         encoding=\"UTF-8\"\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {capacity_sectors} SPARSE \"{name}\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.adapterType = \"{adapter}\"\n\
         ddb.geometry.cylinders = \"{c}\"\n\
         ddb.geometry.heads = \"{h}\"\n\
         ddb.geometry.sectors = \"{s}\"\n\
         ddb.longContentID = \"{long_cid}\"\n\
         ddb.toolsInstallType = \"4\"\n\
         ddb.toolsVersion = \"{tools}\"\n\
         ddb.virtualHWVersion = \"{hw}\"\n",
        name = sanitize_file_name(&opts.file_name),
        adapter = opts.adapter_type,
        tools = opts.tools_version,
        hw = opts.hw_version,
    )
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

/// Writes `source` as a stream-optimized VMDK to `out`, calling `progress(done, total)` (bytes
/// of the virtual disk) as it goes. `out` receives one sequential stream (no seeking), so it
/// may be a hashing writer, a pipe or a file.
pub fn write_stream_optimized<W: Write>(
    source: &mut dyn DiskSource,
    out: &mut W,
    options: &VmdkOptions,
    progress: &dyn Fn(u64, u64),
) -> Result<VmdkReport, ImageError> {
    let level = CompressionLvl::new(options.level).map_err(|_| {
        ImageError::InvalidOption(format!(
            "compression level {} (expected 1 to 12)",
            options.level
        ))
    })?;
    let virtual_size = source.virtual_size();
    let capacity_sectors = virtual_size.div_ceil(SECTOR);
    let capacity_bytes = capacity_sectors * SECTOR;
    let num_grains = capacity_sectors.div_ceil(GRAIN_SECTORS);
    let num_gts = num_grains.div_ceil(GTES_PER_GT);
    if capacity_bytes > MAX_CAPACITY {
        return Err(ImageError::TooLarge(format!(
            "a {virtual_size}-byte disk is larger than a VMDK can hold (64 TiB)"
        )));
    }
    let extents = source.extents()?;
    let desc_len = render_descriptor(capacity_sectors, 0, &"0".repeat(32), options).len();
    let desc_sectors = (desc_len as u64).div_ceil(SECTOR).max(20);
    let overhead = (1 + desc_sectors).div_ceil(GRAIN_SECTORS) * GRAIN_SECTORS;

    let mut w = StreamWriter {
        out: Out {
            inner: out,
            bytes: 0,
        },
        header: SparseHeader {
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
        },
        ids: Some(IdHasher::new(capacity_bytes, options)),
        held: Vec::new(),
        options,
        gd: vec![0u32; num_gts as usize],
        gt: vec![0u32; GTES_PER_GT as usize],
        gt_index: None,
        populated: 0,
        grains: 0,
    };

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // At least enough batches to hold the ID prefix back without stalling the reader.
    let window =
        (threads * 4).max(ID_PREFIX_BYTES.div_ceil(GRAIN_BYTES) as usize / BATCH_GRAINS + 2);

    let grain_list = GrainIter::new(&extents);
    let result: Result<(), ImageError> = std::thread::scope(|scope| {
        let (pool_tx, pool_rx) = bounded::<Batch>(window);
        for _ in 0..window {
            let _ = pool_tx.send(Batch::new());
        }
        let (work_tx, work_rx) = bounded::<Batch>(window);
        let (done_tx, done_rx) = unbounded::<Result<Batch, ImageError>>();

        {
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                read_batches(source, grain_list, virtual_size, pool_rx, work_tx, done_tx)
            });
        }
        for _ in 0..threads {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || compress_batches(level, work_rx, done_tx));
        }
        drop(work_rx);
        drop(done_tx);

        // Everything below runs on the calling thread; returning drops the channels, which
        // stops the other threads.
        let mut pending: BTreeMap<u64, Batch> = BTreeMap::new();
        let mut next = 0u64;
        let done_rx: Receiver<Result<Batch, ImageError>> = done_rx;
        let pool_tx: Sender<Batch> = pool_tx;
        for msg in done_rx.iter() {
            let batch = msg?;
            pending.insert(batch.seq, batch);
            while let Some(batch) = pending.remove(&next) {
                next += 1;
                for b in w.accept(batch)? {
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
    });
    result?;
    w.start_if_held()?;
    if let Some(i) = w.gt_index {
        flush_gt(&mut w.out, &mut w.gt, &mut w.gd[i as usize])?;
    }
    let StreamWriter {
        mut out,
        mut header,
        gd,
        populated,
        grains,
        ..
    } = w;

    // Grain directory, footer, end-of-stream marker.
    let gd_bytes: Vec<u8> = gd.iter().flat_map(|e| e.to_le_bytes()).collect();
    let gd_sectors = (gd_bytes.len() as u64).div_ceil(SECTOR);
    out.put(&marker(gd_sectors, MARKER_GD))?;
    header.gd_offset = out.sector();
    let mut padded = gd_bytes;
    padded.resize((gd_sectors * SECTOR) as usize, 0);
    out.put(&padded)?;
    out.put(&marker(1, MARKER_FOOTER))?;
    out.put(&header.to_bytes())?;
    out.put(&marker(0, MARKER_EOS))?;
    out.inner.flush().map_err(ImageError::Write)?;
    progress(virtual_size, virtual_size);

    Ok(VmdkReport {
        capacity_bytes,
        populated_bytes: populated,
        output_bytes: out.bytes,
        grains,
    })
}

/// The calling thread's half of the pipeline: writes batches in LBA order and keeps the
/// grain table being filled and the grain directory.
struct StreamWriter<'a, 'o, W: Write> {
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

impl<W: Write> StreamWriter<'_, '_, W> {
    /// Takes the next batch in LBA order; returns the batches that are done with.
    fn accept(&mut self, batch: Batch) -> Result<Vec<Batch>, ImageError> {
        let Some(ids) = self.ids.as_mut() else {
            self.write_batch(&batch)?;
            return Ok(vec![batch]);
        };
        let g = GRAIN_BYTES as usize;
        for &(grain, _, i) in &batch.written {
            if grain * GRAIN_BYTES < ID_PREFIX_BYTES {
                ids.grain(grain, &batch.data[i * g..i * g + batch.lens[i]]);
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
                if let Some(i) = self.gt_index {
                    flush_gt(&mut self.out, &mut self.gt, &mut self.gd[i as usize])?;
                }
                self.gt_index = Some(this_gt);
            }
            let base = self.out.sector();
            for &(grain, sector, _) in &batch.written {
                self.gt[(grain % GTES_PER_GT) as usize] =
                    u32::try_from(base + sector).map_err(|_| {
                        ImageError::TooLarge(
                            "the VMDK would exceed 2 TiB of compressed data".into(),
                        )
                    })?;
            }
            self.out.put(&batch.out)?;
            self.grains += batch.written.len() as u64;
        }
        self.populated += batch.populated;
        Ok(())
    }
}

fn flush_gt<W: Write>(
    out: &mut Out<'_, W>,
    gt: &mut [u32],
    gd_entry: &mut u32,
) -> Result<(), ImageError> {
    if gt.iter().all(|e| *e == 0) {
        return Ok(());
    }
    let table: Vec<u8> = gt.iter().flat_map(|e| e.to_le_bytes()).collect();
    let sectors = (table.len() as u64).div_ceil(SECTOR);
    out.put(&marker(sectors, MARKER_GT))?;
    *gd_entry = u32::try_from(out.sector()).map_err(|_| {
        ImageError::TooLarge("the VMDK would exceed 2 TiB of compressed data".into())
    })?;
    out.put(&table)?;
    gt.fill(0);
    Ok(())
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
    fn geometry_matches_vmware() {
        assert_eq!(geometry(AdapterType::LsiLogic, 20971520), (1306, 255, 63));
        assert_eq!(geometry(AdapterType::Ide, 20971520), (16383, 16, 63));
        assert_eq!(geometry(AdapterType::Pvscsi, 1 << 40), (65535, 255, 63));
    }

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
    fn adapter_types_parse() {
        assert_eq!(
            "LsiLogic".parse::<AdapterType>().unwrap(),
            AdapterType::LsiLogic
        );
        assert!("scsi".parse::<AdapterType>().is_err());
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
