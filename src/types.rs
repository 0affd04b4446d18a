//! Validated input: parse at the edge, trust inside.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A bounded string without NUL or other control characters: `Err` says what is wrong with it
/// (the caller names the field).
pub fn check_text(value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters long"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// A dashboard username: 3 to 32 characters of letters, digits, `_`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(3..=32).contains(&len) {
            return Err("must be 3 to 32 characters long".into());
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err("may contain only letters, digits, `_`, `-` and `.`".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that meets the policy: 12 to 1,024 characters, not a well-known one.
#[derive(Clone)]
pub struct NewPassword(SecretString);

/// The most common passwords of at least 12 characters in public breach corpora.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "qwertyuiopas",
    "password1234",
    "password12345",
    "passwordpassword",
    "qwerty123456",
    "1q2w3e4r5t6y",
    "111111111111",
    "000000000000",
    "abcdefghijkl",
    "iloveyou1234",
    "administrator",
    "adminadmin123",
    "qwertyuiop123",
    "letmein12345",
    "welcome12345",
    "changeme1234",
    "trustno1trustno1",
];

impl NewPassword {
    pub fn parse(raw: SecretString) -> Result<Self, String> {
        let value = raw.expose_secret();
        let len = value.chars().count();
        if len < 12 {
            return Err("must be at least 12 characters long".into());
        }
        if len > 1024 {
            return Err("must be at most 1,024 characters long".into());
        }
        let lower = value.to_lowercase();
        if COMMON_PASSWORDS.contains(&lower.as_str()) {
            return Err("is one of the most common passwords; choose another".into());
        }
        Ok(Self(raw))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert!(Username::parse("alice").is_ok());
        for bad in [
            "al",
            "a b c",
            "robert'); DROP TABLE users;--",
            &"x".repeat(33),
            "nul\0byte",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert!(NewPassword::parse(SecretString::from("correct horse battery")).is_ok());
        for bad in ["short", "password1234", "PASSWORD1234"] {
            assert!(
                NewPassword::parse(SecretString::from(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
