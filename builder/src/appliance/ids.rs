//! Identifiers that would otherwise be random, derived from the appliance version so that two
//! builds of the same version produce the same filesystem UUIDs, partition GUIDs and FAT volume
//! id (and `root=UUID=…` on the kernel command line stays the same).
//!
//! A UUID here is the first 16 bytes of `SHA-256("haproxy-appliance\0<version>\0<purpose>")` with
//! the RFC 9562 version 8 ("custom") and variant bits set.

use sha2::{Digest, Sha256};

/// Every identifier one build needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// ext4 filesystem UUID of the root filesystem (`root=UUID=…`, fstab).
    pub root_fs: String,
    /// ext4 directory hash seed.
    pub root_hash_seed: String,
    /// FAT volume id of the EFI system partition, as 8 hex digits (`XXXX-XXXX` in fstab).
    pub esp_volume_id: u32,
    /// GPT disk GUID.
    pub disk: String,
    /// GPT partition GUIDs.
    pub esp_partition: String,
    pub root_partition: String,
}

impl Ids {
    pub fn for_version(version: &str) -> Self {
        let esp = digest(version, "esp-volume-id");
        Ids {
            root_fs: uuid(version, "root-filesystem"),
            root_hash_seed: uuid(version, "root-hash-seed"),
            esp_volume_id: u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]),
            disk: uuid(version, "gpt-disk"),
            esp_partition: uuid(version, "gpt-esp"),
            root_partition: uuid(version, "gpt-root"),
        }
    }

    /// The FAT volume id as fstab and `/dev/disk/by-uuid` spell it: `ABCD-1234`.
    pub fn esp_fstab_uuid(&self) -> String {
        let id = format!("{:08X}", self.esp_volume_id);
        format!("{}-{}", &id[..4], &id[4..])
    }
}

fn digest(version: &str, purpose: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"haproxy-appliance\0");
    h.update(version.as_bytes());
    h.update(b"\0");
    h.update(purpose.as_bytes());
    h.finalize().into()
}

fn uuid(version: &str, purpose: &str) -> String {
    let d = digest(version, purpose);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122/9562 variant
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_version_and_distinct() {
        let a = Ids::for_version("1.2.3");
        assert_eq!(a, Ids::for_version("1.2.3"));
        assert_ne!(a.root_fs, Ids::for_version("1.2.4").root_fs);
        let all = [
            &a.root_fs,
            &a.root_hash_seed,
            &a.disk,
            &a.esp_partition,
            &a.root_partition,
        ];
        for (i, x) in all.iter().enumerate() {
            assert_eq!(x.len(), 36);
            assert_eq!(&x[14..15], "8", "version nibble of {x}");
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(a.esp_fstab_uuid().len(), 9);
    }
}
