//! Reading VMDKs: a binary sparse extent (monolithicSparse, streamOptimized) or a text
//! descriptor whose extents are sparse files (twoGbMaxExtentSparse), flat files
//! (monolithicFlat, twoGbMaxExtentFlat) or zeros.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use libdeflater::Decompressor;

use super::descriptor::{self, Access, Descriptor, ExtentLine};
use super::header::{
    FLAG_COMPRESSED, FLAG_MARKERS, FLAG_ZEROED_GTE, GD_AT_END, MARKER_FOOTER, Marker, SECTOR,
    SparseHeader, parse_marker,
};
use crate::error::ImageError;
use crate::raw::data_ranges;
use crate::source::{DiskSource, Extent, normalize};
use crate::{Format, OpenOptions, VmdkKind};

const NAME: &str = "VMDK";

/// A VMDK opened for reading.
pub struct VmdkSource {
    kind: VmdkKind,
    size: u64,
    pieces: Vec<Piece>,
}

/// One extent of the descriptor, placed at `start` on the virtual disk.
struct Piece {
    start: u64,
    len: u64,
    data: PieceData,
}

enum PieceData {
    Zero,
    Flat {
        file: File,
        path: PathBuf,
        offset: u64,
    },
    Sparse(Box<SparseExtent>),
}

/// A hosted sparse extent file (header, grain directory, grain tables, grains).
struct SparseExtent {
    file: File,
    path: PathBuf,
    file_len: u64,
    grain_bytes: u64,
    capacity_bytes: u64,
    compressed: bool,
    zeroed_gte: bool,
    /// Per grain table: its entries, or `None` when it has no allocated grain.
    tables: Vec<Option<Box<[u32]>>>,
    per_gt: u64,
    cache_grain: Option<u64>,
    cache: Vec<u8>,
    compressed_buf: Vec<u8>,
    inflater: Decompressor,
}

fn bad(path: &Path, detail: impl Into<String>) -> ImageError {
    ImageError::corrupt(path, NAME, detail)
}

fn unsupported(path: &Path, detail: impl Into<String>) -> ImageError {
    ImageError::unsupported(path, NAME, detail)
}

fn read_exact(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    at: u64,
    what: &str,
) -> Result<(), ImageError> {
    file.read_exact_at(buf, at).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(
                path,
                format!("the file ends inside the {what} at byte {at} (truncated?)"),
            )
        } else {
            ImageError::io(path, "read", e)
        }
    })
}

fn file_len(file: &File, path: &Path) -> Result<u64, ImageError> {
    Ok(file
        .metadata()
        .map_err(|e| ImageError::io(path, "stat", e))?
        .len())
}

/// The grain tables of a sparse extent, by grain directory entry (`None`: no table, or one
/// that maps nothing).
type GrainTables = Vec<Option<Box<[u32]>>>;

impl SparseExtent {
    fn open(file: File, path: &Path) -> Result<(Self, SparseHeader), ImageError> {
        let len = file_len(&file, path)?;
        let header = read_sparse_header(&file, path, len)?;
        let tables = read_grain_tables(&file, path, len, &header)?;
        let grain_bytes = header.grain_size * SECTOR;
        Ok((
            SparseExtent {
                file,
                path: path.to_path_buf(),
                file_len: len,
                grain_bytes,
                capacity_bytes: header.capacity * SECTOR,
                compressed: header.flags & FLAG_COMPRESSED != 0,
                zeroed_gte: header.flags & FLAG_ZEROED_GTE != 0,
                tables,
                per_gt: u64::from(header.num_gtes_per_gt),
                cache_grain: None,
                cache: vec![0; grain_bytes as usize],
                compressed_buf: Vec::new(),
                inflater: Decompressor::new(),
            },
            header,
        ))
    }

    /// Grain table entry: `None` for unallocated or zeroed grains, else the grain's sector.
    fn gte(&self, grain: u64) -> Option<u64> {
        let t = self.tables.get((grain / self.per_gt) as usize)?.as_ref()?;
        let e = u64::from(t[(grain % self.per_gt) as usize]);
        match e {
            0 => None,
            1 if self.zeroed_gte => None,
            e => Some(e),
        }
    }

