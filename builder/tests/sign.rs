//! Signing: the `.cert` form ovftool writes, checked with the OpenSSL command line.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;

/// Builds a signed OVA and returns (dir, manifest bytes, cert file text, cert PEM used).
fn signed(manifest: &str) -> (tempfile::TempDir, Vec<u8>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (ova, cert) = build_signed(dir.path(), &["--manifest", manifest]);
    let mut members = read_members(&ova);
    let mf = member(&mut members, ".mf").data.clone();
    let cert_file = String::from_utf8(member(&mut members, ".cert").data.clone()).unwrap();
    let pem = std::fs::read_to_string(&cert).unwrap();
    (dir, mf, cert_file, pem)
}

/// Checks the `.cert` signature over the manifest with `openssl dgst -verify`.
fn openssl_verifies(dir: &std::path::Path, mf: &[u8], cert_file: &str, digest: &str) {
    let (first, pem) = cert_file.split_once('\n').unwrap();
    let hex_sig = first.rsplit_once("= ").unwrap().1;
    let sig: Vec<u8> = (0..hex_sig.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex_sig[i..i + 2], 16).unwrap())
        .collect();
    std::fs::write(dir.join("sig.bin"), sig).unwrap();
    std::fs::write(dir.join("m.mf"), mf).unwrap();
    std::fs::write(dir.join("c.pem"), pem).unwrap();
    let o = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(dir.join("c.pem"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(dir.join("pub.pem"), &o.stdout).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", &format!("-{digest}"), "-verify"])
        .arg(dir.join("pub.pem"))
        .arg("-signature")
        .arg(dir.join("sig.bin"))
        .arg(dir.join("m.mf"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl refused the signature: {}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).trim(), "Verified OK");
}

#[test]
fn openssl_verifies_the_cert_signature() {
    if !have("openssl") {
        return;
    }
    let (dir, mf, cert_file, pem) = signed("sha256");
    // ovftool's form: the signature line, then the certificate in PEM.
    let (first, rest) = cert_file.split_once('\n').unwrap();
    assert!(first.starts_with("SHA256(haproxy-v1.2.3.mf)= "), "{first}");
    let hex_sig = first.rsplit_once("= ").unwrap().1;
    assert_eq!(hex_sig.len(), 512, "2048-bit RSA signature in hex");
    assert!(
        hex_sig
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(rest, pem);
    openssl_verifies(dir.path(), &mf, &cert_file, "sha256");
    // A changed manifest no longer verifies (the check can fail).
    let mut changed = mf.clone();
    changed[0] ^= 1;
    std::fs::write(dir.path().join("m.mf"), &changed).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(dir.path().join("pub.pem"))
        .arg("-signature")
        .arg(dir.path().join("sig.bin"))
        .arg(dir.path().join("m.mf"))
        .output()
        .unwrap();
    assert!(!o.status.success());
}

#[test]
fn sha512_manifest_and_signature() {
    if !have("openssl") {
        return;
    }
    let (dir, mf, cert_file, _) = signed("sha512");
    let text = String::from_utf8(mf.clone()).unwrap();
    assert!(text.lines().all(|l| l.starts_with("SHA512(")), "{text}");
    assert!(cert_file.starts_with("SHA512(haproxy-v1.2.3.mf)= "));
    openssl_verifies(dir.path(), &mf, &cert_file, "sha512");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = signing_pair(dir.path(), "one", 2048);
    let (_, cert) = signing_pair(dir.path(), "two", 2048);
    let out = dir.path().join("out");
    let o = run(&[
        "build",
        "--disk",
        disk(dir.path()).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
        "--sign-cert",
        cert.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("does not match the certificate"), "{err}");
    assert!(err.contains("CN=two"), "{err}");
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn an_encrypted_key_is_refused_without_prompting() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let key = openssl::pkey::PKey::from_rsa(rsa).unwrap();
    let cert = self_signed(&key, "enc");
    let pem = key
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
        .unwrap();
    std::fs::write(dir.path().join("enc.key"), pem).unwrap();
    std::fs::write(dir.path().join("enc.pem"), cert.to_pem().unwrap()).unwrap();
    let o = Command::new(bin())
        .args(["build", "--disk"])
        .arg(disk(dir.path()))
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--sign-key")
        .arg(dir.path().join("enc.key"))
        .arg("--sign-cert")
        .arg(dir.path().join("enc.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not an unencrypted PEM private key"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn sign_key_and_cert_come_together() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = signing_pair(dir.path(), "one", 2048);
    let o = run(&[
        "build",
        "--disk",
        "x.raw",
        "--out",
        "out",
        "--sign-key",
        key.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--sign-cert"), "{}", stderr(&o));
}
