//! The OVF `iso` transport: `ovf-env.xml` in the root of an ISO 9660 CD-ROM.
//!
//! Candidates are the block devices that carry an ISO 9660 primary volume descriptor, the one
//! labelled `OVF ENV` first. Each is mounted read-only (`nodev,nosuid,noexec`) on a private
//! directory under `/run`, the file is read, and the device is unmounted again before
//! anything else happens. When the kernel cannot mount it (no `iso9660` driver, or the
//! candidate is an image file rather than a block device), the root directory is read directly
//! from the volume instead: a few fixed-layout records, documented in ECMA-119.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{EnvSource, Fetched, SourceError};

/// Volume label vSphere gives the environment CD-ROM.
pub const OVF_ENV_LABEL: &str = "OVF ENV";
/// The file name on it.
pub const OVF_ENV_FILE: &str = "ovf-env.xml";
/// Largest environment accepted (vSphere's are a few KiB).
const MAX_ENV_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `ovf-env.xml` from an ISO 9660 device.
pub struct Iso {
    /// Devices to look at; `None`: every block device listed in `/sys/class/block`.
    devices: Option<Vec<PathBuf>>,
    /// Try mount(2) first (off in tests that run unprivileged).
    mount: bool,
}

impl Iso {
    pub fn new() -> Self {
        Iso {
            devices: None,
            mount: true,
        }
    }

    /// Only these devices (or image files), without mounting (tests).
    pub fn with_devices(devices: Vec<PathBuf>, mount: bool) -> Self {
        Iso {
            devices: Some(devices),
            mount,
        }
    }
}

impl Default for Iso {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvSource for Iso {
    fn describe(&self) -> String {
        format!("{OVF_ENV_FILE} on an ISO 9660 CD-ROM")
    }

    fn fetch(&mut self) -> Result<Option<Fetched>, SourceError> {
        let devices = match &self.devices {
            Some(d) => d.clone(),
            None => block_devices(),
        };
        // (device, label) of every ISO 9660 volume, `OVF ENV` first.
        let mut volumes: Vec<(PathBuf, String)> = devices
            .into_iter()
            .filter_map(|dev| volume_label(&dev).ok().flatten().map(|label| (dev, label)))
            .collect();
        volumes.sort_by_key(|(_, label)| label != OVF_ENV_LABEL);
        let mut problems = Vec::new();
        for (dev, label) in volumes {
            let via = format!("{OVF_ENV_FILE} on {} ({label})", dev.display());
            // Why mounting did not work, reported only if reading directly fails too.
            let mut mount_note = None;
            if self.mount {
                match read_mounted(&dev) {
                    Ok(Some(bytes)) => {
                        return Ok(Some(Fetched {
                            bytes,
                            description: via,
                        }));
                    }
                    Ok(None) => continue,
                    Err(MountError::CannotMount(e)) => mount_note = Some(e),
                    Err(MountError::Other(e)) => {
                        problems.push(format!("{}: {e}", dev.display()));
                        continue;
                    }
                }
            }
            match fs::File::open(&dev).and_then(|mut f| read_root_file(&mut f, OVF_ENV_FILE)) {
                Ok(Some(bytes)) => {
                    return Ok(Some(Fetched {
                        bytes,
                        description: via,
                    }));
                }
                Ok(None) => {}
                Err(e) => problems.push(match mount_note {
                    Some(m) => {
                        format!("{}: cannot mount it ({m}) nor read it ({e})", dev.display())
                    }
                    None => format!("{}: {e}", dev.display()),
                }),
            }
        }
        if problems.is_empty() {
            Ok(None)
        } else {
            Err(SourceError::new(self.describe(), problems.join("; ")))
        }
    }
}

/// Whole block devices (`/dev/sr0`, `/dev/sda`, …; partitions are skipped).
fn block_devices() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/sys/class/block") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !e.path().join("partition").exists())
        .map(|e| Path::new("/dev").join(e.file_name()))
        .filter(|p| p.exists())
        .collect();
    out.sort();
    out
}

/// The volume identifier of an ISO 9660 volume; `Ok(None)` if it is not one.
pub fn volume_label(dev: &Path) -> io::Result<Option<String>> {
    let mut f = fs::File::open(dev)?;
    Ok(primary_volume(&mut f)?.map(|pvd| pvd.label))
}

struct Pvd {
    label: String,
    block_size: u64,
    root_extent: u64,
    root_len: u64,
}

/// Read the primary volume descriptor (ECMA-119 §8.4) at sector 16.
fn primary_volume<R: Read + Seek>(r: &mut R) -> io::Result<Option<Pvd>> {
    let mut sector = [0u8; 2048];
    r.seek(SeekFrom::Start(16 * 2048))?;
    if r.read_exact(&mut sector).is_err() {
        return Ok(None);
    }
    if sector[0] != 1 || &sector[1..6] != b"CD001" {
        return Ok(None);
    }
    let label = String::from_utf8_lossy(&sector[40..72])
        .trim_end()
        .to_owned();
    let block_size = u64::from(u16::from_le_bytes([sector[128], sector[129]]));
    let root = &sector[156..156 + 34];
    let root_extent = u64::from(u32::from_le_bytes([root[2], root[3], root[4], root[5]]));
    let root_len = u64::from(u32::from_le_bytes([root[10], root[11], root[12], root[13]]));
    if block_size == 0 {
        return Ok(None);
    }
    Ok(Some(Pvd {
        label,
        block_size,
        root_extent,
        root_len,
    }))
}