    fn extents(&self) -> Vec<Extent> {
        let mut out = Vec::new();
        for (t, table) in self.tables.iter().enumerate() {
            let Some(table) = table else { continue };
            for j in 0..table.len() as u64 {
                let grain = t as u64 * self.per_gt + j;
                if self.gte(grain).is_some() {
                    let offset = grain * self.grain_bytes;
                    if offset < self.capacity_bytes {
                        out.push(Extent {
                            offset,
                            length: self.grain_bytes,
                        });
                    }
                }
            }
        }
        normalize(out, self.capacity_bytes)
    }

    fn load_compressed(&mut self, grain: u64, sector: u64) -> Result<(), ImageError> {
        if self.cache_grain == Some(grain) {
            return Ok(());
        }
        let at = sector * SECTOR;
        let mut head = [0u8; 12];
        read_exact(&self.file, &self.path, &mut head, at, "grain marker")?;
        let mut m = [0u8; 512];
        m[..12].copy_from_slice(&head);
        let Marker::Grain { lba, size } = parse_marker(&m) else {
            return Err(bad(
                &self.path,
                format!("grain {grain} points at sector {sector}, where no grain is"),
            ));
        };
        let lba_expected = grain * self.grain_bytes / SECTOR;
        if lba != lba_expected {
            return Err(bad(
                &self.path,
                format!(
                    "the grain at sector {sector} has LBA {lba}; its table entry says {lba_expected}"
                ),
            ));
        }
        if u64::from(size) > 2 * self.grain_bytes + 1024 {
            return Err(bad(
                &self.path,
                format!("the grain at sector {sector} claims {size} compressed bytes"),
            ));
        }
        if at + 12 + u64::from(size) > self.file_len {
            return Err(bad(
                &self.path,
                format!(
                    "the grain at sector {sector} (LBA {lba}) lies beyond the end of the {}-byte file (truncated?)",
                    self.file_len
                ),
            ));
        }
        self.compressed_buf.resize(size as usize, 0);
        read_exact(
            &self.file,
            &self.path,
            &mut self.compressed_buf,
            at + 12,
            "grain",
        )?;
        self.cache_grain = None;
        let n = self
            .inflater
            .zlib_decompress(&self.compressed_buf, &mut self.cache)
            .map_err(|e| {
                bad(
                    &self.path,
                    format!("grain at sector {sector} (LBA {lba}) does not inflate: {e}"),
                )
            })?;
        self.cache[n..].fill(0);
        self.cache_grain = Some(grain);
        Ok(())
    }

    fn read(&mut self, mut offset: u64, mut buf: &mut [u8]) -> Result<(), ImageError> {
        while !buf.is_empty() {
            let grain = offset / self.grain_bytes;
            let within = offset % self.grain_bytes;
            let n = ((self.grain_bytes - within) as usize).min(buf.len());
            let (now, rest) = buf.split_at_mut(n);
            match self.gte(grain) {
                None => now.fill(0),
                Some(sector) if self.compressed => {
                    self.load_compressed(grain, sector)?;
                    now.copy_from_slice(&self.cache[within as usize..within as usize + n]);
                }
                Some(sector) => {
                    let at = sector * SECTOR + within;
                    if at + n as u64 > self.file_len {
                        return Err(bad(
                            &self.path,
                            format!(
                                "grain {grain} at sector {sector} lies beyond the end of the file"
                            ),
                        ));
                    }
                    read_exact(&self.file, &self.path, now, at, "grain")?;
                }
            }
            buf = rest;
            offset += n as u64;
        }
        Ok(())
    }
}

/// The header of a sparse extent; for a stream-optimized one (`gdOffset = GD_AT_END`), with
/// the grain directory offset and table size of its footer.
fn read_sparse_header(file: &File, path: &Path, len: u64) -> Result<SparseHeader, ImageError> {
    let mut b = [0u8; 512];
    read_exact(file, path, &mut b, 0, "header")?;
    let mut header = SparseHeader::parse(&b).map_err(|e| bad(path, e.to_string()))?;
    check_readable(&header, path, "")?;
    if header.gd_offset == GD_AT_END {
        // Stream-optimized: the footer near the end holds the real grain directory offset.
        let footer = find_footer(file, path, len)?;
        if footer.capacity != header.capacity || footer.grain_size != header.grain_size {
            return Err(bad(
                path,
                "the footer disagrees with the header on capacity or grain size",
            ));
        }
        header.gd_offset = footer.gd_offset;
        header.num_gtes_per_gt = footer.num_gtes_per_gt;
        // The footer's values replace the header's: check them the same way.
        check_readable(&header, path, "footer: ")?;
    }
    Ok(header)
}

