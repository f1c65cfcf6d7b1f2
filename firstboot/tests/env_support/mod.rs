//! Helpers shared by the env_/validate_/pem_/check_ tests: OVF environment documents and
//! certificates generated in the test.
#![allow(dead_code)]

use firstboot::env::{Adapter, Environment, Property};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};

/// A valid Default-deployment property set.
pub fn base() -> Vec<(String, String)> {
    [
        ("appliance.root_pwd", "VMware1!"),
        ("appliance.permit_root_login", "True"),
        ("appliance.ca_cert", ""),
        ("appliance.ca_cert_key", ""),
        ("network.hostname", "haproxy.local"),
        ("network.nameservers", "1.1.1.1, 1.0.0.1"),
        ("network.management_ip", "192.168.0.2/24"),
        ("network.management_gateway", "192.168.0.1"),
        ("network.workload_ip", "192.168.10.2/24"),
        ("network.workload_gateway", "192.168.10.1"),
        ("network.additional_workload_networks", ""),
        ("loadbalance.service_ip_range", "192.168.10.128/25"),
        ("loadbalance.dataplane_port", "5556"),
        ("loadbalance.haproxy_user", "admin"),
        ("loadbalance.haproxy_pwd", "haproxy-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `base()` plus valid frontend values.
pub fn base_frontend() -> Vec<(String, String)> {
    let mut p = base();
    p.push(("network.frontend_ip".into(), "192.168.100.2/24".into()));
    p.push(("network.frontend_gateway".into(), "192.168.100.1".into()));
    p
}

/// Apply overrides: `Some(v)` sets (or adds) a key, `None` removes it.
pub fn with(
    mut props: Vec<(String, String)>,
    overrides: &[(&str, Option<&str>)],
) -> Vec<(String, String)> {
    for (key, value) in overrides {
        props.retain(|(k, _)| k != key);
        if let Some(v) = value {
            props.push(((*key).to_owned(), (*v).to_owned()));
        }
    }
    props
}

/// An environment with these properties and `adapters` adapters (`None`: no section).
pub fn env(props: &[(String, String)], adapters: Option<usize>) -> Environment {
    Environment {
        properties: props
            .iter()
            .map(|(k, v)| Property {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        adapters: adapters.map(|n| {
            (0..n)
                .map(|i| Adapter {
                    mac: Some(format!("00:50:56:00:00:{i:02x}")),
                    network: Some(format!("net{i}")),
                    unit_number: Some((7 + i).to_string()),
                })
                .collect()
        }),
        platform: None,
    }
}

/// The same as an XML document.
pub fn doc(props: &[(String, String)], adapters: Option<usize>) -> String {
    env(props, adapters).to_xml()
}

/// A key and self-signed certificate.
pub struct Ca {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl Ca {
    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }
    pub fn key_pkcs8_pem(&self) -> String {
        String::from_utf8(self.key.private_key_to_pem_pkcs8().unwrap()).unwrap()
    }
}

pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

pub fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

/// A self-signed certificate for `key`; `ca` sets basicConstraints CA:TRUE (else CA:FALSE).
pub fn self_signed(key: PKey<Private>, cn: &str, ca: bool) -> Ca {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    let mut bc = BasicConstraints::new();
    bc.critical();
    if ca {
        bc.ca();
    }
    b.append_extension(bc.build().unwrap()).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Ca {
        key,
        cert: b.build(),
    }
}

pub fn ec_ca(cn: &str) -> Ca {
    self_signed(ec_key(), cn, true)
}

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A self-signed CA (CA:TRUE) for `key`, valid from `not_before_days` to `not_after_days`
/// (relative to now, may be negative), with keyUsage keyCertSign + cRLSign (`Some(true)`),
/// digitalSignature only (`Some(false)`) or no keyUsage extension (`None`).
pub fn ca_between(
    key: PKey<Private>,
    cn: &str,
    not_before_days: i64,
    not_after_days: i64,
    key_cert_sign: Option<bool>,
) -> Ca {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(9).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    let day = 86_400;
    b.set_not_before(&Asn1Time::from_unix(unix_now() + not_before_days * day).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(unix_now() + not_after_days * day).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    match key_cert_sign {
        Some(true) => b
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        Some(false) => b
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        None => {}
    }
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Ca {
        key,
        cert: b.build(),
    }
}
