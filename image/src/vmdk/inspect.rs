//! Reads a stream-optimized VMDK from start to end, sequentially (a tar member works), checking
//! every structure: header, descriptor, each grain (it must inflate to its size), the grain
//! tables and directory (each entry must point at the grain marker for that LBA), the footer
//! and the end-of-stream marker. `ova-builder verify` uses it through [`check_stream`].

use std::io::Read;
use std::path::PathBuf;

use libdeflater::Decompressor;

use super::descriptor::{self, Descriptor};
use super::header::{
    GD_AT_END, HeaderError, MARKER_EOS, MARKER_FOOTER, MARKER_GD, MARKER_GT, Marker, SECTOR,
    SparseHeader, parse_marker,
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

/// What is wrong with a stream-optimized VMDK, found by reading it from start to end.
/// Positions are 512-byte sectors from the start of the file (`sector`), disk sectors
/// (`lba`) or bytes (`byte`).
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The reader failed.
    #[error("cannot read the stream: {0}")]
    Io(#[source] std::io::Error),
    #[error("the file ends inside the {what} at byte {byte}")]
    EndsInside { what: &'static str, byte: u64 },
    #[error("the file ends before the {what} at byte {byte}")]
    EndsBefore { what: &'static str, byte: u64 },
    #[error("{0}")]
    Header(HeaderError),
    /// A valid sparse extent that is not stream-optimized (an unsupported variant here).
    #[error(
        "header flags {flags:#x} are not those of a stream-optimized VMDK (compressed grains with markers, 0x30000)"
    )]
    NotStreamOptimized { flags: u32 },
    #[error("descriptor at sector {offset} with {size} sectors (expected right after the header)")]
    DescriptorPlace { offset: u64, size: u64 },
    #[error("overhead of {0} sectors")]
    Overhead(u64),
    #[error("the descriptor is not UTF-8 text")]
    DescriptorNotUtf8,
    /// The embedded descriptor does not parse (the parser's message, with its line).
    #[error("descriptor {0}")]
    Descriptor(String),
    #[error("grain at sector {sector} claims {size} compressed bytes")]
    GrainSize { sector: u64, size: u32 },
    #[error(
        "grain at sector {sector} has LBA {lba} (capacity {capacity} sectors, grains of {grain_size})"
    )]
    GrainLba {
        sector: u64,
        lba: u64,
        capacity: u64,
        grain_size: u64,
    },
    #[error("grain at sector {sector} (LBA {lba}) is out of LBA order")]
    GrainOrder { sector: u64, lba: u64 },
    #[error("grain at sector {sector} (LBA {lba}) does not inflate: {reason}")]
    GrainInflate {
        sector: u64,
        lba: u64,
        reason: String,
    },
    #[error("grain at sector {sector} (LBA {lba}) inflates to {got} bytes, expected {expected}")]
    GrainLength {
        sector: u64,
        lba: u64,
        got: usize,
        expected: usize,
    },
    #[error(
        "marker of type {kind} at sector {sector} announces {announced} sectors, expected {expected}"
    )]
    MarkerLength {
        kind: u32,
        sector: u64,
        announced: u64,
        expected: u64,
    },
    #[error("data follows the end-of-stream marker at sector {sector}")]
    DataAfterEnd { sector: u64 },
    #[error("footer: {0}")]
    Footer(HeaderError),
    #[error("unknown marker type {kind} at sector {sector}")]
    UnknownMarker { kind: u32, sector: u64 },
    #[error("the footer disagrees with the header on capacity or grain size")]
    FooterMismatch,
    /// `directory` is where the grain directory is (`None`: the stream has none).
    #[error(
        "the footer points at sector {footer} for the grain directory, which is at {directory:?}"
    )]
    FooterDirectory { footer: u64, directory: Option<u64> },
    #[error("grain directory entry {index} points at sector {sector}, where no grain table is")]
    DirectoryEntry { index: usize, sector: u32 },
    #[error("grain table entry for LBA {lba} points at sector {sector}, where that grain is not")]
    TableEntry { lba: u64, sector: u32 },
    #[error("{stored} grains in the stream but {referenced} referenced by the grain tables")]
    Unreferenced { stored: u64, referenced: u64 },
}

