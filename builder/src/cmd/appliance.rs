//! `ova-builder appliance`: build the whole HAProxy appliance without a hypervisor.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::appliance::definition::load_definition;
use crate::appliance::{self, DiskReport, RootfsSpec, Stage, StageObserver, StageTime};
use crate::atomic::Interrupt;
use crate::progress::{Progress, StepStatus};
use crate::source_date::{Origin, source_date};

const AFTER_HELP: &str = "\
Stages: rootfs (mmdebstrap) → root-image (mkfs.ext4 -d) → boot-partition (FAT ESP with syslinux
for BIOS and systemd-boot for UEFI) → disk (GPT, sfdisk) → ova (the `ova-builder build` path).
No hypervisor, mount or loop device is used; it must run as root (mmdebstrap --mode=root) on
Debian or Ubuntu with access to a Debian mirror. UUIDs are derived from --version.

Time: every file the build creates carries one time, --source-date-epoch when given, else
$SOURCE_DATE_EPOCH when set (whole seconds since 1970; anything else is an error), else the
newest modification time among the inputs (--firstboot, the units, the Data Plane API,
--definition). Never the clock: the same inputs give the same disk. The files of the Debian
base system carry at most the release's time (the Date of the suite's InRelease), so that a new
build time does not rebuild the cached base.

Cache: package files and the base root filesystem are kept between builds in --cache-dir
(default $XDG_CACHE_HOME/ova-builder when set, else /var/cache/ova-builder as root). apt
checks the archive's signed indices at every build, each cached package file is checked
against them before use, and a base tree is reused only when everything it is made of is
unchanged (mirrors, suite, packages, the indices, the host's mmdebstrap/apt/dpkg, this
program's code). A rebuild that changes only haproxy-firstboot, the Data Plane API, the units
or the version lays them over the cached base: seconds instead of half a minute, and the same
bytes as a build with an empty cache. Delete the directory to start cold.

Data Plane API: this repository's own server, haproxy-dataplaneapi, unless --dataplaneapi
PATH (e.g. a Go dataplaneapi) or --no-dataplaneapi; installed as /usr/local/bin/dataplaneapi.
The OVF product's full version names it (\"1.2.3; Data Plane API: <its --version>\").

Examples:
  # The README's build (installs the tools and builds the binaries first):
  bash scripts/build-appliance --out dist

  # By hand, with the Go Data Plane API in place of this repository's, keeping the raw disk:
  ova-builder appliance --out dist --version 1.2.3 --dataplaneapi ./dataplaneapi --raw

  # Explicitly without the Data Plane API (the Supervisor cannot program such an appliance):
  ova-builder appliance --out dist --no-dataplaneapi

  # Only the bootable raw disk, timings as JSON:
  ova-builder appliance --out /tmp/a --no-ova --raw --json

  # A cache of its own (e.g. kept by CI between runs); an empty one gives a cold build:
  ova-builder appliance --out dist --cache-dir /var/cache/ci-appliance";

/// Options of `ova-builder appliance`.
// These doc comments are also the --help text, where `<VERSION>` is meant literally: escaping
// it for rustdoc would change --help, so rustdoc may read it as an unclosed HTML tag here.
#[allow(rustdoc::invalid_html_tags)]
#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Directory for haproxy-v<VERSION>.ova (and haproxy-v<VERSION>.raw with --raw).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Appliance version: file names, OVF product version, and the seed of the disk's UUIDs.
    #[arg(long, value_name = "VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    pub version: String,
    /// The haproxy-firstboot executable [default: next to this ova-builder].
    #[arg(long, value_name = "PATH")]
    pub firstboot: Option<PathBuf>,
    /// Directory with haproxy-firstboot's systemd units (*.service) and NIC names
    /// (network/*.link) [default: firstboot/systemd of this repository, found from the current
    /// directory or this executable].
    #[arg(long, value_name = "DIR")]
    pub units: Option<PathBuf>,
    /// The Data Plane API executable, installed as /usr/local/bin/dataplaneapi (a Go
    /// dataplaneapi works too) [default: this repository's own server,
    /// target/release/haproxy-dataplaneapi, else target/debug/haproxy-dataplaneapi (cargo build
    /// -p dataplane), else .tools/bin/dataplaneapi (scripts/install-deps)].
    #[arg(long, value_name = "PATH", conflicts_with = "no_dataplaneapi")]
    pub dataplaneapi: Option<PathBuf>,
    /// Build the appliance without the Data Plane API (the Supervisor cannot program it).
    #[arg(long)]
    pub no_dataplaneapi: bool,
    /// Appliance definition for the OVF descriptor [default: the built-in HAProxy appliance].
    #[arg(long, value_name = "PATH")]
    pub definition: Option<PathBuf>,
    /// Virtual disk size in GiB (the disk is sparse: unused space costs nothing).
    #[arg(long, value_name = "GIB", default_value_t = 4)]
    pub disk_gib: u64,
    /// Debian mirror.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://deb.debian.org/debian"
    )]
    pub mirror: String,
    /// Debian security mirror.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://deb.debian.org/debian-security"
    )]
    pub security_mirror: String,
    /// Debian release.
    #[arg(long, value_name = "SUITE", default_value = "bookworm")]
    pub suite: String,
    /// Timestamp for every file the build creates [default: $SOURCE_DATE_EPOCH, else the
    /// newest modification time among the input files].
    #[arg(long, value_name = "SECONDS")]
    pub source_date_epoch: Option<u64>,
    /// Scratch directory [default: DIR/.work-<version>, removed afterwards].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Keep the scratch directory (the root filesystem tree) for inspection.
    #[arg(long)]
    pub keep_work: bool,
    /// Build cache: verified package files and base root filesystems kept between builds
    /// [default: $XDG_CACHE_HOME/ova-builder, else /var/cache/ova-builder as root].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No longer needed, accepted for older scripts: the base root filesystem is reused from
    /// the cache (--cache-dir) whenever its inputs are unchanged.
    #[arg(long, hide = true)]
    pub reuse_rootfs: bool,
    /// Also keep the bootable raw disk as DIR/haproxy-v<VERSION>.raw.
    #[arg(long)]
    pub raw: bool,
    /// Stop after the raw disk (implies --raw).
    #[arg(long)]
    pub no_ova: bool,
    /// Print the report (stage times, disk layout, outputs) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of the hidden `appliance-filter-paths` (mmdebstrap's extract hook, `base.rs`).
