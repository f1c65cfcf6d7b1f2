//! Signer pinning: `verify --trust CA.pem` and `verify --signer-sha256 FINGERPRINT`. Anyone
//! can re-sign an OVA with a certificate of the same subject; each pin must refuse that.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::BasicConstraints;
use openssl::x509::{X509, X509Name, X509NameBuilder};

use common::*;

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.append_entry_by_text("O", "HAProxy appliance tests")
        .unwrap();
    n.build()
}

/// A certificate for `key` named `cn`, issued by (`issuer`, `issuer_key`) or self-signed.
fn certificate(
    key: &PKey<Private>,
    cn: &str,
    issuer: Option<(&X509, &PKey<Private>)>,
    ca: bool,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    match issuer {
        Some((cert, _)) => b.set_issuer_name(cert.subject_name()).unwrap(),
        None => b.set_issuer_name(&name(cn)).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    }
    let signing_key = issuer.map_or(key, |(_, k)| k);
    b.sign(signing_key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn write_pem(dir: &Path, file: &str, cert: &X509) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, cert.to_pem().unwrap()).unwrap();
    path
}

fn write_key(dir: &Path, file: &str, key: &PKey<Private>) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    path
}

struct Signed {
    dir: tempfile::TempDir,
    ova: PathBuf,
    ca: PathBuf,
    release_cert: PathBuf,
}

/// An OVA signed by `release`, whose certificate the `Release CA` issued.
fn signed_by_ca() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = key();
    let ca_cert = certificate(&ca_key, "Release CA", None, true);
    let release_key = key();
    let release = certificate(&release_key, "release", Some((&ca_cert, &ca_key)), false);
    let ca = write_pem(dir.path(), "ca.pem", &ca_cert);
    let release_cert = write_pem(dir.path(), "release.pem", &release);
    let release_key = write_key(dir.path(), "release.key", &release_key);
    let ova = build(
        &disk(dir.path()),
        &dir.path().join("out"),
        &[
            "--sign-key",
            release_key.to_str().unwrap(),
            "--sign-cert",
            release_cert.to_str().unwrap(),
        ],
    );
    Signed {
        dir,
        ova,
        ca,
        release_cert,
    }
}

/// The same OVA re-signed with another key whose certificate has the same subject: issued by
/// a forged CA of the same name as the real one (`forged_ca`), or self-signed.
fn resigned(s: &Signed, forged_ca: bool) -> PathBuf {
    let dir = s.dir.path();
    let forger_key = key();
    let cert = if forged_ca {
        let fake_ca_key = key();
        let fake_ca = certificate(&fake_ca_key, "Release CA", None, true);
        certificate(
            &forger_key,
            "release",
            Some((&fake_ca, &fake_ca_key)),
            false,
        )
    } else {
        certificate(&forger_key, "release", None, false)
    };
    let cert_path = write_pem(dir, "forged.pem", &cert);
    let key_path = write_key(dir, "forged.key", &forger_key);
    let signer = builder::sign::Signer::load(&key_path, &cert_path).unwrap();
    assert_eq!(
        signer.subject(),
        builder::sign::Signer::load(&dir.join("release.key"), &s.release_cert)
            .unwrap()
            .subject()
    );
    rewrite(&s.ova, &dir.join("resigned.ova"), |members| {
        let mf = member(members, ".mf");
        let (mf_name, mf_data) = (mf.name(), mf.data.clone());
        member(members, ".cert").data = signer
            .cert_file(builder::manifest::Algorithm::Sha256, &mf_name, &mf_data)
            .unwrap();
    })
}

/// `openssl x509 -fingerprint -sha256` of a PEM certificate: `AB:CD:...`.
fn openssl_fingerprint(pem: &Path) -> Option<String> {
    if !have("openssl") {
        return None;
    }
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    Some(line.trim().split_once('=').unwrap().1.to_string())
}

fn verify(args: &[&str], ova: &Path) -> (bool, String, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.push(ova.to_str().unwrap());
    let o = run(&all);
    (o.status.success(), stdout(&o), stderr(&o))
}

#[test]
fn trust_accepts_the_ca_signed_ova_and_refuses_a_same_subject_resigning() {
    let s = signed_by_ca();
    let ca = s.ca.to_str().unwrap();
    let (ok, out, err) = verify(&["--trust", ca], &s.ova);
    assert!(ok, "{out}{err}");
    if have("openssl") {
        // The real verifier agrees with the chain.
        let o = Command::new("openssl")
            .args(["verify", "-CAfile", ca])
            .arg(&s.release_cert)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }

    let forged = resigned(&s, true);
    // Without a pin the re-signed OVA looks fine: same subject, intact signature.
    let (ok, out, err) = verify(&[], &forged);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = verify(&["--trust", ca], &forged);
    assert!(!ok, "the forged signer was trusted: {out}{err}");
    assert!(err.contains("error[signer-trust]"), "{err}");
    assert!(err.contains("CN=release"), "{err}");
    assert!(err.contains("ca.pem"), "{err}");
    // A self-signed certificate of the same subject is refused too.
    let selfsigned = resigned(&s, false);
    let (ok, _, err) = verify(&["--trust", ca], &selfsigned);
    assert!(!ok);
    assert!(err.contains("error[signer-trust]"), "{err}");
}

#[test]
fn signer_sha256_pins_the_certificate_in_openssl_format_colons_optional() {
    let s = signed_by_ca();
    let Some(fingerprint) = openssl_fingerprint(&s.release_cert) else {
        return;
    };
    let bare = fingerprint.replace(':', "").to_ascii_lowercase();
    for pin in [fingerprint.as_str(), bare.as_str()] {
        let (ok, out, err) = verify(&["--signer-sha256", pin], &s.ova);
        assert!(ok, "pin {pin}: {out}{err}");
        // The fingerprint is always printed, in openssl's format.
        assert!(out.contains(&fingerprint), "{out}");
    }
    let (_, out, _) = verify(&[], &s.ova);
    assert!(out.contains(&fingerprint), "{out}");

    let forged = resigned(&s, false);
    let (ok, out, err) = verify(&["--signer-sha256", &fingerprint], &forged);
    assert!(!ok, "the forged signer matched the pin: {out}{err}");
    assert!(err.contains("error[signer-fingerprint]"), "{err}");
    assert!(err.contains(&fingerprint), "{err}");
    assert!(err.contains("CN=release"), "{err}");
}

#[test]
fn pins_refuse_an_unsigned_ova_and_a_malformed_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let ova = build(&disk(dir.path()), &dir.path().join("out"), &[]);
    let pin = "AB".repeat(32);
    let (ok, _, err) = verify(&["--signer-sha256", &pin], &ova);
    assert!(!ok);
    assert!(err.contains("error[signer-fingerprint]"), "{err}");
    assert!(err.contains("unsigned"), "{err}");

    let (ok, _, err) = verify(&["--signer-sha256", "AB:CD"], &ova);
    assert!(!ok);
    assert!(err.contains("64 hexadecimal digits"), "{err}");
    let (ok, _, err) = verify(&["--trust", "/nonexistent/ca.pem"], &ova);
    assert!(!ok);
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}
