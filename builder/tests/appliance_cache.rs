//! The appliance build cache: what the base tree's key covers (a change to any input that
//! shapes the base makes a new key; the appliance's own files do not), and that cached package
//! files are only used when the archive's indices vouch for them.
//!
//! The end-to-end proof (a warm rebuild is byte-identical to a cold one) needs root, network
//! and minutes, so it runs only when asked (`APPLIANCE_CACHE_TEST=1`,
//! `a_warm_rebuild_is_byte_identical_to_a_cold_one`); `bash scripts/bench-appliance` makes the
//! same comparison while it times the builds.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use builder::appliance::apt::{self, Expected, IndexFile, Indices};
use builder::appliance::base::{BaseRecipe, Host};
use builder::appliance::cache;
use builder::appliance::rootfs::RootfsSpec;

fn spec() -> RootfsSpec {
    RootfsSpec {
        suite: "bookworm".into(),
        sources: vec![
            "deb http://deb.debian.org/debian bookworm main".into(),
            "deb http://deb.debian.org/debian-security bookworm-security main".into(),
        ],
        extra_packages: Vec::new(),
        firstboot: PathBuf::from("target/release/haproxy-firstboot"),
        units: vec![PathBuf::from("firstboot/systemd/haproxy-firstboot.service")],
        link_files: vec![PathBuf::from(
            "firstboot/systemd/network/10-management.link",
        )],
        enable: vec!["haproxy-firstboot.service".into()],
        dataplaneapi: Some(PathBuf::from("target/release/haproxy-dataplaneapi")),
        hostname: "haproxy".into(),
        source_date_epoch: 1_763_683_200,
        link_base: true,
    }
}

fn host() -> Host {
    Host {
        arch: "amd64".into(),
        tools: vec![
            "mmdebstrap 1.3.5".into(),
            "apt 2.6.1 (amd64)".into(),
            "Debian 'dpkg' package management program version 1.21.22 (amd64).".into(),
        ],
    }
}

fn indices() -> Indices {
    Indices {
        packages: vec![
            IndexFile {
                path: PathBuf::from("/c/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"),
                name: "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages".into(),
                sha256: "aa".repeat(32),
            },
            IndexFile {
                path: PathBuf::from("/c/lists/security_Packages"),
                name: "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages".into(),
                sha256: "bb".repeat(32),
            },
        ],
        release_date: 1_783_764_997,
    }
}

fn key(spec: &RootfsSpec, host: &Host, indices: &Indices) -> String {
    BaseRecipe::new(spec, host, indices).key()
}

#[test]
fn the_key_is_stable_for_the_same_inputs() {
    let a = key(&spec(), &host(), &indices());
    assert_eq!(a, key(&spec(), &host(), &indices()));
    assert_eq!(a.len(), 32);
    let text = BaseRecipe::new(&spec(), &host(), &indices()).text();
    for expected in [
        "suite: bookworm\n",
        "source: deb http://deb.debian.org/debian bookworm main\n",
        "release-date: 1783764997\n",
        "host-tool: mmdebstrap 1.3.5\n",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
}

/// Every input that shapes the base tree makes a new key: a stale tree is never used.
#[test]
fn a_change_to_the_base_inputs_makes_a_new_key() {
    let base = key(&spec(), &host(), &indices());
    let mut changed: Vec<(&str, String)> = Vec::new();

    let mut s = spec();
    s.extra_packages.push("curl".into());
    changed.push(("an extra package", key(&s, &host(), &indices())));
    let mut s = spec();
    s.sources[0] =
        "deb http://snapshot.debian.org/archive/debian/20260701T000000Z bookworm main".into();
    changed.push(("another mirror", key(&s, &host(), &indices())));
    let mut s = spec();
    s.sources.pop();
    changed.push(("one source less", key(&s, &host(), &indices())));
    let mut s = spec();
    s.suite = "trixie".into();
    changed.push(("another suite", key(&s, &host(), &indices())));
    let mut s = spec();
    s.hostname = "lb".into();
    changed.push(("another host name", key(&s, &host(), &indices())));

    let mut i = indices();
    i.packages[1].sha256 = "cc".repeat(32);
    changed.push(("a security update (new index)", key(&spec(), &host(), &i)));
    let mut i = indices();
    i.packages.pop();
    changed.push(("an index less", key(&spec(), &host(), &i)));
    let mut i = indices();
    i.release_date += 1;
    changed.push(("another release date", key(&spec(), &host(), &i)));

    let mut h = host();
    h.tools[0] = "mmdebstrap 1.5.0".into();
    changed.push(("another mmdebstrap", key(&spec(), &h, &indices())));
    let mut h = host();
    h.arch = "arm64".into();
    changed.push(("another architecture", key(&spec(), &h, &indices())));

    for (what, k) in &changed {
        assert_ne!(*k, base, "{what} kept the key");
    }
    let mut all: Vec<&String> = changed.iter().map(|(_, k)| k).collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        changed.len(),
        "two different inputs gave one key"
    );
}

