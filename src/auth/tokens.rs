//! JWTs: HS256 only, signed with `JWT_SECRET_KEY`. Every token names its type (`typ`), so an
//! access token is never accepted where a refresh token is expected and the reverse; every
//! token carries the user's `token_version` (`ver`), so bumping it revokes them all at once.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "guildhall";
pub const AUDIENCE: &str = "guildhall-api";
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
pub const REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Between a correct password and the TOTP code.
pub const MFA_CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// The dashboard's cookie session; renewed by signing in again.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Access,
    Refresh,
    MfaChallenge,
    Session,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub typ: TokenType,
    /// The user's `token_version` when the token was issued.
    pub ver: i64,
    /// Refresh tokens: the family (`refresh_token_families.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<i64>,
    /// Session tokens: the CSRF token the client must echo in `X-CSRF-Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("wrong kind of token")]
    WrongType,
    #[error("cannot sign token")]
    Signing,
}

/// Optional claims for a new token.
#[derive(Default)]
pub struct Extra {
    pub family: Option<i64>,
    pub csrf: Option<String>,
}

/// Signs a token of `typ` for `user_id` valid for `ttl`. Returns the token and its claims.
pub fn issue(
    key: &SecretString,
    typ: TokenType,
    user_id: i64,
    token_version: i64,
    ttl: Duration,
    extra: Extra,
) -> Result<(String, Claims), TokenError> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: user_id.to_string(),
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        exp: now + ttl.as_secs(),
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        typ,
        ver: token_version,
        fam: extra.family,
        csrf: extra.csrf,
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.expose_secret().as_bytes()),
    )
    .map_err(|_| TokenError::Signing)?;
    Ok((token, claims))
}

fn validation() -> Validation {
    // Only HS256: a token whose header says `none`, RS256 or anything else is refused.
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]);
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = LEEWAY_SECS;
    v
}

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 5;

/// Whether verified claims are still within their lifetime (for claims verified earlier).
pub fn is_current(claims: &Claims) -> bool {
    let now = jsonwebtoken::get_current_timestamp();
    now < claims.exp + LEEWAY_SECS && claims.nbf <= now + LEEWAY_SECS
}

/// Verifies signature, algorithm, lifetime, issuer and audience, then the token type.
pub fn verify(key: &SecretString, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
    let data = decode::<Claims>(
        token,
        &DecodingKey::from_secret(key.expose_secret().as_bytes()),
        &validation(),
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Invalid,
    })?;
    let claims = data.claims;
    if claims.typ != expected {
        return Err(TokenError::WrongType);
    }
    if claims.iat > jsonwebtoken::get_current_timestamp() + LEEWAY_SECS || claims.jti.is_empty() {
        return Err(TokenError::Invalid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn key() -> SecretString {
        SecretString::from("test-jwt-key-with-enough-bytes-000")
    }

    #[test]
    fn claims_are_current_only_within_their_lifetime_and_leeway() -> Result<(), TokenError> {
        let (_, mut c) = issue(
            &key(),
            TokenType::Access,
            7,
            0,
            ACCESS_TTL,
            Extra::default(),
        )?;
        assert!(is_current(&c));
        let now = jsonwebtoken::get_current_timestamp();
        c.exp = now - 1;
        assert!(is_current(&c), "within the leeway");
        c.exp = now - LEEWAY_SECS;
        assert!(!is_current(&c), "expired");
        c.exp = now + 60;
        c.nbf = now + LEEWAY_SECS + 10;
        assert!(!is_current(&c), "not yet valid");
        Ok(())
    }

    #[test]
    fn a_token_verifies_only_as_its_own_type() -> Result<(), TokenError> {
        let (t, c) = issue(
            &key(),
            TokenType::Access,
            7,
            3,
            ACCESS_TTL,
            Extra::default(),
        )?;
        let back = verify(&key(), &t, TokenType::Access)?;
        assert_eq!((back.user_id(), back.ver, back.jti), (Some(7), 3, c.jti));
        assert_eq!(
            verify(&key(), &t, TokenType::Refresh).err(),
            Some(TokenError::WrongType)
        );
        let other = SecretString::from("another-key-entirely-0000000000000");
        assert_eq!(
            verify(&other, &t, TokenType::Access).err(),
            Some(TokenError::Invalid)
        );
        Ok(())
    }

    #[test]
    fn an_unsigned_token_is_refused() -> Result<(), TokenError> {
        let (t, _) = issue(
            &key(),
            TokenType::Access,
            7,
            0,
            ACCESS_TTL,
            Extra::default(),
        )?;
        let payload = t.split('.').nth(1).unwrap_or_default();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        for forged in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_eq!(
                verify(&key(), &forged, TokenType::Access).err(),
                Some(TokenError::Invalid)
            );
        }
        Ok(())
    }
}
