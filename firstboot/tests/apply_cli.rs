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
    let cfg = std::fs::read_to_string(root.join("etc/haproxy/dataplaneapi.yaml")).unwrap();
    assert!(cfg.contains("\n    tls_port: 6443\n"), "{cfg}");
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

const LOCK: &str = "var/lib/haproxy-firstboot/lock";

/// Environment B of the concurrency tests: every file that names the host differs from A's.
fn other_props() -> Vec<(String, String)> {
    with(
        default_props(),
        &[
            ("network.hostname", Some("other.corp.example")),
            ("network.management_ip", Some("192.168.0.3/24")),
            ("loadbalance.dataplane_port", Some("6443")),
        ],
    )
}

#[test]
fn a_held_lock_makes_apply_wait_or_exit_with_a_clear_message() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, &default_props(), "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = tree(&root);
    let file = std::fs::File::open(root.join(LOCK)).unwrap();
    let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).unwrap();

    let env = dir.path().join("b.xml");
    let o = apply_command(&root, &env, &other_props(), "default")
        .args(["--lock-wait", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        marker(&o).contains("another haproxy-firstboot run is applying a configuration"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&root), before);

    // With time to wait, it says so, and applies once the lock is released.
    let mut child = apply_command(&root, &env, &other_props(), "default")
        .args(["--lock-wait", "600"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("waiting for another haproxy-firstboot run") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    drop(held);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{seen}{}", text(&o));
    let hostname = std::fs::read_to_string(root.join("etc/hostname")).unwrap();
    assert_eq!(hostname, "other.corp.example\n");
}

/// Which environment the root holds, checked file by file: every file naming the host must
/// agree, the server certificate included.
fn environment_of(root: &Path) -> &'static str {
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
    let (name, ip, port) = match read("etc/hostname").as_str() {
        "haproxy.corp.example\n" => ("A", "192.168.0.2", "5556"),
        "other.corp.example\n" => ("B", "192.168.0.3", "6443"),
        other => panic!("unexpected host name {other:?}"),
    };
    let hosts = read("etc/hosts");
    assert!(hosts.contains(ip), "{name}: {hosts}");
    let network = read("etc/systemd/network/10-management.network");
    assert!(network.contains(&format!("{ip}/24")), "{name}: {network}");
    let dp = read("etc/haproxy/dataplaneapi.yaml");
    assert!(
        dp.contains(&format!("\n    tls_port: {port}\n")),
        "{name}: {dp}"
    );
    let cert = openssl::x509::X509::from_pem(read("etc/haproxy/server.crt").as_bytes()).unwrap();
    let sans: Vec<String> = cert
        .subject_alt_names()
        .unwrap()
        .iter()
        .filter_map(|n| n.ipaddress().map(|b| format!("{b:?}")))
        .collect();
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    assert!(
        sans.contains(&format!("{octets:?}")),
        "{name}: server.crt SANs {sans:?}"
    );
    assert!(
        !root
            .join("var/lib/haproxy-firstboot/transaction.json")
            .exists()
    );
    // The SSH host key pair is one pair, not halves of two.
    let key = root.join("etc/ssh/ssh_host_ed25519_key");
    let public = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .output()
        .unwrap();
    assert!(public.status.success(), "{}", text(&public));
    let derived = String::from_utf8_lossy(&public.stdout);
    let stored = read("etc/ssh/ssh_host_ed25519_key.pub");
    assert_eq!(
        derived.split_whitespace().nth(1),
        stored.split_whitespace().nth(1),
        "{name}: host key pair"
    );
    name
}

#[test]
fn racing_applies_leave_one_whole_environment() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, &default_props(), "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut waited = 0;
    for i in 0..6 {
        // Without host keys both runs spend a while in ssh-keygen, so they overlap.
        for t in ["rsa", "ecdsa", "ed25519"] {
            for suffix in ["", ".pub"] {
                let key = root.join(format!("etc/ssh/ssh_host_{t}_key{suffix}"));
                std::fs::remove_file(key).unwrap();
            }
        }
        let runs: Vec<_> = [("a.xml", default_props()), ("b.xml", other_props())]
            .into_iter()
            .map(|(env, props)| {
                apply_command(&root, &dir.path().join(env), &props, "default")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = runs
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        for o in &outputs {
            assert!(o.status.success(), "iteration {i}: {}", text(o));
            if String::from_utf8_lossy(&o.stderr).contains("waiting for another haproxy-firstboot")
            {
                waited += 1;
            }
        }
        let which = if environment_of(&root) == "A" { 0 } else { 1 };
        let status: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join(apply_support::STATUS)).unwrap())
                .unwrap();
        let applied = marker(&outputs[which]);
        let sha = status["config_fingerprint"].as_str().unwrap();
        assert!(applied.contains(sha), "iteration {i}: {applied} vs {sha}");
    }
    eprintln!("{waited} of 12 runs waited for the other");
}

#[test]
fn a_removed_file_is_reported_as_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, &frontend_props(), "frontend", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = apply(&root, &default_props(), "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("removed /etc/systemd/network/10-frontend.network\n"),
        "{err}"
    );
    assert!(
        !err.contains("wrote /etc/systemd/network/10-frontend.network"),
        "{err}"
    );
}
