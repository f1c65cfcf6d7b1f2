//! One appliance build per test run, shared by every test that boots the appliance (the boot
//! test, the lab, the HA pair): the first of them builds it with `ova-builder appliance` (the
//! default build: this repository's binaries and units, its Data Plane API, a raw disk and the
//! OVA) into `target/appliance-test/<key>/`; the next one with the same inputs reuses it.
//!
//! The key is a SHA-256 of everything the build reads from the repository — ova-builder,
//! haproxy-firstboot, every Data Plane API binary ova-builder may pick, the units, the
//! appliance definition — and of the build's options, so a changed input is a new build, never
//! a stale one. A build is made in `<key>.partial/` and renamed to `<key>/` once complete: a
//! killed run leaves nothing half-built to reuse (the next build removes the partial one).
//!
//! Test processes may run at the same time (`cargo test` runs the test binaries one after the
//! other, but two runs may overlap): deciding whether to build and building happen under an
//! exclusive `flock` of `target/appliance-test/.lock`, so a second process waits and then
//! reuses the first one's build. While a test uses a build it holds a shared lock on
//! `<key>.use`; builds of other keys are removed only when nobody holds theirs.
//!
//! `APPLIANCE_DATAPLANEAPI=PATH` builds with that Data Plane API binary, `APPLIANCE_NO_OVA=1`
//! stops after the raw disk (both are options, hence part of the key).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};
use testkit::workspace;

use crate::{Clock, target_bin};

/// The appliance version of the shared build (the OVA's product version, the disk's UUIDs).
pub const VERSION: &str = "0.0.0-test";
/// The build's time: fixed, so the same inputs give the same bytes.
const SOURCE_DATE_EPOCH: &str = "1763683200";

/// The shared build, in use: its files stay until this is dropped.
pub struct Built {
    pub ova_builder: PathBuf,
    /// The `--json` report of `ova-builder appliance`, its paths naming `dir`.
    pub report: serde_json::Value,
    /// The bootable raw disk.
    pub raw: PathBuf,
    /// The OVA (None with `APPLIANCE_NO_OVA`).
    pub ova: Option<PathBuf>,
    pub has_dataplaneapi: bool,
    /// Where it is: `target/appliance-test/<key>`.
    pub dir: PathBuf,
    /// Whether this process built it (false: reused).
    pub built_here: bool,
    /// The shared lock on `<key>.use`, held while the build is in use.
    _in_use: Flock<File>,
}

/// `target/appliance-test` of the target directory the running test was built in.
fn root() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        // target/<profile>/deps/<test> → target
        Some(exe.parent()?.parent()?.parent()?.to_owned())
    });
    from_exe
        .filter(|t| t.is_dir())
        .unwrap_or_else(|| workspace().join("target"))
        .join("appliance-test")
}

/// The options of `ova-builder appliance` but `--out`.
fn options() -> Vec<OsString> {
    let mut args: Vec<OsString> = ["appliance", "--version", VERSION, "--raw", "--json"]
        .iter()
        .map(Into::into)
        .collect();
    args.push("--firstboot".into());
    args.push(target_bin("haproxy-firstboot").into());
    args.push("--units".into());
    args.push(workspace().join("firstboot/systemd").into());
    if let Some(api) = std::env::var_os("APPLIANCE_DATAPLANEAPI") {
        args.push("--dataplaneapi".into());
        args.push(api);
    }
    if std::env::var_os("APPLIANCE_NO_OVA").is_some() {
        args.push("--no-ova".into());
    }
    args
}

/// The files of `dir` and its subdirectories, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                todo.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every file the build reads from the repository, in a fixed order.
fn inputs() -> Vec<PathBuf> {
    let ws = workspace();
    let mut files = vec![target_bin("ova-builder"), target_bin("haproxy-firstboot")];
    // ova-builder's own choice of Data Plane API (builder/src/cmd/appliance.rs): any of these
    // may be it.
    for candidate in [
        "target/release/haproxy-dataplaneapi",
        "target/debug/haproxy-dataplaneapi",
        ".tools/bin/dataplaneapi",
    ] {
        files.push(ws.join(candidate));
    }
    files.extend(std::env::var_os("APPLIANCE_DATAPLANEAPI").map(PathBuf::from));
    for dir in ["firstboot/systemd", "builder/appliance"] {
        files.extend(files_under(&ws.join(dir)));
    }
    files
}

/// One line per input: its SHA-256 (`-` when missing) and its path; kept in the build's
/// `inputs.txt`, so that a new build can say which inputs changed.
fn input_lines() -> Vec<String> {
    inputs()
        .iter()
        .map(|file| {
            let digest = std::fs::read(file)
                .map(|bytes| hex::encode(Sha256::digest(&bytes)))
                .unwrap_or_else(|_| "-".to_owned());
            format!("{digest} {}", file.display())
        })
        .collect()
}