#[derive(clap::Args, Debug)]
pub struct FilterPathsArgs {
    /// The root filesystem being made.
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
}

/// Applies the appliance's dpkg path filters to the essential packages mmdebstrap extracted.
pub fn filter_paths(args: FilterPathsArgs) -> anyhow::Result<ExitCode> {
    appliance::rootfs::remove_filtered_paths(&args.root, appliance::rootfs::DPKG_EXCLUDES)
        .with_context(|| format!("filtering the paths of {}", args.root.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Stage progress on stderr: a spinner per stage on a terminal, one line per stage otherwise.
struct StageDisplay {
    progress: Progress,
    total: usize,
    index: usize,
    current: Option<StepStatus>,
}

impl StageDisplay {
    fn new(total: usize) -> Self {
        StageDisplay {
            progress: Progress::auto(),
            total,
            index: 0,
            current: None,
        }
    }
}

impl StageObserver for StageDisplay {
    fn started(&mut self, stage: Stage) {
        self.index += 1;
        let label = format!(
            "[{}/{}] {stage}: {}",
            self.index,
            self.total,
            stage.describe()
        );
        self.current = Some(self.progress.step(label));
    }

    fn finished(&mut self, stage: Stage, took: Duration) {
        let line = format!(
            "[{}/{}] {stage}: done in {:.1} s",
            self.index,
            self.total,
            took.as_secs_f64()
        );
        match self.current.take() {
            Some(step) => step.done(line),
            None => eprintln!("{line}"),
        }
    }
}

#[derive(serde::Serialize)]
struct Report<'a> {
    version: &'a str,
    ova: Option<PathBuf>,
    raw_disk: Option<PathBuf>,
    /// The Data Plane API the appliance includes; null without one.
    dataplaneapi: Option<&'a DataPlaneApi>,
    /// The OVF product's FullVersion: the version and the Data Plane API's.
    full_version: &'a str,
    disk: &'a DiskReport,
    stages: Vec<StageTime>,
    total_seconds: f64,
}

/// What goes into the appliance, found and checked before any work.
struct Inputs {
    firstboot: PathBuf,
    /// The systemd units to install, and their names (all enabled).
    units: Vec<PathBuf>,
    enable: Vec<String>,
    link_files: Vec<PathBuf>,
    dataplaneapi: Option<DataPlaneApi>,
    /// The OVF product's FullVersion ([`full_version`]).
    full_version: String,
    definition: ovf::Definition,
}

impl Inputs {
    /// The files the appliance is built from, for the time rule of [`source_date`] (the
    /// built-in definition is part of this program, not a file).
    fn files<'a>(&'a self, args: &'a Args) -> Vec<&'a Path> {
        let mut files = vec![self.firstboot.as_path()];
        files.extend(self.units.iter().map(PathBuf::as_path));
        files.extend(self.link_files.iter().map(PathBuf::as_path));
        files.extend(self.dataplaneapi.as_ref().map(|d| d.path.as_path()));
        files.extend(args.definition.as_deref());
        files
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    ensure_root()?;
    if args.reuse_rootfs {
        eprintln!(
            "note: --reuse-rootfs is no longer needed: the base root filesystem comes from the \
             cache whenever its inputs are unchanged"
        );
    }
    let inputs = gather_inputs(&args)?;
    let epoch = choose_time(&args, &inputs)?;
    let work_dir = make_directories(&args)?;
    let spec = disk_spec(&args, &inputs, epoch, work_dir.clone());

    let mut display = StageDisplay::new(if args.no_ova { 4 } else { 5 });
    let raw = args.out.join(format!(
        "{}.raw",
        crate::package::default_name(&inputs.definition, Some(&args.version))
    ));
    let disk = appliance::build_disk(&spec, &raw, &mut display)?;
    let mut stages = disk.stages.clone();
    let ova = if args.no_ova {
        None
    } else {
        Some(ova_stage(
            &args,
            &inputs,
            &raw,
            epoch,
            &mut display,
            &mut stages,
        )?)
    };
    let keep_raw = args.raw || args.no_ova;
    if !keep_raw {
        let _ = std::fs::remove_file(&raw);
    }
    if !args.keep_work {
        let _ = std::fs::remove_dir_all(&work_dir);
    }

    let report = Report {
        version: &args.version,
        ova,
        raw_disk: keep_raw.then(|| raw.clone()),
        dataplaneapi: inputs.dataplaneapi.as_ref(),
        full_version: &inputs.full_version,
        disk: &disk,
        stages,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    print_table(&report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Finds and checks everything the appliance is made of; a bad input fails here, before
/// minutes of work.
fn gather_inputs(args: &Args) -> anyhow::Result<Inputs> {
    let firstboot = match &args.firstboot {
        Some(p) => p.clone(),
        None => beside_this_program("haproxy-firstboot")?,
    };
    let units_dir = match &args.units {
        Some(p) => p.clone(),
        None => find_in_repository("firstboot/systemd", Path::is_dir)?,
    };
    let all_units = list_files(&units_dir, "service", false)?;
    let dataplaneapi = choose_dataplaneapi(args)?;
    let link_files = list_files(&units_dir.join("network"), "link", true)?;
    let definition = load_definition(args.definition.as_deref())?;
    let mut enable = Vec::new();
    let mut units = Vec::new();
    for unit in all_units {
        let name = unit
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("dataplaneapi") && dataplaneapi.is_none() {
            continue;
        }
        enable.push(name);
        units.push(unit);
    }
    if !enable.iter().any(|u| u == "haproxy-firstboot.service") {
        anyhow::bail!("{} has no haproxy-firstboot.service", units_dir.display());
    }
    let full_version = full_version(&args.version, dataplaneapi.as_ref());
    eprintln!("OVF product full version: {full_version}");
    Ok(Inputs {
        firstboot,
        units,
        enable,
        link_files,
        dataplaneapi,
        full_version,
        definition,
    })
}

/// The time of every file the build creates, by the rule of [`source_date`]; says on stderr
/// when it comes from an input file.
fn choose_time(args: &Args, inputs: &Inputs) -> anyhow::Result<u64> {
    let chosen = source_date(args.source_date_epoch, &inputs.files(args))?;
    if let Origin::NewestInput(path) = &chosen.origin {
        eprintln!(
            "note: SOURCE_DATE_EPOCH is not set: file times are {} ({}), the modification \
             time of the newest input, {}",
            chosen.seconds,
            crate::package::rfc3339(chosen.seconds),
            path.display()
        );
    }
    Ok(chosen.seconds)
}

/// Creates the output directory and the scratch directory; returns the scratch directory.
fn make_directories(args: &Args) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| args.out.join(format!(".work-{}", args.version)));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    Ok(work_dir)
}

fn disk_spec(args: &Args, inputs: &Inputs, epoch: u64, work_dir: PathBuf) -> appliance::DiskSpec {
    appliance::DiskSpec {
        version: args.version.clone(),
        rootfs: RootfsSpec {
            suite: args.suite.clone(),
            sources: vec![
                format!("deb {} {} main", args.mirror, args.suite),
                format!("deb {} {}-updates main", args.mirror, args.suite),
                format!("deb {} {}-security main", args.security_mirror, args.suite),
            ],
            extra_packages: Vec::new(),
            firstboot: inputs.firstboot.clone(),
            units: inputs.units.clone(),
            link_files: inputs.link_files.clone(),
            enable: inputs.enable.clone(),
            dataplaneapi: inputs.dataplaneapi.as_ref().map(|d| d.path.clone()),
            hostname: "haproxy".into(),
            source_date_epoch: epoch,
            // A kept work tree may be edited: it must not share files with the cache.
            link_base: !args.keep_work,
        },
        disk_bytes: args.disk_gib * 1024 * 1024 * 1024,
        esp_bytes: 128 * 1024 * 1024,
        work_dir,
        cache_dir: args
            .cache_dir
            .clone()
            .unwrap_or_else(appliance::cache::default_dir),
    }
}

/// Stage 5, timed and shown like the others.
fn ova_stage(
    args: &Args,
    inputs: &Inputs,
    raw: &Path,
    epoch: u64,
    display: &mut StageDisplay,
    stages: &mut Vec<StageTime>,
) -> anyhow::Result<PathBuf> {
    display.started(Stage::Ova);
    let t = Instant::now();
    let path = package_ova(args, inputs, raw, epoch)
        .map_err(|e| appliance::ApplianceError::new(Stage::Ova, format!("{e:#}")))?;
    display.finished(Stage::Ova, t.elapsed());
    stages.push(StageTime {
        stage: Stage::Ova,
        seconds: t.elapsed().as_secs_f64(),
    });
    Ok(path)
}

fn print_table(report: &Report) {
    eprintln!("stage            seconds");
    for s in &report.stages {
        eprintln!("{:<16} {:>7.1}", s.stage.to_string(), s.seconds);
    }
    eprintln!("{:<16} {:>7.1}", "total", report.total_seconds);
    let info = &report.disk.rootfs;
    eprintln!(
        "root filesystem: {} packages, {} MiB, kernel {}; root=UUID={}",
        info.packages,
        info.bytes / (1024 * 1024),
        info.kernel_version,
        report.disk.root_fs_uuid
    );
    let base = &info.base;
    eprintln!(
        "base tree {}: {} ({})",
        base.key,
        if base.reused {
            "reused from the cache".to_string()
        } else {
            format!(
                "built, {} package files taken from the cache",
                base.packages_cached
            )
        },
        base.dir.display()
    );
    let steps: Vec<String> = (info.steps.0.iter())
        .map(|(name, s)| format!("{name} {s:.1} s"))
        .collect();
    eprintln!("rootfs steps: {}", steps.join(", "));
    for p in report.ova.iter().chain(report.raw_disk.iter()) {
        eprintln!("wrote {}", p.display());
    }
}

/// Stage 5: the raw disk through the same packaging as `ova-builder build`.
fn package_ova(args: &Args, inputs: &Inputs, raw: &Path, epoch: u64) -> anyhow::Result<PathBuf> {
    let request = crate::package::BuildRequest {
        disk: raw.to_owned(),
        definition: &inputs.definition,
        out_dir: args.out.clone(),
        name: None,
        version: Some(args.version.clone()),
        base_image: Some(format!(
            "Debian {} (mmdebstrap, ova-builder appliance)",
            args.suite
        )),
        full_version: Some(inputs.full_version.clone()),
        source_date_epoch: epoch,
        manifest: crate::manifest::Algorithm::Sha256,
        signer: None,
        level: None,
        threads: 0,
        progress: Progress::auto(),
        interrupt: Interrupt::on_signals().context("cannot install the Ctrl-C handler")?,
    };
    let report = crate::package::build(&request)?;
    Ok(report.ova)
}

/// The Data Plane API executable going into the appliance.
#[derive(serde::Serialize)]
struct DataPlaneApi {
    path: PathBuf,
    /// The first line of `dataplaneapi --version` ("unknown" when it prints nothing).
    version: String,
}

/// The default Data Plane APIs, in this repository, in order of preference: its own server
/// (a release build before a debug one), then a Go dataplaneapi scripts/install-deps built.
const DEFAULT_DATAPLANEAPIS: &[&str] = &[
    "target/release/haproxy-dataplaneapi",
    "target/debug/haproxy-dataplaneapi",
    ".tools/bin/dataplaneapi",
];

/// `--dataplaneapi PATH`, else the first of [`DEFAULT_DATAPLANEAPIS`] found; none with
/// `--no-dataplaneapi` or when there is no default binary (both said on stderr).
fn choose_dataplaneapi(args: &Args) -> anyhow::Result<Option<DataPlaneApi>> {
    const NONE: &str =
        "this appliance has NO HAProxy Data Plane API (the Supervisor cannot program it)";
    if args.no_dataplaneapi {
        eprintln!("note: --no-dataplaneapi: {NONE}");
        return Ok(None);
    }
    let found = || {
        DEFAULT_DATAPLANEAPIS
            .iter()
            .find_map(|rel| find_in_repository(rel, Path::is_file).ok())
    };
    let path = match args.dataplaneapi.clone().or_else(found) {
        Some(p) => p,
        None => {
            eprintln!(
                "note: none of {} (cargo build --release -p dataplane builds this repository's \
                 server) and no --dataplaneapi PATH: {NONE}; pass --no-dataplaneapi to say so \
                 explicitly",
                DEFAULT_DATAPLANEAPIS.join(", ")
            );
            return Ok(None);
        }
    };
    let version = dataplaneapi_version(&path)?;
    eprintln!("Data Plane API: {} ({version})", path.display());
    Ok(Some(DataPlaneApi { path, version }))
}

/// The OVF product's FullVersion: the appliance version and the first line of the Data Plane
/// API's `--version`, so that vSphere (vApp options) and `ovftool` show which server it carries.
fn full_version(version: &str, dataplaneapi: Option<&DataPlaneApi>) -> String {
    match dataplaneapi {
        Some(api) => format!("{version}; Data Plane API: {}", api.version),
        None => format!("{version}; no Data Plane API"),
    }
}

/// Runs `PATH --version`: proves the file is an executable for this machine before minutes of
/// work, and names the version for the report.
fn dataplaneapi_version(path: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {} --version", path.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{} --version failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    // It goes into the descriptor and onto the terminal: no control characters.
    Ok(first
        .unwrap_or("unknown")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect())
}

fn ensure_root() -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user of this process.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if uid != 0 {
        anyhow::bail!(
            "ova-builder appliance must run as root: mmdebstrap --mode=root installs packages \
             and the root filesystem keeps their owners (try: sudo ova-builder appliance …)"
        );
    }
    Ok(())
}

fn beside_this_program(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        anyhow::bail!(
            "{} does not exist: build it (cargo build --release -p firstboot) or pass --firstboot PATH",
            path.display()
        );
    }
    Ok(path)
}

/// `rel` in this repository: under the current directory, or above this executable
/// (target/<profile>/ova-builder).
fn find_in_repository(rel: &str, kind: fn(&Path) -> bool) -> anyhow::Result<PathBuf> {
    let mut candidates = vec![PathBuf::from(rel)];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).take(4).map(|dir| dir.join(rel)));
    }
    candidates.into_iter().find(|p| kind(p)).ok_or_else(|| {
        anyhow::anyhow!(
            "{rel} was not found in the current directory or above this executable: pass its path"
        )
    })
}

/// The files in `dir` named `*.EXT`, sorted; none when `dir` does not exist and `optional`.
fn list_files(dir: &Path, ext: &str, optional: bool) -> anyhow::Result<Vec<PathBuf>> {
    if optional && !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {} for *.{ext}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_version_names_the_data_plane_api_or_its_absence() {
        let api = DataPlaneApi {
            path: PathBuf::from("target/release/haproxy-dataplaneapi"),
            version: "haproxy-dataplaneapi 0.1.0 (HAProxy Data Plane API v2)".into(),
        };
        assert_eq!(
            full_version("1.2.3", Some(&api)),
            "1.2.3; Data Plane API: haproxy-dataplaneapi 0.1.0 (HAProxy Data Plane API v2)"
        );
        assert_eq!(full_version("1.2.3", None), "1.2.3; no Data Plane API");
    }
}
