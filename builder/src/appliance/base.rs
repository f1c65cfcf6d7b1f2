//! The base root filesystem: Debian as mmdebstrap installs it, plus every part of the
//! customization that does not depend on the appliance's own files (system units enabled,
//! timers masked, identity and noise removed). It is kept in the build cache under a key of
//! everything that decides its content, so a rebuild that only changes the appliance's files
//! (haproxy-firstboot, the Data Plane API, their units, the version) copies it instead of
//! running mmdebstrap, and lays those files over the copy (`rootfs.rs`). A cold build takes
//! the same path after building the tree, so both give the same bytes.
//!
//! What the key covers ([`BaseRecipe`]), and why that is enough:
//! - the code that makes the tree: the text of every source file of this module and of the
//!   templates ([`RECIPE_FILES`]; a test checks none is missing);
//! - the host programs that install it: `mmdebstrap`, `apt` and `dpkg` versions, and the
//!   architecture;
//! - the inputs: suite, variant, apt sources (mirrors), packages, dpkg path filters, host name;
//! - the package versions: the SHA-256 of every verified `Packages` index. apt's choice is a
//!   function of these indices, so the same indices install the same versions; a new upload
//!   (a security update) changes them and rebuilds the tree. mmdebstrap is given exactly these
//!   files (`apt.rs`), so the tree cannot come from other ones;
//! - the time: the tree is made with `SOURCE_DATE_EPOCH` set to the release date (the `Date`
//!   of the suite's `InRelease`, part of the key) rather than the build's time, so that a new
//!   `SOURCE_DATE_EPOCH` (build-appliance takes the last commit's) does not invalidate it; the
//!   build's own time is applied after the overlay (a clamp), identically on both paths.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::apt::{self, AptRoot, Indices};
use super::cache::{Cache, KEEP_BASE_TREES};
use super::error::{StageError, io};
use super::rootfs::{self, DPKG_EXCLUDES, ENABLED_UNITS, MASKED_UNITS, PACKAGES, RootfsSpec};
use super::tool;

/// The source files whose text decides what a base tree holds (all of the appliance module,
/// to be safe, and its templates): part of every key, so a change to how the tree is made
/// never reuses a tree made the old way.
pub const RECIPE_FILES: &[(&str, &str)] = &[
    ("src/appliance/apt.rs", include_str!("apt.rs")),
    ("src/appliance/base.rs", include_str!("base.rs")),
    ("src/appliance/boot.rs", include_str!("boot.rs")),
    ("src/appliance/cache.rs", include_str!("cache.rs")),
    ("src/appliance/definition.rs", include_str!("definition.rs")),
    ("src/appliance/disk.rs", include_str!("disk.rs")),
    ("src/appliance/error.rs", include_str!("error.rs")),
    ("src/appliance/ids.rs", include_str!("ids.rs")),
    ("src/appliance/mod.rs", include_str!("mod.rs")),
    ("src/appliance/rootfs.rs", include_str!("rootfs.rs")),
    ("src/appliance/tool.rs", include_str!("tool.rs")),
    (
        "templates/appliance/entry.conf",
        include_str!("../../templates/appliance/entry.conf"),
    ),
    (
        "templates/appliance/fstab",
        include_str!("../../templates/appliance/fstab"),
    ),
    (
        "templates/appliance/loader.conf",
        include_str!("../../templates/appliance/loader.conf"),
    ),
    (
        "templates/appliance/ssh-hostkeys.service",
        include_str!("../../templates/appliance/ssh-hostkeys.service"),
    ),
    (
        "templates/appliance/syslinux.cfg",
        include_str!("../../templates/appliance/syslinux.cfg"),
    ),
    (
        "templates/appliance/zz-appliance-esp",
        include_str!("../../templates/appliance/zz-appliance-esp"),
    ),
];

/// The dpkg configuration file that turns off fsync while the tree is installed. It is removed
/// before the tree is kept: an appliance upgraded in place must not lose files on power loss.
pub const UNSAFE_IO_CONF: &str = "etc/dpkg/dpkg.cfg.d/zz-ova-builder-unsafe-io";

