//! Shared by the `ovf` integration tests: the DMTF schema validator (testkit's), fed a document.
#![allow(dead_code)]

use testkit::ovf_schema;

/// Validates `xml` (written to a file named `name`) with `validate-ovf` (DMTF DSP8023 + VMware
/// stub) and with `validate-ovf --strict-dmtf`; panics with xmllint's output when either fails.
/// Returns false when validation was skipped (tool missing outside CI).
pub fn assert_valid(xml: &str, name: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, xml).unwrap();
    ovf_schema::assert_valid(&file)
}

/// Whether `validate-ovf` (with `--strict-dmtf` when `strict`) accepts `xml`; `None` when
/// validation was skipped (tool missing outside CI).
pub fn accepts(xml: &str, strict: bool) -> Option<bool> {
    let validator = ovf_schema::validator()?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("candidate.ovf");
    std::fs::write(&file, xml).unwrap();
    Some(
        ovf_schema::validate(&validator, &file, strict)
            .status
            .success(),
    )
}