const NAME: &str = "VMDK";
const STREAM: &str = "<vmdk stream>";

impl From<StreamError> for ImageError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Io(source) => ImageError::io(PathBuf::from(STREAM), "read", source),
            StreamError::NotStreamOptimized { .. } => {
                ImageError::unsupported(PathBuf::from(STREAM), NAME, e.to_string())
            }
            other => ImageError::corrupt(PathBuf::from(STREAM), NAME, other.to_string()),
        }
    }
}

struct Counted<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Counted<R> {
    /// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean end of file before any byte.
    fn read_full(&mut self, buf: &mut [u8], what: &'static str) -> Result<bool, StreamError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(StreamError::EndsInside {
                        what,
                        byte: self.pos + got as u64,
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamError::Io(e)),
            }
        }
        self.pos += got as u64;
        Ok(true)
    }

    /// Reads exactly `n` bytes, growing the buffer only as data arrives (a lying length in a
    /// damaged file cannot make us allocate much more than the file holds).
    fn need_vec(&mut self, n: u64, what: &'static str) -> Result<Vec<u8>, StreamError> {
        let mut v = Vec::new();
        (&mut self.inner)
            .take(n)
            .read_to_end(&mut v)
            .map_err(StreamError::Io)?;
        self.pos += v.len() as u64;
        if (v.len() as u64) < n {
            return Err(StreamError::EndsInside {
                what,
                byte: self.pos,
            });
        }
        Ok(v)
    }

    fn need(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), StreamError> {
        if self.read_full(buf, what)? || buf.is_empty() {
            Ok(())
        } else {
            Err(StreamError::EndsBefore {
                what,
                byte: self.pos,
            })
        }
    }
}

/// Reads and checks a whole stream-optimized VMDK.
pub fn inspect(reader: impl Read) -> Result<VmdkInfo, ImageError> {
    Ok(check_stream(reader)?)
}

/// Reads and checks a whole stream-optimized VMDK; the error says what is damaged and where.
pub fn check_stream(reader: impl Read) -> Result<VmdkInfo, StreamError> {
    let mut r = Counted {
        inner: reader,
        pos: 0,
    };
    let header = read_header(&mut r)?;
    let (descriptor, descriptor_text) = read_descriptor(&mut r, &header)?;
    let mut body = Body::new(&header);
    body.read(&mut r)?;
    body.check_footer()?;
    body.check_tables()?;
    Ok(VmdkInfo {
        capacity_bytes: header.capacity * SECTOR,
        create_type: descriptor.create_type.clone(),
        adapter_type: descriptor.ddb("ddb.adapterType").map(str::to_string),
        footer: body.footer,
        descriptor,
        descriptor_text,
        grains: body.grains_at.len() as u64,
        populated_bytes: body.populated,
        grain_tables: body.tables.len() as u64,
        has_grain_directory: body.gd.is_some(),
        has_end_of_stream: body.has_eos,
        stream_bytes: r.pos,
        header,
    })
}

/// The header: readable, stream-optimized, the descriptor right after it.
fn read_header(r: &mut Counted<impl Read>) -> Result<SparseHeader, StreamError> {
    let mut sector = [0u8; 512];
    r.need(&mut sector, "header")?;
    let header = SparseHeader::parse(&sector).map_err(StreamError::Header)?;
    header.check_readable().map_err(StreamError::Header)?;
    if !header.is_stream_optimized() {
        return Err(StreamError::NotStreamOptimized {
            flags: header.flags,
        });
    }
    if header.descriptor_offset != 1 || header.descriptor_size == 0 || header.descriptor_size > 2048
    {
        return Err(StreamError::DescriptorPlace {
            offset: header.descriptor_offset,
            size: header.descriptor_size,
        });
    }
    if header.overhead < 1 + header.descriptor_size || header.overhead > 1 << 20 {
        return Err(StreamError::Overhead(header.overhead));
    }
    Ok(header)
}