/// The appliance's own files and the build's time are laid over the base: changing them keeps
/// the key, so such a rebuild is warm.
#[test]
fn the_appliances_own_files_and_time_keep_the_key() {
    let base = key(&spec(), &host(), &indices());
    let mut s = spec();
    s.firstboot = PathBuf::from("/elsewhere/haproxy-firstboot");
    s.units
        .push(PathBuf::from("firstboot/systemd/dataplaneapi.service"));
    s.link_files.clear();
    s.enable.push("dataplaneapi.service".into());
    s.dataplaneapi = None;
    s.source_date_epoch += 86_400;
    s.link_base = false;
    assert_eq!(key(&s, &host(), &indices()), base);
}

fn expected_from(packages: &str) -> Expected {
    let mut expected = Expected::new();
    apt::read_packages(packages.as_bytes(), &mut expected).unwrap();
    expected
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn packages_indices_name_the_files_as_apt_stores_them() {
    let good = b"a good package";
    let text = format!(
        "Package: systemd\nVersion: 1:252.39-1~deb12u1\nArchitecture: amd64\nDescription: x\n \
         continued\nSize: {}\nSHA256: {}\n\nPackage: netbase\nVersion: 6.4\nArchitecture: all\n\
         Size: 3\nSHA256: {}\n",
        good.len(),
        sha256_hex(good),
        "ab".repeat(32)
    );
    let expected = expected_from(&text);
    assert_eq!(
        expected["systemd_1%3a252.39-1~deb12u1_amd64.deb"],
        vec![(good.len() as u64, sha256_hex(good))]
    );
    assert!(expected.contains_key("netbase_6.4_all.deb"));
    assert_eq!(expected.len(), 2);
}

/// Only the files whose size and SHA-256 the indices give are kept; apt itself would take a
/// same-size file as it is.
#[test]
fn cached_packages_that_the_indices_do_not_vouch_for_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let good = b"the real package";
    let mut forged = good.to_vec();
    forged[3] ^= 1; // same size, other bytes
    let text = format!(
        "Package: a\nVersion: 1\nArchitecture: amd64\nSize: {n}\nSHA256: {h}\n\n\
         Package: b\nVersion: 1\nArchitecture: amd64\nSize: {n}\nSHA256: {h}\n\n\
         Package: c\nVersion: 2\nArchitecture: amd64\nSize: {n}\nSHA256: {h}\n",
        n = good.len(),
        h = sha256_hex(good)
    );
    let expected = expected_from(&text);
    let write = |name: &str, data: &[u8]| std::fs::write(dir.path().join(name), data).unwrap();
    write("a_1_amd64.deb", good);
    write("b_1_amd64.deb", &forged);
    write("c_1_amd64.deb", good); // an older version the indices no longer list
    write("d_1_amd64.deb", b"short"); // not listed at all
    write("lock", b"");
    let check = apt::check_cached_packages(dir.path(), &expected).unwrap();
    assert_eq!(check.verified, vec!["a_1_amd64.deb".to_string()]);
    assert_eq!(check.removed, 3);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a_1_amd64.deb", "lock"]);
}

