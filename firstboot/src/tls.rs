//! TLS material of the Data Plane API: the CA (supplied, kept from an earlier run, or generated)
//! and a server certificate signed by it.
//!
//! Pure crypto, no file I/O: the apply step reads what is on disk into [`ExistingTls`] and
//! writes what [`resolve`] returns. Reuse rules make re-runs idempotent:
//! - a supplied CA is used as given (already repaired and checked by validation);
//! - without one, a valid CA already on disk (key matches, CA:TRUE, unexpired) is kept, else a new
//!   self-signed RSA 2048 CA is generated (RSA 2048, like the reference's `openssl req -x509
//!   -newkey rsa:2048`, because every client of the appliance accepts it);
//! - the server certificate is kept while it is signed by that CA, carries exactly the wanted
//!   SANs and is valid for more than 30 days (or already ends with its CA); otherwise it is
//!   re-issued, keeping a valid existing server key (a new RSA 2048 key only when there is none).
//!   A CA that has expired never signs one: it would be born expired.

use std::net::Ipv4Addr;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder, X509Ref};

use crate::config::{Addressing, ValidatedConfig};

/// Days a generated CA and a server certificate are valid (the server never beyond its CA).
const VALIDITY_DAYS: u32 = 3650;
/// A server certificate expiring within this many days is re-issued.
pub const RENEW_BEFORE_DAYS: u32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS: {what}: {source}")]
    OpenSsl {
        what: &'static str,
        #[source]
        source: ErrorStack,
    },
    #[error("TLS: the CA certificate has no usable PEM certificate")]
    NoCaCertificate,
    #[error(
        "TLS: the CA certificate ({subject}) expired on {not_after}; a server certificate it \
         signs would be born expired"
    )]
    CaExpired { subject: String, not_after: String },
}

fn ossl<T>(what: &'static str, r: Result<T, ErrorStack>) -> Result<T, TlsError> {
    r.map_err(|source| TlsError::OpenSsl { what, source })
}

/// PEM texts found on disk from an earlier run (any may be missing or invalid).
#[derive(Default)]
pub struct ExistingTls {
    pub ca_cert_pem: Option<String>,
    pub ca_key_pem: Option<String>,
    pub server_cert_pem: Option<String>,
    pub server_key_pem: Option<String>,
}

/// Where the CA came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaOrigin {
    Supplied,
    Kept,
    Generated,
}

/// The four PEM files written to `/etc/haproxy/`. `Debug` omits the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// CA certificate (chain, CA first).
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub ca_origin: CaOrigin,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_origin", &self.ca_origin)
            .field("ca_cert_pem", &self.ca_cert_pem.len())
            .field("server_cert_pem", &self.server_cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// The subject alternative names of the server certificate, in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SanSet {
    pub dns: Vec<String>,
    pub ips: Vec<Ipv4Addr>,
}

/// `localhost` and the host name; 127.0.0.1, every static appliance IP (a DHCP address is
/// unknown before the network starts and cannot be named) and, in an HA pair, the management
/// VIP (the address the Supervisor is given, held by either node).
pub fn wanted_sans(cfg: &ValidatedConfig) -> SanSet {
    let mut dns = vec!["localhost".to_string()];
    if cfg.hostname() != "localhost" {
        dns.push(cfg.hostname().to_string());
    }
    let mut ips = vec![Ipv4Addr::LOCALHOST];
    let nics = [Some(cfg.management()), Some(cfg.workload()), cfg.frontend()];
    for a in nics.into_iter().flatten() {
        if let Addressing::Static { address, .. } = a
            && !ips.contains(&address.ip())
        {
            ips.push(address.ip());
        }
    }
    if let Some(ha) = cfg.ha()
        && !ips.contains(&ha.vip())
    {
        ips.push(ha.vip());
    }
    SanSet { dns, ips }
}

