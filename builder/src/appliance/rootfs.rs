//! Stage 1: the root filesystem, as a directory, in two layers.
//!
//! The base (`base.rs`, kept in the build cache): `mmdebstrap --mode=root --variant=minbase`
//! installs Debian with the packages the appliance runs; the system's part of the
//! customization follows (SSH host-key generation at boot, a kernel hook for the EFI system
//! partition, host name, the system units enabled, timers masked), and everything that must
//! differ per deployment or only costs space is removed (SSH host keys, machine-id, apt lists,
//! logs).
//!
//! The overlay, on a copy of the base: the appliance's own files (the first-boot program and
//! its units, NIC names, the Data Plane API when given, fstab by UUID), its units enabled, and
//! every file newer than the build's time clamped to it. A cold build and a warm one (base from
//! the cache) run the same overlay on the same base, so they give the same tree.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use askama::Template;

use super::base::{self, BaseTree, Steps};
use super::cache::Cache;
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
    // the HA pair (docs/ha-pair.md): VRRP for the management VIP and the AnyIP routes, and
    // gratuitous ARP for the VIPs in use on takeover (`dataplaneapi announce` runs arping)
    "keepalived",
    "iputils-arping",
    // what haproxy-firstboot runs or links against
    "libssl3",
    "util-linux",
    "mount",
];

/// Paths dpkg does not install: manuals, documentation (licence texts stay), translations.
pub const DPKG_EXCLUDES: &[&str] = &[
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
];

/// Timers that only cost an appliance: it is upgraded by replacing it, not by apt.
pub const MASKED_UNITS: &[&str] = &[
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
];

/// Units of the image enabled at build time, besides the appliance's own (`RootfsSpec::enable`).
/// nftables.service (Debian's) loads /etc/nftables.conf before the network comes up;
/// haproxy-firstboot.service is ordered before it, so it loads this deployment's rules.
/// keepalived.service (Debian's) starts only where haproxy-firstboot wrote
/// /etc/keepalived/keepalived.conf (`ConditionFileNotEmpty=`): on a node of an HA pair.
pub const ENABLED_UNITS: &[&str] = &[
    "systemd-networkd.service",
    "systemd-resolved.service",
    "ssh-hostkeys.service",
    "nftables.service",
    "keepalived.service",
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
    /// Lay the overlay on hard links to the cached base tree instead of a copy of it (much less
    /// to write and to delete). The overlay replaces files instead of writing into them, and
    /// touches no base file (all are older than the build's time; else the tree is copied), so
    /// the cache stays as it was; but the work tree must then not be edited in place: keep
    /// this off when the work directory is kept for inspection.
    pub link_base: bool,
}

/// What stage 1 produced, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RootfsInfo {
    pub kernel_version: String,
    pub packages: usize,
    pub bytes: u64,
    /// The base tree the root filesystem was laid over, and whether it came from the cache.
    pub base: BaseTree,
    /// The time of each step inside the stage, in seconds.
    pub steps: Steps,
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

/// Builds the root filesystem into `root` (which must not exist yet): the base tree from
/// `cache` (built first when the cache has none for these inputs), copied, with the overlay.
pub fn build(
    spec: &RootfsSpec,
    ids: &Ids,
    cache: &Cache,
    root: &Path,
) -> Result<RootfsInfo, StageError> {
    check_inputs(spec)?;
    let mut steps = Steps::default();
    let base = base::ensure(spec, cache, &mut steps)?;
    if spec.link_base
        && base.release_date <= spec.source_date_epoch
        && same_file_system(&base.dir, root)
    {
        steps.time("link base", || copy_tree(&base.dir, root, true))?;
    } else {
        steps.time("copy base", || copy_tree(&base.dir, root, false))?;
    }
    steps.time("overlay", || {
        overlay(spec, ids, root)?;
        clamp_mtimes(root, spec.source_date_epoch)
    })?;
    let (kernel_version, packages, bytes) = inspect(root)?;
    Ok(RootfsInfo {
        kernel_version,
        packages,
        bytes,
        base,
        steps,
    })
}

/// The system's part of the customization, on a tree mmdebstrap just made (`base.rs`): the
/// files of every appliance, system units enabled, noise removed, times clamped to `epoch`.
pub fn customize_base(spec: &RootfsSpec, root: &Path, epoch: u64) -> Result<(), StageError> {
    remove_unsafe_io(root)?;
    write_system_files(spec, root)?;
    let mut args = vec!["systemctl", "enable", "--quiet"];
    args.extend(ENABLED_UNITS);
    tool::in_root(root, &args)?;
    let mut args = vec!["systemctl", "mask", "--quiet"];
    args.extend(MASKED_UNITS);
    tool::in_root(root, &args)?;
    remove_identity_and_noise(root)?;
    clamp_mtimes(root, epoch)
}

