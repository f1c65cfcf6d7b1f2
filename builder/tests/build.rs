//! `ova-builder build`: archive layout, manifest, reproducibility and safe outputs.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn tar_lists_members_in_vsphere_order_with_fixed_metadata() {
    if !have("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ova, _) = build_signed(dir.path(), &[]);
    let o = Command::new("tar")
        .args(["--utc", "-tvf", ova.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = stdout(&o);
    let lines: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<&str> = lines.iter().map(|l| l[5]).collect();
    assert_eq!(
        names,
        [
            "haproxy-v1.2.3.ovf",
            "haproxy-v1.2.3.mf",
            "haproxy-v1.2.3.cert",
            "haproxy-disk1.vmdk"
        ],
        "{listing}"
    );
    for l in &lines {
        assert_eq!(l[0], "-rw-r--r--", "mode: {listing}");
        assert_eq!(l[1], "0/0", "owner: {listing}");
        assert_eq!(
            l[3], "2023-11-14",
            "mtime from SOURCE_DATE_EPOCH: {listing}"
        );
        assert_eq!(l[4], "22:13", "mtime from SOURCE_DATE_EPOCH: {listing}");
    }

    // Every header is plain ustar: no PAX, no GNU records, no `./` prefixes.
    let bytes = std::fs::read(&ova).unwrap();
    let members = read_members(&ova);
    let mut offset = 0usize;
    for m in &members {
        let header = &bytes[offset..offset + 512];
        assert_eq!(
            &header[257..265],
            b"ustar\x0000",
            "{} is not ustar",
            m.name()
        );
        assert_eq!(header[156], b'0', "{} is not a regular file", m.name());
        assert!(!m.name().contains('/'));
        offset += 512 + m.data.len().div_ceil(512) * 512;
    }
    // Two zero blocks end the archive, and nothing follows them.
    assert_eq!(bytes.len(), offset + 1024);
    assert!(bytes[offset..].iter().all(|&b| b == 0));
}

#[test]
fn first_512_bytes_are_the_descriptor_ustar_header() {
    let dir = tempfile::tempdir().unwrap();
    let ova = build(&disk(dir.path()), &dir.path().join("out"), &[]);
    let bytes = std::fs::read(&ova).unwrap();
    let header = tar::Header::from_byte_slice(&bytes[..512]);
    let name = b"haproxy-v1.2.3.ovf";
    assert_eq!(&bytes[..name.len()], name);
    assert!(bytes[name.len()..100].iter().all(|&b| b == 0));
    assert_eq!(&bytes[257..265], b"ustar\x0000");
    assert_eq!(header.entry_type(), tar::EntryType::Regular);
    let computed: u32 = bytes[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    assert_eq!(header.cksum().unwrap(), computed);
    // The data right after it is the descriptor.
    let size = header.entry_size().unwrap() as usize;
    let xml = std::str::from_utf8(&bytes[512..512 + size]).unwrap();
    assert!(xml.starts_with("<?xml"), "{}", &xml[..60]);
    assert!(xml.contains("<Envelope"));
}

#[test]
fn sha256sum_agrees_with_every_manifest_line() {
    if !have("sha256sum") || !have("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ova = build(&disk(dir.path()), &out, &[]);
    let x = dir.path().join("x");
    untar(&ova, &x, &[]);
    let manifest = std::fs::read_to_string(x.join("haproxy-v1.2.3.mf")).unwrap();
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines.len(), 2, "{manifest}");
    for (line, name) in lines
        .iter()
        .zip(["haproxy-v1.2.3.ovf", "haproxy-disk1.vmdk"])
    {
        let o = Command::new("sha256sum")
            .arg(x.join(name))
            .output()
            .unwrap();
        let digest = stdout(&o).split_whitespace().next().unwrap().to_string();
        assert_eq!(*line, format!("SHA256({name})= {digest}"));
    }
    // NAME.ova.sha256 is in sha256sum format and checks out.
    let o = Command::new("sha256sum")
        .args(["-c", "haproxy-v1.2.3.ova.sha256"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "haproxy-v1.2.3.ova: OK");
}

#[test]
fn two_builds_with_the_same_source_date_epoch_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path());
    let (key, cert) = signing_pair(dir.path(), "release", 2048);
    let sign = [
        "--sign-key",
        key.to_str().unwrap(),
        "--sign-cert",
        cert.to_str().unwrap(),
    ];
    let a = build(&disk, &dir.path().join("a"), &sign);
    // Touch the disk: with SOURCE_DATE_EPOCH set, its mtime must not matter.
    let f = std::fs::File::options().write(true).open(&disk).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    let b = build(&disk, &dir.path().join("b"), &sign);
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(a_bytes == b_bytes, "the two OVAs differ");
    assert_eq!(
        std::fs::read(a.with_extension("ova.sha256")).unwrap(),
        std::fs::read(b.with_extension("ova.sha256")).unwrap()
    );
    // And the epoch is really what goes in: another one gives another OVA.
    let o = std::process::Command::new(bin())
        .args([
            "build",
            "--disk",
            disk.to_str().unwrap(),
            "--version",
            "1.2.3",
            "--out",
        ])
        .arg(dir.path().join("c"))
        .env("SOURCE_DATE_EPOCH", "1700000001")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let c = std::fs::read(dir.path().join("c/haproxy-v1.2.3.ova")).unwrap();
    assert_ne!(a_bytes, c);
}

#[test]
fn without_source_date_epoch_the_disk_mtime_is_used_not_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk(dir.path());
    let f = std::fs::File::options().write(true).open(&disk).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
        .unwrap();
    let o = Command::new(bin())
        .args(["build", "--json", "--disk", disk.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["mtime"], 1_600_000_000u64);
    assert_eq!(report["build_date"], "2020-09-13T12:26:40Z");
    // The default version is the definition's.
    assert_eq!(report["version"], "0.0.0-dev");
}

#[test]
fn descriptor_carries_the_disk_facts_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let ova = build(&disk(dir.path()), &dir.path().join("out"), &[]);
    let mut members = read_members(&ova);
    let vmdk_size = member(&mut members, ".vmdk").data.len() as u64;
    let xml = String::from_utf8(member(&mut members, ".ovf").data.clone()).unwrap();
    let env = ovf::read(&xml).unwrap();
    assert_eq!(env.references[0].href, "haproxy-disk1.vmdk");
    assert_eq!(env.references[0].size, Some(vmdk_size));
    let disk = &env.disk_section.as_ref().unwrap().disks[0];
    assert_eq!(disk.capacity, (4u64 << 20).to_string());
    assert_eq!(disk.capacity_allocation_units.as_deref(), Some("byte"));
    // 1 MiB random + 1 MiB text; the rest is zeros and omitted.
    assert_eq!(disk.populated_size, Some(2 << 20));
    let props = env.properties();
    let value = |key: &str| {
        props
            .iter()
            .find(|(k, _, _)| k == key)
            .and_then(|(_, _, p)| p.value.clone())
    };
    assert_eq!(value("appliance.version").as_deref(), Some("1.2.3"));
    assert_eq!(
        value("appliance.build_date").as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
}

#[test]
fn json_summary_names_paths_sizes_and_digests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "build",
        "--json",
        "--disk",
        disk(dir.path()).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--name",
        "lb",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ova = out.join("lb.ova");
    let bytes = std::fs::read(&ova).unwrap();
    assert_eq!(r["ova"], ova.to_str().unwrap());
    assert_eq!(r["ova_bytes"], bytes.len() as u64);
    assert_eq!(
        r["ova_sha256"],
        openssl::sha::sha256(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(
        r["sha256_file"],
        out.join("lb.ova.sha256").to_str().unwrap()
    );
    let names: Vec<&str> = r["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lb.ovf", "lb.mf", "haproxy-disk1.vmdk"]);
    assert!(
        r["members"][2]["digest"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert_eq!(r["disk"]["capacity_bytes"], 4u64 << 20);
    assert_eq!(r["disk"]["input_format"], "raw");
    assert!(r["duration_seconds"].as_f64().unwrap() > 0.0);
}

/// Files in the output directory (hidden temporaries included).
fn listing(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_failed_build_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Fails inside the conversion, after the output directory and scratch file exist.
    let o = run(&[
        "build",
        "--disk",
        disk(dir.path()).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--level",
        "99",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("level"), "{}", stderr(&o));
    assert_eq!(listing(&out), Vec::<String>::new());
    // An existing OVA of the same name is left as it was.
    std::fs::write(out.join("haproxy-v0.0.0-dev.ova"), b"previous").unwrap();
    let o = run(&[
        "build",
        "--disk",
        disk(dir.path()).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--level",
        "99",
    ]);
    assert!(!o.status.success());
    assert_eq!(listing(&out), ["haproxy-v0.0.0-dev.ova"]);
    assert_eq!(
        std::fs::read(out.join("haproxy-v0.0.0-dev.ova")).unwrap(),
        b"previous"
    );
}

#[test]
fn ctrl_c_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // A disk that takes seconds at the slowest deflate level on one thread.
    let path = dir.path().join("big.raw");
    let text: Vec<u8> = (0..(48u32 << 20))
        .map(|i| {
            b"abcdefghij klmnop qrstu vwxyz 0123456789\n"
                [(i as usize * 7 + (i as usize >> 12)) % 41]
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    let child = Command::new(bin())
        .args(["build", "--level", "12", "--threads", "1", "--disk"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the build is under way (the output directory exists), then interrupt it.
    for _ in 0..200 {
        if out.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "the build was not interrupted (finished too early?): {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("cancelled"), "{}", stderr(&o));
    assert_eq!(listing(&out), Vec::<String>::new());
}

#[test]
fn bad_output_names_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "build",
        "--disk",
        disk(dir.path()).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--name",
        "a/b",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bare file name"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn a_missing_disk_is_named_once_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-disk.raw");
    let out = dir.path().join("out");
    let o = run(&[
        "build",
        "--disk",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.matches("no-such-disk.raw").count(), 1, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn an_empty_disk_is_refused_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.raw");
    std::fs::write(&empty, b"").unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "build",
        "--disk",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--version",
        "1.2.3",
    ]);
    let err = stderr(&o);
    assert!(!o.status.success(), "an empty disk was packaged: {err}");
    assert!(err.contains("empty.raw"), "{err}");
    assert!(err.contains("0 bytes"), "{err}");
    assert!(
        !out.join("haproxy-v1.2.3.ova").exists(),
        "{:?}",
        listing(&out)
    );
}

/// The appliance names its Data Plane API in the product's FullVersion (vSphere shows it in the
/// vApp options): a request's full version is the descriptor's, and the descriptor stays valid.
#[test]
fn a_requested_full_version_is_the_descriptors_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let definition = builder::appliance::definition::builtin_definition().unwrap();
    let full = "1.2.3; Data Plane API: haproxy-dataplaneapi 0.1.0 (HAProxy Data Plane API v2)";
    let request = builder::package::BuildRequest {
        disk: disk(dir.path()),
        definition: &definition,
        out_dir: dir.path().join("out"),
        name: None,
        version: Some("1.2.3".into()),
        base_image: None,
        full_version: Some(full.into()),
        source_date_epoch: EPOCH.parse().unwrap(),
        manifest: builder::manifest::Algorithm::Sha256,
        signer: None,
        level: None,
        threads: 1,
        progress: builder::progress::Progress::hidden(),
        interrupt: builder::atomic::Interrupt::new(),
    };
    let report = builder::package::build(&request).unwrap();
    let mut members = read_members(&report.ova);
    let xml = String::from_utf8(member(&mut members, ".ovf").data.clone()).unwrap();
    let file = dir.path().join("haproxy.ovf");
    std::fs::write(&file, &xml).unwrap();
    testkit::ovf_schema::assert_valid(&file);
    let env = ovf::read(&xml).unwrap();
    let product = &env.virtual_system.unwrap().product_sections[0];
    assert_eq!(product.version.as_deref(), Some("1.2.3"));
    assert_eq!(product.full_version.as_deref(), Some(full));
}