/// The dpkg configuration file with the appliance's path filters ([`DPKG_EXCLUDES`]); it stays
/// in the appliance, so that packages upgraded there leave the same paths out.
pub const PATH_FILTERS_CONF: &str = "etc/dpkg/dpkg.cfg.d/appliance-path-excludes";

/// Everything that decides a base tree's content, as `what: value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRecipe {
    pub lines: Vec<(String, String)>,
}

/// The host side of a recipe: what runs the installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `dpkg --print-architecture`.
    pub arch: String,
    /// The first lines of `mmdebstrap --version`, `apt-get --version`, `dpkg --version`.
    pub tools: Vec<String>,
}

impl BaseRecipe {
    pub fn new(spec: &RootfsSpec, host: &Host, indices: &Indices) -> BaseRecipe {
        let mut lines = Vec::new();
        let mut add = |what: &str, value: String| lines.push((what.to_owned(), value));
        let mut code = Sha256::new();
        for (name, text) in RECIPE_FILES {
            code.update(name.as_bytes());
            code.update([0]);
            code.update(text.as_bytes());
            code.update([0]);
        }
        add("recipe-code", hex::encode(code.finalize()));
        add("architecture", host.arch.clone());
        for tool in &host.tools {
            add("host-tool", tool.clone());
        }
        add("suite", spec.suite.clone());
        add("variant", "minbase".into());
        for source in &spec.sources {
            add("source", source.clone());
        }
        add("packages", packages(spec).join(","));
        for exclude in DPKG_EXCLUDES {
            add("dpkg-option", (*exclude).into());
        }
        add("hostname", spec.hostname.clone());
        add("enabled", ENABLED_UNITS.join(","));
        add("masked", MASKED_UNITS.join(","));
        for index in &indices.packages {
            add("index", format!("{} sha256:{}", index.name, index.sha256));
        }
        add("release-date", indices.release_date.to_string());
        BaseRecipe { lines }
    }

    /// The recipe as text (kept beside the tree, for people comparing two keys).
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(what, value)| format!("{what}: {value}\n"))
            .collect()
    }

    /// The cache key: the first 32 hex digits of the SHA-256 of [`BaseRecipe::text`].
    pub fn key(&self) -> String {
        hex::encode(Sha256::digest(self.text().as_bytes()))[..32].to_owned()
    }
}

/// The packages mmdebstrap installs besides the minbase variant's.
pub fn packages(spec: &RootfsSpec) -> Vec<&str> {
    let mut all: Vec<&str> = PACKAGES.to_vec();
    all.extend(spec.extra_packages.iter().map(String::as_str));
    all
}

/// A base tree, ready to be copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaseTree {
    pub dir: PathBuf,
    pub key: String,
    /// Taken from the cache (true) or built by this run.
    pub reused: bool,
    /// The time its files were made with (seconds since 1970).
    pub release_date: u64,
    /// Package files taken from the cache (verified) and downloaded, when it was built.
    pub packages_cached: usize,
}

/// Named durations of the steps inside the root filesystem stage, for the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Steps(pub Vec<(String, f64)>);

impl Steps {
    pub fn time<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<T, StageError>,
    ) -> Result<T, StageError> {
        let start = Instant::now();
        let value = f()?;
        self.0
            .push((name.to_owned(), start.elapsed().as_secs_f64()));
        Ok(value)
    }
}