/// The appliance's own files over a copy of the base.
fn overlay(spec: &RootfsSpec, ids: &Ids, root: &Path) -> Result<(), StageError> {
    install_programs_and_units(spec, root)?;
    let fstab = Fstab {
        root_uuid: &ids.root_fs,
        esp_uuid: &ids.esp_fstab_uuid(),
    }
    .render()
    .map_err(|e| StageError::Template("fstab", e))?;
    write(root, "etc/fstab", fstab.as_bytes(), 0o644)?;
    if !spec.enable.is_empty() {
        let mut args = vec!["systemctl", "enable", "--quiet"];
        args.extend(spec.enable.iter().map(String::as_str));
        tool::in_root(root, &args)?;
    }
    Ok(())
}

/// dpkg ran without fsync while the base was installed: the appliance's own dpkg must not.
fn remove_unsafe_io(root: &Path) -> Result<(), StageError> {
    let conf = root.join(base::UNSAFE_IO_CONF);
    fs::remove_file(&conf).map_err(io("removing", &conf))?;
    let dir = root.join("etc/dpkg/dpkg.cfg.d");
    for entry in fs::read_dir(&dir).map_err(io("listing", &dir))? {
        let path = entry.map_err(io("listing", &dir))?.path();
        let text = fs::read_to_string(&path).map_err(io("reading", &path))?;
        if text.lines().any(|l| l.trim() == "force-unsafe-io") {
            return Err(StageError::Invalid(format!(
                "{} still turns off dpkg's fsync",
                path.display()
            )));
        }
    }
    Ok(())
}

/// dpkg's `--path-exclude`/`--path-include` (`filters`, in order) applied to the files already
/// in the tree: mmdebstrap extracts the essential packages unfiltered (`base.rs`), and this
/// runs as its extract hook (`ova-builder appliance-filter-paths`), before any package script,
/// so the tree is then what a filtered extraction gives. dpkg's rules (`src/main/filters.c`):
/// the last filter whose pattern matches a path wins (fnmatch without flags: `*` matches `/`
/// too); an excluded directory or symbolic link is kept all the same when its path starts with
/// the part before the first wildcard of an include pattern (dpkg keeps what an included file
/// may need). An excluded directory that still holds something is kept.
pub fn remove_filtered_paths(root: &Path, filters: &[&str]) -> Result<(), StageError> {
    let mut rules = Vec::new();
    for filter in filters {
        let (exclude, pattern) = match filter.split_once('=') {
            Some(("path-exclude", p)) => (true, p),
            Some(("path-include", p)) => (false, p),
            _ => continue,
        };
        if pattern.contains(['?', '[', '\\']) || !pattern.starts_with('/') {
            return Err(StageError::Invalid(format!(
                "dpkg filter {filter}: only absolute patterns with `*` are supported"
            )));
        }
        rules.push((exclude, pattern));
    }
    let prefixes: Vec<&str> = (rules.iter().filter(|(exclude, _)| !exclude))
        .map(|(_, p)| &p[..p.find('*').unwrap_or(p.len())])
        .collect();
    let filter = PathFilter {
        excluded: &|path: &str| {
            (rules.iter().rev())
                .find(|(_, pattern)| glob_matches(pattern, path))
                .is_some_and(|(exclude, _)| *exclude)
        },
        reincluded: &|path: &str| prefixes.iter().any(|p| path.starts_with(p)),
    };
    // Only the directories the exclusions start from can hold excluded paths.
    let mut tops: Vec<&str> = (rules.iter().filter(|(exclude, _)| *exclude))
        .filter_map(|(_, p)| p[..p.find('*').unwrap_or(p.len())].rsplit_once('/'))
        .map(|(dir, _)| dir)
        .collect();
    tops.sort();
    tops.dedup();
    for top in tops {
        let dir = root.join(top.trim_start_matches('/'));
        if dir.is_dir() {
            remove_excluded_below(&dir, top, &filter)?;
        }
    }
    Ok(())
}

/// dpkg's two decisions for a path of the tree (`/usr/...`).
struct PathFilter<'a> {
    excluded: &'a dyn Fn(&str) -> bool,
    /// An excluded directory or symbolic link is kept.
    reincluded: &'a dyn Fn(&str) -> bool,
}

/// Removes what `filter` leaves out below `dir` (whose path in the tree is `path`); returns
/// whether `dir` is empty afterwards.
fn remove_excluded_below(dir: &Path, path: &str, filter: &PathFilter) -> Result<bool, StageError> {
    let mut empty = true;
    for entry in fs::read_dir(dir).map_err(io("listing", dir))? {
        let entry = entry.map_err(io("listing", dir))?;
        let child = format!("{path}/{}", entry.file_name().to_string_lossy());
        let child_path = entry.path();
        let kind = entry.file_type().map_err(io("stat", &child_path))?;
        let drop = (filter.excluded)(&child)
            && !((kind.is_dir() || kind.is_symlink()) && (filter.reincluded)(&child));
        let gone = if kind.is_dir() {
            let now_empty = remove_excluded_below(&child_path, &child, filter)?;
            now_empty && drop && {
                fs::remove_dir(&child_path).map_err(io("removing", &child_path))?;
                true
            }
        } else {
            drop && {
                fs::remove_file(&child_path).map_err(io("removing", &child_path))?;
                true
            }
        };
        empty &= gone;
    }
    Ok(empty)
}