/// The grain directory and every grain table it points at, each inside the file.
fn read_grain_tables(
    file: &File,
    path: &Path,
    len: u64,
    header: &SparseHeader,
) -> Result<GrainTables, ImageError> {
    let per_gt = u64::from(header.num_gtes_per_gt);
    let num_grains = header.capacity.div_ceil(header.grain_size);
    let num_gts = num_grains.div_ceil(per_gt);
    let gd_bytes = num_gts * 4;
    let gd_at = header.gd_offset.checked_mul(SECTOR).filter(|o| *o > 0);
    let Some(gd_at) = gd_at.filter(|o| o.saturating_add(gd_bytes) <= len) else {
        return Err(bad(
            path,
            format!(
                "the grain directory ({num_gts} entries at sector {}) lies outside the {len}-byte file",
                header.gd_offset
            ),
        ));
    };
    let mut gd = vec![0u8; gd_bytes as usize];
    read_exact(file, path, &mut gd, gd_at, "grain directory")?;
    let mut tables = Vec::with_capacity(num_gts as usize);
    // Every allocated grain needs at least a sector of the file; more means the tables
    // alias each other (a decompression bomb), not a real disk.
    let max_grains = len / SECTOR;
    let mut allocated = 0u64;
    let zeroed_gte = header.flags & FLAG_ZEROED_GTE != 0;
    let mut gt_raw = vec![0u8; (per_gt * 4) as usize];
    for (i, e) in gd.chunks_exact(4).enumerate() {
        let gt_sector = u64::from(u32::from_le_bytes([e[0], e[1], e[2], e[3]]));
        if gt_sector == 0 {
            tables.push(None);
            continue;
        }
        let at = gt_sector * SECTOR;
        if at.saturating_add(per_gt * 4) > len {
            return Err(bad(
                path,
                format!("grain table {i} at sector {gt_sector} lies outside the {len}-byte file"),
            ));
        }
        read_exact(file, path, &mut gt_raw, at, "grain table")?;
        let entries: Box<[u32]> = gt_raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        allocated += entries
            .iter()
            .filter(|e| **e > 1 || (**e == 1 && !zeroed_gte))
            .count() as u64;
        if allocated > max_grains {
            return Err(bad(
                path,
                format!(
                    "the grain tables allocate more grains than the {len}-byte file can hold (tables overlap?)"
                ),
            ));
        }
        tables.push(entries.iter().any(|e| *e != 0).then_some(entries));
    }
    Ok(tables)
}

/// The header checks every reader depends on, as an unsupported or corrupt error.
fn check_readable(header: &SparseHeader, path: &Path, prefix: &str) -> Result<(), ImageError> {
    header.check_readable().map_err(|e| {
        if e.is_unsupported() {
            unsupported(path, format!("{prefix}{e}"))
        } else {
            bad(path, format!("{prefix}{e}"))
        }
    })
}

/// Finds the stream-optimized footer: VMware ends the file with footer marker, footer and
/// end-of-stream marker; older qemu-img versions leave out the end-of-stream marker.
fn find_footer(file: &File, path: &Path, len: u64) -> Result<SparseHeader, ImageError> {
    for tail in [1536u64, 1024] {
        if len < tail + 512 {
            continue;
        }
        let mut b = [0u8; 1024];
        read_exact(file, path, &mut b, len - tail, "footer")?;
        let is_marker = matches!(
            parse_marker(&b[..512]),
            Marker::Meta {
                kind: MARKER_FOOTER,
                ..
            }
        );
        let mut f = [0u8; 512];
        f.copy_from_slice(&b[512..]);
        if is_marker && SparseHeader::has_magic(&f) {
            return SparseHeader::parse(&f).map_err(|e| bad(path, format!("footer: {e}")));
        }
    }
    Err(bad(
        path,
        "no footer at the end of the stream-optimized file (truncated or not finished writing?)",
    ))
}

