//! Stage 1: the root filesystem, as a directory.
//!
//! `mmdebstrap --mode=root --variant=minbase` installs Debian with the packages the appliance
//! runs; then the appliance's own files go in (the first-boot program and its units, the Data
//! Plane API when given, fstab by UUID, SSH host-key generation at boot, a kernel hook for the
//! EFI system partition), the units are enabled, and everything that must differ per deployment
//! or only costs space is removed (SSH host keys, machine-id, apt lists, logs).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use askama::Template;

use super::error::{StageError, io};
use super::ids::Ids;
use super::tool;

/// Debian packages of the appliance. `linux-image-cloud-amd64` matches the virtual hardware of
/// the definition (PVSCSI, VmxNet3, IDE CD-ROM); it has no LSI Logic, SATA or e1000 drivers.
pub const PACKAGES: &[&str] = &[
    "linux-image-cloud-amd64",
    "systemd",
    "systemd-sysv",
    "systemd-resolved",
    "udev",
    "dbus",
    "kmod",
    "initramfs-tools",
    "haproxy",
    "openssh-server",
    "iproute2",
    "procps",
    "netbase",
    "open-vm-tools",
    "ca-certificates",
    // the host firewall: nftables.service loads the /etc/nftables.conf haproxy-firstboot writes
    "nftables",
    // what haproxy-firstboot runs or links against
    "libssl3",
    "util-linux",
    "mount",
];

/// Paths dpkg does not install: manuals, documentation (licence texts stay), translations.
const DPKG_EXCLUDES: &[&str] = &[
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
];

/// Timers that only cost an appliance: it is upgraded by replacing it, not by apt.
const MASKED_UNITS: &[&str] = &[
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
];

/// Units of the image enabled at build time, besides the appliance's own (`RootfsSpec::enable`).
/// nftables.service (Debian's) loads /etc/nftables.conf before the network comes up;
/// haproxy-firstboot.service is ordered before it, so it loads this deployment's rules.
pub const ENABLED_UNITS: &[&str] = &[
    "systemd-networkd.service",
    "systemd-resolved.service",
    "ssh-hostkeys.service",
    "nftables.service",
];

/// Where the appliance's own programs go.
/// The path `firstboot/systemd/haproxy-firstboot.service` runs.
pub const FIRSTBOOT_PATH: &str = "usr/local/bin/haproxy-firstboot";
pub const DATAPLANEAPI_PATH: &str = "usr/local/bin/dataplaneapi";

/// What stage 1 needs.
#[derive(Debug, Clone)]
pub struct RootfsSpec {
    pub suite: String,
    /// Apt source lines (`deb URL SUITE COMPONENTS`).
    pub sources: Vec<String>,
    pub extra_packages: Vec<String>,
    /// The `haproxy-firstboot` executable.
    pub firstboot: PathBuf,
    /// Its systemd units (`*.service`), installed into /etc/systemd/system (where
    /// firstboot/systemd/haproxy-firstboot.service says the image build puts them).
    pub units: Vec<PathBuf>,
    /// `.link` files naming the NICs by PCI path, installed into /etc/systemd/network.
    pub link_files: Vec<PathBuf>,
    /// The units enabled at build time.
    pub enable: Vec<String>,
    /// The Data Plane API executable, when the appliance has one.
    pub dataplaneapi: Option<PathBuf>,
    pub hostname: String,
    pub source_date_epoch: u64,
}

/// What stage 1 produced, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RootfsInfo {
    pub kernel_version: String,
    pub packages: usize,
    pub bytes: u64,
}

#[derive(Template)]
#[template(path = "appliance/fstab", escape = "none")]
struct Fstab<'a> {
    root_uuid: &'a str,
    esp_uuid: &'a str,
}

#[derive(Template)]
#[template(path = "appliance/ssh-hostkeys.service", escape = "none")]
struct SshHostKeysUnit;

#[derive(Template)]
#[template(path = "appliance/zz-appliance-esp", escape = "none")]
struct EspKernelHook;

/// Builds the root filesystem into `root` (which must not exist yet unless `reuse`: then only
/// the appliance's own files are installed again).
pub fn build(
    spec: &RootfsSpec,
    ids: &Ids,
    root: &Path,
    reuse: bool,
) -> Result<RootfsInfo, StageError> {
    check_inputs(spec)?;
    if !reuse {
        bootstrap(spec, root)?;
    }
    customize(spec, ids, root)?;
    clamp_mtimes(root, spec.source_date_epoch)?;
    inspect(root)
}

