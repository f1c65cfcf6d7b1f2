//! Stage 2a: the EFI system partition as a FAT image file, made with dosfstools and mtools only
//! (no mount, no loop device). It boots both firmwares from the same kernel and initrd:
//! syslinux (`syslinux --install` works on an image file) for BIOS, systemd-boot as the
//! removable-media loader `EFI/BOOT/BOOTX64.EFI` with one loader entry for UEFI. Keeping the
//! kernel here avoids GRUB, which needs a block device to install and cannot read the ext4
//! features e2fsprogs 1.47 enables by default.

use std::path::{Path, PathBuf};

use askama::Template;

use super::error::{StageError, io};
use super::tool;

/// systemd-boot, from Debian's `systemd-boot-efi`.
pub const SYSTEMD_BOOT_EFI: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

#[derive(Template)]
#[template(path = "appliance/syslinux.cfg", escape = "none")]
struct SyslinuxCfg<'a> {
    cmdline: &'a str,
}

#[derive(Template)]
#[template(path = "appliance/loader.conf", escape = "none")]
struct LoaderConf;

#[derive(Template)]
#[template(path = "appliance/entry.conf", escape = "none")]
struct LoaderEntry<'a> {
    title: &'a str,
    cmdline: &'a str,
}

/// The kernel command line: root by filesystem UUID, console on screen and on the first serial
/// port (the vSphere console and a serial log both show boot and first-boot messages).
pub fn cmdline(root_uuid: &str) -> String {
    format!("root=UUID={root_uuid} ro console=tty0 console=ttyS0,115200n8")
}

/// What goes on the partition.
pub struct EspSpec<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: &'a str,
    pub title: &'a str,
    pub volume_id: u32,
    pub size_bytes: u64,
    pub source_date_epoch: u64,
}

/// Writes the FAT image `esp` (`size_bytes` long).
pub fn build_esp(spec: &EspSpec, dir: &Path, esp: &Path) -> Result<(), StageError> {
    if !Path::new(SYSTEMD_BOOT_EFI).is_file() {
        return Err(StageError::Missing(SYSTEMD_BOOT_EFI, "systemd-boot-efi"));
    }
    let epoch = spec.source_date_epoch.to_string();
    let env = [
        ("SOURCE_DATE_EPOCH", epoch.as_str()),
        ("MTOOLS_SKIP_CHECK", "1"),
    ];
    let img = esp.display().to_string();
    let _ = std::fs::remove_file(esp);
    make_fat(spec, &img, &env)?;
    let tree = stage_tree(spec, dir)?;
    let mut args = vec!["-s".to_owned(), "-m".into(), "-i".into(), img.clone()];
    for top in ["vmlinuz", "initrd.img", "syslinux.cfg", "EFI", "loader"] {
        args.push(tree.join(top).display().to_string());
    }
    args.push("::/".into());
    tool::run("mcopy", &args, &env)?;
    let _ = std::fs::remove_dir_all(&tree);
    // ldlinux.sys + ldlinux.c32 into the root directory and the FAT boot sector.
    tool::run("syslinux", ["--install", &img], &env)?;
    Ok(())
}

/// An empty FAT32 file system in the image file `img`.
fn make_fat(spec: &EspSpec, img: &str, env: &[(&str, &str)]) -> Result<(), StageError> {
    tool::run(
        "mkfs.vfat",
        [
            // Fixed creation times (the volume label entry); the volume id comes from -i.
            "--invariant",
            "-C",
            "-F",
            "32",
            "-n",
            "ESP",
            "-i",
            &format!("{:08X}", spec.volume_id),
            img,
            &(spec.size_bytes / 1024).to_string(),
        ],
        env,
    )?;
    Ok(())
}

/// Stages the partition's content in `dir/esp-tree` and returns that directory.
fn stage_tree(spec: &EspSpec, dir: &Path) -> Result<PathBuf, StageError> {
    // The partition's content is staged as a directory tree with every time set to
    // SOURCE_DATE_EPOCH and copied in one `mcopy -s -m`, which keeps the times of files and
    // directories alike (directories made with `mmd` would get the build's time).
    let tree = dir.join("esp-tree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).map_err(io("removing", &tree))?;
    }
    let entries = tree.join("loader/entries");
    std::fs::create_dir_all(&entries).map_err(io("creating", &entries))?;
    let efi_boot = tree.join("EFI/BOOT");
    std::fs::create_dir_all(&efi_boot).map_err(io("creating", &efi_boot))?;
    let texts = [
        (
            "syslinux.cfg",
            SyslinuxCfg {
                cmdline: spec.cmdline,
            }
            .render(),
        ),
        ("loader/loader.conf", LoaderConf.render()),
        (
            "loader/entries/appliance.conf",
            LoaderEntry {
                title: spec.title,
                cmdline: spec.cmdline,
            }
            .render(),
        ),
    ];
    for (name, text) in texts {
        let text = text.map_err(|e| StageError::Template(name, e))?;
        let path = tree.join(name);
        std::fs::write(&path, text).map_err(io("writing", &path))?;
    }
    let copies = [
        (spec.kernel, "vmlinuz"),
        (spec.initrd, "initrd.img"),
        (Path::new(SYSTEMD_BOOT_EFI), "EFI/BOOT/BOOTX64.EFI"),
    ];
    for (from, to) in copies {
        std::fs::copy(from, tree.join(to)).map_err(io("copying", from))?;
    }
    tool::set_mtimes(&tree, spec.source_date_epoch, false)?;
    Ok(tree)
}
