//! Keyed digests (HMAC-SHA256 with `SECRET_KEY`) for high-entropy secrets that are stored only
//! as a hash: API key secrets, refresh tokens, recovery codes, invites. Argon2 would add nothing
//! for values with 128+ bits of entropy and would cost tens of ms per request.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// `hex(HMAC-SHA256(key, domain || 0x00 || value))`. The domain keeps a digest made for one
/// purpose from being accepted for another.
pub fn keyed(key: &SecretString, domain: &str, value: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(domain.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares a presented value with a stored digest in constant time.
pub fn matches(key: &SecretString, domain: &str, value: &str, stored_hex: &str) -> bool {
    let computed = keyed(key, domain, value);
    !computed.is_empty() && bool::from(computed.as_bytes().ct_eq(stored_hex.as_bytes()))
}

/// `len` characters drawn uniformly from `alphabet`.
pub fn random_string(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

pub const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_matches_only_its_value_key_and_domain() {
        let key = SecretString::from("k1");
        let d = keyed(&key, "api_key", "secret");
        assert!(matches(&key, "api_key", "secret", &d));
        assert!(!matches(&key, "api_key", "secreT", &d));
        assert!(!matches(&key, "refresh", "secret", &d));
        assert!(!matches(&SecretString::from("k2"), "api_key", "secret", &d));
    }
}