fn check_inputs(spec: &RootfsSpec) -> Result<(), StageError> {
    let mut files = vec![("the haproxy-firstboot program", &spec.firstboot)];
    files.extend(spec.units.iter().map(|u| ("a first-boot unit", u)));
    files.extend(spec.link_files.iter().map(|u| ("a NIC .link file", u)));
    if let Some(d) = &spec.dataplaneapi {
        files.push(("the Data Plane API program", d));
    }
    for (what, path) in files {
        if !path.is_file() {
            return Err(StageError::Invalid(format!(
                "{what} {} does not exist or is not a file",
                path.display()
            )));
        }
    }
    Ok(())
}

fn bootstrap(spec: &RootfsSpec, root: &Path) -> Result<(), StageError> {
    let mut packages: Vec<&str> = PACKAGES.to_vec();
    packages.extend(spec.extra_packages.iter().map(String::as_str));
    let mut args: Vec<String> = vec![
        "--mode=root".into(),
        "--variant=minbase".into(),
        "--format=directory".into(),
        format!("--include={}", packages.join(",")),
        "--aptopt=Acquire::Retries \"3\"".into(),
    ];
    args.extend(DPKG_EXCLUDES.iter().map(|e| format!("--dpkgopt={e}")));
    args.push(spec.suite.clone());
    args.push(root.display().to_string());
    args.extend(spec.sources.iter().cloned());
    let epoch = spec.source_date_epoch.to_string();
    tool::run("mmdebstrap", &args, &[("SOURCE_DATE_EPOCH", &epoch)])?;
    Ok(())
}

fn write(root: &Path, rel: &str, contents: &[u8], mode: u32) -> Result<(), StageError> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    fs::write(&path, contents).map_err(io("writing", &path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io("chmod", &path))
}

fn copy(root: &Path, from: &Path, rel: &str, mode: u32) -> Result<(), StageError> {
    let data = fs::read(from).map_err(io("reading", from))?;
    write(root, rel, &data, mode)
}

fn remove_matching(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<(), StageError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(io("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep(&name) {
            continue;
        }
        let path = entry.path();
        let result = if entry.file_type().map_err(io("stat", &path))?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        result.map_err(io("removing", &path))?;
    }
    Ok(())
}

fn customize(spec: &RootfsSpec, ids: &Ids, root: &Path) -> Result<(), StageError> {
    install_programs_and_units(spec, root)?;
    write_system_files(spec, ids, root)?;
    enable_units(spec, root)?;
    remove_identity_and_noise(root)
}

/// The first-boot program, its units and NIC names, and the Data Plane API.
fn install_programs_and_units(spec: &RootfsSpec, root: &Path) -> Result<(), StageError> {
    copy(root, &spec.firstboot, FIRSTBOOT_PATH, 0o755)?;
    for unit in &spec.units {
        let name = unit
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                StageError::Invalid(format!("unit path {} has no file name", unit.display()))
            })?;
        copy(root, unit, &format!("etc/systemd/system/{name}"), 0o644)?;
    }
    for link in &spec.link_files {
        let name = link
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                StageError::Invalid(format!("path {} has no file name", link.display()))
            })?;
        copy(root, link, &format!("etc/systemd/network/{name}"), 0o644)?;
    }
    if let Some(api) = &spec.dataplaneapi {
        copy(root, api, DATAPLANEAPI_PATH, 0o755)?;
    }
    Ok(())
}

/// fstab, the SSH host-key unit, the kernel hook for the ESP, host name, hosts, resolv.conf.
fn write_system_files(spec: &RootfsSpec, ids: &Ids, root: &Path) -> Result<(), StageError> {
    let fstab = Fstab {
        root_uuid: &ids.root_fs,
        esp_uuid: &ids.esp_fstab_uuid(),
    }
    .render()
    .map_err(|e| StageError::Template("fstab", e))?;
    write(root, "etc/fstab", fstab.as_bytes(), 0o644)?;
    fs::create_dir_all(root.join("boot/efi")).map_err(io("creating", &root.join("boot/efi")))?;

    let unit = SshHostKeysUnit
        .render()
        .map_err(|e| StageError::Template("ssh-hostkeys.service", e))?;
    write(
        root,
        "usr/lib/systemd/system/ssh-hostkeys.service",
        unit.as_bytes(),
        0o644,
    )?;
    let hook = EspKernelHook
        .render()
        .map_err(|e| StageError::Template("zz-appliance-esp", e))?;
    write(
        root,
        "etc/kernel/postinst.d/zz-appliance-esp",
        hook.as_bytes(),
        0o755,
    )?;
    write(
        root,
        "etc/initramfs/post-update.d/zz-appliance-esp",
        hook.as_bytes(),
        0o755,
    )?;

    write(
        root,
        "etc/hostname",
        format!("{}\n", spec.hostname).as_bytes(),
        0o644,
    )?;
    let hosts = format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{}\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
        spec.hostname
    );
    write(root, "etc/hosts", hosts.as_bytes(), 0o644)?;
    // systemd-resolved's stub; haproxy-firstboot writes DNS servers into the .network files.
    let resolv = root.join("etc/resolv.conf");
    let _ = fs::remove_file(&resolv);
    std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", &resolv)
        .map_err(io("linking", &resolv))?;
    Ok(())
}

