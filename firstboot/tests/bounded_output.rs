//! Output stays short whatever the input's size: values are quoted as a short, escaped prefix
//! with their length, a property's problems are listed a few at a time, and the guestinfo
//! status line is one short line.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod env_support;

use std::path::Path;
use std::process::{Command, Output};

use env_support::*;
use firstboot::config::Deployment;
use firstboot::load::{LoadOptions, load_bytes};

/// The size of the issue's example (a 10 MB host name).
const BIG: usize = 10 * 1024 * 1024;
/// Enough for the other cases: 64 times the output bound, and as lists half a million items.
const MEGABYTE: usize = 1024 * 1024;
/// Generous bounds: a failed run prints a few dozen lines of at most a few hundred characters.
const MAX_OUTPUT: usize = 16 * 1024;
const MAX_STATUS: usize = 300;

fn run(dir: &Path, command: &str, document: &str) -> Output {
    let env = dir.join("env.xml");
    std::fs::write(&env, document).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haproxy-firstboot"));
    cmd.args([command, "--deployment", "default", "--env"])
        .arg(&env);
    if command == "apply" {
        cmd.arg("--root").arg(dir.join("root"));
    }
    cmd.output().unwrap()
}

fn status_line(document: &str) -> String {
    let options = LoadOptions {
        deployment: Some(Deployment::Default),
        ..LoadOptions::default()
    };
    match load_bytes(document.as_bytes().to_vec(), "test".into(), &options) {
        Ok(_) => panic!("expected a failed load"),
        Err(e) => e.status_line(),
    }
}

/// Both commands fail with `code`, print at most `MAX_OUTPUT` bytes, and show `expected`.
fn assert_bounded(name: &str, document: &str, code: i32, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    for command in ["check", "apply"] {
        let out = run(dir.path(), command, document);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name} {command}: {all:.2000}"
        );
        assert!(
            all.len() <= MAX_OUTPUT,
            "{name} {command}: {} bytes of output: {:.2000}",
            all.len(),
            all
        );
        assert!(all.contains(expected), "{name} {command}: {all:.4000}");
    }
    let status = status_line(document);
    assert!(
        status.chars().count() <= MAX_STATUS && !status.contains('\n'),
        "{name}: status line of {} characters: {status:.1000}",
        status.chars().count()
    );
}

#[test]
fn a_huge_value_is_quoted_as_a_prefix_with_its_length() {
    let host = format!("{}.example", "h".repeat(BIG));
    let n = host.chars().count();
    let document = doc(&with(base(), &[("network.hostname", Some(&host))]), Some(2));
    assert_bounded("hostname", &document, 1, "\"hhhhhhhhhhhhhhhh");
    assert_bounded("hostname", &document, 1, &format!("({n} characters)"));
}

#[test]
fn huge_values_of_other_properties_are_bounded_too() {
    let cases = [
        ("network.nameservers", "x,".repeat(MEGABYTE / 2)),
        ("loadbalance.service_ip_range", "1".repeat(MEGABYTE)),
        (
            "network.additional_workload_networks",
            "y,".repeat(MEGABYTE / 2),
        ),
        ("network.management_ip", "z".repeat(MEGABYTE)),
        ("loadbalance.haproxy_user", "u ".repeat(MEGABYTE / 2)),
        ("loadbalance.dataplane_port", "9".repeat(MEGABYTE)),
    ];
    for (key, value) in cases {
        let document = doc(&with(base(), &[(key, Some(&value))]), Some(2));
        assert_bounded(key, &document, 1, key);
    }
}

#[test]
fn huge_names_in_malformed_documents_are_bounded() {
    let entity = doc(
        &with(base(), &[("network.hostname", Some("SLOT"))]),
        Some(2),
    )
    .replace("SLOT", &format!("&{};", "e".repeat(MEGABYTE)));
    assert_bounded("entity", &entity, 2, "network.hostname");
    let root = format!("<{} />", "r".repeat(MEGABYTE));
    assert_bounded("root element", &root, 2, "characters)");
    let end_tag = format!(
        "<Environment xmlns=\"http://schemas.dmtf.org/ovf/environment/1\"></{}>",
        "t".repeat(MEGABYTE)
    );
    assert_bounded("end tag", &end_tag, 2, "characters)");
}
