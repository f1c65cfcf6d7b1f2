//! Helpers shared by the `build`, `sign`, `verify` and `spec` tests: small disks, the
//! `ova-builder` binary, signing material, and an OVA rewriter that can make every kind of
//! broken archive.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};
#[allow(unused_imports)] // each test target includes this module; not all use these
pub use testkit::{have, untar};

pub const EPOCH: &str = "1700000000";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ova-builder")
}

/// Runs `ova-builder` with `args` (CI unset so that behaviour does not depend on it).
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A 4 MiB raw disk: random, text-like and zero regions, deterministic content.
pub fn disk(dir: &Path) -> PathBuf {
    let path = dir.join("disk.raw");
    let mut data = vec![0u8; 4 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut data[..(1 << 20)] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let text = b"frontend haproxy bind 0.0.0.0:443 mode tcp default_backend servers\n";
    for (i, b) in data[(1 << 20)..(2 << 20)].iter_mut().enumerate() {
        *b = text[i % text.len()];
    }
    std::fs::write(&path, data).unwrap();
    path
}

/// Builds an OVA of `disk` into `out` with extra arguments; returns its path.
pub fn build(disk: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "build",
        "--disk",
        disk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--version",
        "1.2.3",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "build failed: {}", stderr(&o));
    out.join("haproxy-v1.2.3.ova")
}

/// Builds `disk(dir)` into `dir/out`, signed with a fresh 2048-bit `release` key pair, plus
/// `extra` arguments; returns (OVA path, signing certificate path).
pub fn build_signed(dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (key, cert) = signing_pair(dir, "release", 2048);
    let mut args = vec![
        "--sign-key",
        key.to_str().unwrap(),
        "--sign-cert",
        cert.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let ova = build(&disk(dir), &dir.join("out"), &args);
    (ova, cert)
}

/// An RSA key and a self-signed certificate for it, written as PEM files `NAME.key`, `NAME.pem`.
pub fn signing_pair(dir: &Path, name: &str, bits: u32) -> (PathBuf, PathBuf) {
    let rsa = Rsa::generate(bits).unwrap();
    let key = PKey::from_rsa(rsa).unwrap();
    let cert = self_signed(&key, name);
    let key_path = dir.join(format!("{name}.key"));
    let cert_path = dir.join(format!("{name}.pem"));
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    (key_path, cert_path)
}

pub fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    name.append_entry_by_text("O", "HAProxy appliance tests")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let serial = openssl::bn::BigNum::from_u32(1)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// One member of an OVA, header and data, for rewriting.
#[derive(Clone)]
pub struct Entry {
    pub header: tar::Header,
    pub data: Vec<u8>,
}

impl Entry {
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.header.path_bytes()).into_owned()
    }

    /// Sets the raw name field (bypassing the tar crate's path sanitising).
    pub fn set_raw_name(&mut self, name: &str) {
        let field = &mut self.header.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
    }
}

/// Every member of an OVA, in order.
pub fn read_members(ova: &Path) -> Vec<Entry> {
    let mut archive = tar::Archive::new(std::fs::File::open(ova).unwrap());
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        out.push(Entry { header, data });
    }
    out
}

/// Writes members as a tar archive exactly as given (sizes and checksums fixed up).
pub fn write_members(path: &Path, members: &[Entry]) {
    let mut bytes = Vec::new();
    for m in members {
        let mut header = m.header.clone();
        let is_regular = header.entry_type() == tar::EntryType::Regular;
        header.set_size(if is_regular { m.data.len() as u64 } else { 0 });
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
        if is_regular {
            bytes.extend_from_slice(&m.data);
            bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        }
    }
    bytes.resize(bytes.len() + 1024, 0);
    std::fs::write(path, bytes).unwrap();
}

/// Copies `ova` to `dest` with `edit` applied to its members.
pub fn rewrite(ova: &Path, dest: &Path, edit: impl FnOnce(&mut Vec<Entry>)) -> PathBuf {
    let mut members = read_members(ova);
    edit(&mut members);
    write_members(dest, &members);
    dest.to_path_buf()
}

/// The member whose name ends with `suffix`.
pub fn member<'a>(members: &'a mut [Entry], suffix: &str) -> &'a mut Entry {
    members
        .iter_mut()
        .find(|m| m.name().ends_with(suffix))
        .unwrap()
}

/// `ova-builder verify --json FILE` → (exit success, parsed report).
pub fn verify_json(file: &Path) -> (bool, serde_json::Value) {
    let o = run(&["verify", "--json", file.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}): {}", stderr(&o)));
    (o.status.success(), report)
}

/// The problems of a report with this check code: (file, message).
pub fn problems(report: &serde_json::Value, check: &str) -> Vec<(String, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["check"] == check)
        .map(|p| {
            (
                p["file"].as_str().unwrap_or_default().to_string(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The error check codes of a report.
pub fn error_checks(report: &serde_json::Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .map(|p| p["check"].as_str().unwrap().to_string())
        .collect()
}