/// Enables the image's and the appliance's units; masks the timers an appliance does not need.
fn enable_units(spec: &RootfsSpec, root: &Path) -> Result<(), StageError> {
    let mut enable: Vec<&str> = ENABLED_UNITS.to_vec();
    enable.extend(spec.enable.iter().map(String::as_str));
    let mut args = vec!["systemctl", "enable", "--quiet"];
    args.extend(&enable);
    tool::in_root(root, &args)?;
    let mut args = vec!["systemctl", "mask", "--quiet"];
    args.extend(MASKED_UNITS);
    tool::in_root(root, &args)?;
    Ok(())
}

/// What must differ per deployment (generated at first boot) or only costs space.
fn remove_identity_and_noise(root: &Path) -> Result<(), StageError> {
    // Per-deployment identity: generated at first boot, never shipped.
    remove_matching(&root.join("etc/ssh"), |n| !n.starts_with("ssh_host_"))?;
    write(root, "etc/machine-id", b"", 0o444)?;
    let _ = fs::remove_file(root.join("var/lib/dbus/machine-id"));
    // Space and build-time noise.
    remove_matching(&root.join("var/lib/apt/lists"), |n| {
        n == "partial" || n == "lock"
    })?;
    remove_matching(&root.join("var/cache/apt"), |n| n == "archives")?;
    remove_matching(&root.join("var/cache/apt/archives"), |n| {
        n == "partial" || n == "lock"
    })?;
    for log in [
        "var/log/dpkg.log",
        "var/log/alternatives.log",
        "var/log/bootstrap.log",
    ] {
        let _ = fs::remove_file(root.join(log));
    }
    remove_matching(&root.join("var/log/apt"), |_| false)?;
    let _ = fs::remove_file(root.join("var/cache/ldconfig/aux-cache"));
    remove_matching(&root.join("var/cache/debconf"), |n| !n.ends_with("-old"))?; // keeps the live databases
    Ok(())
}

/// Files created during the build get the build's time: mkfs.ext4 copies mtimes into the image.
fn clamp_mtimes(root: &Path, epoch: u64) -> Result<(), StageError> {
    Ok(tool::set_mtimes(root, epoch, true)?)
}

fn inspect(root: &Path) -> Result<RootfsInfo, StageError> {
    let kernels: Vec<String> = fs::read_dir(root.join("boot"))
        .map_err(io("listing", &root.join("boot")))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("vmlinuz-"))
                .map(str::to_owned)
        })
        .collect();
    let [kernel_version] = kernels.as_slice() else {
        return Err(StageError::Invalid(format!(
            "expected exactly one kernel in {}/boot, found {kernels:?}",
            root.display()
        )));
    };
    let status = root.join("var/lib/dpkg/status");
    let packages = fs::read_to_string(&status)
        .map_err(io("reading", &status))?
        .lines()
        .filter(|l| *l == "Status: install ok installed")
        .count();
    let du = tool::run("du", ["-sxb", &root.display().to_string()], &[])?;
    let bytes = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(RootfsInfo {
        kernel_version: kernel_version.clone(),
        packages,
        bytes,
    })
}

/// Paths of the kernel and initrd of `info` inside `root`.
pub fn kernel_files(root: &Path, info: &RootfsInfo) -> (PathBuf, PathBuf) {
    (
        root.join(format!("boot/vmlinuz-{}", info.kernel_version)),
        root.join(format!("boot/initrd.img-{}", info.kernel_version)),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// packer/provision.sh gives a Packer-built VM the same packages.
    #[test]
    fn packer_provisioning_installs_the_same_packages() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packer/provision.sh");
        let script = fs::read_to_string(&path).unwrap();
        let words: Vec<&str> = script.split_whitespace().collect();
        for p in PACKAGES {
            assert!(words.contains(p), "{} does not install {p}", path.display());
        }
    }

    /// ... and enables the same units.
    #[test]
    fn packer_provisioning_enables_the_same_units() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packer/provision.sh");
        let script = fs::read_to_string(&path).unwrap();
        let enabled: Vec<&str> = script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("systemctl enable "))
            .flat_map(str::split_whitespace)
            .collect();
        for unit in ENABLED_UNITS {
            assert!(
                enabled.contains(unit),
                "{} does not enable {unit}",
                path.display()
            );
        }
    }
}
