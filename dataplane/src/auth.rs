//! HTTP basic authentication against a `userlist` section of haproxy.cfg, as the real Data
//! Plane API does: `user NAME password HASH` (`$6$`, `$5$` SHA-crypt, `$1$` MD5-crypt) or
//! `user NAME insecure-password TEXT`.
//!
//! Crypt is slow on purpose (5000 SHA-512 rounds take milliseconds), and the Supervisor sends
//! the same credentials with every request: a verified (user, password, hash) triple is
//! remembered as a SHA-256 digest, never the password itself, until the userlist changes.

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::cfg::Document;
use crate::cfg::userlist::{self, Secret, User};

/// The users of one userlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users(Vec<User>);

impl Users {
    /// The users of `userlist NAME` in the document (none when the section is missing).
    pub fn from_document(doc: &Document, userlist: &str) -> Users {
        Users(userlist::users(doc, userlist))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A crypt hash of nothing anyone knows: an unknown user costs as much as a wrong password.
const DECOY: &str = "$6$decoydecoydecoy$Zl8QcQmMwD7O5ZmcJw2C6W1O5nS3lWZb8m3bO0Uy6m2Q5yZpYz8gM8vIY0oC0cN6f7r0sJ1rZ2H0r9nY3pQ1m.";

/// Remembered successful verifications (bounded).
#[derive(Default)]
pub struct Authenticator {
    verified: Mutex<HashSet<[u8; 32]>>,
}

const REMEMBERED: usize = 64;

impl Authenticator {
    /// Whether the `Authorization` header value names a user of `users` with the right password.
    pub fn check(&self, users: &Users, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let found = users.0.iter().find(|u| u.name == user);
        let Some(User { secret, .. }) = found else {
            crypt_matches(&password, DECOY);
            return false;
        };
        let key = fingerprint(&user, &password, secret);
        if self.lock().contains(&key) {
            return true;
        }
        let ok = match secret {
            Secret::Hash(hash) => crypt_matches(&password, hash),
            Secret::Plain(text) => Sha256::digest(password.as_bytes())
                .ct_eq(&Sha256::digest(text.as_bytes()))
                .into(),
        };
        if ok {
            let mut verified = self.lock();
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        // A panic while holding this lock leaves a set of digests that is still valid.
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn fingerprint(user: &str, password: &str, secret: &Secret) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        user,
        password,
        match secret {
            Secret::Hash(s) | Secret::Plain(s) => s,
        },
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// `Basic base64(user:password)` → (user, password).
pub(crate) fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Whether `hash` is the crypt(3) hash of `password` (SHA-crypt or MD5-crypt; the libraries
/// compare in constant time).
fn crypt_matches(password: &str, hash: &str) -> bool {
    if hash.starts_with("$6$") || hash.starts_with("$5$") {
        use sha_crypt::{PasswordHashRef, PasswordVerifier, ShaCrypt};
        match PasswordHashRef::new(hash) {
            Ok(parsed) => ShaCrypt::default()
                .verify_password(password.as_bytes(), parsed)
                .is_ok(),
            Err(_) => false,
        }
    } else if hash.starts_with("$1$") {
        pwhash::md5_crypt::verify(password, hash)
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {b64}").into_bytes()
    }

    // Made with `openssl passwd -6|-5|-1 -salt saltsalt secret`.
    const SHA512: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

    #[test]
    fn userlist_users_authenticate() {
        let doc = Document::parse(&format!(
            "userlist controller\n  user admin password {SHA512}\n  user plain insecure-password open-sesame\nuserlist other\n  user x insecure-password y\n"
        ));
        let users = Users::from_document(&doc, "controller");
        let auth = Authenticator::default();
        assert!(auth.check(&users, Some(&header("admin", "secret"))));
        assert!(
            auth.check(&users, Some(&header("admin", "secret"))),
            "remembered"
        );
        assert!(!auth.check(&users, Some(&header("admin", "Secret"))));
        assert!(auth.check(&users, Some(&header("plain", "open-sesame"))));
        assert!(
            !auth.check(&users, Some(&header("x", "y"))),
            "another userlist"
        );
        assert!(!auth.check(&users, None));
        assert!(!auth.check(&users, Some(b"Bearer abc")));
        assert!(!auth.check(&users, Some(b"Basic !!!")));
    }

    #[test]
    fn every_crypt_the_real_server_accepts() {
        assert!(crypt_matches("secret", SHA512));
        assert!(crypt_matches(
            "secret",
            "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA"
        ));
        assert!(crypt_matches(
            "secret",
            "$1$saltsalt$9xy1btjgzLYfb7hivXtC//"
        ));
        assert!(!crypt_matches("secret", "plain-text"));
        assert!(!crypt_matches("", DECOY));
    }
}