/// Read a file from the root directory of an ISO 9660 volume, matching the name the way the
/// Linux driver shows it (case-insensitive, `;1` version dropped, `-` stored as `_` in plain
/// ISO 9660 names).
pub fn read_root_file<R: Read + Seek>(r: &mut R, name: &str) -> io::Result<Option<Vec<u8>>> {
    let Some(pvd) = primary_volume(r)? else {
        return Ok(None);
    };
    let want = iso_name(name);
    let len = pvd.root_len.min(1024 * 1024);
    let mut dir = vec![0u8; usize::try_from(len).unwrap_or(0)];
    r.seek(SeekFrom::Start(
        pvd.root_extent.saturating_mul(pvd.block_size),
    ))?;
    r.read_exact(&mut dir)?;
    let mut pos = 0usize;
    let bs = usize::try_from(pvd.block_size).unwrap_or(2048);
    while pos < dir.len() {
        let rec_len = usize::from(dir[pos]);
        if rec_len == 0 {
            // Records do not cross sector boundaries: skip the padding to the next one.
            pos = (pos / bs + 1) * bs;
            continue;
        }
        let Some(rec) = dir.get(pos..pos + rec_len) else {
            break;
        };
        pos += rec_len;
        if rec.len() < 33 {
            continue;
        }
        let name_len = usize::from(rec[32]);
        let Some(raw_name) = rec.get(33..33 + name_len) else {
            continue;
        };
        let is_dir = rec[25] & 0x02 != 0;
        if is_dir || iso_name(&String::from_utf8_lossy(raw_name)) != want {
            continue;
        }
        let extent = u64::from(u32::from_le_bytes([rec[2], rec[3], rec[4], rec[5]]));
        let size = u64::from(u32::from_le_bytes([rec[10], rec[11], rec[12], rec[13]]));
        if size > MAX_ENV_BYTES {
            return Err(io::Error::other(format!(
                "{name} is {size} bytes; expected at most {MAX_ENV_BYTES}"
            )));
        }
        let mut data = vec![0u8; usize::try_from(size).unwrap_or(0)];
        r.seek(SeekFrom::Start(extent.saturating_mul(pvd.block_size)))?;
        r.read_exact(&mut data)?;
        return Ok(Some(data));
    }
    Ok(None)
}

fn iso_name(name: &str) -> String {
    let base = name.split(';').next().unwrap_or(name);
    let base = base.strip_suffix('.').unwrap_or(base);
    base.to_ascii_uppercase().replace('-', "_")
}

enum MountError {
    /// mount(2) refused; reading the volume directly may still work.
    CannotMount(String),
    Other(String),
}

/// Mount read-only on a private directory, read the file, unmount, remove the directory.
fn read_mounted(dev: &Path) -> Result<Option<Vec<u8>>, MountError> {
    use nix::mount::{MsFlags, mount};

    let dir = PathBuf::from(format!(
        "/run/haproxy-firstboot-ovfenv.{}",
        std::process::id()
    ));
    fs::create_dir_all(&dir)
        .map_err(|e| MountError::CannotMount(format!("cannot create {}: {e}", dir.display())))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(Some(dev), &dir, Some("iso9660"), flags, None::<&str>) {
        let _ = fs::remove_dir(&dir);
        return Err(MountError::CannotMount(e.desc().to_owned()));
    }
    let guard = Mounted { dir: dir.clone() };
    let mut found = None;
    for candidate in [OVF_ENV_FILE, "OVF-ENV.XML", "ovf_env.xml", "OVF_ENV.XML"] {
        let path = dir.join(candidate);
        match fs::metadata(&path) {
            Ok(m) if m.len() > MAX_ENV_BYTES => {
                return Err(MountError::Other(format!(
                    "{candidate} is {} bytes; expected at most {MAX_ENV_BYTES}",
                    m.len()
                )));
            }
            Ok(_) => {
                found = Some(
                    fs::read(&path)
                        .map_err(|e| MountError::Other(format!("cannot read {candidate}: {e}")))?,
                );
                break;
            }
            Err(_) => continue,
        }
    }
    guard.unmount().map_err(MountError::Other)?;
    Ok(found)
}

/// Unmounts (and removes the mount point) when dropped, so no early return leaves it mounted.
struct Mounted {
    dir: PathBuf,
}

impl Mounted {
    fn unmount(self) -> Result<(), String> {
        let result = nix::mount::umount(&self.dir)
            .map_err(|e| format!("cannot unmount {}: {}", self.dir.display(), e.desc()));
        let _ = fs::remove_dir(&self.dir);
        std::mem::forget(self);
        result
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.dir);
    }
}
