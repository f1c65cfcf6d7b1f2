//! Stage 2b: the root filesystem image and the GPT disk, in plain files.
//!
//! `sfdisk` writes the partition table into a sparse disk file; syslinux's `gptmbr.bin` goes
//! into the boot-code area of the protective MBR; `mkfs.ext4 -d -E offset=` fills the root
//! partition from the root directory in place, without mounting anything; the FAT image of the
//! EFI system partition is copied to its offset, skipping zero blocks so the file stays sparse.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::error::{StageError, io};
use super::ids::Ids;
use super::tool::{self, ToolError};

const MIB: u64 = 1024 * 1024;
const SECTOR: u64 = 512;
/// syslinux's MBR boot code for GPT disks: it boots the partition with the legacy-BIOS-bootable
/// attribute.
pub const GPTMBR: &str = "/usr/lib/syslinux/mbr/gptmbr.bin";
/// Bytes of boot code in an MBR (the rest of sector 0 is the partition table and signature).
const MBR_CODE: usize = 440;

const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const LINUX_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// Where the partitions go, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Layout {
    pub disk_bytes: u64,
    pub esp_offset: u64,
    pub esp_bytes: u64,
    pub root_offset: u64,
    pub root_bytes: u64,
}

impl Layout {
    /// 1 MiB-aligned partitions: the ESP first, the root filesystem up to the backup GPT.
    pub fn new(disk_bytes: u64, esp_bytes: u64) -> Result<Self, StageError> {
        let esp_offset = MIB;
        let esp_bytes = esp_bytes.div_ceil(MIB) * MIB;
        let root_offset = esp_offset + esp_bytes;
        // The backup GPT takes the last 33 sectors.
        let end = (disk_bytes.saturating_sub(33 * SECTOR) / MIB) * MIB;
        if !disk_bytes.is_multiple_of(MIB) || end <= root_offset + 64 * MIB {
            return Err(StageError::Invalid(format!(
                "disk size {disk_bytes} bytes: expected a whole number of MiB with room for a \
                 {} MiB EFI system partition and a root filesystem",
                esp_bytes / MIB
            )));
        }
        Ok(Layout {
            disk_bytes,
            esp_offset,
            esp_bytes,
            root_offset,
            root_bytes: end - root_offset,
        })
    }

    /// The sfdisk script of this layout.
    fn sfdisk_script(&self, ids: &Ids) -> String {
        format!(
            "label: gpt\nlabel-id: {disk}\nunit: sectors\n\
             start={es}, size={ez}, type={ESP_TYPE}, uuid={eu}, name=\"EFI system partition\", attrs=\"LegacyBIOSBootable\"\n\
             start={rs}, size={rz}, type={LINUX_TYPE}, uuid={ru}, name=\"root\"\n",
            disk = ids.disk,
            es = self.esp_offset / SECTOR,
            ez = self.esp_bytes / SECTOR,
            eu = ids.esp_partition,
            rs = self.root_offset / SECTOR,
            rz = self.root_bytes / SECTOR,
            ru = ids.root_partition,
        )
    }
}

/// Creates the disk file `disk`: sparse, `layout.disk_bytes` long, with the GPT and the MBR boot
/// code; the partitions are still empty.
pub fn create(layout: &Layout, ids: &Ids, disk: &Path) -> Result<(), StageError> {
    let mbr = std::fs::read(GPTMBR).map_err(|_| StageError::Missing(GPTMBR, "syslinux-common"))?;
    if mbr.len() < MBR_CODE {
        return Err(StageError::Invalid(format!(
            "{GPTMBR} is {} bytes, expected {MBR_CODE}",
            mbr.len()
        )));
    }
    let _ = std::fs::remove_file(disk);
    let file = File::create(disk).map_err(io("creating", disk))?;
    file.set_len(layout.disk_bytes)
        .map_err(io("sizing", disk))?;
    drop(file);

    run_sfdisk(&layout.sfdisk_script(ids), disk)?;

    let mut out = OpenOptions::new()
        .write(true)
        .open(disk)
        .map_err(io("opening", disk))?;
    out.write_all(&mbr[..MBR_CODE])
        .map_err(io("writing the MBR boot code to", disk))?;
    Ok(())
}

/// Makes the root partition of `disk` an ext4 filesystem filled from the directory `root`.
/// `mkfs.ext4 -E offset=` writes straight into the partition: no second copy of the image.
pub fn build_root_fs(
    root: &Path,
    ids: &Ids,
    layout: &Layout,
    epoch: u64,
    disk: &Path,
) -> Result<(), StageError> {
    let epoch = epoch.to_string();
    let disk_s = disk.display().to_string();
    tool::run(
        "mkfs.ext4",
        [
            "-q",
            "-F",
            "-t",
            "ext4",
            "-L",
            "root",
            "-U",
            &ids.root_fs,
            "-E",
            &format!(
                "hash_seed={},offset={}",
                ids.root_hash_seed, layout.root_offset
            ),
            "-d",
            &root.display().to_string(),
            &disk_s,
            &format!("{}k", layout.root_bytes / 1024),
        ],
        // mke2fs takes the superblock's times from E2FSPROGS_FAKE_TIME (1.47.0 does not read
        // SOURCE_DATE_EPOCH; later versions do).
        &[
            ("E2FSPROGS_FAKE_TIME", &epoch),
            ("SOURCE_DATE_EPOCH", &epoch),
        ],
    )?;
    clamp_ctimes(root, layout, &epoch, disk)?;
    // The kernel mounts it read-write at every boot: have e2fsck agree it is clean.
    tool::run(
        "e2fsck",
        [
            "-f",
            "-n",
            &format!("{disk_s}?offset={}", layout.root_offset),
        ],
        &[],
    )?;
    Ok(())
}

