//! Helpers of the cross-crate end-to-end tests in this directory (the ones every crate's tests
//! share are in testkit, `tests/support/`).

pub mod appliance;
pub mod rootfs;
pub mod vcsim;

use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{missing, run, workspace};

/// A workspace binary built by `cargo build --workspace --bins` (scripts/test does that first),
/// found beside the running test executable (`target/<profile>/deps/test` → `target/<profile>/`).
pub fn target_bin(name: &str) -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|d| d.join(name)));
    let candidates = [
        beside,
        std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("debug").join(name)),
        Some(workspace().join("target/debug").join(name)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not built: run `cargo build --workspace --bins` first")
        })
}

/// A Go program that `scripts/install-deps` builds into `.tools/bin/` from the pins in
/// `scripts/deps/go.tools`. Missing: a failure in CI, a skip (said on stderr) elsewhere.
pub fn go_tool(name: &str) -> Option<PathBuf> {
    let path = workspace().join(".tools/bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    missing(&format!(
        "{} (pinned in scripts/deps/go.tools)",
        path.display()
    ));
    None
}

/// The machine's Go, 1.26 or newer (never Debian's golang-go 1.19, which may be installed
/// too): `/usr/local/go/bin/go`, else the first `go` on PATH, else `~/go/bin/go`.
pub fn go() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("go"))
            .find(|g| g.is_file())
    });
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let candidates = [
        Some(PathBuf::from("/usr/local/go/bin/go")),
        on_path,
        Some(home.join("go/bin/go")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|g| g.is_file() && go_version(g).is_some_and(|v| v >= (1, 26)));
    if found.is_none() {
        missing("Go 1.26 or newer (/usr/local/go/bin/go or go on PATH)");
    }
    found
}

/// (major, minor) of a Go toolchain, from `go env GOVERSION` (`go1.26.8`).
fn go_version(go: &Path) -> Option<(u32, u32)> {
    let out = Command::new(go).args(["env", "GOVERSION"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().strip_prefix("go")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((major, minor))
}

/// A CA (certificate, key) in PEM, as an administrator makes one with the openssl CLI.
pub fn make_ca(dir: &Path, subject: &str) -> (String, String) {
    let key = dir.join("ca.key");
    let crt = dir.join("ca.crt");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "365", "-subj", subject])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt));
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (read(&crt), read(&key))
}

/// An OVF environment document as vSphere writes it (`iso` transport), written by firstboot's
/// own XML writer, so every value is escaped as vCenter escapes it.
pub fn ovf_env(props: &[(&str, String)]) -> String {
    use firstboot::env::{Environment, Platform, Property};
    Environment {
        properties: props
            .iter()
            .map(|(key, value)| Property {
                key: (*key).to_string(),
                value: value.clone(),
            })
            .collect(),
        adapters: None,
        platform: Some(Platform {
            kind: Some("VMware ESXi".into()),
            version: Some("8.0.3".into()),
            vendor: Some("VMware, Inc.".into()),
        }),
    }
    .to_xml()
}

/// An ISO 9660 image labelled `OVF ENV` with `ovf-env.xml` at its root, as vSphere attaches it
/// for the `iso` transport (made with genisoimage).
pub fn env_iso(dir: &Path, name: &str, xml: &str) -> PathBuf {
    let src = dir.join(format!("{name}-env"));
    std::fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    std::fs::write(src.join("ovf-env.xml"), xml)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let iso = dir.join(format!("{name}.iso"));
    run(Command::new("genisoimage")
        .args(["-quiet", "-V", "OVF ENV", "-r", "-J", "-o"])
        .arg(&iso)
        .arg(&src));
    iso
}

/// Wall-clock progress lines on stderr, written directly (not with `eprintln!`, which the test
/// harness captures): CI output shows each phase with its time without `--nocapture`.
pub struct Clock {
    start: std::time::Instant,
    prefix: &'static str,
}

impl Clock {
    pub fn new(prefix: &'static str) -> Clock {
        Clock {
            start: std::time::Instant::now(),
            prefix,
        }
    }

    pub fn log(&self, msg: impl AsRef<str>) {
        use std::io::Write;
        let line = format!(
            "[{} {:>6.1} s] {}",
            self.prefix,
            self.start.elapsed().as_secs_f64(),
            msg.as_ref()
        );
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// Whether `program` (a name, or an absolute path) is there, without saying anything: on PATH,
/// or in /usr/sbin, which a non-login root PATH may lack.
pub fn installed(program: &str) -> bool {
    testkit::on_path(program) || Path::new("/usr/sbin").join(program).is_file()
}

/// Whether a test that boots VMs can run here: every tool in `tools` [`installed`], and root.
/// Otherwise testkit says what is missing (a failure in CI, a skip elsewhere).
pub fn prerequisites(tools: &[&str]) -> bool {
    let absent: Vec<&str> = tools.iter().copied().filter(|t| !installed(t)).collect();
    let mut unmet = Vec::new();
    if !absent.is_empty() {
        unmet.push(format!(
            "{} not found (bash scripts/install-deps)",
            absent.join(", ")
        ));
    }
    if !testkit::is_root() {
        unmet.push("needs root".to_owned());
    }
    if unmet.is_empty() {
        return true;
    }
    testkit::unmet(&unmet.join("; "));
    false
}
