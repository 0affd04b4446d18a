//! Password hashing with argon2id at OWASP's recommended parameters.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("stored password hash is malformed")]
    MalformedHash,
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string. CPU-heavy (tens of ms): call it off the async executor.
pub fn hash(password: &SecretString) -> Result<String, PasswordError> {
    let hash = hasher()?
        .hash_password(password.expose_secret().as_bytes())
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(hash.to_string())
}

/// Checks a password against a stored PHC string. CPU-heavy: call it off the async executor.
pub fn verify(password: &SecretString, stored: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(stored).map_err(|_| PasswordError::MalformedHash)?;
    Ok(hasher()?
        .verify_password(password.expose_secret().as_bytes(), &parsed)
        .is_ok())
}

/// The hash of a random password that nobody knows (it was thrown away when this was made),
/// verified against when a username does not exist, so that an unknown user costs the same
/// argon2 work as a wrong password. A constant rather than a hash made at the first unknown
/// user, which would make that one sign-in twice as slow. Its parameters must be the ones
/// [`hash`] uses; a test checks.
pub const UNKNOWN_USER_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Hws/OjzYEy/6dTiwrVv2mQ$Ng7MwV/+fYSSbJbHLALIxzY6nsqaPxdoD797V5Pt2B8";

/// A random password for generated accounts: 24 characters from an unambiguous alphabet.
pub fn generate() -> SecretString {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let s: String = (0..24)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    SecretString::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_user_costs_the_same_verification_as_a_real_hash() -> Result<(), PasswordError> {
        let real = hash(&generate())?;
        let real = PasswordHash::new(&real).map_err(|_| PasswordError::MalformedHash)?;
        let unknown =
            PasswordHash::new(UNKNOWN_USER_HASH).map_err(|_| PasswordError::MalformedHash)?;
        assert_eq!(unknown.algorithm, real.algorithm);
        assert_eq!(unknown.version, real.version);
        assert_eq!(unknown.params, real.params, "m, t and p");
        assert_eq!(
            unknown.hash.map(|h| h.len()),
            real.hash.map(|h| h.len()),
            "output length"
        );
        assert!(!verify(&generate(), UNKNOWN_USER_HASH)?);
        Ok(())
    }

    #[test]
    fn a_hash_verifies_its_password_and_no_other() -> Result<(), PasswordError> {
        let pw = generate();
        let stored = hash(&pw)?;
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(&pw, &stored)?);
        assert!(!verify(&SecretString::from("wrong password!"), &stored)?);
        Ok(())
    }
}
