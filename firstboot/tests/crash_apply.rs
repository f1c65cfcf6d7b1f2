//! Crash safety of the real binary: `haproxy-firstboot apply` is aborted (SIGABRT, as a crash)
//! after N file operations of a change; the next run recovers and converges, and the root then
//! holds exactly the new configuration. (The library test
//! `apply::tests::crash_at_every_point_leaves_old_or_new_and_converges` walks every N and checks
//! old-or-new after recovery; this one proves the process-level hook and recovery.)
//!
//! The hook (HAPROXY_FIRSTBOOT_FAULT_AFTER) exists only in builds with the `fault-injection`
//! feature: `scripts/test` runs this file a second time with `--features fault-injection`;
//! without it the abort test is ignored and
//! `the_fault_variable_works_only_with_the_fault_injection_feature` checks the binary ignores
//! the variable, as the shipped one must.
#![allow(clippy::unwrap_used)]

mod apply_support;

use apply_support::*;

/// The crash tests' variable: abort after this many file operations.
const FAULT_VAR: &str = "HAPROXY_FIRSTBOOT_FAULT_AFTER";

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs the hook: cargo test -p firstboot --features fault-injection (scripts/test does)"
)]
fn aborted_apply_recovers_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    std::fs::create_dir(&base).unwrap();
    let o = apply(&base, &default_props(), "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let changed = with(
        default_props(),
        &[
            ("loadbalance.dataplane_port", Some("6443")),
            ("network.nameservers", Some("9.9.9.9")),
            ("appliance.permit_root_login", Some("false")),
        ],
    );
    let mut aborted = 0;
    for n in [0u32, 3, 9, 17, 26, 40] {
        let root = dir.path().join(format!("r{n}"));
        let cp = std::process::Command::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&root)
            .status()
            .unwrap();
        assert!(cp.success());
        let o = apply(&root, &changed, "default", &[(FAULT_VAR, &n.to_string())]);
        if o.status.success() {
            continue;
        }
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&o.status),
            Some(6),
            "n={n}: {}",
            text(&o)
        );
        aborted += 1;
        let o = apply(&root, &changed, "default", &[]);
        assert!(o.status.success(), "n={n}: {}", text(&o));
        let sshd =
            std::fs::read_to_string(root.join("etc/ssh/sshd_config.d/50-haproxy-firstboot.conf"))
                .unwrap();
        assert!(sshd.contains("PermitRootLogin no"), "n={n}");
        let dp = std::fs::read_to_string(root.join("etc/haproxy/dataplaneapi.yaml")).unwrap();
        assert!(dp.contains("\n    tls_port: 6443\n"), "n={n}");
        assert!(
            !root
                .join("var/lib/haproxy-firstboot/transaction.json")
                .exists()
        );
        let again = apply(&root, &changed, "default", &[]);
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("(0 files changed)"),
            "n={n}: {}",
            text(&again)
        );
    }
    assert!(aborted >= 4, "only {aborted} runs were aborted");
}

/// With the feature, the variable aborts the run; without it (as shipped), it changes nothing
/// and its name is not even in the binary.
#[test]
fn the_fault_variable_works_only_with_the_fault_injection_feature() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, &default_props(), "default", &[(FAULT_VAR, "0")]);
    let binary = std::fs::read(bin()).unwrap();
    let names_the_variable = binary
        .windows(FAULT_VAR.len())
        .any(|w| w == FAULT_VAR.as_bytes());
    if cfg!(feature = "fault-injection") {
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&o.status),
            Some(6),
            "{}",
            text(&o)
        );
        assert!(names_the_variable);
    } else {
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("haproxy-firstboot: applied configuration"),
            "{}",
            text(&o)
        );
        assert!(!names_the_variable, "{} names {FAULT_VAR}", bin().display());
    }
}

const JOURNAL: &str = "var/lib/haproxy-firstboot/transaction.json";

/// A root with the default configuration applied, and the environment to change it to.
fn applied_root(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, &default_props(), "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    root
}

fn changed_props() -> Vec<(String, String)> {
    with(
        default_props(),
        &[("loadbalance.dataplane_port", Some("6443"))],
    )
}

fn assert_changed_applied(root: &std::path::Path, what: &str) {
    let dp = std::fs::read_to_string(root.join("etc/haproxy/dataplaneapi.yaml")).unwrap();
    assert!(dp.contains("\n    tls_port: 6443\n"), "{what}: {dp}");
    assert!(!root.join(JOURNAL).exists(), "{what}");
    let again = apply(root, &changed_props(), "default", &[]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("(0 files changed)"),
        "{what}: {}",
        text(&again)
    );
}

