//! Apply into temporary roots: idempotence, re-runs, deployment changes, crash safety.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::config::ValidatedConfig;
use crate::render::fixtures;

type Snapshot = BTreeMap<String, (Vec<u8>, u32)>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(base: &Path, dir: &Path, out: &mut Snapshot) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(
                    rel,
                    (fs::read(&p).unwrap(), meta.permissions().mode() & 0o7777),
                );
            }
        }
    }
    let mut out = Snapshot::new();
    walk(root, root, &mut out);
    out
}

/// [`super::apply`] under the root's lock.
fn apply(cfg: &ValidatedConfig, opts: &ApplyOptions) -> Result<Report, ApplyError> {
    let lock = lock_root(&opts.root, std::time::Duration::ZERO, |_| {})?;
    super::apply(cfg, opts, &lock)
}

fn opts(root: &Path) -> ApplyOptions {
    ApplyOptions {
        root: root.to_path_buf(),
        fault_after: None,
        on_recovery: |_| {},
    }
}

fn seed(root: &Path) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/shadow"),
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    fs::set_permissions(root.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
}

/// `a` with values changed that keep the TLS SANs and passwords (so a re-run is deterministic).
fn variant(a: &ValidatedConfig) -> ValidatedConfig {
    let mut b = a.clone();
    b.lb_ranges = vec!["192.168.10.192/27".parse().unwrap()];
    b.additional_workload_networks = vec![];
    b.nameservers = vec!["9.9.9.9".parse().unwrap()];
    b.dataplane_port = 6443;
    b.permit_root_login = false;
    b
}

#[test]
fn first_apply_writes_everything_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let cfg = fixtures::default_static();
    let r1 = apply(&cfg, &opts(dir.path())).unwrap();
    assert!(r1.changed.contains(&"etc/haproxy/haproxy.cfg".to_string()));
    let s = snapshot(dir.path());
    assert_eq!(s["etc/haproxy/ca.key"].1, 0o600);
    assert_eq!(s["etc/haproxy/server.key"].1, 0o600);
    assert_eq!(s["etc/ssh/ssh_host_ed25519_key"].1, 0o600);
    assert_eq!(s["var/lib/haproxy-firstboot/status.json"].1, 0o600);
    let shadow = String::from_utf8(s["etc/shadow"].0.clone()).unwrap();
    assert!(
        shadow.ends_with("daemon:*:19000:0:99999:7:::\n"),
        "{shadow}"
    );
    let root_hash = render::shadow_root_hash(&shadow).unwrap();
    assert!(crypt::verify("root-secret", root_hash));
    let status = String::from_utf8(s["var/lib/haproxy-firstboot/status.json"].0.clone()).unwrap();
    assert!(!status.contains("secret"), "{status}");
    assert!(!status.contains(root_hash));

    let r2 = apply(&cfg, &opts(dir.path())).unwrap();
    assert!(r2.changed.is_empty(), "{:?}", r2.changed);
    assert_eq!(r2.config_fingerprint, r1.config_fingerprint);
    assert_eq!(snapshot(dir.path()), s);
}

#[test]
fn changed_environment_is_applied_whole_and_ca_kept() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let a = fixtures::default_static();
    apply(&a, &opts(dir.path())).unwrap();
    let before = snapshot(dir.path());
    // Switch to the frontend configuration: new IPs → new server certificate, same CA.
    let mut f = fixtures::frontend_static();
    f.hostname = a.hostname.clone();
    let r = apply(&f, &opts(dir.path())).unwrap();
    let after = snapshot(dir.path());
    assert_eq!(after["etc/haproxy/ca.crt"], before["etc/haproxy/ca.crt"]);
    assert_eq!(after["etc/haproxy/ca.key"], before["etc/haproxy/ca.key"]);
    assert_ne!(
        after["etc/haproxy/server.crt"],
        before["etc/haproxy/server.crt"]
    );
    assert!(after.contains_key("etc/systemd/network/10-frontend.network"));
    assert!(
        r.changed
            .contains(&"etc/systemd/network/10-frontend.network".to_string())
    );
    assert!(before.contains_key("etc/systemd/network/10-frontend.link"));
    // And back: the frontend network is removed (the NIC name stays, as in the image).
    apply(&a, &opts(dir.path())).unwrap();
    let back = snapshot(dir.path());
    assert!(!back.contains_key("etc/systemd/network/10-frontend.network"));
    assert!(back.contains_key("etc/systemd/network/10-frontend.link"));
}