/// Decides and produces the TLS material for `cfg`, reusing `existing` where the rules allow.
pub fn resolve(cfg: &ValidatedConfig, existing: &ExistingTls) -> Result<TlsMaterial, TlsError> {
    // A new CA always needs a new server certificate; when there is no server key to keep
    // either, both RSA keys are generated at once on two threads (key generation dominates).
    let mut early_server_key = None;
    let (ca_cert_pem, ca_key_pem, ca_origin) = match cfg.ca() {
        Some(ca) => (
            ensure_newline(ca.cert_chain_pem()),
            ensure_newline(ca.key_pkcs8_pem().expose()),
            CaOrigin::Supplied,
        ),
        None => match keep_ca(existing) {
            Some((c, k)) => (c, k, CaOrigin::Kept),
            None if existing_server_key(existing).is_none() => {
                let (ca, server) = std::thread::scope(|s| {
                    let server = s.spawn(new_rsa_key);
                    let ca = generate_ca(cfg.hostname());
                    (ca, server.join())
                });
                let (c, k) = ca?;
                early_server_key = Some(server.unwrap_or_else(|_| new_rsa_key())?);
                (c, k, CaOrigin::Generated)
            }
            None => {
                let (c, k) = generate_ca(cfg.hostname())?;
                (c, k, CaOrigin::Generated)
            }
        },
    };
    let ca_cert = ossl(
        "reading the CA certificate",
        X509::stack_from_pem(ca_cert_pem.as_bytes()),
    )?
    .into_iter()
    .next()
    .ok_or(TlsError::NoCaCertificate)?;
    let ca_key = ossl(
        "reading the CA key",
        PKey::private_key_from_pem(ca_key_pem.as_bytes()),
    )?;
    let sans = wanted_sans(cfg);

    if let Some((c, k)) = keep_server(existing, &ca_cert, &sans) {
        return Ok(TlsMaterial {
            ca_cert_pem,
            ca_key_pem,
            server_cert_pem: c,
            server_key_pem: k,
            ca_origin,
        });
    }
    let (server_key, server_key_pem) = match existing_server_key(existing) {
        Some(k) => k,
        None => {
            let k = match early_server_key {
                Some(k) => k,
                None => new_rsa_key()?,
            };
            let pem = ossl("encoding the server key", k.private_key_to_pem_pkcs8())?;
            (k, String::from_utf8_lossy(&pem).into_owned())
        }
    };
    let server_cert_pem = issue_server_cert(&ca_cert, &ca_key, &server_key, cfg.hostname(), &sans)?;
    Ok(TlsMaterial {
        ca_cert_pem,
        ca_key_pem,
        server_cert_pem,
        server_key_pem,
        ca_origin,
    })
}

