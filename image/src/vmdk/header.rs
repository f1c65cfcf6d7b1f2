//! The 512-byte `SparseExtentHeader` of hosted sparse extents (VMware "Virtual Disk Format 5.0",
//! section "Hosted Sparse Extent Header") and the stream-optimized markers.

/// "KDMV" read as a little-endian u32.
pub const MAGIC: u32 = 0x564d_444b;
pub const SECTOR: u64 = 512;
/// `gdOffset` value meaning "the grain directory is at the end; read the footer".
pub const GD_AT_END: u64 = u64::MAX;

pub const FLAG_VALID_NEWLINE: u32 = 1 << 0;
pub const FLAG_REDUNDANT_GT: u32 = 1 << 1;
pub const FLAG_ZEROED_GTE: u32 = 1 << 2;
pub const FLAG_COMPRESSED: u32 = 1 << 16;
pub const FLAG_MARKERS: u32 = 1 << 17;
const KNOWN_FLAGS: u32 =
    FLAG_VALID_NEWLINE | FLAG_REDUNDANT_GT | FLAG_ZEROED_GTE | FLAG_COMPRESSED | FLAG_MARKERS;

pub const COMPRESS_NONE: u16 = 0;
pub const COMPRESS_DEFLATE: u16 = 1;

pub const MARKER_EOS: u32 = 0;
pub const MARKER_GT: u32 = 1;
pub const MARKER_GD: u32 = 2;
pub const MARKER_FOOTER: u32 = 3;

/// The decoded header. Offsets and sizes are in sectors, as on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseHeader {
    pub version: u32,
    pub flags: u32,
    /// Virtual size in sectors.
    pub capacity: u64,
    /// Grain size in sectors.
    pub grain_size: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub num_gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub overhead: u64,
    pub unclean_shutdown: bool,
    pub compress_algorithm: u16,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// What is wrong with a sparse extent header (or the footer that repeats it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the file is only {0} bytes long")]
    TooShort(usize),
    #[error("no KDMV magic at the start of the header")]
    NoMagic,
    #[error("the newline-detection bytes are damaged (file transferred in text mode?)")]
    DamagedNewline,
    #[error("header version {0} (expected 1, 2 or 3)")]
    Version(u32),
    /// The flags outside the known ones.
    #[error("unknown header flags {0:#x}")]
    UnknownFlags(u32),
    /// Grain size in sectors.
    #[error("grain size {0} sectors (expected a power of two up to 2048)")]
    GrainSize(u64),
    #[error("{0} grain table entries per table")]
    GtesPerGt(u32),
    #[error("compression algorithm {0} (only 1, deflate, exists)")]
    CompressAlgorithm(u16),
    #[error("compressed grains without markers")]
    CompressedWithoutMarkers,
    /// Capacity in sectors.
    #[error("capacity of {0} sectors is beyond any VMDK")]
    Capacity(u64),
}

impl HeaderError {
    /// Whether the header is valid but uses a variant this crate does not read (rather
    /// than being damaged).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            HeaderError::Version(_)
                | HeaderError::UnknownFlags(_)
                | HeaderError::CompressAlgorithm(_)
                | HeaderError::CompressedWithoutMarkers
        )
    }
}

impl SparseHeader {
    /// Whether `b` starts with the sparse extent magic.
    pub fn has_magic(b: &[u8]) -> bool {
        b.len() >= 4 && u32_at(b, 0) == MAGIC
    }

    /// Decodes and checks the header at the start of `b` (512 bytes are needed).
    pub fn parse(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < 512 {
            return Err(HeaderError::TooShort(b.len()));
        }
        if u32_at(b, 0) != MAGIC {
            return Err(HeaderError::NoMagic);
        }
        let h = SparseHeader {
            version: u32_at(b, 4),
            flags: u32_at(b, 8),
            capacity: u64_at(b, 12),
            grain_size: u64_at(b, 20),
            descriptor_offset: u64_at(b, 28),
            descriptor_size: u64_at(b, 36),
            num_gtes_per_gt: u32_at(b, 44),
            rgd_offset: u64_at(b, 48),
            gd_offset: u64_at(b, 56),
            overhead: u64_at(b, 64),
            unclean_shutdown: b[72] != 0,
            compress_algorithm: u16::from_le_bytes([b[77], b[78]]),
        };
        if h.flags & FLAG_VALID_NEWLINE != 0 && &b[73..77] != b"\n \r\n" {
            return Err(HeaderError::DamagedNewline);
        }
        Ok(h)
    }

    /// Whether the header has both flags of a stream-optimized extent: compressed grains
    /// with markers.
    pub fn is_stream_optimized(&self) -> bool {
        self.flags & (FLAG_COMPRESSED | FLAG_MARKERS) == FLAG_COMPRESSED | FLAG_MARKERS
    }

