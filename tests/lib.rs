//! Shared helpers for the cross-crate end-to-end tests in this directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

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
        "{} (bash scripts/install-deps builds it from scripts/deps/go.tools)",
        path.display()
    ));
    None
}

/// The machine's Go (not Debian's golang-go): on PATH, else where its installer puts it.
pub fn go() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("go"))
            .find(|g| g.is_file())
    });
    if let Some(go) = on_path.or_else(|| {
        [
            PathBuf::from("/usr/local/go/bin/go"),
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join("go/bin/go"),
        ]
        .into_iter()
        .find(|g| g.is_file())
    }) {
        return Some(go);
    }
    missing("Go 1.26 (go on PATH or /usr/local/go/bin/go)");
    None
}

/// Reports a missing prerequisite: a panic in CI (where everything must be installed), a
/// skip said on stderr elsewhere.
pub fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("missing {what}: CI must have it");
    }
    eprintln!("SKIPPED: missing {what}");
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CA (certificate, key) in PEM, as an administrator makes one with the openssl CLI.
pub fn make_ca(dir: &Path, subject: &str) -> (String, String) {
    let key = dir.join("ca.key");
    let crt = dir.join("ca.crt");
    run_ok(
        Command::new("openssl")
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
            .arg(&crt),
    );
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (read(&crt), read(&key))
}

/// An OVF environment document as vSphere writes it on the `iso` transport, with `props`
/// (`class.key`, value) in its PropertySection.
pub fn ovf_env(props: &[(&str, String)]) -> String {
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let mut write = |e: Event| {
        w.write_event(e)
            .unwrap_or_else(|err| panic!("writing ovf-env.xml: {err}"))
    };
    write(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let env = BytesStart::new("Environment").with_attributes([
        ("xmlns", "http://schemas.dmtf.org/ovf/environment/1"),
        ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
        ("xmlns:oe", "http://schemas.dmtf.org/ovf/environment/1"),
        ("xmlns:ve", "http://www.vmware.com/schema/ovfenv"),
        ("oe:id", ""),
        ("ve:vCenterId", "vm-42"),
    ]);
    write(Event::Start(env));
    write(Event::Start(BytesStart::new("PropertySection")));
    for (key, value) in props {
        // Newlines as character references: a literal one in an attribute reads as a space.
        let escaped = quick_xml::escape::escape(value.as_str()).replace('\n', "&#10;");
        let mut prop = BytesStart::new("Property");
        prop.push_attribute(("oe:key", *key));
        prop.push_attribute(quick_xml::events::attributes::Attribute {
            key: quick_xml::name::QName(b"oe:value"),
            value: std::borrow::Cow::Owned(escaped.into_bytes()),
        });
        write(Event::Empty(prop));
    }
    write(Event::End(BytesEnd::new("PropertySection")));
    write(Event::End(BytesEnd::new("Environment")));
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

/// An ISO 9660 image holding `ovf-env.xml` (vSphere's `iso` transport), made with genisoimage.
pub fn env_iso(dir: &Path, name: &str, xml: &str) -> PathBuf {
    let src = dir.join(format!("{name}-env"));
    let iso = dir.join(format!("{name}.iso"));
    std::fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    std::fs::write(src.join("ovf-env.xml"), xml).unwrap_or_else(|e| panic!("ovf-env.xml: {e}"));
    run_ok(
        Command::new("genisoimage")
            .args(["-quiet", "-V", "OVF ENV", "-r", "-J", "-o"])
            .arg(&iso)
            .arg(&src),
    );
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

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Whether `program` is on PATH (or in /usr/sbin, which a non-login root PATH may lack).
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(program).is_file()
}
