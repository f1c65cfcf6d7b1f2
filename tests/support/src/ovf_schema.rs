//! The DMTF OVF schema validator of the shared schemas: `validate-ovf` (DSP8023 plus a VMware
//! stub; `--strict-dmtf` without the stub), a bash script around xmllint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `validate-ovf`, when it and xmllint are there (`$VALIDATE_OVF` overrides its path); `None`
/// after [`crate::missing`] said what is missing.
#[track_caller]
pub fn validator() -> Option<PathBuf> {
    // Beside the repository (`../shared`), as the issues name it; the absolute path covers
    // a clone made elsewhere on the same machine.
    let beside = crate::workspace().join("../shared/schemas/validate-ovf");
    let path = std::env::var_os("VALIDATE_OVF")
        .map(PathBuf::from)
        .or_else(|| beside.is_file().then(|| beside.clone()))
        .unwrap_or_else(|| PathBuf::from("/work/shared/schemas/validate-ovf"));
    let xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    if path.is_file() && xmllint {
        return Some(path);
    }
    crate::missing(&format!(
        "DMTF validation: {} or xmllint (libxml2-utils, in scripts/deps/ovf.apt)",
        path.display()
    ));
    None
}

/// Runs `validator` on `file` (with `--strict-dmtf` when `strict`).
pub fn validate(validator: &Path, file: &Path, strict: bool) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(validator).arg(file);
    if strict {
        cmd.arg("--strict-dmtf");
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running {}: {e}", validator.display()))
}

/// Asserts that `file` is valid with and without `--strict-dmtf`, failing with xmllint's
/// output otherwise. Returns false when validation was skipped (tool missing outside CI).
#[track_caller]
pub fn assert_valid(file: &Path) -> bool {
    let Some(validator) = validator() else {
        return false;
    };
    for strict in [false, true] {
        let out = validate(&validator, file, strict);
        assert!(
            out.status.success(),
            "validate-ovf {}{} failed:\n{}{}",
            file.display(),
            if strict { " --strict-dmtf" } else { "" },
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    true
}