/// The base tree for `spec`: from the cache when one with the same key is there, else built
/// (mmdebstrap with the verified cached packages) and added to the cache.
pub fn ensure(spec: &RootfsSpec, cache: &Cache, steps: &mut Steps) -> Result<BaseTree, StageError> {
    let host = host()?;
    let apt = AptRoot::prepare(cache.dir(), &host.arch, &spec.sources)?;
    let indices = steps.time("indices (apt-get update)", || apt.update())?;
    let recipe = BaseRecipe::new(spec, &host, &indices);
    let key = recipe.key();
    let trees = cache.rootfs_dir();
    let dir = trees.join(&key);
    let marker = trees.join(format!("{key}.recipe"));
    let mut tree = BaseTree {
        dir: dir.clone(),
        key: key.clone(),
        reused: true,
        release_date: indices.release_date,
        packages_cached: 0,
    };
    if dir.is_dir() && marker.is_file() {
        // Recently used trees are the ones pruning keeps.
        if let Ok(f) = fs::File::options().write(true).open(&marker) {
            let _ = f.set_modified(SystemTime::now());
        }
        return Ok(tree);
    }
    fs::create_dir_all(&trees).map_err(io("creating", &trees))?;
    remove_incomplete(&trees)?;
    let partial = trees.join(format!("{key}.partial"));
    let seed = trees.join(format!("{key}.seed"));
    tree.packages_cached = steps.time("verify cached packages", || {
        make_seed(&apt, &indices, &seed)
    })?;
    steps.time("mmdebstrap", || {
        bootstrap(spec, &partial, &seed, indices.release_date)
    })?;
    harvest(&partial, &apt.archives())?;
    remove_tree(&seed)?;
    steps.time("customize base", || {
        rootfs::customize_base(spec, &partial, indices.release_date)
    })?;
    fs::rename(&partial, &dir).map_err(io("renaming to the cache", &partial))?;
    // Written last: a tree without its recipe is incomplete.
    fs::write(&marker, recipe.text()).map_err(io("writing", &marker))?;
    prune(&trees, KEEP_BASE_TREES)?;
    tree.reused = false;
    Ok(tree)
}

/// The host's architecture and the versions of the programs that install the tree.
fn host() -> Result<Host, StageError> {
    let first_line = |program: &str, arg: &str| -> Result<String, StageError> {
        let out = tool::run(program, [arg], &[])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned())
    };
    Ok(Host {
        arch: first_line("dpkg", "--print-architecture")?,
        tools: vec![
            first_line("mmdebstrap", "--version")?,
            first_line("apt-get", "--version")?,
            first_line("dpkg", "--version")?,
        ],
    })
}

/// Removes what an interrupted build left: trees without a recipe, `.partial` and `.seed`
/// directories (the cache lock is held: nobody else is building).
fn remove_incomplete(trees: &Path) -> Result<(), StageError> {
    for entry in fs::read_dir(trees).map_err(io("listing", trees))? {
        let entry = entry.map_err(io("listing", trees))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let complete = trees.join(format!("{name}.recipe")).is_file();
        if path.is_dir() && !complete {
            remove_tree(&path)?;
        }
    }
    Ok(())
}

/// Keeps the `keep` most recently used trees, removes the others with their recipes.
fn prune(trees: &Path, keep: usize) -> Result<(), StageError> {
    let mut recipes: Vec<(SystemTime, PathBuf)> = fs::read_dir(trees)
        .map_err(io("listing", trees))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "recipe"))
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    recipes.sort();
    let old = recipes.len().saturating_sub(keep);
    for (_, recipe) in recipes.into_iter().take(old) {
        // The recipe first: a tree without one is incomplete and never used.
        fs::remove_file(&recipe).map_err(io("removing", &recipe))?;
        remove_tree(&recipe.with_extension(""))?;
    }
    Ok(())
}

/// Removes a tree of the cache, unless something is mounted inside it: an mmdebstrap killed
/// before it could unmount leaves the host's /sys, /proc and device nodes mounted in its root,
/// and removing through them would reach the host's.
fn remove_tree(path: &Path) -> Result<(), StageError> {
    let real = match fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("resolving", path)(e)),
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(io("reading", Path::new("/proc/self/mountinfo")))?;
    let mounted = mounts_below(&mountinfo, &real);
    if !mounted.is_empty() {
        return Err(StageError::Invalid(format!(
            "{} cannot be removed: {} mounted inside it (an interrupted mmdebstrap?): \
             unmount with `umount -R` and retry",
            real.display(),
            mounted.join(", ")
        )));
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("removing", path)(e)),
    }
}

/// The mount points in `mountinfo` (`/proc/self/mountinfo`) at or below `dir`.
fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        // mountinfo escapes space, tab, newline and backslash as octal.
        .map(|p| {
            p.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        })
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

