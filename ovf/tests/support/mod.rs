//! Shared by the `ovf` integration tests: the DMTF schema validator.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `validate-ovf` from the shared schemas (`$VALIDATE_OVF` overrides the path).
fn validator() -> Option<PathBuf> {
    // Beside the repository (`../shared`), as the issues name it; the absolute path covers
    // a clone made elsewhere on the same machine.
    let beside =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/schemas/validate-ovf");
    let path = std::env::var_os("VALIDATE_OVF")
        .map(PathBuf::from)
        .or_else(|| beside.is_file().then(|| beside.clone()))
        .unwrap_or_else(|| PathBuf::from("/work/shared/schemas/validate-ovf"));
    let xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    if path.is_file() && xmllint {
        return Some(path);
    }
    let why = format!(
        "DMTF validation needs {} and xmllint (libxml2-utils, in scripts/deps/ovf.apt)",
        path.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}: missing in CI");
    }
    eprintln!("SKIPPED schema validation: {why}");
    None
}

/// Validates `xml` with `validate-ovf` (DMTF DSP8023 + VMware stub) and with
/// `validate-ovf --strict-dmtf`; panics with xmllint's output when either fails.
/// Returns false when validation was skipped (tool missing outside CI).
pub fn assert_valid(xml: &str, name: &str) -> bool {
    let Some(validator) = validator() else {
        return false;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, xml).unwrap();
    for strict in [false, true] {
        check(&validator, &file, strict);
    }
    true
}

/// Whether `validate-ovf` (with `--strict-dmtf` when `strict`) accepts `xml`; `None` when
/// validation was skipped (tool missing outside CI).
pub fn accepts(xml: &str, strict: bool) -> Option<bool> {
    let validator = validator()?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("candidate.ovf");
    std::fs::write(&file, xml).unwrap();
    Some(run(&validator, &file, strict).status.success())
}

fn run(validator: &Path, file: &Path, strict: bool) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.arg(validator).arg(file);
    if strict {
        cmd.arg("--strict-dmtf");
    }
    cmd.output().unwrap()
}

fn check(validator: &Path, file: &Path, strict: bool) {
    let out = run(validator, file, strict);
    assert!(
        out.status.success(),
        "validate-ovf{} failed:\n{}{}",
        if strict { " --strict-dmtf" } else { "" },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