#[test]
fn keeps_the_data_plane_api_sections() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let cfg = fixtures::default_static();
    apply(&cfg, &opts(dir.path())).unwrap();
    let path = dir.path().join("etc/haproxy/haproxy.cfg");
    let mut text = fs::read_to_string(&path).unwrap();
    text.insert_str(0, "# _version=3\n");
    text.push_str("\nfrontend vip\n  bind 192.168.10.65:443\n  default_backend pool\n\nbackend pool\n  server a 10.20.0.5:6443\n");
    fs::write(&path, &text).unwrap();
    let r = apply(&cfg, &opts(dir.path())).unwrap();
    assert!(r.changed.is_empty(), "{:?}", r.changed);
    let mut other = cfg.clone();
    other.haproxy_password = crate::config::Secret("another-password".into());
    apply(&other, &opts(dir.path())).unwrap();
    let new = fs::read_to_string(&path).unwrap();
    // A changed file is the API's next version: transactions started before it are outdated.
    assert!(new.starts_with("# _version=4\n"), "{new}");
    assert!(
        new.contains("frontend vip\n  bind 192.168.10.65:443"),
        "{new}"
    );
    assert!(
        new.contains("backend pool\n  server a 10.20.0.5:6443"),
        "{new}"
    );
    let hash = render::userlist_hash(&new, "admin").unwrap();
    assert!(crypt::verify("another-password", &hash));
}

#[test]
fn root_password_changed_in_the_os_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let cfg = fixtures::default_static();
    apply(&cfg, &opts(dir.path())).unwrap();
    // The administrator changes root's password with passwd(1).
    let os_hash = crypt::sha512_crypt("changed-in-os").unwrap();
    let shadow = format!("root:{os_hash}:20001:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
    fs::write(dir.path().join("etc/shadow"), &shadow).unwrap();
    let mut other = cfg.clone();
    other.root_password = crate::config::Secret("new-vapp-password".into());
    let r = apply(&other, &opts(dir.path())).unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("etc/shadow")).unwrap(),
        shadow
    );
    assert!(!r.notes.is_empty());
}

#[test]
fn root_password_from_the_environment_follows_while_first_boot_owns_it() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let cfg = fixtures::default_static();
    apply(&cfg, &opts(dir.path())).unwrap();
    let mut other = cfg.clone();
    other.root_password = crate::config::Secret("new-vapp-password".into());
    apply(&other, &opts(dir.path())).unwrap();
    let shadow = fs::read_to_string(dir.path().join("etc/shadow")).unwrap();
    assert!(crypt::verify(
        "new-vapp-password",
        render::shadow_root_hash(&shadow).unwrap()
    ));
}

