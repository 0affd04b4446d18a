//! API key format: `ghk_<8-char prefix>_<40-char secret>`. The prefix is stored in clear and
//! used for lookup; the secret only as a keyed digest (see `digest`).

use secrecy::{ExposeSecret, SecretString};

use super::digest;

pub const KEY_PREFIX: &str = "ghk_";
const PREFIX_LEN: usize = 8;
const SECRET_LEN: usize = 40;
const PREFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const DIGEST_DOMAIN: &str = "api_key";

/// A freshly generated key: shown to its creator once.
pub struct GeneratedKey {
    pub full: SecretString,
    pub prefix: String,
    pub secret_hash: String,
}

pub fn generate(secret_key: &SecretString) -> GeneratedKey {
    let prefix = digest::random_string(PREFIX_ALPHABET, PREFIX_LEN);
    let secret = digest::random_string(digest::ALPHANUMERIC, SECRET_LEN);
    let secret_hash = digest::keyed(secret_key, DIGEST_DOMAIN, &secret);
    GeneratedKey {
        full: SecretString::from(format!("{KEY_PREFIX}{prefix}_{secret}")),
        prefix,
        secret_hash,
    }
}

/// A presented key split into its parts; `None` when it does not have the key format.
pub struct PresentedKey<'a> {
    pub prefix: &'a str,
    secret: &'a str,
}

pub fn looks_like_key(raw: &str) -> bool {
    raw.starts_with(KEY_PREFIX)
}

pub fn parse(raw: &str) -> Option<PresentedKey<'_>> {
    let rest = raw.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let well_formed = prefix.len() == PREFIX_LEN
        && prefix.bytes().all(|b| PREFIX_ALPHABET.contains(&b))
        && secret.len() == SECRET_LEN
        && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then_some(PresentedKey { prefix, secret })
}

impl PresentedKey<'_> {
    /// Constant-time comparison of the secret with the stored digest.
    pub fn matches(&self, secret_key: &SecretString, stored_hash: &str) -> bool {
        digest::matches(secret_key, DIGEST_DOMAIN, self.secret, stored_hash)
    }
}

/// For tests and the CLI: the full key's text.
pub fn expose(key: &GeneratedKey) -> &str {
    key.full.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_its_hash_only() {
        let sk = SecretString::from("server secret");
        let key = generate(&sk);
        let text = expose(&key);
        assert!(
            text.starts_with("ghk_") && text.len() == 4 + 8 + 1 + 40,
            "{text}"
        );
        let parsed = parse(text).expect("parses");
        assert_eq!(parsed.prefix, key.prefix);
        assert!(parsed.matches(&sk, &key.secret_hash));
        assert!(!parsed.matches(&SecretString::from("other"), &key.secret_hash));
        for bad in [
            "",
            "ghk_",
            "ghk_short_x",
            "ghk_ABCDEFGH_",
            &format!("{text}x"),
            "ghk_abcdefgh_'; DROP TABLE api_keys;--",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