/// fnmatch(3) without flags, for patterns of literal characters and `*` (any characters,
/// `/` included).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `cp -a` (owners, modes, times, hard links, extended attributes): hard links to every file
/// with `link` (new directories), else copies sharing blocks where the file system can
/// (reflinks).
fn copy_tree(from: &Path, to: &Path, link: bool) -> Result<(), StageError> {
    let (from, to) = (from.display().to_string(), to.display().to_string());
    let how = if link { "--link" } else { "--reflink=auto" };
    tool::run("cp", ["-a", how, "-T", "--", &from, &to], &[])?;
    Ok(())
}

/// Whether `tree` and the directory `root` will be made in are on one file system (hard links
/// cannot cross file systems).
fn same_file_system(tree: &Path, root: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = root.parent().unwrap_or(root);
    match (fs::metadata(tree), fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
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

fn write(root: &Path, rel: &str, contents: &[u8], mode: u32) -> Result<(), StageError> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    // A new file, never a write into the old one: the tree may share it with the cached base
    // (`RootfsSpec::link_base`).
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("replacing", &path)(e)),
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

/// The SSH host-key unit, the kernel hook for the ESP, host name, hosts, resolv.conf.
fn write_system_files(spec: &RootfsSpec, root: &Path) -> Result<(), StageError> {
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

/// The kernel version, the number of installed packages and the tree's size in bytes.
fn inspect(root: &Path) -> Result<(String, usize, u64), StageError> {
    let kernel_version = kernel_version(root)?;
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
    Ok((kernel_version, packages, bytes))
}

/// The version of the one kernel in `/boot`, which must have its initramfs.
fn kernel_version(root: &Path) -> Result<String, StageError> {
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
    let initrd = root.join(format!("boot/initrd.img-{kernel_version}"));
    if !initrd.is_file() {
        return Err(StageError::Invalid(format!(
            "the kernel {kernel_version} has no initramfs ({} is missing)",
            initrd.display()
        )));
    }
    Ok(kernel_version.clone())
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

    #[test]
    fn globs_match_as_fnmatch_without_flags() {
        assert!(glob_matches("/usr/share/doc/*", "/usr/share/doc/gzip"));
        assert!(glob_matches(
            "/usr/share/doc/*",
            "/usr/share/doc/gzip/NEWS.gz"
        ));
        assert!(!glob_matches("/usr/share/doc/*", "/usr/share/doc"));
        assert!(glob_matches(
            "/usr/share/doc/*/copyright",
            "/usr/share/doc/a/b/copyright"
        ));
        assert!(!glob_matches(
            "/usr/share/doc/*/copyright",
            "/usr/share/doc/a/copyright.gz"
        ));
        assert!(glob_matches("/x", "/x"));
        assert!(!glob_matches("/x", "/xy"));
        assert!(glob_matches("/a*b*c", "/abbc"));
        assert!(!glob_matches("/a*bc*c", "/abc"));
    }

    /// What dpkg's filters would have kept out of the unfiltered extraction is removed; what
    /// they let in stays, and so do the directories and symbolic links dpkg reincludes.
    #[test]
    fn filtered_paths_are_removed_as_dpkg_would_not_install_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let files = [
            ("usr/share/doc/gzip/copyright", true),
            ("usr/share/doc/gzip/NEWS.gz", false),
            ("usr/share/doc/gzip/examples/x", false),
            ("usr/share/man/man1/gzip.1.gz", false),
            ("usr/share/locale/locale.alias", true),
            ("usr/share/locale/de/LC_MESSAGES/x.mo", false),
            ("usr/share/lintian/overrides/gzip", false),
            ("usr/share/gzip/keep", true),
            ("usr/bin/gzip", true),
        ];
        for (path, _) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, root.join(at));
        link("gzip", "usr/share/doc/zcat").unwrap();
        link("gzip.1.gz", "usr/share/man/man1/gunzip.1.gz").unwrap();
        remove_filtered_paths(root, DPKG_EXCLUDES).unwrap();
        for (path, kept) in files {
            assert_eq!(root.join(path).exists(), kept, "{path}");
        }
        let present = |p: &str| fs::symlink_metadata(root.join(p)).is_ok();
        assert!(
            present("usr/share/doc/zcat"),
            "a link below doc/ is reincluded"
        );
        assert!(!present("usr/share/man/man1/gunzip.1.gz"));
        for gone in [
            "usr/share/man/man1",
            "usr/share/locale/de",
            "usr/share/lintian/overrides",
        ] {
            assert!(!present(gone), "{gone}");
        }
        for kept in [
            "usr/share/man",
            "usr/share/doc",
            "usr/share/lintian",
            "usr/share/doc/gzip/examples",
        ] {
            assert!(root.join(kept).is_dir(), "{kept}");
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
