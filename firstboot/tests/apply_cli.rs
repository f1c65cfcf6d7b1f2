//! `haproxy-firstboot apply` end to end: exit statuses as `check`, the final marker line, an
//! invalid or missing environment changes nothing, a re-run changes nothing, a changed
//! environment is applied.
#![allow(clippy::unwrap_used)]

mod apply_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use apply_support::*;

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn marker(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

#[test]
fn applies_then_changes_nothing_then_applies_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, &default_props(), "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let m = marker(&o);
    assert!(
        m.starts_with("haproxy-firstboot: applied configuration "),
        "{m}"
    );
    assert!(!m.contains(" (0 files changed)"), "{m}");
    let first = tree(&root);
    assert!(first.contains_key("etc/haproxy/haproxy.cfg"));
    assert!(first.contains_key("etc/ssh/ssh_host_ed25519_key"));

    let o2 = apply(&root, &default_props(), "default", &[]);
    assert!(o2.status.success(), "{}", text(&o2));
    let hash = m.split_whitespace().nth(3).unwrap().to_string();
    assert_eq!(
        marker(&o2),
        format!("haproxy-firstboot: applied configuration {hash} (0 files changed)")
    );
    assert_eq!(tree(&root), first);

    let changed = with(
        default_props(),
        &[("loadbalance.dataplane_port", Some("6443"))],
    );
    let o3 = apply(&root, &changed, "default", &[]);
    assert!(o3.status.success(), "{}", text(&o3));
    assert!(!marker(&o3).contains(&hash));
    let cfg = std::fs::read_to_string(root.join("etc/haproxy/dataplaneapi.cfg")).unwrap();
    assert!(cfg.contains("TLS_PORT=6443\n"), "{cfg}");
}

#[test]
fn invalid_environment_changes_nothing_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, &default_props(), "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = tree(&root);
    // Workload IP inside an LB range.
    let bad = with(
        default_props(),
        &[("network.workload_ip", Some("192.168.10.70/24"))],
    );
    let o = apply(&root, &bad, "default", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        marker(&o).starts_with("haproxy-firstboot: FAILED (exit 1): invalid configuration"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&root), before);
    // And into an empty root: nothing at all is written.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = apply(&empty, &bad, "default", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(tree(&empty).is_empty());
}

#[test]
fn missing_or_malformed_environment_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = Command::new(bin())
        .args(["apply", "--env"])
        .arg(dir.path().join("nope.xml"))
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        marker(&o).starts_with("haproxy-firstboot: FAILED (exit 2): "),
        "{}",
        text(&o)
    );
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<Environment><PropertySection>").unwrap();
    let o = Command::new(bin())
        .args(["apply", "--env"])
        .arg(&bad)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(tree(&root).is_empty());
}

#[test]
fn help_has_examples() {
    let o = Command::new(bin())
        .args(["apply", "--help"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("--root") && out.contains("Examples:"), "{out}");
}