/// Checks the cached package files against the verified indices (`apt.rs`) and puts the good
/// ones, the indices and mmdebstrap's setup hook into `seed`. Returns how many packages are
/// handed over.
fn make_seed(apt: &AptRoot, indices: &Indices, seed: &Path) -> Result<usize, StageError> {
    let expected = apt::expected_packages(&indices.packages)?;
    let check = apt::check_cached_packages(&apt.archives(), &expected)?;
    remove_tree(seed)?;
    let archives = seed.join("archives");
    let lists = seed.join("lists");
    fs::create_dir_all(&archives).map_err(io("creating", &archives))?;
    fs::create_dir_all(&lists).map_err(io("creating", &lists))?;
    for name in &check.verified {
        link_or_copy(&apt.archives().join(name), &archives.join(name))?;
    }
    let source = apt.lists();
    for entry in fs::read_dir(&source).map_err(io("listing", &source))? {
        let entry = entry.map_err(io("listing", &source))?;
        let file_type = entry.file_type().map_err(io("stat", &entry.path()))?;
        if file_type.is_file() && entry.file_name() != "lock" {
            link_or_copy(&entry.path(), &lists.join(entry.file_name()))?;
        }
    }
    let filters: String = DPKG_EXCLUDES.iter().map(|f| format!("{f}\n")).collect();
    let path = seed.join("path-filters");
    fs::write(&path, filters).map_err(io("writing", &path))?;
    // The extract hook runs this very program (`ova-builder appliance-filter-paths`).
    let exe = std::env::current_exe().map_err(io("locating", Path::new("ova-builder")))?;
    let link = seed.join("ova-builder");
    std::os::unix::fs::symlink(&exe, &link).map_err(io("linking", &link))?;
    for (name, script) in [
        ("setup-hook", SETUP_HOOK),
        ("extract-hook", EXTRACT_HOOK),
        ("customize-hook", CUSTOMIZE_HOOK),
    ] {
        let hook = seed.join(name);
        fs::write(&hook, script).map_err(io("writing", &hook))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755))
            .map_err(io("chmod", &hook))?;
    }
    Ok(check.verified.len())
}

/// A hard link (apt and dpkg never write into an existing package or list file: they replace
/// them), or a copy across file systems.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), StageError> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to).map_err(io("copying", from))?;
    Ok(())
}

/// mmdebstrap's setup hook (run with the new root as `$1`, before anything is downloaded):
/// the verified package files and indices go in; mmdebstrap skips its own `apt-get update`,
/// so the hook checks that every index its sources name is there; dpkg runs without fsync.
/// The path filters go in as a dpkg configuration file of their own rather than through
/// `--dpkgopt`: mmdebstrap then extracts the essential packages without running its filter
/// process once per package (10 s of a 25 s install); what the filter would have kept out of
/// them is removed afterwards (`rootfs::remove_filtered_paths`).
const SETUP_HOOK: &str = r#"#!/bin/sh
# Written by ova-builder appliance (builder/src/appliance/base.rs).
set -eu
seed=$(dirname "$0")
root=$1
mkdir -p "$root/var/cache/apt/archives" "$root/var/lib/apt/lists" "$root/etc/dpkg/dpkg.cfg.d"
cp -a --link "$seed/archives/." "$root/var/cache/apt/archives/" 2>/dev/null \
  || cp -a "$seed/archives/." "$root/var/cache/apt/archives/"
cp -a --link "$seed/lists/." "$root/var/lib/apt/lists/" 2>/dev/null \
  || cp -a "$seed/lists/." "$root/var/lib/apt/lists/"
APT_CONFIG=$MMDEBSTRAP_APT_CONFIG apt-get indextargets --format '$(FILENAME)' 'Identifier: Packages' \
  > "$seed/indextargets"
if [ ! -s "$seed/indextargets" ]; then
  echo "ova-builder: the sources name no Packages index" >&2
  exit 1
fi
while read -r index; do
  if [ ! -f "$index" ]; then
    echo "ova-builder: $index is not among the verified indices" >&2
    exit 1
  fi
done < "$seed/indextargets"
echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/zz-ova-builder-unsafe-io"
cp "$seed/path-filters" "$root/etc/dpkg/dpkg.cfg.d/appliance-path-excludes"
"#;

/// mmdebstrap's extract hook (the essential packages are extracted, not yet installed): what
/// the path filters leave out goes, as mmdebstrap's own filter would have done during the
/// extraction (`rootfs::remove_filtered_paths`).
const EXTRACT_HOOK: &str = r#"#!/bin/sh
# Written by ova-builder appliance (builder/src/appliance/base.rs).
set -eu
exec "$(dirname "$0")/ova-builder" appliance-filter-paths "$1"
"#;