impl VmdkSource {
    /// Opens a binary sparse extent (monolithicSparse or streamOptimized).
    pub fn open_sparse(file: File, path: &Path) -> Result<Self, ImageError> {
        let (extent, header) = SparseExtent::open(file, path)?;
        let kind = if header.flags & FLAG_MARKERS != 0 {
            VmdkKind::StreamOptimized
        } else {
            VmdkKind::MonolithicSparse
        };
        // A split disk's extent alone is only part of a disk.
        if header.descriptor_offset > 0
            && header.descriptor_size > 0
            && header.descriptor_size < 2048
        {
            let mut d = vec![0u8; (header.descriptor_size * SECTOR) as usize];
            if extent
                .file
                .read_exact_at(&mut d, header.descriptor_offset * SECTOR)
                .is_ok()
            {
                let end = d.iter().position(|b| *b == 0).unwrap_or(d.len());
                if let Ok(desc) = descriptor::parse(&String::from_utf8_lossy(&d[..end])) {
                    check_no_parent(&desc, path)?;
                }
            }
        }
        let size = extent.capacity_bytes;
        Ok(VmdkSource {
            kind,
            size,
            pieces: vec![Piece {
                start: 0,
                len: size,
                data: PieceData::Sparse(Box::new(extent)),
            }],
        })
    }

    /// Opens a text descriptor and the extent files it names, which must lie in its
    /// directory.
    pub fn open_descriptor(text: &str, path: &Path) -> Result<Self, ImageError> {
        Self::open_descriptor_with(text, path, &OpenOptions::default())
    }

    /// Opens a text descriptor and the extent files it names (relative to its directory;
    /// outside it only if `options` allow).
    pub fn open_descriptor_with(
        text: &str,
        path: &Path,
        options: &OpenOptions,
    ) -> Result<Self, ImageError> {
        let desc = descriptor::parse(text).map_err(|e| bad(path, format!("descriptor {e}")))?;
        check_no_parent(&desc, path)?;
        let kind = vmdk_kind(desc.create_type.as_deref().unwrap_or_default(), path)?;
        if desc.extents.is_empty() {
            return Err(bad(path, "the descriptor lists no extents"));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut pieces = Vec::new();
        let mut start = 0u64;
        for (i, e) in desc.extents.iter().enumerate() {
            let len = e
                .sectors
                .checked_mul(SECTOR)
                .ok_or_else(|| bad(path, "extent size overflows"))?;
            let data = if e.access == Access::NoAccess || e.kind == "ZERO" {
                PieceData::Zero
            } else {
                open_extent(e, i, len, path, dir, options)?
            };
            pieces.push(Piece { start, len, data });
            start = start
                .checked_add(len)
                .ok_or_else(|| bad(path, "disk size overflows"))?;
        }
        Ok(VmdkSource {
            kind,
            size: start,
            pieces,
        })
    }
}

/// The variant a descriptor's `createType` names, if we read it.
fn vmdk_kind(create_type: &str, path: &Path) -> Result<VmdkKind, ImageError> {
    Ok(match create_type {
        "monolithicSparse" => VmdkKind::MonolithicSparse,
        "twoGbMaxExtentSparse" => VmdkKind::TwoGbMaxExtentSparse,
        "streamOptimized" => VmdkKind::StreamOptimized,
        "monolithicFlat" => VmdkKind::MonolithicFlat,
        "twoGbMaxExtentFlat" => VmdkKind::TwoGbMaxExtentFlat,
        other => {
            return Err(unsupported(
                path,
                format!(
                    "createType {other:?} (supported: monolithicSparse, twoGbMaxExtentSparse, \
                     streamOptimized, monolithicFlat, twoGbMaxExtentFlat)"
                ),
            ));
        }
    })
}

/// Opens the file of the `i`-th extent line `e` (`len` bytes of the disk), named in the
/// descriptor at `path` in `dir`.
fn open_extent(
    e: &ExtentLine,
    i: usize,
    len: u64,
    path: &Path,
    dir: &Path,
    options: &OpenOptions,
) -> Result<PieceData, ImageError> {
    let name = e.file.as_deref().ok_or_else(|| {
        bad(
            path,
            format!("extent {} ({}) has no file name", i + 1, e.kind),
        )
    })?;
    let file_path = dir.join(name);
    if !options.allow_extents_outside {
        check_inside(path, dir, &file_path, e)?;
    }
    let open = || {
        File::open(&file_path)
            .map_err(|err| ImageError::io(&file_path, "open the extent file", err))
    };
    match e.kind.as_str() {
        "FLAT" | "VMFS" => {
            let file = open()?;
            let offset = e
                .offset
                .checked_mul(SECTOR)
                .ok_or_else(|| bad(path, "extent offset overflows"))?;
            let flen = file_len(&file, &file_path)?;
            if flen < offset.saturating_add(len) {
                return Err(bad(
                    &file_path,
                    format!(
                        "the flat extent is {flen} bytes; the descriptor needs {} (truncated?)",
                        offset.saturating_add(len)
                    ),
                ));
            }
            Ok(PieceData::Flat {
                file,
                path: file_path,
                offset,
            })
        }
        "SPARSE" => {
            let (extent, header) = SparseExtent::open(open()?, &file_path)?;
            if header.capacity != e.sectors {
                return Err(bad(
                    &file_path,
                    format!(
                        "the sparse extent holds {} sectors; the descriptor says {}",
                        header.capacity, e.sectors
                    ),
                ));
            }
            Ok(PieceData::Sparse(Box::new(extent)))
        }
        other => Err(unsupported(
            path,
            format!("extent type {other} (supported: SPARSE, FLAT, ZERO)"),
        )),
    }
}

/// Refuses an extent file that is not inside `dir` once symlinks and `..` are resolved.
fn check_inside(
    path: &Path,
    dir: &Path,
    file_path: &Path,
    extent: &ExtentLine,
) -> Result<(), ImageError> {
    let canonical = |p: &Path| {
        p.canonicalize()
            .map_err(|e| ImageError::io(p, "open the extent file", e))
    };
    let dir_real = canonical(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })?;
    let file_real = canonical(file_path)?;
    if file_real.starts_with(&dir_real) && file_real != dir_real {
        return Ok(());
    }
    Err(ImageError::ExtentOutside {
        path: path.to_path_buf(),
        line: extent.line,
        detail: format!(
            "names {:?}, which is {}, outside the descriptor's directory {}",
            extent.file.as_deref().unwrap_or_default(),
            file_real.display(),
            dir_real.display()
        ),
    })
}