/// The build's key: its options and the content of every input (a missing one counts too).
fn key(args: &[OsString], inputs: &[String]) -> String {
    let mut h = Sha256::new();
    for a in args {
        h.update(a.as_encoded_bytes());
        h.update([0]);
    }
    for line in inputs {
        h.update(line.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// What differs between the inputs of the newest other complete build in `root` and `inputs`:
/// the paths, or None when there is no other build.
fn changed_inputs(root: &Path, key: &str, inputs: &[String]) -> Option<Vec<String>> {
    let newest = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != key))
        .filter_map(|p| {
            let file = p.join("inputs.txt");
            Some((file.metadata().ok()?.modified().ok()?, file))
        })
        .max()?;
    let before = std::fs::read_to_string(newest.1).ok()?;
    let before: Vec<&str> = before.lines().collect();
    let changed = inputs
        .iter()
        .filter(|l| !before.contains(&l.as_str()))
        .filter_map(|l| l.split_once(' ').map(|(_, path)| path.to_owned()))
        .collect();
    Some(changed)
}

fn open_lock(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shared build of the current inputs: reused when a complete one exists, else made now.
/// Another process building the same key is waited for.
pub fn shared_build(clock: &Clock) -> Built {
    let root = root();
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let args = options();
    let inputs = input_lines();
    let key = key(&args, &inputs);
    let dir = root.join(&key);
    let lock_path = root.join(".lock");
    let lock = match Flock::lock(open_lock(&lock_path), FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((file, _)) => {
            clock.log(format!(
                "another test process holds {}: waiting for its appliance build",
                lock_path.display()
            ));
            Flock::lock(file, FlockArg::LockExclusive)
                .unwrap_or_else(|(_, e)| panic!("flock {}: {e}", lock_path.display()))
        }
    };
    // Taken under the build lock, so that no cleanup removes the build between here and use.
    let in_use = Flock::lock(
        open_lock(&root.join(format!("{key}.use"))),
        FlockArg::LockShared,
    )
    .unwrap_or_else(|(_, e)| panic!("flock {key}.use: {e}"));
    let built_here = !dir.join("report.json").is_file();
    if built_here {
        match changed_inputs(&root, &key, &inputs) {
            Some(changed) if changed.is_empty() => {
                clock.log("the previous build had other options");
            }
            Some(changed) => clock.log(format!(
                "inputs changed since the previous build: {}",
                changed.join(", ")
            )),
            None => {}
        }
        remove_unused(&root, &key, clock);
        build(&root, &key, &args, clock);
        std::fs::write(dir.join("inputs.txt"), inputs.join("\n") + "\n").expect("inputs.txt");
    } else {
        clock.log(format!(
            "reusing the shared appliance build {} (key {key}: the same ova-builder, \
             haproxy-firstboot, Data Plane API, units, definition and options)",
            dir.display()
        ));
    }
    drop(lock);
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("report.json");
    let out = dir.join("out");
    let in_out = |key: &str| {
        report[key]
            .as_str()
            .and_then(|p| Path::new(p).file_name())
            .map(|name| out.join(name))
    };
    let built = Built {
        ova_builder: target_bin("ova-builder"),
        raw: in_out("raw_disk").expect("raw_disk in the report"),
        ova: in_out("ova"),
        has_dataplaneapi: report["dataplaneapi"].is_object(),
        report,
        dir,
        built_here,
        _in_use: in_use,
    };
    built.describe(clock);
    built
}

impl Built {
    fn describe(&self, clock: &Clock) {
        match self.report["dataplaneapi"].as_object() {
            Some(api) => clock.log(format!(
                "the appliance includes the Data Plane API: {api:?}"
            )),
            None => clock
                .log("the appliance has NO Data Plane API (none built, no APPLIANCE_DATAPLANEAPI)"),
        }
        clock.log(format!(
            "appliance: raw disk {}{}",
            self.raw.display(),
            self.ova
                .as_ref()
                .map(|o| format!(", OVA {}", o.display()))
                .unwrap_or_default()
        ));
    }
}

/// Removes the builds (and partial builds) of other keys that no test uses now, and a partial
/// build of `key` a killed run left.
fn remove_unused(root: &Path, key: &str, clock: &Clock) {
    let entries = std::fs::read_dir(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let other = name.trim_end_matches(".partial").to_owned();
        if name == key {
            continue;
        }
        let use_file = root.join(format!("{other}.use"));
        if other != key {
            // Another key's build: only when no test holds it.
            match Flock::lock(open_lock(&use_file), FlockArg::LockExclusiveNonblock) {
                Ok(_) => {}
                Err(_) => continue,
            }
        }
        clock.log(format!(
            "removing the stale appliance build {}",
            path.display()
        ));
        std::fs::remove_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if other != key {
            let _ = std::fs::remove_file(&use_file);
        }
    }
}

/// Builds into `<key>.partial/out`, writes the report with paths naming `<key>/`, and renames
/// the directory into place.
fn build(root: &Path, key: &str, args: &[OsString], clock: &Clock) {
    let tmp = root.join(format!("{key}.partial"));
    let dir = root.join(key);
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    let mut cmd = Command::new(target_bin("ova-builder"));
    cmd.args(args)
        .arg("--out")
        .arg(tmp.join("out"))
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    clock.log(format!(
        "building the shared appliance (key {key}, no complete build of these inputs): {cmd:?}"
    ));
    let output = cmd.output().unwrap_or_else(|e| panic!("ova-builder: {e}"));
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            let _ = writeln!(err, "    {line}");
        }
    }
    assert!(
        output.status.success(),
        "ova-builder appliance failed ({})",
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout)
        .replace(&tmp.display().to_string(), &dir.display().to_string());
    let report: serde_json::Value = serde_json::from_str(&text).expect("the --json report");
    std::fs::write(tmp.join("report.json"), report.to_string()).expect("report.json");
    std::fs::rename(&tmp, &dir)
        .unwrap_or_else(|e| panic!("{} → {}: {e}", tmp.display(), dir.display()));
    clock.log(format!(
        "ok: appliance built in {:.1} s into {}",
        report["total_seconds"].as_f64().unwrap_or(0.0),
        dir.display()
    ));
}
