//! Crash safety of the real binary: `haproxy-firstboot apply` is aborted (SIGABRT, as a crash)
//! after N file operations of a change; the next run recovers and converges, and the root then
//! holds exactly the new configuration. (The library test
//! `apply::tests::crash_at_every_point_leaves_old_or_new_and_converges` walks every N and checks
//! old-or-new after recovery; this one proves the process-level hook and recovery.)
#![allow(clippy::unwrap_used)]

mod apply_support;

use apply_support::*;

#[test]
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
        let o = apply(
            &root,
            &changed,
            "default",
            &[("HAPROXY_FIRSTBOOT_FAULT_AFTER", &n.to_string())],
        );
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
        let dp = std::fs::read_to_string(root.join("etc/haproxy/dataplaneapi.cfg")).unwrap();
        assert!(dp.contains("TLS_PORT=6443"), "n={n}");
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