#[test]
fn the_default_cache_directory() {
    let d = |xdg: Option<&str>, home: Option<&str>, root| {
        cache::default_dir_from(xdg.map(PathBuf::from), home.map(PathBuf::from), root)
    };
    assert_eq!(
        d(Some("/x/cache"), Some("/root"), true),
        Path::new("/x/cache/ova-builder")
    );
    assert_eq!(
        d(None, Some("/root"), true),
        Path::new("/var/cache/ova-builder")
    );
    assert_eq!(
        d(None, Some("/home/me"), false),
        Path::new("/home/me/.cache/ova-builder")
    );
    // A relative XDG_CACHE_HOME is invalid by the specification: ignored.
    assert_eq!(
        d(Some("rel"), Some("/root"), true),
        Path::new("/var/cache/ova-builder")
    );
}

/// One `ova-builder appliance` build into `out` with `cache`; the SHA-256 of its raw disk and
/// of its OVA, and whether the base tree came from the cache.
fn build_appliance(out: &Path, cache: &Path, firstboot: &Path) -> (String, String, bool) {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firstboot/systemd");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ova-builder"))
        .args([
            "appliance",
            "--version",
            "1.0.0",
            "--no-dataplaneapi",
            "--raw",
            "--json",
        ])
        .arg("--out")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--firstboot")
        .arg(firstboot)
        .arg("--units")
        .arg(units)
        .env("SOURCE_DATE_EPOCH", "1796000000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ova-builder appliance failed:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let digest = |key: &str| {
        let path = report[key].as_str().unwrap();
        sha256_hex(&std::fs::read(path).unwrap())
    };
    let reused = report["disk"]["rootfs"]["base"]["reused"]
        .as_bool()
        .unwrap();
    (digest("raw_disk"), digest("ova"), reused)
}

/// The end-to-end proof, on request (`APPLIANCE_CACHE_TEST=1`; root, network, about two
/// minutes): a cold build in an empty cache, a warm one, and a cold one again without the base
/// tree (packages cached) give the same raw disk and OVA; another haproxy-firstboot gives
/// another disk, and the cached base is not changed by it.
#[test]
fn a_warm_rebuild_is_byte_identical_to_a_cold_one() {
    if std::env::var_os("APPLIANCE_CACHE_TEST").is_none() {
        testkit::skipping("set APPLIANCE_CACHE_TEST=1 to run it (root, network, ~2 minutes)");
        return;
    }
    if !testkit::is_root() {
        testkit::unmet("needs root (mmdebstrap --mode=root)");
        return;
    }
    let firstboot =
        Path::new(env!("CARGO_BIN_EXE_ova-builder")).with_file_name("haproxy-firstboot");
    if !firstboot.is_file() {
        testkit::unmet("haproxy-firstboot is not built (cargo build -p firstboot)");
        return;
    }
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let cache = dir.path().join("cache");
    let build = |n: &str, fb: &Path| build_appliance(&dir.path().join(n), &cache, fb);
    let (raw, ova, reused) = build("cold", &firstboot);
    assert!(!reused, "an empty cache has no base tree");
    assert_eq!(build("warm", &firstboot), (raw.clone(), ova.clone(), true));

    let changed = dir.path().join("haproxy-firstboot");
    let mut bytes = std::fs::read(&firstboot).unwrap();
    bytes.push(b'\n');
    std::fs::write(&changed, bytes).unwrap();
    std::fs::set_permissions(&changed, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (other_raw, other_ova, reused) = build("changed", &changed);
    assert!(reused);
    assert_ne!((other_raw, other_ova), (raw.clone(), ova.clone()));

    assert_eq!(build("again", &firstboot), (raw.clone(), ova.clone(), true));
    std::fs::remove_dir_all(cache.join("rootfs")).unwrap();
    assert_eq!(build("cold-again", &firstboot), (raw, ova, false));
}
