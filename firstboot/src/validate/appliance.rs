//! The appliance group: the root password and SSH login, the supplied CA (`appliance.*`).
//! Passwords of other groups follow the same rule ([`Ctx::password`]).

use openssl::x509::X509;

use crate::config::{CaMaterial, Secret};
use crate::pem;
use crate::tls;

use super::context::Ctx;
use super::declared;
use super::keys::*;

/// Root access, as validated; `None` where problems were recorded.
pub(super) struct Access {
    pub root_password: Option<Secret>,
    pub permit_root_login: Option<bool>,
}

pub(super) fn access(ctx: &mut Ctx<'_>) -> Access {
    Access {
        root_password: ctx.password(ROOT_PWD),
        permit_root_login: ctx.boolean(PERMIT_ROOT_LOGIN),
    }
}

/// `Some(None)`: no CA supplied (generate one). `None`: problems were recorded.
pub(super) fn ca(ctx: &mut Ctx<'_>) -> Option<Option<CaMaterial>> {
    let Some((cert_text, key_text)) = ca_texts(ctx)? else {
        return Some(None);
    };
    let certs = match pem::certificates(&cert_text) {
        Ok(c) => Some(c),
        Err(e) => {
            ctx.problem(CA_CERT, e.to_string());
            None
        }
    };
    let key = match pem::private_key(&key_text) {
        Ok(k) => Some(k),
        Err(e) => {
            ctx.problem(CA_CERT_KEY, e.to_string());
            None
        }
    };
    let (certs, key) = (certs?, key?);
    let Some(index) = pem::matching_certificate(&certs, &key) else {
        let subject = certs.first().map(|c| pem::subject(c)).unwrap_or_default();
        ctx.problem(
            CA_CERT_KEY,
            format!(
                "does not match the certificate ({subject}); expected the private key of \
                 that certificate"
            ),
        );
        return None;
    };
    let ca_cert = certs.get(index)?;
    if !ca_verdicts(ctx, ca_cert) {
        return None;
    }
    let Ok(cert_chain_pem) = pem::chain_pem(&certs, index) else {
        ctx.problem(CA_CERT, "cannot re-encode the certificate as PEM");
        return None;
    };
    let Ok(key_pem) = pem::pkcs8_pem(&key) else {
        ctx.problem(CA_CERT_KEY, "cannot re-encode the key as PKCS#8");
        return None;
    };
    Some(Some(CaMaterial {
        cert_chain_pem,
        key_pkcs8_pem: Secret(key_pem),
    }))
}

/// The CA certificate and key texts, both or neither (`Some(None)`: generate a CA). `None`:
/// only one is given, or one breaks the definition's qualifiers (reported).
fn ca_texts(ctx: &mut Ctx<'_>) -> Option<Option<(String, String)>> {
    let cert_text = ctx.given(CA_CERT).map(str::to_owned);
    let key_text = ctx.given(CA_CERT_KEY).map(str::to_owned);
    match (cert_text, key_text) {
        (None, None) => Some(None),
        (Some(_), None) => {
            let cert_ref = ctx.refer(CA_CERT);
            ctx.problem(
                CA_CERT_KEY,
                format!("not set; expected the CA's private key because {cert_ref} is given"),
            );
            None
        }
        (None, Some(_)) => {
            let key_ref = ctx.refer(CA_CERT_KEY);
            ctx.problem(
                CA_CERT,
                format!(
                    "not set although {key_ref} is given; expected both the CA certificate \
                     and its key, or neither"
                ),
            );
            None
        }
        (Some(cert), Some(key)) => {
            let cert_ok = ctx.conforms(CA_CERT, &cert);
            let key_ok = ctx.conforms(CA_CERT_KEY, &key);
            (cert_ok && key_ok).then_some(Some((cert, key)))
        }
    }
}

/// Whether the supplied CA can sign a server certificate clients accept now. Every reason it
/// cannot is reported; a CA that ends within the renewal window is a warning.
fn ca_verdicts(ctx: &mut Ctx<'_>, ca_cert: &X509) -> bool {
    let subject = pem::subject(ca_cert);
    if !pem::is_ca(ca_cert) {
        ctx.problem(
            CA_CERT,
            format!(
                "the certificate ({subject}) is not a CA (no basicConstraints CA:TRUE); expected \
                 a CA certificate that can sign the appliance's server certificate"
            ),
        );
        return false;
    }
    let refusals = tls::ca_refusals(ca_cert);
    for r in &refusals {
        ctx.problem(CA_CERT, format!("the certificate ({subject}) {r}"));
    }
    if refusals.is_empty() && tls::ends_within_renewal(ca_cert) {
        ctx.warn(
            CA_CERT,
            format!(
                "the certificate ({subject}) expires on {}, within {} days; the server \
                 certificate it signs expires with it: replace the CA before then",
                ca_cert.not_after(),
                tls::RENEW_BEFORE_DAYS
            ),
        );
    }
    refusals.is_empty()
}

impl Ctx<'_> {
    /// A password: set, as long as the definition's `MinLen`/`MaxLen` allow, printable.
    pub(super) fn password(&mut self, key: &str) -> Option<Secret> {
        let Some(pw) = self.given(key).map(str::to_owned) else {
            let rule = self
                .facts
                .property(key)
                .and_then(declared::length_of)
                .map(|rule| format!(" of {rule}"))
                .unwrap_or_default();
            self.problem(key, format!("not set; expected a password{rule}"));
            return None;
        };
        self.printable_secret(key, pw)
    }

    /// A given password or secret: within the definition's `MinLen`/`MaxLen`, printable.
    pub(super) fn printable_secret(&mut self, key: &str, value: String) -> Option<Secret> {
        if !self.conforms(key, &value) {
            return None;
        }
        if value.chars().any(char::is_control) {
            self.problem(
                key,
                "contains a control character (line break, tab, …); expected printable characters",
            );
            return None;
        }
        Some(Secret(value))
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        let v = self.value(key).unwrap_or_default();
        if v.eq_ignore_ascii_case("true") {
            Some(true)
        } else if v.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.problem(
                key,
                format!(
                    "{} is not a boolean; expected true or false",
                    self.shown(key, &v)
                ),
            );
            None
        }
    }
}
