//! SSH host keys: never shipped in the image, generated at first boot when absent.
//!
//! `ssh-keygen` (OpenSSH's own generator, in the appliance with openssh-server) writes each key
//! into a private scratch directory; the keys then go through the same transaction as every
//! other file, so a crash never leaves half a key pair in `/etc/ssh`.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::render::RenderedFile;

/// Key types Debian's openssh-server generates, with `ssh-keygen -t` and `-b` arguments.
const TYPES: &[(&str, Option<&str>)] = &[
    ("rsa", Some("3072")),
    ("ecdsa", Some("256")),
    ("ed25519", None),
];

const SCRATCH: &str = "var/lib/haproxy-firstboot/.keygen";

/// The host key files (private 0600, public 0644) of every type missing in `root/etc/ssh`.
pub fn missing_host_keys(root: &Path) -> Result<Vec<RenderedFile>, String> {
    let missing: Vec<_> = TYPES
        .iter()
        .filter(|(t, _)| !root.join(format!("etc/ssh/ssh_host_{t}_key")).exists())
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let scratch = root.join(SCRATCH);
    let _ = fs::remove_dir_all(&scratch);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&scratch)
        .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let result = generate(&scratch, &missing);
    let _ = fs::remove_dir_all(&scratch);
    result
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