/// The status record names the fingerprint `config_fingerprint` (format 2); a record an
/// earlier version wrote (format 1, `environment_sha256`) is still read: its salt is kept, so
/// the fingerprint is the same, and only the record itself is rewritten.
#[test]
fn a_format_1_status_record_is_read_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let cfg = fixtures::default_static();
    let first = apply(&cfg, &opts(dir.path())).unwrap();
    let path = dir.path().join(STATUS);
    let written: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(written["format"], 2, "{written}");
    assert_eq!(
        written["config_fingerprint"].as_str(),
        Some(first.config_fingerprint.as_str()),
        "{written}"
    );
    assert!(written.get("environment_sha256").is_none(), "{written}");

    let mut old = written.clone();
    let object = old.as_object_mut().unwrap();
    let fingerprint = object.remove("config_fingerprint").unwrap();
    object.insert("environment_sha256".into(), fingerprint);
    object.insert("format".into(), 1.into());
    fs::write(&path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    let again = apply(&cfg, &opts(dir.path())).unwrap();
    assert_eq!(again.config_fingerprint, first.config_fingerprint);
    assert_eq!(again.changed, vec![STATUS.to_string()]);
    let rewritten: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(rewritten, written);
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, (data, mode)) in snapshot(from) {
        let p = to.join(&rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Kill (fault) `apply` after every possible number of file operations: after recovery the
/// root holds exactly the old or exactly the new configuration, and a re-run converges.
#[test]
fn crash_at_every_point_leaves_old_or_new_and_converges() {
    let a = fixtures::default_static();
    every_crash_point(&a, &variant(&a));
}

/// The same for a change of an HA pair's node (keepalived's files, the secret, the sysctl file
/// in directories of their own): router id, role, ranges, peer and secret change; the TLS SANs
/// do not, so a re-run is deterministic.
#[test]
fn crash_at_every_point_of_an_ha_change_leaves_old_or_new() {
    let a = fixtures::ha_primary();
    let mut b = variant(&a);
    if let Some(ha) = b.ha.as_mut() {
        ha.router_id = 7;
        ha.role = crate::config::HaRole::Secondary;
        ha.peer = "192.168.0.4".parse().unwrap();
        ha.secret = crate::config::Secret("another-secret".into());
    }
    every_crash_point(&a, &b);
}

/// Crashes the change from `a` to `b` after every file operation in turn: recovery leaves the
/// complete old or the complete new configuration, and a re-run converges on the new one.
fn every_crash_point(a: &ValidatedConfig, b: &ValidatedConfig) {
    let base = tempfile::tempdir().unwrap();
    seed(base.path());
    let b = b.clone();
    apply(a, &opts(base.path())).unwrap();
    let old = snapshot(base.path());

    // The reference: B applied without faults (deterministic: CA, server cert, hashes kept).
    let reference = tempfile::tempdir().unwrap();
    copy_tree(base.path(), reference.path());
    let r = apply(&b, &opts(reference.path())).unwrap();
    assert!(!r.changed.is_empty());
    let new = snapshot(reference.path());
    assert_ne!(old, new);

    let mut n = 0;
    let mut saw_old = false;
    let mut saw_new = false;
    loop {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(base.path(), dir.path());
        let o = ApplyOptions {
            root: dir.path().to_path_buf(),
            fault_after: Some(n),
            on_recovery: |_| {},
        };
        match apply(&b, &o) {
            Ok(_) => {
                assert_eq!(snapshot(dir.path()), new, "no fault at {n}");
                break;
            }
            Err(ApplyError::Txn(TxnError::InjectedFault(_))) => {}
            Err(e) => panic!("unexpected error at {n}: {e}"),
        }
        txn::recover(dir.path(), &mut OpCounter::new()).unwrap();
        let after = snapshot(dir.path());
        if after == old {
            saw_old = true;
        } else if after == new {
            saw_new = true;
        } else {
            let diff: Vec<_> = after
                .keys()
                .chain(old.keys())
                .filter(|k| after.get(*k) != old.get(*k) && after.get(*k) != new.get(*k))
                .collect();
            panic!("crash after {n} operations left a mixed root: {diff:?}");
        }
        apply(&b, &opts(dir.path())).unwrap();
        assert_eq!(
            snapshot(dir.path()),
            new,
            "re-run after a crash at {n} did not converge"
        );
        n += 1;
    }
    assert!(
        saw_old && saw_new && n > 20,
        "n={n} old={saw_old} new={saw_new}"
    );
}

/// The same for the very first run (nothing configured before): after a crash and recovery,
/// either no file of the configuration exists or all of them do.
#[test]
fn crash_during_the_first_run_leaves_nothing_or_everything() {
    let cfg = fixtures::frontend_static();
    // SSH host keys from one earlier run, so each point costs only the TLS keys.
    let keys = tempfile::tempdir().unwrap();
    seed(keys.path());
    apply(&cfg, &opts(keys.path())).unwrap();
    let mut n = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        for (rel, (data, mode)) in snapshot(keys.path()) {
            if rel.starts_with("etc/ssh/ssh_host_") {
                let p = dir.path().join(&rel);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, data).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        let o = ApplyOptions {
            root: dir.path().to_path_buf(),
            fault_after: Some(n),
            on_recovery: |_| {},
        };
        let done = apply(&cfg, &o).is_ok();
        txn::recover(dir.path(), &mut OpCounter::new()).unwrap();
        let s = snapshot(dir.path());
        match read_status(dir.path()) {
            Some(st) => {
                for f in &st.files {
                    assert!(s.contains_key(f), "crash at {n}: status lists missing {f}");
                }
            }
            None => {
                let present: Vec<_> = s
                    .keys()
                    .filter(|k| {
                        k.starts_with("etc/")
                            && *k != "etc/shadow"
                            && !k.starts_with("etc/ssh/ssh_host_")
                    })
                    .collect();
                assert!(
                    present.is_empty(),
                    "crash at {n}: no status but {present:?}"
                );
            }
        }
        let r = apply(&cfg, &opts(dir.path())).unwrap();
        let again = apply(&cfg, &opts(dir.path())).unwrap();
        assert!(
            again.changed.is_empty(),
            "crash at {n}: no convergence: {:?}",
            again.changed
        );
        assert_eq!(r.config_fingerprint, again.config_fingerprint);
        if done {
            break;
        }
        // Each point costs key generation: step through the points ever more sparsely (0, 1, 2,
        // 3, 9, 18, 32, 53, 84, 131, …; the deterministic test above covers every point).

        n += if n < 3 { 1 } else { n / 2 + 5 };
    }
}

#[test]
fn a_removed_file_is_reported_as_removed() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let a = fixtures::default_static();
    let mut f = fixtures::frontend_static();
    f.hostname = a.hostname.clone();
    apply(&f, &opts(dir.path())).unwrap();
    let r = apply(&a, &opts(dir.path())).unwrap();
    let gone = "etc/systemd/network/10-frontend.network".to_string();
    assert!(r.changed.contains(&gone), "{:?}", r.changed);
    assert_eq!(r.removed, vec![gone]);
}

/// Earlier releases configured the Data Plane API through an environment file; the YAML file
/// replaces it, and the old one goes, once.
#[test]
fn the_environment_file_of_earlier_releases_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let old = dir.path().join("etc/haproxy/dataplaneapi.cfg");
    fs::create_dir_all(old.parent().unwrap()).unwrap();
    fs::write(&old, "TLS_PORT=5556\n").unwrap();
    let cfg = fixtures::default_static();
    let r = apply(&cfg, &opts(dir.path())).unwrap();
    let gone = "etc/haproxy/dataplaneapi.cfg".to_string();
    assert_eq!(r.removed, vec![gone]);
    assert!(!old.exists());
    assert!(dir.path().join("etc/haproxy/dataplaneapi.yaml").is_file());
    let again = apply(&cfg, &opts(dir.path())).unwrap();
    assert!(again.changed.is_empty(), "{:?}", again.changed);
}