fn check_no_parent(desc: &Descriptor, path: &Path) -> Result<(), ImageError> {
    let parent = desc.parent_cid.as_deref().unwrap_or("ffffffff");
    if desc.parent_file_name_hint.is_some() || !parent.eq_ignore_ascii_case("ffffffff") {
        return Err(unsupported(
            path,
            "a delta (child) disk with a parent; convert the whole chain to one disk first",
        ));
    }
    Ok(())
}

impl DiskSource for VmdkSource {
    fn format(&self) -> Format {
        Format::Vmdk(self.kind)
    }

    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn extents(&mut self) -> Result<Vec<Extent>, ImageError> {
        let mut out = Vec::new();
        for p in &self.pieces {
            let local = match &p.data {
                PieceData::Zero => Vec::new(),
                PieceData::Flat { file, path, offset } => {
                    data_ranges(file, path, *offset, offset + p.len)?
                        .into_iter()
                        .map(|e| Extent {
                            offset: e.offset - offset,
                            length: e.length,
                        })
                        .collect()
                }
                PieceData::Sparse(s) => s.extents(),
            };
            out.extend(local.into_iter().map(|e| Extent {
                offset: e.offset + p.start,
                length: e.length.min(p.len.saturating_sub(e.offset)),
            }));
        }
        Ok(normalize(out, self.size))
    }

    fn read_at(&mut self, mut offset: u64, mut buf: &mut [u8]) -> Result<(), ImageError> {
        for p in &mut self.pieces {
            if buf.is_empty() {
                break;
            }
            if offset >= p.start + p.len || offset < p.start {
                continue;
            }
            let local = offset - p.start;
            let n = ((p.len - local) as usize).min(buf.len());
            let (now, rest) = buf.split_at_mut(n);
            match &mut p.data {
                PieceData::Zero => now.fill(0),
                PieceData::Flat {
                    file,
                    path,
                    offset: base,
                } => {
                    read_exact(file, path, now, *base + local, "flat extent")?;
                }
                PieceData::Sparse(s) => {
                    // Sectors past the sparse extent's own capacity read as zeros.
                    let inside = (s.capacity_bytes.saturating_sub(local) as usize).min(n);
                    s.read(local, &mut now[..inside])?;
                    now[inside..].fill(0);
                }
            }
            buf = rest;
            offset += n as u64;
        }
        if !buf.is_empty() {
            return Err(ImageError::InvalidOption(format!(
                "read of {} bytes at {offset} is beyond the disk's {} bytes",
                buf.len(),
                self.size
            )));
        }
        Ok(())
    }
}
