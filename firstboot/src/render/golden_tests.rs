//! Golden tests: every rendered file's content and mode for a Default, a Frontend (static)
//! and a DHCP configuration, compared with `firstboot/tests/golden/<case>/`.
//! `UPDATE_GOLDEN=1 cargo test -p firstboot --lib golden` rewrites the expected files.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use super::fixtures;
use super::{Inputs, render};
use crate::config::ValidatedConfig;

const SHADOW: &str = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
// Fixed salts, so the files are stable; real runs draw them from the OS.
const API_HASH: &str = "$6$goldensaltgolde$Fixed.hash.for.golden.tests";
const ROOT_HASH: &str = "$6$rootsaltrootsal$Fixed.root.hash";

fn check(case: &str, cfg: &ValidatedConfig) {
    let tls = fixtures::placeholder_tls();
    let inputs = Inputs {
        tls: &tls,
        haproxy_password_hash: API_HASH,
        root_password: Some((ROOT_HASH, 20000)),
        existing_shadow: Some(SHADOW),
        existing_haproxy_cfg: None,
    };
    let out = render(cfg, &inputs).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut modes = String::new();
    for f in &out.files {
        writeln!(modes, "{:o} {}", f.mode, f.path).unwrap();
    }
    for r in &out.remove {
        writeln!(modes, "removed {r}").unwrap();
    }
    if update {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut failures = Vec::new();
    let mut expect = |rel: &str, actual: &[u8]| {
        let p = dir.join(rel);
        if update {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, actual).unwrap();
            return;
        }
        match std::fs::read(&p) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{rel} differs:\n--- expected\n{}\n--- actual\n{}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(actual)
            )),
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    };
    expect("MODES", modes.as_bytes());
    for f in &out.files {
        expect(&format!("root/{}", f.path), &f.contents);
    }
    assert!(
        failures.is_empty(),
        "golden mismatch for {case}:\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_default_static() {
    check("default-static", &fixtures::default_static());
}

#[test]
fn golden_frontend_static() {
    check("frontend-static", &fixtures::frontend_static());
}

#[test]
fn golden_default_dhcp() {
    check("default-dhcp", &fixtures::default_dhcp());
}