    /// Checks the fields a reader depends on; returns the first problem.
    pub fn check_readable(&self) -> Result<(), HeaderError> {
        if !(1..=3).contains(&self.version) {
            return Err(HeaderError::Version(self.version));
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(HeaderError::UnknownFlags(self.flags & !KNOWN_FLAGS));
        }
        if self.grain_size == 0 || !self.grain_size.is_power_of_two() || self.grain_size > 2048 {
            return Err(HeaderError::GrainSize(self.grain_size));
        }
        if !self.num_gtes_per_gt.is_power_of_two() || !(128..=4096).contains(&self.num_gtes_per_gt)
        {
            return Err(HeaderError::GtesPerGt(self.num_gtes_per_gt));
        }
        if self.flags & FLAG_COMPRESSED != 0 {
            if self.compress_algorithm != COMPRESS_DEFLATE {
                return Err(HeaderError::CompressAlgorithm(self.compress_algorithm));
            }
            if self.flags & FLAG_MARKERS == 0 {
                return Err(HeaderError::CompressedWithoutMarkers);
            }
        }
        if self.capacity > (1 << 40) {
            return Err(HeaderError::Capacity(self.capacity));
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..20].copy_from_slice(&self.capacity.to_le_bytes());
        b[20..28].copy_from_slice(&self.grain_size.to_le_bytes());
        b[28..36].copy_from_slice(&self.descriptor_offset.to_le_bytes());
        b[36..44].copy_from_slice(&self.descriptor_size.to_le_bytes());
        b[44..48].copy_from_slice(&self.num_gtes_per_gt.to_le_bytes());
        b[48..56].copy_from_slice(&self.rgd_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.gd_offset.to_le_bytes());
        b[64..72].copy_from_slice(&self.overhead.to_le_bytes());
        b[72] = u8::from(self.unclean_shutdown);
        b[73..77].copy_from_slice(b"\n \r\n");
        b[77..79].copy_from_slice(&self.compress_algorithm.to_le_bytes());
        b
    }
}

/// A metadata marker sector: `{ numSectors: u64, size: u32 = 0, type: u32 }` then zeros.
pub fn marker(num_sectors: u64, kind: u32) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..8].copy_from_slice(&num_sectors.to_le_bytes());
    b[12..16].copy_from_slice(&kind.to_le_bytes());
    b
}

/// A decoded marker sector: `Grain { lba, size }` when `size != 0`, else a metadata marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Grain { lba: u64, size: u32 },
    Meta { num_sectors: u64, kind: u32 },
}

/// The type field of a metadata marker sector (`b` holds at least 16 bytes).
pub fn marker_type(b: &[u8]) -> u32 {
    u32_at(b, 12)
}

/// Decodes a marker sector (`b` holds at least 16 bytes).
pub fn parse_marker(b: &[u8]) -> Marker {
    let val = u64_at(b, 0);
    let size = u32_at(b, 8);
    if size != 0 {
        Marker::Grain { lba: val, size }
    } else {
        Marker::Meta {
            num_sectors: val,
            kind: marker_type(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_header() -> SparseHeader {
        SparseHeader {
            version: 3,
            flags: 0x30001,
            capacity: 12345,
            grain_size: 128,
            descriptor_offset: 1,
            descriptor_size: 20,
            num_gtes_per_gt: 512,
            rgd_offset: 0,
            gd_offset: GD_AT_END,
            overhead: 128,
            unclean_shutdown: false,
            compress_algorithm: 1,
        }
    }

    #[test]
    fn header_round_trips() {
        let h = stream_header();
        let b = h.to_bytes();
        assert_eq!(&b[0..4], b"KDMV");
        assert_eq!(SparseHeader::parse(&b).unwrap(), h);
        assert!(h.check_readable().is_ok());
    }

    #[test]
    fn damaged_newline_bytes_are_reported() {
        let mut b = SparseHeader {
            version: 1,
            flags: 1,
            capacity: 1,
            grain_size: 128,
            descriptor_offset: 0,
            descriptor_size: 0,
            num_gtes_per_gt: 512,
            rgd_offset: 0,
            gd_offset: 1,
            overhead: 1,
            unclean_shutdown: false,
            compress_algorithm: 0,
        }
        .to_bytes();
        b[75] = b'\n';
        let e = SparseHeader::parse(&b).unwrap_err();
        assert_eq!(e, HeaderError::DamagedNewline);
        assert!(e.to_string().contains("newline"));
    }

    #[test]
    fn unreadable_fields_are_typed() {
        let good = SparseHeader::parse(&stream_header().to_bytes()).unwrap();
        let cases = [
            (
                SparseHeader {
                    version: 4,
                    ..good.clone()
                },
                HeaderError::Version(4),
                true,
            ),
            (
                SparseHeader {
                    flags: 0x30001 | 1 << 5,
                    ..good.clone()
                },
                HeaderError::UnknownFlags(1 << 5),
                true,
            ),
            (
                SparseHeader {
                    grain_size: 3,
                    ..good.clone()
                },
                HeaderError::GrainSize(3),
                false,
            ),
            (
                SparseHeader {
                    num_gtes_per_gt: 64,
                    ..good.clone()
                },
                HeaderError::GtesPerGt(64),
                false,
            ),
            (
                SparseHeader {
                    compress_algorithm: 2,
                    ..good.clone()
                },
                HeaderError::CompressAlgorithm(2),
                true,
            ),
            (
                SparseHeader {
                    flags: 0x10001,
                    ..good.clone()
                },
                HeaderError::CompressedWithoutMarkers,
                true,
            ),
            (
                SparseHeader {
                    capacity: (1 << 40) + 1,
                    ..good.clone()
                },
                HeaderError::Capacity((1 << 40) + 1),
                false,
            ),
        ];
        for (header, error, unsupported) in cases {
            let e = header.check_readable().unwrap_err();
            assert_eq!(e, error);
            assert_eq!(e.is_unsupported(), unsupported, "{e}");
        }
        assert_eq!(
            SparseHeader::parse(&[0u8; 100]).unwrap_err(),
            HeaderError::TooShort(100)
        );
        assert_eq!(
            SparseHeader::parse(&[0u8; 512]).unwrap_err(),
            HeaderError::NoMagic
        );
        assert!(good.is_stream_optimized());
        assert!(
            !SparseHeader {
                flags: 0x20001,
                ..good
            }
            .is_stream_optimized()
        );
    }
}
