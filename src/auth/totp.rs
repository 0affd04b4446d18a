//! TOTP (RFC 6238): 6 digits, 30 s steps, one step of skew, SHA-1 (what authenticator apps
//! support). Replay protection is the caller's: a step is accepted only if it is later than the
//! last accepted one (`users.mfa_last_step`).

use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::digest;

pub const ISSUER: &str = "guildhall";
const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_DOMAIN: &str = "mfa_recovery";

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("stored MFA secret is invalid")]
    BadSecret,
    #[error("cannot build the enrolment QR code")]
    Qr,
}

/// A new random secret, base32 (the form authenticator apps and the database use).
pub fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    Secret::from(bytes.to_vec()).to_base32()
}

fn totp(secret_b32: &str, account: &str) -> Result<Totp, TotpError> {
    let secret = Secret::try_from_base32(secret_b32).map_err(|_| TotpError::BadSecret)?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|_| TotpError::BadSecret)
}

/// What a user needs to enrol an authenticator.
pub struct Enrolment {
    pub otpauth_url: String,
    pub qr_png_base64: String,
}

pub fn enrolment(secret_b32: &str, account: &str) -> Result<Enrolment, TotpError> {
    let t = totp(secret_b32, account)?;
    let otpauth_url = t.to_url().map_err(|_| TotpError::Qr)?;
    let qr_png_base64 = t.to_qr_base64().map_err(|_| TotpError::Qr)?;
    Ok(Enrolment {
        otpauth_url,
        qr_png_base64,
    })
}

/// The enrolment QR code as PNG bytes (the `otpauth://` URL, rendered here: no external
/// service ever sees the secret), for the dashboard's `<img>`.
pub fn qr_png(secret_b32: &str, account: &str) -> Result<Vec<u8>, TotpError> {
    totp(secret_b32, account)?
        .to_qr_png()
        .map_err(|_| TotpError::Qr)
}

/// The step the code matches within ±1 step of `unix_secs`, if it is later than `last_step`.
pub fn check(
    secret_b32: &str,
    code: &str,
    unix_secs: u64,
    last_step: Option<i64>,
) -> Result<Option<i64>, TotpError> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret_b32, "check")?;
    let step = t.check(code, unix_secs).and_then(|s| i64::try_from(s).ok());
    Ok(step.filter(|s| last_step.is_none_or(|last| *s > last)))
}

/// The code for a time; for tests and the benchmark.
pub fn code_at(secret_b32: &str, unix_secs: u64) -> Result<String, TotpError> {
    Ok(totp(secret_b32, "code")?.generate(unix_secs).to_string())
}

/// Ten fresh recovery codes (`xxxxx-xxxxx`, 50 bits each) to show once.
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..RECOVERY_CODES)
        .map(|_| {
            format!(
                "{}-{}",
                digest::random_string(ALPHABET, 5),
                digest::random_string(ALPHABET, 5)
            )
        })
        .collect()
}

/// The stored digest of a recovery code, normalised so case and spaces do not matter.
pub fn recovery_digest(key: &secrecy::SecretString, code: &str) -> String {
    let normalised: String = code
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    digest::keyed(key, RECOVERY_DOMAIN, &normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_accepted_once_within_one_step_of_skew() -> Result<(), TotpError> {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now)?;
        let step = check(&secret, &code, now, None)?.expect("current code accepted");
        assert_eq!(
            check(&secret, &code, now + 30, None)?,
            Some(step),
            "one step late"
        );
        assert_eq!(
            check(&secret, &code, now + 90, None)?,
            None,
            "three steps late"
        );
        assert_eq!(
            check(&secret, &code, now, Some(step))?,
            None,
            "replay refused"
        );
        assert_eq!(check(&secret, "12345", now, None)?, None);
        assert_eq!(check(&secret, "abcdef", now, None)?, None);
        Ok(())
    }

    #[test]
    fn the_enrolment_qr_code_is_a_png_rendered_here() -> Result<(), TotpError> {
        let png = qr_png(&new_secret(), "alice")?;
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
        assert!(png.len() > 100);
        Ok(())
    }
}