#[test]
fn a_damaged_journal_is_rolled_back_and_the_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    let damaged: [&[u8]; 4] = [
        b"",
        b"{\"entries\": [{\"do\": \"rename\", \"staged\": \"etc/.hosts.hf",
        b"\0\0\0\0\0\0\0\0",
        b"{\"entries\": [{\"do\": \"explode\"}]}",
    ];
    for (i, journal) in damaged.into_iter().enumerate() {
        let root = applied_root(dir.path(), &format!("r{i}"));
        std::fs::write(root.join(JOURNAL), journal).unwrap();
        // A staged file the damaged journal may or may not have named: not provably complete.
        std::fs::write(root.join("etc/.hosts.hfb-new"), "half a file").unwrap();
        let o = apply(&root, &changed_props(), "default", &[]);
        assert!(o.status.success(), "journal {i}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("damaged transaction journal"), "{err}");
        assert!(!root.join("etc/.hosts.hfb-new").exists());
        let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap();
        assert!(hosts.contains("haproxy.corp.example"), "{hosts}");
        assert_changed_applied(&root, &format!("journal {i}"));
    }
}

#[test]
fn journal_paths_are_confined_to_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    let abs = victim.display().to_string();
    let entries = [
        r#"{"do": "remove", "target": "../outside/victim"}"#.to_string(),
        format!(r#"{{"do": "remove", "target": "{abs}"}}"#),
        r#"{"do": "remove", "target": "etc/../../outside/victim"}"#.to_string(),
        r#"{"do": "rename", "staged": "../outside/victim", "target": "etc/hosts"}"#.to_string(),
        r#"{"do": "rename", "staged": "etc/.hosts.hfb-new", "target": "../outside/victim"}"#
            .to_string(),
        // etc/vmware is a symlink out of the root.
        r#"{"do": "remove", "target": "etc/vmware/victim"}"#.to_string(),
    ];
    for (i, entry) in entries.iter().enumerate() {
        std::fs::write(&victim, "not first boot's").unwrap();
        let root = applied_root(dir.path(), &format!("r{i}"));
        if entry.contains("etc/vmware/") {
            let vmware = root.join("etc/vmware");
            std::fs::rename(&vmware, dir.path().join(format!("vmware{i}"))).unwrap();
            std::os::unix::fs::symlink(&outside, &vmware).unwrap();
        }
        std::fs::write(root.join(JOURNAL), format!(r#"{{"entries": [{entry}]}}"#)).unwrap();
        std::fs::write(root.join("etc/.hosts.hfb-new"), "staged").unwrap();
        let o = apply(&root, &changed_props(), "default", &[]);
        assert_eq!(
            std::fs::read_to_string(&victim).ok().as_deref(),
            Some("not first boot's"),
            "entry {entry}: {}",
            text(&o)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("damaged transaction journal"),
            "{entry}: {err}"
        );
        assert!(!root.join(JOURNAL).exists(), "{entry}");
        if entry.contains("etc/vmware/") {
            // Nor does the run itself write through the escaping directory.
            assert_eq!(o.status.code(), Some(3), "{}", text(&o));
            assert!(err.contains("leads to"), "{err}");
        } else {
            assert!(o.status.success(), "{entry}: {}", text(&o));
        }
    }
}

/// A killed run can leave its ssh-keygen behind, still writing into the key scratch
/// directory; the next run must not depend on that directory.
#[test]
fn a_leftover_ssh_keygen_does_not_break_the_next_run() {
    if !have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = applied_root(dir.path(), "root");
    for t in ["rsa", "ecdsa", "ed25519"] {
        for suffix in ["", ".pub"] {
            std::fs::remove_file(root.join(format!("etc/ssh/ssh_host_{t}_key{suffix}"))).unwrap();
        }
    }
    // Stands in for the orphan: keeps (re)creating key files in the old scratch directory.
    let scratch = root.join("var/lib/haproxy-firstboot/.keygen");
    let mut orphan = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "while :; do mkdir -p \"$1\" && for t in rsa ecdsa ed25519; do \
             : > \"$1/ssh_host_${t}_key\"; done; sleep 0.01; done",
        )
        .arg("sh")
        .arg(&scratch)
        .spawn()
        .unwrap();
    let o = apply(&root, &changed_props(), "default", &[]);
    orphan.kill().unwrap();
    orphan.wait().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for t in ["rsa", "ecdsa", "ed25519"] {
        let key = root.join(format!("etc/ssh/ssh_host_{t}_key"));
        let derived = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&key)
            .output()
            .unwrap();
        assert!(derived.status.success(), "{t}: {}", text(&derived));
    }
    assert_changed_applied(&root, "after the orphan");
}
