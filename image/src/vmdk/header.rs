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

impl SparseHeader {
    /// Whether `b` starts with the sparse extent magic.
    pub fn has_magic(b: &[u8]) -> bool {
        b.len() >= 4 && u32_at(b, 0) == MAGIC
    }

    /// Decodes and checks a header; the error text says which field is wrong.
    pub fn parse(b: &[u8; 512]) -> Result<Self, String> {
        if u32_at(b, 0) != MAGIC {
            return Err("no KDMV magic at the start of the header".into());
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
            return Err(
                "the newline-detection bytes are damaged (file transferred in text mode?)".into(),
            );
        }
        Ok(h)
    }

    /// Checks the fields a reader depends on; returns a description of the first problem.
    pub fn check_readable(&self) -> Result<(), (bool, String)> {
        // (true, ..) = unsupported variant; (false, ..) = corrupt
        if !(1..=3).contains(&self.version) {
            return Err((
                true,
                format!("header version {} (expected 1, 2 or 3)", self.version),
            ));
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err((
                true,
                format!("unknown header flags {:#x}", self.flags & !KNOWN_FLAGS),
            ));
        }
        if self.grain_size == 0 || !self.grain_size.is_power_of_two() || self.grain_size > 2048 {
            return Err((
                false,
                format!(
                    "grain size {} sectors (expected a power of two up to 2048)",
                    self.grain_size
                ),
            ));
        }
        if !self.num_gtes_per_gt.is_power_of_two() || !(128..=4096).contains(&self.num_gtes_per_gt)
        {
            return Err((
                false,
                format!("{} grain table entries per table", self.num_gtes_per_gt),
            ));
        }
        if self.flags & FLAG_COMPRESSED != 0 {
            if self.compress_algorithm != COMPRESS_DEFLATE {
                return Err((
                    true,
                    format!(
                        "compression algorithm {} (only 1, deflate, exists)",
                        self.compress_algorithm
                    ),
                ));
            }
            if self.flags & FLAG_MARKERS == 0 {
                return Err((true, "compressed grains without markers".into()));
            }
        }
        if self.capacity > (1 << 40) {
            return Err((
                false,
                format!("capacity of {} sectors is beyond any VMDK", self.capacity),
            ));
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

pub fn parse_marker(b: &[u8]) -> Marker {
    let val = u64_at(b, 0);
    let size = u32_at(b, 8);
    if size != 0 {
        Marker::Grain { lba: val, size }
    } else {
        Marker::Meta {
            num_sectors: val,
            kind: u32_at(b, 12),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = SparseHeader {
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
        };
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
        assert!(SparseHeader::parse(&b).unwrap_err().contains("newline"));
    }
}
