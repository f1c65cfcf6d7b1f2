//! Building the appliance's bootable disk without a hypervisor, mounts or loop devices.
//!
//! ```text
//! packages ─mmdebstrap─▶ base tree (cached) ─copy + first-boot program─▶ directory ─┐
//!   ┌────────────────────────────────────────────────────────────────────────────┘
//!   ├─ mkfs.ext4 -d ─▶ root partition ┐
//!   └ kernel, initrd ─▶ FAT ESP image ┴ GPT raw disk
//! ```
//!
//! The build cache (`cache.rs`) keeps the verified package files and the base tree between
//! builds (`apt.rs`, `base.rs`): a rebuild that changes only the appliance's own files copies
//! the base instead of installing Debian again, and gives the same bytes as a cold build.
//!
//! The raw disk then goes through the same packaging as `ova-builder build` (the command glues
//! that on). Stages report progress to a [`StageObserver`]; a failure names its [`Stage`].

pub mod apt;
pub mod base;
pub mod boot;
pub mod cache;
pub mod definition;
pub mod disk;
pub mod error;
pub mod ids;
pub mod rootfs;
pub mod tool;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use disk::Layout;
pub use error::StageError;
pub use ids::Ids;
pub use rootfs::{RootfsInfo, RootfsSpec};

/// The steps of an appliance build, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Debian root filesystem into a directory (mmdebstrap + customization).
    Rootfs,
    /// Sparse GPT disk file with the MBR boot code.
    Disk,
    /// ext4 root filesystem from the directory, written into its partition (mkfs.ext4 -d).
    RootImage,
    /// FAT EFI system partition with the BIOS and UEFI boot loaders.
    BootPartition,
    /// streamOptimized VMDK, descriptor, manifest, OVA (the `build` path).
    Ova,
}

impl Stage {
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Rootfs => "root filesystem (mmdebstrap)",
            Stage::Disk => "GPT disk file (sfdisk)",
            Stage::RootImage => "ext4 root partition (mkfs.ext4 -d)",
            Stage::BootPartition => "EFI system partition (syslinux + systemd-boot)",
            Stage::Ova => "OVA (VMDK, descriptor, manifest)",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Stage::Rootfs => "rootfs",
            Stage::RootImage => "root-image",
            Stage::BootPartition => "boot-partition",
            Stage::Disk => "disk",
            Stage::Ova => "ova",
        };
        f.write_str(name)
    }
}

/// A stage failed.
#[derive(Debug, thiserror::Error)]
#[error("stage `{stage}` ({}) failed", stage.describe())]
pub struct ApplianceError {
    pub stage: Stage,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl ApplianceError {
    pub fn new(stage: Stage, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApplianceError {
            stage,
            source: source.into(),
        }
    }
}

/// Told when each stage starts and ends (the command shows it).
pub trait StageObserver {
    fn started(&mut self, stage: Stage);
    fn finished(&mut self, stage: Stage, took: Duration);
}

/// Everything the disk build needs.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    pub version: String,
    pub rootfs: RootfsSpec,
    pub disk_bytes: u64,
    pub esp_bytes: u64,
    /// Scratch space (the root directory and the filesystem images go here).
    pub work_dir: PathBuf,
    /// The build cache: package files and base trees kept between builds (`cache.rs`).
    pub cache_dir: PathBuf,
}

/// One stage's time.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageTime {
    pub stage: Stage,
    pub seconds: f64,
}

/// What the disk build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiskReport {
    pub disk: PathBuf,
    pub layout: Layout,
    pub root_fs_uuid: String,
    pub kernel_cmdline: String,
    pub rootfs: RootfsInfo,
    pub stages: Vec<StageTime>,
}

fn timed<T, E>(
    stage: Stage,
    observer: &mut dyn StageObserver,
    stages: &mut Vec<StageTime>,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, ApplianceError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    observer.started(stage);
    let start = Instant::now();
    let value = f().map_err(|e| ApplianceError::new(stage, e))?;
    let took = start.elapsed();
    observer.finished(stage, took);
    stages.push(StageTime {
        stage,
        seconds: took.as_secs_f64(),
    });
    Ok(value)
}

/// Stages 1–4: root filesystem directory → GPT raw disk at `disk` (ext4 root, FAT ESP).
pub fn build_disk(
    spec: &DiskSpec,
    disk: &Path,
    observer: &mut dyn StageObserver,
) -> Result<DiskReport, ApplianceError> {
    let ids = Ids::for_version(&spec.version);
    let layout = Layout::new(spec.disk_bytes, spec.esp_bytes)
        .map_err(|e| ApplianceError::new(Stage::Disk, e))?;
    let root = spec.work_dir.join("rootfs");
    let mut stages = Vec::new();
    let epoch = spec.rootfs.source_date_epoch;

    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| {
            ApplianceError::new(
                Stage::Rootfs,
                format!("removing the old {}: {e}", root.display()),
            )
        })?;
    }
    let info = timed(Stage::Rootfs, observer, &mut stages, || {
        // Locked for this stage only: the later stages read the copy in the work directory.
        let cache = cache::Cache::open(&spec.cache_dir)?;
        rootfs::build(&spec.rootfs, &ids, &cache, &root)
    })?;

    // The disk is assembled under a temporary name and renamed when complete.
    let tmp = disk.with_extension("raw.part");
    // A failed stage leaves no half-made disk behind.
    let mut partial = RemoveOnDrop(Some(tmp.clone()));
    timed(Stage::Disk, observer, &mut stages, || {
        disk::create(&layout, &ids, &tmp)
    })?;

    timed(Stage::RootImage, observer, &mut stages, || {
        if info.bytes.saturating_mul(5) / 4 > layout.root_bytes {
            return Err(StageError::Invalid(format!(
                "the root filesystem holds {} MiB; a {} MiB partition is too small (use a larger disk size)",
                info.bytes / (1024 * 1024),
                layout.root_bytes / (1024 * 1024)
            )));
        }
        disk::build_root_fs(&root, &ids, &layout, epoch, &tmp)
    })?;

    let cmdline = boot::cmdline(&ids.root_fs);
    let esp_image = spec.work_dir.join("esp.fat");
    timed(Stage::BootPartition, observer, &mut stages, || {
        let (kernel, initrd) = rootfs::kernel_files(&root, &info);
        let esp = boot::EspSpec {
            kernel: &kernel,
            initrd: &initrd,
            cmdline: &cmdline,
            title: &format!("HAProxy appliance {}", spec.version),
            volume_id: ids.esp_volume_id,
            size_bytes: layout.esp_bytes,
            source_date_epoch: epoch,
        };
        boot::build_esp(&esp, &spec.work_dir, &esp_image)?;
        disk::write_esp(&layout, &esp_image, &tmp)?;
        std::fs::rename(&tmp, disk)
            .map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), disk.display()))?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    partial.0 = None;
    let _ = std::fs::remove_file(&esp_image);

    Ok(DiskReport {
        disk: disk.to_owned(),
        layout,
        root_fs_uuid: ids.root_fs,
        kernel_cmdline: cmdline,
        rootfs: info,
        stages,
    })
}

/// Removes the file at its path when dropped, unless the path was taken out.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
