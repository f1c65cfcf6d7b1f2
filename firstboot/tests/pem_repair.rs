//! PEM repair: every damaged form `docs/validation.md` lists, with certificates and keys
//! generated here, checked afterwards with OpenSSL (same DER, key matches certificate).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod env_support;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use env_support::*;
use firstboot::pem::{self, PemError};

/// The damaged forms a pasted PEM arrives in.
fn damaged_forms(pem: &str) -> Vec<(&'static str, String)> {
    vec![
        ("intact", pem.to_owned()),
        ("newlines turned into spaces", pem.replace('\n', " ")),
        ("newlines deleted", pem.replace('\n', "")),
        ("CRLF line ends", pem.replace('\n', "\r\n")),
        ("literal \\n", pem.replace('\n', "\\n")),
        ("literal \\r\\n", pem.replace('\n', "\\r\\n")),
        ("base64 of the whole PEM", STANDARD.encode(pem)),
        (
            "base64 of the whole PEM, wrapped at 76",
            STANDARD
                .encode(pem)
                .as_bytes()
                .chunks(76)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (
            "base64 of a space-damaged PEM",
            STANDARD.encode(pem.replace('\n', " ")),
        ),
        ("surrounding blanks", format!("\n\n  {pem}  \n")),
    ]
}

#[test]
fn certificates_survive_every_damaged_form() {
    let ca = ec_ca("Repair CA");
    let want = ca.cert.to_der().unwrap();
    for (form, text) in damaged_forms(&ca.cert_pem()) {
        let certs = pem::certificates(&text).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(certs.len(), 1, "{form}");
        assert_eq!(certs[0].to_der().unwrap(), want, "{form}");
    }
}

#[test]
fn chains_of_several_certificates() {
    let a = ec_ca("Chain A");
    let b = ec_ca("Chain B");
    let chain = format!("{}{}", a.cert_pem(), b.cert_pem());
    for (form, text) in damaged_forms(&chain) {
        let certs = pem::certificates(&text).unwrap_or_else(|e| panic!("{form}: {e}"));
        let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().unwrap()).collect();
        assert_eq!(
            ders,
            [a.cert.to_der().unwrap(), b.cert.to_der().unwrap()],
            "{form}"
        );
    }
}

fn assert_same_key(form: &str, text: &str, key: &openssl::pkey::PKey<openssl::pkey::Private>) {
    let repaired = pem::private_key(text).unwrap_or_else(|e| panic!("{form}: {e}"));
    assert!(repaired.public_eq(key), "{form}: a different key came out");
    assert_eq!(
        repaired.private_key_to_der().unwrap(),
        key.private_key_to_der().unwrap(),
        "{form}"
    );
}

#[test]
fn pkcs8_keys_survive_every_damaged_form() {
    let key = ec_key();
    let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    for (form, text) in damaged_forms(&pem) {
        assert_same_key(form, &text, &key);
    }
}

#[test]
fn pkcs1_rsa_keys_survive_every_damaged_form() {
    let key = rsa_key();
    let pem = String::from_utf8(key.rsa().unwrap().private_key_to_pem().unwrap()).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    for (form, text) in damaged_forms(&pem) {
        assert_same_key(form, &text, &key);
    }
}

#[test]
fn sec1_ec_keys_survive_every_damaged_form() {
    let key = ec_key();
    let pem = String::from_utf8(key.ec_key().unwrap().private_key_to_pem().unwrap()).unwrap();
    assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    for (form, text) in damaged_forms(&pem) {
        assert_same_key(form, &text, &key);
    }
}

/// `openssl ecparam -genkey` writes an `EC PARAMETERS` block before the SEC1 key: the form
/// administrators most often paste, and one the reference appliance broke on.
#[test]
fn openssl_cli_ec_key_with_parameters_block() {
    if !testkit::have("openssl") {
        return;
    }
    let text =
        testkit::run(Command::new("openssl").args(["ecparam", "-name", "prime256v1", "-genkey"]));
    assert!(text.contains("-----BEGIN EC PARAMETERS-----"), "{text}");
    for (form, damaged) in damaged_forms(&text) {
        let key = pem::private_key(&damaged).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert!(key.ec_key().is_ok(), "{form}");
    }
}

#[test]
fn encrypted_keys_are_refused_without_prompting() {
    let key = ec_key();
    let pkcs8 = String::from_utf8(
        key.private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pw")
            .unwrap(),
    )
    .unwrap();
    let rsa = rsa_key();
    let legacy = String::from_utf8(
        rsa.rsa()
            .unwrap()
            .private_key_to_pem_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"pw")
            .unwrap(),
    )
    .unwrap();
    assert!(legacy.contains("Proc-Type: 4,ENCRYPTED"));
    for text in [pkcs8, legacy] {
        for (form, damaged) in damaged_forms(&text) {
            assert_eq!(
                pem::private_key(&damaged).unwrap_err(),
                PemError::EncryptedKey,
                "{form}"
            );
        }
    }
}

#[test]
fn basic_constraints_are_read() {
    assert!(pem::is_ca(&ec_ca("CA").cert));
    assert!(!pem::is_ca(&self_signed(ec_key(), "leaf", false).cert));
}

#[test]
fn garbage_is_refused_with_a_reason() {
    assert_eq!(pem::certificates("").unwrap_err(), PemError::NoCertificate);
    assert_eq!(
        pem::certificates("not a pem").unwrap_err(),
        PemError::NoCertificate
    );
    assert_eq!(
        pem::private_key("bm90IGEgcGVt").unwrap_err(),
        PemError::NoKey
    );
    assert!(matches!(
        pem::certificates("-----BEGIN CERTIFICATE-----AAAA").unwrap_err(),
        PemError::Unterminated { .. }
    ));
    assert!(matches!(
        pem::certificates("-----BEGIN CERTIFICATE-----!!!!-----END CERTIFICATE-----").unwrap_err(),
        PemError::BadBase64 { .. }
    ));
    assert!(matches!(
        pem::certificates("-----BEGIN CERTIFICATE-----AAAA-----END CERTIFICATE-----").unwrap_err(),
        PemError::BadCertificate { index: 1, .. }
    ));
    let two = format!(
        "{}{}",
        ec_ca("a").key_pkcs8_pem(),
        ec_ca("b").key_pkcs8_pem()
    );
    assert_eq!(
        pem::private_key(&two).unwrap_err(),
        PemError::SeveralKeys { count: 2 }
    );
}

/// A BEGIN line whose closing dashes were lost runs into the key's body: the error names the
/// block, never the text (issue: the whole key was printed as the "label").
#[test]
fn damaged_begin_lines_are_reported_without_quoting_the_text() {
    let key = ec_ca("k").key_pkcs8_pem();
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let damaged = key.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1);
    let err = pem::private_key(&damaged).unwrap_err();
    assert_eq!(err, PemError::DamagedBegin { block: 1 });
    let message = err.to_string();
    assert!(!message.contains(&body[..8]), "{message}");
    let unknown = key.replace("PRIVATE KEY", "SOMETHING ELSE");
    let message = pem::private_key(&unknown).unwrap_err().to_string();
    assert!(!message.contains("SOMETHING"), "{message}");
    assert!(
        message.contains("unrecognised label of 14 characters"),
        "{message}"
    );
}
