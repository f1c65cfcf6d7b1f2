//! Replays every committed fuzz input — the seed corpus (`image/fuzz/seeds/`) and each input
//! that once crashed a target (`image/fuzz/regressions/`) — through every fuzz target's entry
//! point, without libFuzzer: fixed bugs stay fixed, and CI needs no nightly tools.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../fuzz/fuzz_targets/common.rs"]
mod harness;

use std::path::Path;

fn inputs(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    files
}

#[test]
fn every_committed_input_passes_every_target() {
    for path in inputs("seeds").into_iter().chain(inputs("regressions")) {
        let data = std::fs::read(&path).unwrap();
        for (name, target) in harness::TARGETS {
            eprintln!("{name} <- {}", path.display());
            target(&data);
        }
    }
}