fn ensure_newline(s: &str) -> String {
    let mut s = s.to_string();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn new_rsa_key() -> Result<PKey<Private>, TlsError> {
    let rsa = ossl("generating an RSA 2048 key", Rsa::generate(2048))?;
    ossl("wrapping the RSA key", PKey::from_rsa(rsa))
}

fn keep_ca(existing: &ExistingTls) -> Option<(String, String)> {
    let cert_pem = existing.ca_cert_pem.as_ref()?;
    let key_pem = existing.ca_key_pem.as_ref()?;
    let cert = X509::stack_from_pem(cert_pem.as_bytes())
        .ok()?
        .into_iter()
        .next()?;
    let key = PKey::private_key_from_pem(key_pem.as_bytes()).ok()?;
    let public = cert.public_key().ok()?;
    // An expired CA could only sign born-expired certificates: generate a new one instead.
    let unexpired = cert.not_after() > Asn1Time::days_from_now(0).ok()?;
    (public.public_eq(&key) && crate::pem::is_ca(&cert) && unexpired)
        .then(|| (cert_pem.clone(), key_pem.clone()))
}

fn existing_server_key(existing: &ExistingTls) -> Option<(PKey<Private>, String)> {
    let pem = existing.server_key_pem.as_ref()?;
    let key = PKey::private_key_from_pem(pem.as_bytes()).ok()?;
    (key.id() == Id::RSA && key.bits() >= 2048).then(|| (key, pem.clone()))
}

fn keep_server(existing: &ExistingTls, ca: &X509Ref, sans: &SanSet) -> Option<(String, String)> {
    let cert_pem = existing.server_cert_pem.as_ref()?;
    let (key, key_pem) = existing_server_key(existing)?;
    let cert = X509::from_pem(cert_pem.as_bytes()).ok()?;
    let ca_public = ca.public_key().ok()?;
    let signed_by_ca =
        cert.verify(&ca_public).ok()? && ca.issued(&cert) == openssl::x509::X509VerifyResult::OK;
    let key_matches = cert.public_key().ok()?.public_eq(&key);
    let renew_at = Asn1Time::days_from_now(RENEW_BEFORE_DAYS).ok()?;
    // A certificate that already ends with its CA cannot be renewed to last longer: re-issuing
    // it at every boot in the CA's last 30 days would only churn files.
    let fresh = cert.not_after() > renew_at || cert.not_after() >= ca.not_after();
    (signed_by_ca && key_matches && fresh && cert_sans(&cert) == *sans)
        .then(|| (cert_pem.clone(), key_pem))
}

/// The DNS and IPv4 SANs of a certificate, in certificate order.
pub fn cert_sans(cert: &X509Ref) -> SanSet {
    let mut out = SanSet {
        dns: Vec::new(),
        ips: Vec::new(),
    };
    for name in cert.subject_alt_names().into_iter().flatten() {
        if let Some(d) = name.dnsname() {
            out.dns.push(d.to_string());
        } else if let Some(ip) = name.ipaddress()
            && let Ok(b) = <[u8; 4]>::try_from(ip)
        {
            out.ips.push(Ipv4Addr::from(b));
        }
    }
    out
}

fn random_serial() -> Result<Asn1Integer, TlsError> {
    let mut bn = ossl("allocating a serial", BigNum::new())?;
    ossl(
        "drawing a serial",
        bn.rand(127, MsbOption::MAYBE_ZERO, false),
    )?;
    ossl("encoding a serial", bn.to_asn1_integer())
}

fn name(cn: &str) -> Result<X509Name, TlsError> {
    let mut b = ossl("building a name", X509NameBuilder::new())?;
    ossl(
        "setting O",
        b.append_entry_by_text("O", "vSphere HAProxy appliance"),
    )?;
    // CN is at most 64 characters (RFC 5280 upper bound ub-common-name).
    let cn: String = cn.chars().take(64).collect();
    ossl("setting CN", b.append_entry_by_text("CN", &cn))?;
    Ok(b.build())
}

/// The digest to sign with: none for EdDSA keys (they hash internally), else SHA-256.
fn digest_for(key: &PKeyRef<Private>) -> MessageDigest {
    match key.id() {
        Id::ED25519 | Id::ED448 => MessageDigest::null(),
        _ => MessageDigest::sha256(),
    }
}

/// A new self-signed CA: RSA 2048, CA:TRUE (critical), keyCertSign + cRLSign, 10 years.
/// Returns (certificate PEM, PKCS#8 key PEM).
pub fn generate_ca(hostname: &str) -> Result<(String, String), TlsError> {
    let key = new_rsa_key()?;
    let subject = name(&format!("{hostname} CA"))?;
    let mut b = ossl("starting the CA certificate", X509Builder::new())?;
    ossl("CA version", b.set_version(2))?;
    let serial = random_serial()?;
    ossl("CA serial", b.set_serial_number(&serial))?;
    ossl("CA subject", b.set_subject_name(&subject))?;
    ossl("CA issuer", b.set_issuer_name(&subject))?;
    ossl("CA key", b.set_pubkey(&key))?;
    let not_before = ossl("time", Asn1Time::days_from_now(0))?;
    ossl("CA notBefore", b.set_not_before(&not_before))?;
    let not_after = ossl("time", Asn1Time::days_from_now(VALIDITY_DAYS))?;
    ossl("CA notAfter", b.set_not_after(&not_after))?;
    let bc = ossl(
        "basicConstraints",
        BasicConstraints::new().critical().ca().build(),
    )?;
    ossl("basicConstraints", b.append_extension(bc))?;
    let ku = ossl(
        "keyUsage",
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build(),
    )?;
    ossl("keyUsage", b.append_extension(ku))?;
    let ski = ossl(
        "subjectKeyIdentifier",
        SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None)),
    )?;
    ossl("subjectKeyIdentifier", b.append_extension(ski))?;
    ossl("signing the CA", b.sign(&key, MessageDigest::sha256()))?;
    let cert = b.build();
    let cert_pem = ossl("encoding the CA", cert.to_pem())?;
    let key_pem = ossl("encoding the CA key", key.private_key_to_pem_pkcs8())?;
    Ok((
        String::from_utf8_lossy(&cert_pem).into_owned(),
        String::from_utf8_lossy(&key_pem).into_owned(),
    ))
}