/// The embedded descriptor and the padding up to the first grain.
fn read_descriptor(
    r: &mut Counted<impl Read>,
    header: &SparseHeader,
) -> Result<(Descriptor, String), StreamError> {
    let lead = r.need_vec((header.overhead - 1) * SECTOR, "descriptor")?;
    let desc_bytes = &lead[..(header.descriptor_size * SECTOR) as usize];
    let end = desc_bytes
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(desc_bytes.len());
    let text = String::from_utf8(desc_bytes[..end].to_vec())
        .map_err(|_| StreamError::DescriptorNotUtf8)?;
    let descriptor = descriptor::parse(&text).map_err(StreamError::Descriptor)?;
    Ok((descriptor, text))
}

/// What the stream after the descriptor holds, as it is read.
struct Body<'h> {
    header: &'h SparseHeader,
    decompressor: Decompressor,
    inflated: Vec<u8>,
    record: Vec<u8>,
    /// (sector of the grain marker, lba) in stream order, to check the tables against.
    grains_at: Vec<(u64, u64)>,
    /// (sector of the table, entries).
    tables: Vec<(u64, Vec<u32>)>,
    gd: Option<(u64, Vec<u32>)>,
    footer: Option<SparseHeader>,
    has_eos: bool,
    populated: u64,
}

impl<'h> Body<'h> {
    fn new(header: &'h SparseHeader) -> Self {
        Body {
            header,
            decompressor: Decompressor::new(),
            inflated: vec![0u8; (header.grain_size * SECTOR) as usize],
            record: Vec::new(),
            grains_at: Vec::new(),
            tables: Vec::new(),
            gd: None,
            footer: None,
            has_eos: false,
            populated: 0,
        }
    }

    /// Reads marker after marker up to the end-of-stream marker or the end of the file.
    fn read(&mut self, r: &mut Counted<impl Read>) -> Result<(), StreamError> {
        let mut sector = [0u8; 512];
        loop {
            let at = r.pos / SECTOR;
            if !r.read_full(&mut sector, "marker")? {
                return Ok(());
            }
            let end = match parse_marker(&sector) {
                Marker::Grain { lba, size } => {
                    self.grain(r, &sector, at, lba, size)?;
                    false
                }
                Marker::Meta { num_sectors, kind } => self.meta(r, at, num_sectors, kind)?,
            };
            if end {
                return Ok(());
            }
        }
    }

    /// A grain: a plausible size, its LBA in range and in order, and it inflates to a grain.
    fn grain(
        &mut self,
        r: &mut Counted<impl Read>,
        marker: &[u8; 512],
        at: u64,
        lba: u64,
        size: u32,
    ) -> Result<(), StreamError> {
        let header = self.header;
        let grain_bytes = header.grain_size * SECTOR;
        let total = (12 + size as u64).div_ceil(SECTOR) * SECTOR;
        if size as u64 > 2 * grain_bytes + 1024 {
            return Err(StreamError::GrainSize { sector: at, size });
        }
        if lba >= header.capacity || !lba.is_multiple_of(header.grain_size) {
            return Err(StreamError::GrainLba {
                sector: at,
                lba,
                capacity: header.capacity,
                grain_size: header.grain_size,
            });
        }
        if self.grains_at.last().is_some_and(|&(_, l)| lba <= l) {
            return Err(StreamError::GrainOrder { sector: at, lba });
        }
        self.record.resize(total as usize, 0);
        self.record[..512].copy_from_slice(marker);
        r.need(&mut self.record[512..], "grain")?;
        let expected = grain_bytes.min(header.capacity * SECTOR - lba * SECTOR) as usize;
        let got = self
            .decompressor
            .zlib_decompress(&self.record[12..12 + size as usize], &mut self.inflated)
            .map_err(|e| StreamError::GrainInflate {
                sector: at,
                lba,
                reason: e.to_string(),
            })?;
        if got != expected && got != grain_bytes as usize {
            return Err(StreamError::GrainLength {
                sector: at,
                lba,
                got,
                expected,
            });
        }
        self.populated += expected as u64;
        self.grains_at.push((at, lba));
        Ok(())
    }