/// `mkfs.ext4 -d` copies each file's ctime, which is when the build touched it and cannot be
/// set from user space, and its atime, which reading files moves: set both to
/// SOURCE_DATE_EPOCH afterwards, in one `debugfs -w` batch (mtimes are clamped in the tree).
fn clamp_ctimes(root: &Path, layout: &Layout, epoch: &str, disk: &Path) -> Result<(), StageError> {
    let mut script = format!("sif <2> ctime @{epoch}\nsif <2> atime @{epoch}\n");
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io("listing", &dir))? {
            let entry = entry.map_err(io("listing", &dir))?;
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let rel = rel.to_string_lossy();
            // Inside double quotes debugfs takes everything literally (backslashes in systemd unit
            // names too) but a quote or a newline; such names do not occur in Debian.
            if rel.contains(['"', '\n']) {
                continue;
            }
            // atime too: mkfs copied it after earlier reads may have moved it.
            script.push_str(&format!(
                "sif \"/{rel}\" ctime @{epoch}\nsif \"/{rel}\" atime @{epoch}\n"
            ));
            if entry.file_type().map_err(io("stat", &path))?.is_dir() {
                stack.push(path);
            }
        }
    }
    let commands = disk.with_extension("ctimes.debugfs");
    std::fs::write(&commands, script).map_err(io("writing", &commands))?;
    let target = format!("{}?offset={}", disk.display(), layout.root_offset);
    let out = tool::run(
        "debugfs",
        ["-w", "-f", &commands.display().to_string(), &target],
        // The superblock's last-write time.
        &[("E2FSPROGS_FAKE_TIME", epoch)],
    );
    let _ = std::fs::remove_file(&commands);
    let out = out?;
    // debugfs exits 0 whatever its commands did: its complaints are on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    if !problems.is_empty() {
        return Err(StageError::Invalid(format!(
            "setting ctimes with debugfs: {}",
            problems
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    Ok(())
}

/// Copies the FAT image `esp` into the EFI system partition of `disk`.
pub fn write_esp(layout: &Layout, esp: &Path, disk: &Path) -> Result<(), StageError> {
    let mut out = OpenOptions::new()
        .write(true)
        .open(disk)
        .map_err(io("opening", disk))?;
    copy_sparse(esp, layout.esp_offset, layout.esp_bytes, &mut out, disk)?;
    out.sync_all().map_err(io("syncing", disk))
}

fn run_sfdisk(script: &str, disk: &Path) -> Result<(), StageError> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("sfdisk")
        .args([
            "--quiet",
            "--no-reread",
            "--no-tell-kernel",
            "--wipe",
            "never",
        ])
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StageError::Tool(ToolError::NotFound {
                program: "sfdisk".into(),
                package: "fdisk",
            }),
            _ => StageError::Tool(ToolError::Spawn {
                program: "sfdisk".into(),
                source,
            }),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(io("writing the partition table of", disk))?;
    }
    let output = child
        .wait_with_output()
        .map_err(io("running sfdisk on", disk))?;
    if !output.status.success() {
        return Err(StageError::Tool(ToolError::Failed {
            command: format!("sfdisk {} <<EOF\n{script}EOF", disk.display()),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }));
    }
    Ok(())
}

/// Copies `from` to `offset` in `out`, leaving holes where `from` has zero blocks. The image
/// must fit in `room` bytes. (Hand-written: a few lines, where `dd conv=sparse` would be a
/// second external program per partition.)
fn copy_sparse(
    from: &Path,
    offset: u64,
    room: u64,
    out: &mut File,
    disk: &Path,
) -> Result<(), StageError> {
    let mut input = File::open(from).map_err(io("opening", from))?;
    let len = input.metadata().map_err(io("stat", from))?.len();
    if len > room {
        return Err(StageError::Invalid(format!(
            "{} is {len} bytes but its partition has {room}",
            from.display()
        )));
    }
    let mut buf = vec![0u8; MIB as usize];
    let mut pos = 0u64;
    loop {
        let n = read_full(&mut input, &mut buf).map_err(io("reading", from))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            out.seek(SeekFrom::Start(offset + pos))
                .map_err(io("seeking in", disk))?;
            out.write_all(&buf[..n]).map_err(io("writing", disk))?;
        }
        pos += n as u64;
    }
    Ok(())
}

fn read_full(input: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_leaves_room_for_backup_gpt() {
        let l = Layout::new(4096 * MIB, 128 * MIB).unwrap();
        assert_eq!(l.esp_offset, MIB);
        assert_eq!(l.root_offset, 129 * MIB);
        assert_eq!(l.root_offset % MIB, 0);
        assert!(l.root_offset + l.root_bytes <= l.disk_bytes - 33 * SECTOR);
        assert!(Layout::new(100 * MIB, 128 * MIB).is_err());
        assert!(Layout::new(4096 * MIB + 1, 128 * MIB).is_err());
    }

    #[test]
    fn sfdisk_script_marks_esp_legacy_bootable() {
        let l = Layout::new(1024 * MIB, 64 * MIB).unwrap();
        let s = l.sfdisk_script(&Ids::for_version("1"));
        assert!(s.contains("attrs=\"LegacyBIOSBootable\""), "{s}");
        assert!(s.contains("start=2048, size=131072"), "{s}");
    }
}