/// The environment is the source of truth for the CA: once it no longer supplies one, the
/// appliance uses a CA of its own, as when none was ever supplied.
#[test]
fn a_cleared_ca_is_replaced_by_a_generated_one() {
    // A CA to supply: one the appliance generated in another root.
    let other = tempfile::tempdir().unwrap();
    seed(other.path());
    let cfg = fixtures::default_static();
    apply(&cfg, &opts(other.path())).unwrap();
    let supplied = crate::config::CaMaterial {
        cert_chain_pem: fs::read_to_string(other.path().join(render::CA_CERT)).unwrap(),
        key_pkcs8_pem: crate::config::Secret(
            fs::read_to_string(other.path().join(render::CA_KEY)).unwrap(),
        ),
    };

    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let mut with_ca = cfg.clone();
    with_ca.ca = Some(supplied.clone());
    apply(&with_ca, &opts(dir.path())).unwrap();
    let ca_crt = |root: &Path| fs::read_to_string(root.join(render::CA_CERT)).unwrap();
    assert_eq!(ca_crt(dir.path()), supplied.cert_chain_pem);

    let r = apply(&cfg, &opts(dir.path())).unwrap();
    let generated = ca_crt(dir.path());
    assert_ne!(generated, supplied.cert_chain_pem);
    assert_ne!(
        fs::read_to_string(dir.path().join(render::CA_KEY)).unwrap(),
        supplied.key_pkcs8_pem.expose()
    );
    assert!(r.changed.contains(&render::SERVER_CERT.to_string()));
    // The generated CA is then kept, like one generated at the first boot.
    let again = apply(&cfg, &opts(dir.path())).unwrap();
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    assert_eq!(ca_crt(dir.path()), generated);
}

#[test]
fn loose_modes_of_shadow_and_host_keys_are_tightened() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let cfg = fixtures::default_static();
    apply(&cfg, &opts(dir.path())).unwrap();
    let before = snapshot(dir.path());
    let chmod = |rel: &str, mode: u32| {
        fs::set_permissions(dir.path().join(rel), fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod("etc/shadow", 0o664);
    chmod("etc/ssh/ssh_host_rsa_key", 0o644);
    chmod("etc/ssh/ssh_host_ed25519_key", 0o640);
    chmod("etc/ssh/ssh_host_ecdsa_key.pub", 0o666);
    let r = apply(&cfg, &opts(dir.path())).unwrap();
    assert_eq!(snapshot(dir.path()), before, "{:?}", r.changed);
    // A stricter mode than the appliance's (0000 as on some distributions) is left alone.
    chmod("etc/shadow", 0o000);
    let r = apply(&cfg, &opts(dir.path())).unwrap();
    assert!(r.changed.is_empty(), "{:?}", r.changed);
    let mode = fs::metadata(dir.path().join("etc/shadow"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0);
}

/// A pair's settings are part of the fingerprint (the secret as its crypt); a single
/// appliance's fingerprint has no line for them.
#[test]
fn the_fingerprint_covers_the_pair() {
    let salt = [7u8; 12];
    let single = fingerprint(&fixtures::default_static(), &salt).unwrap();
    let pair = fixtures::ha_primary();
    let fp = fingerprint(&pair, &salt).unwrap();
    assert_ne!(fp, single);
    assert_eq!(fp, fingerprint(&pair, &salt).unwrap());
    let mut other_secret = pair.clone();
    if let Some(ha) = other_secret.ha.as_mut() {
        ha.secret = crate::config::Secret("another-secret".into());
    }
    assert_ne!(fingerprint(&other_secret, &salt).unwrap(), fp);
}