/// Issues the server certificate for `server_key`, signed by the CA, with exactly `sans`.
pub fn issue_server_cert(
    ca: &X509Ref,
    ca_key: &PKeyRef<Private>,
    server_key: &PKeyRef<Private>,
    hostname: &str,
    sans: &SanSet,
) -> Result<String, TlsError> {
    let now = ossl("time", Asn1Time::days_from_now(0))?;
    if ca.not_after() <= now {
        return Err(TlsError::CaExpired {
            subject: crate::pem::subject(ca),
            not_after: ca.not_after().to_string(),
        });
    }
    let mut b = ossl("starting the server certificate", X509Builder::new())?;
    ossl("server version", b.set_version(2))?;
    let serial = random_serial()?;
    ossl("server serial", b.set_serial_number(&serial))?;
    let subject = name(hostname)?;
    ossl("server subject", b.set_subject_name(&subject))?;
    ossl("server issuer", b.set_issuer_name(ca.subject_name()))?;
    ossl("server key", b.set_pubkey(server_key))?;
    // Backdate one day against clock skew between the appliance and its clients.
    let not_before = ossl("time", Asn1Time::from_unix(unix_now() - 86_400))?;
    ossl("server notBefore", b.set_not_before(&not_before))?;
    let wanted_end = ossl("time", Asn1Time::days_from_now(VALIDITY_DAYS))?;
    let end = if ca.not_after() < wanted_end {
        copy_time(ca.not_after())?
    } else {
        wanted_end
    };
    ossl("server notAfter", b.set_not_after(&end))?;
    server_extensions(&mut b, ca, server_key, sans)?;
    ossl(
        "signing the server certificate",
        b.sign(ca_key, digest_for(ca_key)),
    )?;
    let pem = ossl("encoding the server certificate", b.build().to_pem())?;
    Ok(String::from_utf8_lossy(&pem).into_owned())
}