    /// A metadata marker and what follows it; `Ok(true)` at the end-of-stream marker.
    fn meta(
        &mut self,
        r: &mut Counted<impl Read>,
        at: u64,
        num_sectors: u64,
        kind: u32,
    ) -> Result<bool, StreamError> {
        let expected = self.marker_sectors(kind);
        if num_sectors != expected {
            return Err(StreamError::MarkerLength {
                kind,
                sector: at,
                announced: num_sectors,
                expected,
            });
        }
        match kind {
            MARKER_EOS => {
                self.has_eos = true;
                let mut extra = [0u8; 1];
                if r.read_full(&mut extra, "end")? {
                    return Err(StreamError::DataAfterEnd { sector: at });
                }
                return Ok(true);
            }
            MARKER_GT => {
                let body = r.need_vec(num_sectors * SECTOR, "grain table")?;
                self.tables.push((at + 1, le_u32s(&body)));
            }
            MARKER_GD => {
                let body = r.need_vec(num_sectors * SECTOR, "grain directory")?;
                self.gd = Some((at + 1, le_u32s(&body)));
            }
            MARKER_FOOTER => {
                let mut f = [0u8; 512];
                r.need(&mut f, "footer")?;
                self.footer = Some(SparseHeader::parse(&f).map_err(StreamError::Footer)?);
            }
            other => {
                return Err(StreamError::UnknownMarker {
                    kind: other,
                    sector: at,
                });
            }
        }
        Ok(false)
    }

    /// The sectors a metadata marker of `kind` must announce.
    fn marker_sectors(&self, kind: u32) -> u64 {
        let header = self.header;
        let per_gt = u64::from(header.num_gtes_per_gt);
        match kind {
            MARKER_GT => (per_gt * 4).div_ceil(SECTOR),
            MARKER_GD => {
                (header.capacity.div_ceil(header.grain_size).div_ceil(per_gt) * 4).div_ceil(SECTOR)
            }
            MARKER_FOOTER => 1,
            _ => 0,
        }
    }

    /// The footer repeats the header and points at the grain directory.
    fn check_footer(&self) -> Result<(), StreamError> {
        let Some(f) = &self.footer else {
            return Ok(());
        };
        if f.capacity != self.header.capacity || f.grain_size != self.header.grain_size {
            return Err(StreamError::FooterMismatch);
        }
        let gd_sector = self.gd.as_ref().map(|g| g.0);
        if self.header.gd_offset == GD_AT_END && Some(f.gd_offset) != gd_sector {
            return Err(StreamError::FooterDirectory {
                footer: f.gd_offset,
                directory: gd_sector,
            });
        }
        Ok(())
    }

    /// The directory and tables describe exactly the grains in the stream.
    fn check_tables(&self) -> Result<(), StreamError> {
        let Some((_, gd_entries)) = &self.gd else {
            return Ok(());
        };
        let per_gt = self.header.num_gtes_per_gt as u64;
        let mut referenced = 0u64;
        for (i, &gt_sector) in gd_entries.iter().enumerate() {
            if gt_sector == 0 {
                continue;
            }
            let Some((_, gt)) = self.tables.iter().find(|(s, _)| *s == gt_sector as u64) else {
                return Err(StreamError::DirectoryEntry {
                    index: i,
                    sector: gt_sector,
                });
            };
            for (j, &gte) in gt.iter().enumerate().take(per_gt as usize) {
                if gte == 0 {
                    continue;
                }
                let lba = (i as u64 * per_gt + j as u64) * self.header.grain_size;
                match self.grains_at.binary_search_by_key(&(gte as u64), |g| g.0) {
                    Ok(k) if self.grains_at[k].1 == lba => referenced += 1,
                    _ => return Err(StreamError::TableEntry { lba, sector: gte }),
                }
            }
        }
        let stored = self.grains_at.len() as u64;
        if referenced != stored {
            return Err(StreamError::Unreferenced { stored, referenced });
        }
        Ok(())
    }
}

fn le_u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
