//! SHA-512 crypt (`$6$salt$hash`) for `/etc/shadow` and HAProxy's `userlist`.
//!
//! The hashing is RustCrypto's `sha-crypt`; this module only fixes the form we write: the
//! default 5000 rounds and **no `rounds=` field** — the Data Plane API accepts `$1$`, `$5$` and
//! `$6$` hashes only in the 4-field form `$id$salt$hash`. With 5000 rounds the field is optional
//! by the specification of SHA-crypt (Drepper), and glibc, haproxy and the Data Plane API all
//! compute the same hash with or without it.

use sha_crypt::{PasswordHashRef, PasswordHasher, PasswordVerifier, ShaCrypt};

/// Random bytes per salt: 12 bytes are exactly the 16 salt characters SHA-crypt uses
/// (it ignores anything after the 16th character).
const SALT_BYTES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error("cannot read random bytes for a password salt from the OS: {0}")]
    Random(#[from] openssl::error::ErrorStack),
    #[error("SHA-512 crypt failed: {0}")]
    Hash(String),
}

/// Hashes `password` with SHA-512 crypt and a fresh salt from the OS random generator.
pub fn sha512_crypt(password: &str) -> Result<String, CryptError> {
    let mut salt = [0u8; SALT_BYTES];
    openssl::rand::rand_bytes(&mut salt)?;
    sha512_crypt_with_salt(password, &salt)
}

/// Hashes `password` with the given raw salt bytes (encoded with crypt's base64 alphabet).
pub fn sha512_crypt_with_salt(password: &str, salt: &[u8]) -> Result<String, CryptError> {
    let hash = ShaCrypt::default()
        .hash_password_with_salt(password.as_bytes(), salt)
        .map_err(|e| CryptError::Hash(e.to_string()))?;
    Ok(without_default_rounds(hash.as_str()))
}

/// `$6$rounds=5000$salt$hash` → `$6$salt$hash`; anything else is returned as it is.
fn without_default_rounds(mcf: &str) -> String {
    mcf.replacen("$rounds=5000$", "$", 1)
}

/// Whether `hash` (any SHA-crypt form) is the hash of `password`. Unparsable hashes are `false`.
pub fn verify(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHashRef::new(hash) else {
        return false;
    };
    if !(hash.starts_with("$6$") || hash.starts_with("$5$")) {
        return false;
    }
    ShaCrypt::default()
        .verify_password(password.as_bytes(), parsed)
        .is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn four_field_form_without_rounds() {
        let h = sha512_crypt("correct horse").unwrap();
        let fields: Vec<&str> = h.split('$').collect();
        assert_eq!(fields.len(), 4, "{h}");
        assert_eq!(fields[1], "6");
        assert_eq!(fields[2].len(), 16);
        assert_eq!(fields[3].len(), 86);
        assert!(!h.contains("rounds="));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
    }

    /// The same string as OpenSSL's independent implementation (`openssl passwd -6`).
    #[test]
    fn agrees_with_openssl_passwd() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let present = Command::new("openssl").arg("version").output().is_ok();
        if !present {
            assert!(std::env::var_os("CI").is_none(), "openssl is not installed");
            eprintln!("SKIPPED: openssl is not installed");
            return;
        }
        for pw in ["correct horse", "pässwörd-ünïcode", "x$y:z\\w", "123456"] {
            let ours = sha512_crypt(pw).unwrap();
            let salt = ours.split('$').nth(2).unwrap();
            let mut child = Command::new("openssl")
                .args(["passwd", "-6", "-salt", salt, "-stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{pw}\n").as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                ours,
                "password {pw:?}"
            );
        }
    }

    #[test]
    fn salts_differ() {
        assert_ne!(
            sha512_crypt("pw1234").unwrap(),
            sha512_crypt("pw1234").unwrap()
        );
    }

    #[test]
    fn verify_rejects_garbage() {
        assert!(!verify("x", "not a hash"));
        assert!(!verify("x", "$1$abc$def"));
    }
}