/// The extensions of a server certificate: a critical end-entity basicConstraints and
/// keyUsage, serverAuth, the SANs, and the key identifiers chaining it to `ca`.
fn server_extensions(
    b: &mut X509Builder,
    ca: &X509Ref,
    server_key: &PKeyRef<Private>,
    sans: &SanSet,
) -> Result<(), TlsError> {
    let bc = ossl(
        "basicConstraints",
        BasicConstraints::new().critical().build(),
    )?;
    ossl("basicConstraints", b.append_extension(bc))?;
    let mut ku = KeyUsage::new();
    ku.critical().digital_signature();
    if server_key.id() == Id::RSA {
        ku.key_encipherment();
    }
    ossl(
        "keyUsage",
        b.append_extension(ossl("keyUsage", ku.build())?),
    )?;
    let eku = ossl(
        "extendedKeyUsage",
        ExtendedKeyUsage::new().server_auth().build(),
    )?;
    ossl("extendedKeyUsage", b.append_extension(eku))?;
    let mut san = SubjectAlternativeName::new();
    for d in &sans.dns {
        san.dns(d);
    }
    for ip in &sans.ips {
        san.ip(&ip.to_string());
    }
    let san = ossl(
        "subjectAltName",
        san.build(&b.x509v3_context(Some(ca), None)),
    )?;
    ossl("subjectAltName", b.append_extension(san))?;
    let ski = ossl(
        "subjectKeyIdentifier",
        SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(ca), None)),
    )?;
    ossl("subjectKeyIdentifier", b.append_extension(ski))?;
    let aki = ossl(
        "authorityKeyIdentifier",
        AuthorityKeyIdentifier::new()
            .keyid(false)
            .issuer(false)
            .build(&b.x509v3_context(Some(ca), None)),
    )?;
    ossl("authorityKeyIdentifier", b.append_extension(aki))?;
    Ok(())
}

/// Whether `cert` ends within [`RENEW_BEFORE_DAYS`] from now: a supplied CA that does deserves
/// a warning, since the server certificate it signs ends with it.
pub fn ends_within_renewal(cert: &X509Ref) -> bool {
    Asn1Time::days_from_now(RENEW_BEFORE_DAYS).is_ok_and(|renew_at| cert.not_after() < renew_at)
}

/// Why a CA certificate cannot sign the server certificate: not valid now, not allowed to sign
/// certificates, or a key too weak. Each reason follows "the certificate (subject) ".
pub fn ca_refusals(ca_cert: &X509Ref) -> Vec<String> {
    let mut out = Vec::new();
    match Asn1Time::days_from_now(0) {
        Ok(now) if ca_cert.not_after() < now => out.push(format!(
            "expired on {}; expected a CA certificate that is valid now (every server \
             certificate it signs would be born expired)",
            ca_cert.not_after()
        )),
        Ok(now) if ca_cert.not_before() > now => out.push(format!(
            "is not valid before {}; expected a CA certificate that is valid now (check the \
             clocks of the machine that made it and of the ESXi host)",
            ca_cert.not_before()
        )),
        Ok(_) => {}
        Err(_) => out.push("cannot be checked: the current time is unavailable".to_owned()),
    }
    // No keyUsage extension means no restriction (RFC 5280 4.2.1.3).
    if ca_cert
        .key_usage()
        .is_some_and(|ku| !ku.contains(openssl::x509::X509KeyUsage::KEY_CERT_SIGN))
    {
        out.push(
            "has a keyUsage extension without keyCertSign; expected a CA certificate allowed \
             to sign certificates"
                .to_owned(),
        );
    }
    let key_rule = "expected an RSA key of at least 2048 bits or an EC key";
    match ca_cert.public_key() {
        Ok(k) if k.id() == Id::DSA => out.push(format!("has a DSA key; {key_rule}")),
        Ok(k) if matches!(k.id(), Id::RSA | Id::RSA_PSS) && k.bits() < 2048 => {
            out.push(format!("has a {}-bit RSA key; {key_rule}", k.bits()));
        }
        Ok(_) => {}
        Err(_) => out.push(format!("has a public key OpenSSL cannot read; {key_rule}")),
    }
    out
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The same instant as `t`, as an owned `Asn1Time` (the crate cannot clone a time directly).
fn copy_time(t: &openssl::asn1::Asn1TimeRef) -> Result<Asn1Time, TlsError> {
    let now_secs = unix_now();
    let now = ossl("time", Asn1Time::from_unix(now_secs))?;
    let diff = ossl("time difference", now.diff(t))?;
    ossl(
        "time",
        Asn1Time::from_unix(now_secs + i64::from(diff.days) * 86_400 + i64::from(diff.secs)),
    )
}
