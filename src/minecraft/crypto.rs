//! Encryption at rest for RCON passwords: AES-256-GCM with a random 96-bit nonce per value and
//! a key derived from `SECRET_KEY` by HKDF-SHA256 under a purpose label, so the same secret can
//! key other features without two of them ever sharing a key. The server name is bound as
//! associated data: a ciphertext copied onto another server's row does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

const PURPOSE: &[u8] = b"guildhall/rcon-password/v1";
const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the stored password is not valid ciphertext")]
    Malformed,
    /// Wrong key (SECRET_KEY changed) or tampered data; the message says what to do.
    #[error("the stored password cannot be decrypted (was SECRET_KEY changed?); set it again")]
    Undecryptable,
    #[error("encryption failed")]
    Encrypt,
}

#[derive(Clone)]
pub struct PasswordCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for PasswordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordCipher(***)")
    }
}

impl PasswordCipher {
    pub fn new(secret_key: &SecretString) -> Self {
        let hk = Hkdf::<Sha256>::new(None, secret_key.expose_secret().as_bytes());
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8,160-byte limit, so expand cannot fail.
        if hk.expand(PURPOSE, &mut key).is_err() {
            key = [0u8; 32];
        }
        let cipher = Aes256Gcm::new(&key.into());
        key.fill(0);
        Self { cipher }
    }

    /// `base64(nonce || ciphertext+tag)`.
    pub fn encrypt(&self, server: &str, password: &SecretString) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: password.expose_secret().as_bytes(),
                    aad: server.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(BASE64.encode(out))
    }

    pub fn decrypt(&self, server: &str, stored: &str) -> Result<SecretString, CryptoError> {
        let bytes = BASE64.decode(stored).map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: server.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_password_round_trips_and_never_appears_in_the_ciphertext() {
        let cipher = PasswordCipher::new(&key("0123456789abcdef0123456789abcdef"));
        let sealed = cipher.encrypt("survival", &key("hunter2-hunter2")).unwrap();
        assert!(!sealed.contains("hunter2"));
        let again = cipher.encrypt("survival", &key("hunter2-hunter2")).unwrap();
        assert_ne!(sealed, again, "a fresh nonce per encryption");
        let plain = cipher.decrypt("survival", &sealed).unwrap();
        assert_eq!(plain.expose_secret(), "hunter2-hunter2");
    }

    #[test]
    fn another_key_another_server_or_tampering_fails_to_decrypt() {
        let cipher = PasswordCipher::new(&key("0123456789abcdef0123456789abcdef"));
        let other = PasswordCipher::new(&key("fedcba9876543210fedcba9876543210"));
        let sealed = cipher.encrypt("survival", &key("pw")).unwrap();
        assert_eq!(
            other.decrypt("survival", &sealed).unwrap_err(),
            CryptoError::Undecryptable
        );
        assert_eq!(
            cipher.decrypt("creative", &sealed).unwrap_err(),
            CryptoError::Undecryptable
        );
        let mut bytes = BASE64.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            cipher
                .decrypt("survival", &BASE64.encode(bytes))
                .unwrap_err(),
            CryptoError::Undecryptable
        );
        assert_eq!(
            cipher.decrypt("survival", "%%").unwrap_err(),
            CryptoError::Malformed
        );
    }
}
