//! SSH host keys: never shipped in the image, generated at first boot when absent.
//!
//! `ssh-keygen` (OpenSSH's own generator, in the appliance with openssh-server) writes each key
//! into a private scratch directory; the keys then go through the same transaction as every
//! other file, so a crash never leaves half a key pair in `/etc/ssh`.
//!
//! The scratch directory is new and uniquely named in every run (random, created exclusively): an `ssh-keygen`
//! orphaned by a killed run may still be writing into its own run's directory, which the next
//! run deletes best-effort but never uses.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::txn::STATE_DIR;
use crate::render::RenderedFile;

/// Key types Debian's openssh-server generates, with `ssh-keygen -t` and `-b` arguments.
const TYPES: &[(&str, Option<&str>)] = &[
    ("rsa", Some("3072")),
    ("ecdsa", Some("256")),
    ("ed25519", None),
];

/// Prefix of the scratch directories, in the state directory.
const SCRATCH_PREFIX: &str = ".keygen";

/// Every host key file (relative to the root) with its mode: private 0600, public 0644.
pub fn host_key_files() -> Vec<(String, u32)> {
    TYPES
        .iter()
        .flat_map(|(t, _)| {
            [("", 0o600), (".pub", 0o644)]
                .map(|(suffix, mode)| (format!("etc/ssh/ssh_host_{t}_key{suffix}"), mode))
        })
        .collect()
}

/// The host key files (private 0600, public 0644) of every type missing in `root/etc/ssh`.
pub fn missing_host_keys(root: &Path) -> Result<Vec<RenderedFile>, String> {
    let missing: Vec<_> = TYPES
        .iter()
        .filter(|(t, _)| !root.join(format!("etc/ssh/ssh_host_{t}_key")).exists())
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let state = root.join(STATE_DIR);
    remove_stale_scratch(&state);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&state)
        .map_err(|e| format!("creating {}: {e}", state.display()))?;
    let mut random = [0u8; 8];
    openssl::rand::rand_bytes(&mut random).map_err(|e| format!("random name: {e}"))?;
    let scratch = state.join(format!("{SCRATCH_PREFIX}-{}", hex::encode(random)));
    // Not recursive: fails rather than reuse a directory that already exists.
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let result = generate(&scratch, &missing);
    let _ = fs::remove_dir_all(&scratch);
    result
}

/// Deletes what earlier, killed runs left; failures are harmless (this run does not use them).
fn remove_stale_scratch(state: &Path) {
    let Ok(list) = fs::read_dir(state) else {
        return;
    };
    for entry in list.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(SCRATCH_PREFIX)
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn generate(
    scratch: &Path,
    missing: &[&(&str, Option<&str>)],
) -> Result<Vec<RenderedFile>, String> {
    let mut out = Vec::new();
    for (t, bits) in missing {
        let key = scratch.join(format!("ssh_host_{t}_key"));
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", t, "-N", "", "-C", "", "-f"])
            .arg(&key);
        if let Some(b) = bits {
            cmd.args(["-b", b]);
        }
        let status = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("running ssh-keygen (is openssh-client installed?): {e}"))?;
        if !status.success() {
            return Err(format!("ssh-keygen -t {t} failed with {status}"));
        }
        for (suffix, mode) in [("", 0o600), (".pub", 0o644)] {
            let p = scratch.join(format!("ssh_host_{t}_key{suffix}"));
            let contents = fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            out.push(RenderedFile {
                path: format!("etc/ssh/ssh_host_{t}_key{suffix}"),
                contents,
                mode,
            });
        }
    }
    Ok(out)
}
