//! Helpers shared by the tests of every crate in the workspace, one of each: whether a tool is
//! there (and the skip or failure when it is not), running a command that must succeed, tar
//! extraction, and the DMTF OVF schema validator.
//!
//! Only the standard library: every crate can use it, and it depends on none of them.
//!
//! A test that needs a missing tool fails in CI (the `CI` variable set: CI installs everything
//! with `scripts/install-deps`) and is skipped elsewhere, saying so on stderr.

pub mod netns;
pub mod ovf_schema;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (this crate is `tests/support/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("../.."))
}

/// Whether `program` (a name, or an absolute path) is on PATH, without saying anything.
pub fn on_path(program: &str) -> bool {
    if program.starts_with('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Whether `tool` (a name on PATH, or an absolute path) is there; when it is not, [`missing`]
/// says so (a failure in CI, a skip elsewhere).
#[track_caller]
pub fn have(tool: &str) -> bool {
    let found = on_path(tool);
    if !found {
        missing(tool);
    }
    found
}

/// Reports a missing prerequisite of the running test (`what`, e.g. `qemu-img`): a panic in CI,
/// where everything must be installed; elsewhere `skipping <test>: <what> not found` on stderr,
/// and the caller returns early.
#[track_caller]
pub fn missing(what: &str) {
    unmet(&format!("{what} not found (bash scripts/install-deps)"));
}

/// As [`missing`], for any unmet requirement (`why`, e.g. "needs root"): a panic in CI,
/// `skipping <test>: <why>` on stderr elsewhere.
#[track_caller]
pub fn unmet(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{}: {why}: CI must provide it", test_name());
    }
    skipping(why);
}

/// Says on stderr that the running test is skipped and why, in CI too (for what CI need not
/// have either). Written straight to stderr, past the test harness's capture, so that the run's
/// output shows every skip.
pub fn skipping(why: &str) {
    use std::io::Write;
    let line = format!("skipping {}: {why}\n", test_name());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The running test's name: libtest names each test's thread after it.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "this test".to_owned(),
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command that must succeed; returns its stdout. Fails the test with the command, its
/// exit status, stdout and stderr otherwise.
#[track_caller]
pub fn run(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_output(cmd).stdout).into_owned()
}

/// As [`run`], returning the whole output.
#[track_caller]
pub fn run_output(cmd: &mut Command) -> Output {
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
    out
}

/// Extracts `members` of the tar archive `archive` (all of them when empty) into `into`, which is
/// created if missing, with the system's `tar` (a real reader, not ours). Callers check
/// `have("tar")` first.
#[track_caller]
pub fn untar(archive: &Path, into: &Path, members: &[&str]) {
    std::fs::create_dir_all(into).unwrap_or_else(|e| panic!("{}: {e}", into.display()));
    run(Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .args(members));
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABSENT: &str = "testkit-no-such-tool";

    /// Run only through [`a_missing_tool_skips_outside_ci_and_fails_in_ci`], in a child process.
    #[test]
    #[ignore = "run by a_missing_tool_skips_outside_ci_and_fails_in_ci"]
    fn probe_missing_tool() {
        if !have(ABSENT) {
            return;
        }
        panic!("{ABSENT} was found");
    }

    /// This test binary running only `probe_missing_tool`, with `CI` set or not.
    fn probe(ci: bool) -> Output {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
        let mut cmd = Command::new(exe);
        cmd.args(["--ignored", "--exact", "tests::probe_missing_tool"]);
        if ci {
            cmd.env("CI", "true");
        } else {
            cmd.env_remove("CI");
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("running the probe: {e}"))
    }

    #[test]
    fn a_missing_tool_skips_outside_ci_and_fails_in_ci() {
        let out = probe(false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "skipping tests::probe_missing_tool: {ABSENT} not found"
            )),
            "{stderr}"
        );

        let out = probe(true);
        // libtest prints a failed test's panic message with its captured output, on stdout.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "tests::probe_missing_tool: {ABSENT} not found (bash scripts/install-deps): CI must provide it"
            )),
            "{stdout}"
        );
    }

    #[test]
    fn tools_are_found_on_path_or_by_absolute_path() {
        assert!(on_path("sh"));
        assert!(on_path("/bin/sh"));
        assert!(!on_path(ABSENT));
        assert!(!on_path("/nonexistent/sh"));
    }

    #[test]
    fn run_fails_with_the_commands_output() {
        assert_eq!(run(Command::new("sh").args(["-c", "echo out"])), "out\n");
        let failed = std::panic::catch_unwind(|| {
            run(Command::new("sh").args(["-c", "echo said-this >&2; exit 3"]))
        });
        let message = failed.expect_err("a failing command fails the test");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("said-this"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
    }
}
