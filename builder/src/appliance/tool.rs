//! Running the external programs the appliance build is made of (mmdebstrap, mkfs, mtools,
//! syslinux, sfdisk): one place that turns "it failed" into an error that names the program,
//! its exit status, the end of its standard error and the Debian package that provides it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// How much of a failing program's standard error an error message carries.
const STDERR_TAIL_LINES: usize = 25;

/// An external program could not be run or reported failure.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "`{program}` was not found: install the Debian package `{package}` (bash scripts/install-deps)"
    )]
    NotFound {
        program: String,
        package: &'static str,
    },
    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

/// The Debian package that provides `program`, for "not found" messages.
fn package_of(program: &str) -> &'static str {
    match program {
        "mmdebstrap" => "mmdebstrap",
        "mkfs.ext4" | "e2fsck" | "debugfs" => "e2fsprogs",
        "mkfs.vfat" | "mkfs.fat" => "dosfstools",
        "mmd" | "mcopy" | "mdir" => "mtools",
        "syslinux" => "syslinux",
        "sfdisk" => "fdisk",
        "chroot" => "coreutils",
        _ => "(see scripts/deps/appliance.apt)",
    }
}

/// Runs `program args…` with `env` added, stdin closed, and returns its output when it exits
/// with status 0. On failure the error carries the tail of its standard error.
pub fn run<I, S>(program: &str, args: I, env: &[(&str, &str)]) -> Result<Output, ToolError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut cmd = Command::new(program);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ToolError::NotFound {
                program: program.to_owned(),
                package: package_of(program),
            }
        } else {
            ToolError::Spawn {
                program: program.to_owned(),
                source,
            }
        }
    })?;
    if output.status.success() {
        return Ok(output);
    }
    let command = std::iter::once(program.to_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    Err(ToolError::Failed {
        command,
        status: output.status.to_string(),
        stderr: tail(&output),
    })
}

/// The last lines of a program's standard error (or standard output when stderr is empty).
fn tail(output: &Output) -> String {
    let text = if output.stderr.iter().all(u8::is_ascii_whitespace) {
        String::from_utf8_lossy(&output.stdout)
    } else {
        String::from_utf8_lossy(&output.stderr)
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    lines[start..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sets the modification time of every file and directory under `dir` (of symbolic links
/// themselves, not their targets) to `epoch`; with `only_newer`, only of those modified after
/// it (clamping).
pub fn set_mtimes(dir: &Path, epoch: u64, only_newer: bool) -> Result<(), ToolError> {
    let at = format!("@{epoch}");
    let mut args = vec![dir.as_os_str()];
    if only_newer {
        args.extend([OsStr::new("-newermt"), OsStr::new(&at)]);
    }
    args.extend(["-exec", "touch", "--no-create", "-h", "-d", &at, "{}", "+"].map(OsStr::new));
    run("find", args, &[])?;
    Ok(())
}

/// Runs a command inside the root filesystem at `root` with `chroot` (needs root).
pub fn in_root(root: &Path, args: &[&str]) -> Result<Output, ToolError> {
    let mut all: Vec<&OsStr> = vec![root.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    run("chroot", all, &[])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_command_and_stderr() {
        let err = run("sh", ["-c", "echo bad thing >&2; exit 3"], &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sh -c"), "{msg}");
        assert!(msg.contains("bad thing"), "{msg}");
        assert!(msg.contains('3'), "{msg}");
    }

    #[test]
    fn set_mtimes_sets_or_clamps() {
        use std::time::{Duration, UNIX_EPOCH};
        let mtime = |p: &Path| std::fs::symlink_metadata(p).unwrap().modified().unwrap();
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let old = sub.join("old");
        std::fs::write(&old, "").unwrap();
        let file = std::fs::File::options().write(true).open(&old).unwrap();
        file.set_modified(at(1_000)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/nonexistent", &link).unwrap();
        set_mtimes(dir.path(), 1_700_000_000, true).unwrap();
        assert_eq!(mtime(&old), at(1_000), "older files are kept");
        assert_eq!(mtime(&sub), at(1_700_000_000));
        assert_eq!(mtime(&link), at(1_700_000_000));
        set_mtimes(dir.path(), 1_600_000_000, false).unwrap();
        for path in [dir.path(), &sub, &old, &link] {
            assert_eq!(mtime(path), at(1_600_000_000), "{}", path.display());
        }
    }

    #[test]
    fn missing_program_names_package() {
        let err = run("mmdebstrap-does-not-exist", ["x"], &[]).unwrap_err();
        assert!(matches!(err, ToolError::NotFound { .. }), "{err}");
    }
}
