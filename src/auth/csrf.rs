//! The CSRF token as pages carry it: masked afresh for every response (a random pad, then the
//! token XOR the pad, both hex), so the bytes in a page differ each time while every one of
//! them verifies against the session's token. Pages are sent compressed (`web::compress`), and
//! a secret repeated verbatim in compressed responses that also reflect input can be guessed a
//! byte at a time from their lengths (BREACH); a masked token is never the same twice. The raw
//! token, as sign-in answers it to API clients, verifies too.

use subtle::ConstantTimeEq;

/// `token` masked with a fresh random pad: `hex(pad) + hex(pad XOR token)`.
pub fn mask(token: &str) -> String {
    let token = token.as_bytes();
    let pad: Vec<u8> = (0..token.len()).map(|_| rand::random::<u8>()).collect();
    let masked: Vec<u8> = token.iter().zip(&pad).map(|(t, p)| t ^ p).collect();
    let mut out = hex::encode(&pad);
    out.push_str(&hex::encode(masked));
    out
}

/// Whether `presented` is the session's `expected` token, raw or masked (constant time in the
/// token's bytes).
pub fn matches(presented: &str, expected: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    if presented.len() == expected.len() {
        return bool::from(presented.as_bytes().ct_eq(expected.as_bytes()));
    }
    if presented.len() != expected.len() * 4 {
        return false;
    }
    let Ok(bytes) = hex::decode(presented) else {
        return false;
    };
    let (pad, masked) = bytes.split_at(expected.len());
    let token: Vec<u8> = masked.iter().zip(pad).map(|(m, p)| m ^ p).collect();
    bool::from(token.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz012345";

    #[test]
    fn a_masked_token_differs_every_time_and_still_verifies() {
        let (a, b) = (mask(TOKEN), mask(TOKEN));
        assert_ne!(a, b);
        assert!(!a.contains(TOKEN));
        assert!(matches(&a, TOKEN) && matches(&b, TOKEN));
        assert!(matches(TOKEN, TOKEN), "the raw token too");
    }

    #[test]
    fn anything_else_is_refused() {
        let other = "ZZCdEfGhIjKlMnOpQrStUvWxYz012345";
        let cases = [
            mask(other),
            other.to_owned(),
            String::new(),
            "zz".repeat(TOKEN.len() * 2),
            mask(TOKEN)[..TOKEN.len() * 4 - 2].to_owned(),
            format!("{}00", mask(TOKEN)),
        ];
        for presented in cases {
            assert!(!matches(&presented, TOKEN), "{presented}");
        }
        assert!(
            !matches("", ""),
            "a session without a token matches nothing"
        );
    }
}
