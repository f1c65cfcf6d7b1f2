//! The OVA fuzz target's committed inputs (`builder/fuzz/seeds/ova/`) through the same public
//! entry points the target drives — the tar walk, `verify` and `spec` — in the normal test run,
//! so a fixed bug stays fixed without libFuzzer. Errors and failed reports are fine; a panic or a
//! member outside the file is not.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use builder::ova::{MemberKind, scan_archive};

#[test]
fn every_committed_ova_input_is_handled_without_panic() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/ova");
    let mut seen = 0;
    for entry in std::fs::read_dir(&seeds).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let len = data.len() as u64;
        if let Ok(archive) = scan_archive(&mut std::io::Cursor::new(&data), len) {
            for m in archive
                .members
                .iter()
                .filter(|m| m.kind == MemberKind::Regular)
            {
                assert!(
                    m.data_offset <= len && m.size <= len - m.data_offset,
                    "{}: member {:?} lies past the end",
                    path.display(),
                    m.name
                );
            }
        }
        let _ = builder::verify::verify(&path, &builder::progress::Progress::hidden());
        let _ = builder::spec::spec_of(&path);
        seen += 1;
    }
    assert!(seen >= 5, "the seed corpus is in {}", seeds.display());
}