/// mmdebstrap's customize hook (all packages installed, /proc and /sys still mounted): the
/// initramfs, made once. The kernel's own hook would make it while the kernel is configured,
/// and initramfs-tools' trigger again at the end (7 s each); `INITRD=No` in the environment
/// of the installation turns the first off, and the second does nothing for a kernel whose
/// initramfs it did not make. So it is made here, after every package is configured, as the
/// trigger would have; `INITRD=No` also kept the kernel's postinst from linking
/// /initrd.img, so the links are made again as the kernel's first installation makes them.
const CUSTOMIZE_HOOK: &str = r#"#!/bin/sh
# Written by ova-builder appliance (builder/src/appliance/base.rs).
set -eu
unset INITRD
chroot "$1" update-initramfs -c -k all
for version in $(chroot "$1" linux-version list); do
  chroot "$1" linux-update-symlinks install "$version" "/boot/vmlinuz-$version"
done
"#;

/// mmdebstrap into `root` with the seed's packages and indices, at `SOURCE_DATE_EPOCH` =
/// `epoch`. The downloaded packages stay in the tree (`--skip=essential/unlink`,
/// `--skip=cleanup/apt/cache`) for [`harvest`].
fn bootstrap(spec: &RootfsSpec, root: &Path, seed: &Path, epoch: u64) -> Result<(), StageError> {
    remove_tree(root)?;
    let mut args: Vec<String> = vec![
        "--mode=root".into(),
        "--variant=minbase".into(),
        "--format=directory".into(),
        format!("--include={}", packages(spec).join(",")),
        "--aptopt=Acquire::Retries \"3\"".into(),
        "--skip=update".into(),
        "--skip=essential/unlink".into(),
        "--skip=cleanup/apt/cache".into(),
        format!("--setup-hook={}", seed.join("setup-hook").display()),
        format!("--extract-hook={}", seed.join("extract-hook").display()),
        format!("--customize-hook={}", seed.join("customize-hook").display()),
    ];
    args.push(spec.suite.clone());
    args.push(root.display().to_string());
    args.extend(spec.sources.iter().cloned());
    let epoch = epoch.to_string();
    tool::run(
        "mmdebstrap",
        &args,
        &[("SOURCE_DATE_EPOCH", &epoch), ("INITRD", "No")],
    )?;
    Ok(())
}

/// Moves the package files apt downloaded (it checked them against the indices) from the new
/// tree into the cache; those that came from the cache are left for the clean-up.
fn harvest(root: &Path, archives: &Path) -> Result<(), StageError> {
    let from = root.join("var/cache/apt/archives");
    let Ok(entries) = fs::read_dir(&from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(io("listing", &from))?;
        let name = entry.file_name();
        let to = archives.join(&name);
        if !name.to_string_lossy().ends_with(".deb") || to.exists() {
            continue;
        }
        if fs::rename(entry.path(), &to).is_err() {
            fs::copy(entry.path(), &to).map_err(io("copying to the cache", &entry.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mounts_inside_a_tree_are_found() {
        let info = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                    90 22 0:5 / /var/cache/x/rootfs/k.partial/sys rw - sysfs sysfs rw\n\
                    91 22 0:6 / /var/cache/x/rootfs/k.partial/dev/my\\040null rw - devtmpfs udev rw\n\
                    92 22 0:7 / /var/cache/x/rootfs/k.partial2/proc rw - proc proc rw\n";
        let dir = Path::new("/var/cache/x/rootfs/k.partial");
        assert_eq!(
            mounts_below(info, dir),
            [
                "/var/cache/x/rootfs/k.partial/sys",
                "/var/cache/x/rootfs/k.partial/dev/my null"
            ]
        );
        assert!(mounts_below(info, Path::new("/var/cache/x/rootfs/other")).is_empty());
    }

    /// Every source file of the appliance module and every template is part of the key.
    #[test]
    fn the_recipe_covers_every_file_of_the_module() {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for dir in ["src/appliance", "templates/appliance"] {
            for entry in fs::read_dir(crate_dir.join(dir)).unwrap() {
                on_disk.push(format!(
                    "{dir}/{}",
                    entry.unwrap().file_name().to_string_lossy()
                ));
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = RECIPE_FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }
}
