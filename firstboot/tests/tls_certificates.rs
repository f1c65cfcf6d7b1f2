//! The TLS files under real openssl: `openssl verify -CAfile ca.crt server.crt` succeeds and the
//! server certificate's SANs are exactly 127.0.0.1, every appliance IP, localhost and the host
//! name — with a generated CA, a supplied RSA CA and a supplied EC CA. Keys are mode 0600, and a
//! generated CA is kept on re-runs.
#![allow(clippy::unwrap_used)]

mod apply_support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use apply_support::*;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};

fn make_ca(key: &PKey<Private>, cn: &str) -> String {
    make_ca_between(key, cn, 0, 365)
}

/// A CA valid from `from_days` to `to_days` relative to now (either may be negative).
fn make_ca_between(key: &PKey<Private>, cn: &str, from_days: i64, to_days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(now + from_days * 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + to_days * 86_400).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(KeyUsage::new().key_cert_sign().crl_sign().build().unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    String::from_utf8(b.build().to_pem().unwrap()).unwrap()
}

fn sans(root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let pem = std::fs::read(root.join("etc/haproxy/server.crt")).unwrap();
    let cert = X509::from_pem(&pem).unwrap();
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for n in cert.subject_alt_names().unwrap() {
        if let Some(d) = n.dnsname() {
            dns.insert(d.to_string());
        } else if let Some(ip) = n.ipaddress() {
            let b: [u8; 4] = ip.try_into().unwrap();
            ips.insert(std::net::Ipv4Addr::from(b).to_string());
        }
    }
    (dns, ips)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn check(
    props: &[(String, String)],
    deployment: &str,
    ips: &[&str],
    supplied_ca: Option<&str>,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = apply(&root, props, deployment, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let h = root.join("etc/haproxy");
    let v = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(h.join("ca.crt"))
        .arg(h.join("server.crt"))
        .output()
        .unwrap();
    assert!(v.status.success(), "openssl verify failed: {}", text(&v));
    let (dns, got_ips) = sans(&root);
    assert_eq!(dns, set(&["localhost", "haproxy.corp.example"]));
    assert_eq!(got_ips, set(ips));
    assert_eq!(mode(&h.join("ca.key")), 0o600);
    assert_eq!(mode(&h.join("server.key")), 0o600);
    assert_eq!(mode(&h.join("server.crt")), 0o644);
    if let Some(ca) = supplied_ca {
        let written = X509::from_pem(&std::fs::read(h.join("ca.crt")).unwrap()).unwrap();
        let given = X509::from_pem(ca.as_bytes()).unwrap();
        assert_eq!(written.to_der().unwrap(), given.to_der().unwrap());
    }
    dir
}

#[test]
fn generated_ca_signs_the_server_certificate_and_is_kept() {
    if !have("openssl") {
        return;
    }
    let dir = check(
        &default_props(),
        "default",
        &["127.0.0.1", "192.168.0.2", "192.168.10.2"],
        None,
    );
    let root = dir.path().join("root");
    let ca = std::fs::read(root.join("etc/haproxy/ca.crt")).unwrap();
    let ca_cert = X509::from_pem(&ca).unwrap();
    assert!(
        ca_cert
            .to_text()
            .map(|t| String::from_utf8_lossy(&t).contains("CA:TRUE"))
            .unwrap()
    );
    // A re-run with another workload IP re-issues the server certificate under the same CA.
    let props = with(
        default_props(),
        &[("network.workload_ip", Some("192.168.10.3/24"))],
    );
    let o = apply(&root, &props, "default", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(root.join("etc/haproxy/ca.crt")).unwrap(), ca);
    assert_eq!(
        sans(&root).1,
        set(&["127.0.0.1", "192.168.0.2", "192.168.10.3"])
    );
}

#[test]
fn supplied_rsa_ca() {
    if !have("openssl") {
        return;
    }
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let ca = make_ca(&key, "Corp RSA CA");
    let key_pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let props = with(
        frontend_props(),
        &[
            ("appliance.ca_cert", Some(&ca)),
            ("appliance.ca_cert_key", Some(&key_pem)),
        ],
    );
    check(
        &props,
        "frontend",
        &["127.0.0.1", "192.168.0.2", "192.168.10.2", "192.168.100.2"],
        Some(&ca),
    );
}

#[test]
fn supplied_ec_ca() {
    if !have("openssl") {
        return;
    }
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let ca = make_ca(&key, "Corp EC CA");
    // A SEC1 ("EC PRIVATE KEY") key, as `openssl ecparam -genkey` writes it.
    let key_pem = String::from_utf8(key.ec_key().unwrap().private_key_to_pem().unwrap()).unwrap();
    let props = with(
        default_props(),
        &[
            ("appliance.ca_cert", Some(&ca)),
            ("appliance.ca_cert_key", Some(&key_pem)),
        ],
    );
    check(
        &props,
        "default",
        &["127.0.0.1", "192.168.0.2", "192.168.10.2"],
        Some(&ca),
    );
}

#[test]
fn a_ca_expiring_soon_warns_and_the_server_certificate_is_not_reissued_at_every_boot() {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let ca = make_ca_between(&key, "Soon CA", -300, 10);
    let key_pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let props = with(
        default_props(),
        &[
            ("appliance.ca_cert", Some(&ca)),
            ("appliance.ca_cert_key", Some(&key_pem)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let first = apply(&root, &props, "default", &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains(
            "haproxy-firstboot: warning: TLS Certificate Authority Certificate (appliance.ca_cert): the certificate (CN=Soon CA) expires on"
        ),
        "{}",
        text(&first)
    );
    let server = std::fs::read(root.join("etc/haproxy/server.crt")).unwrap();
    // The server certificate ends with its CA: it cannot last longer, so a second boot keeps it.
    let second = apply(&root, &props, "default", &[]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("(0 files changed)"),
        "{}",
        text(&second)
    );
    assert_eq!(
        std::fs::read(root.join("etc/haproxy/server.crt")).unwrap(),
        server
    );
}

#[test]
fn no_server_certificate_is_issued_under_an_expired_ca() {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let ca = X509::from_pem(make_ca_between(&key, "Expired CA", -400, -2).as_bytes()).unwrap();
    let server_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let sans = firstboot::tls::SanSet {
        dns: vec!["localhost".into()],
        ips: vec![std::net::Ipv4Addr::LOCALHOST],
    };
    let got = firstboot::tls::issue_server_cert(&ca, &key, &server_key, "haproxy.local", &sans);
    let err = got.expect_err("a server certificate born expired was issued");
    let msg = err.to_string();
    assert!(
        msg.contains("CN=Expired CA") && msg.contains("expired on"),
        "{msg}"
    );
}

#[test]
fn an_expired_ca_from_an_earlier_run_is_replaced_not_kept() {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let old_ca = make_ca_between(&key, "Old CA", -4000, -1);
    let env = firstboot::env::parse(env_xml(&default_props()).as_bytes()).unwrap();
    let cfg = firstboot::validate::validate(
        &env,
        firstboot::config::Deployment::Default,
        firstboot::definition::appliance(),
    )
    .unwrap()
    .config;
    let existing = firstboot::tls::ExistingTls {
        ca_cert_pem: Some(old_ca.clone()),
        ca_key_pem: Some(String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap()),
        ..Default::default()
    };
    let tls = firstboot::tls::resolve(&cfg, &existing).unwrap();
    assert_eq!(tls.ca_origin, firstboot::tls::CaOrigin::Generated);
    assert_ne!(tls.ca_cert_pem, old_ca);
}
