//! Validated input for the Minecraft bridge: server names, RCON commands and their roots, and
//! the removal of `§` formatting codes from responses. Parse at the edge, trust inside.

use std::fmt;

use serde::Serialize;

/// Minecraft drops or mangles RCON command packets whose payload exceeds this many bytes; the
/// `rcon` crate refuses them too (with Minecraft quirks on). We refuse them before queueing.
pub const MAX_COMMAND_BYTES: usize = 1_413;
/// Server names appear in URLs, metric labels and audit targets: short and URL-safe.
pub const MAX_SERVER_NAME_LEN: usize = 32;

/// Why a piece of input was refused; the message names the problem, never echoes secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

fn invalid(message: impl Into<String>) -> InvalidInput {
    InvalidInput(message.into())
}

/// The name of a Minecraft server: 1 to 32 characters of `a-z`, `0-9`, `-` and `_`, starting
/// with a letter or digit. `default` is the server configured by `RCON_HOST`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServerName(String);

impl ServerName {
    /// The name of the server configured through `RCON_HOST`/`RCON_PORT`/`RCON_PASSWORD`.
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if raw.len() > MAX_SERVER_NAME_LEN {
            return Err(invalid(format!(
                "must be at most {MAX_SERVER_NAME_LEN} characters"
            )));
        }
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if !raw.chars().all(valid_char) {
            return Err(invalid(
                "may contain only lowercase letters, digits, `-` and `_`",
            ));
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(invalid("must start with a letter or a digit"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn default_server() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A command that may be sent over RCON: not blank, at most 1,413 bytes, and free of control
/// characters (a newline would let one request smuggle a second command into the console log,
/// and Minecraft rejects NUL inside a packet body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RconCommand(String);

impl RconCommand {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        // Control characters are refused before trimming: a trailing newline is as much an
        // attempt to end one command and start another as one in the middle.
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(invalid(format!(
                "must not contain control characters or newlines (found U+{:04X})",
                u32::from(c)
            )));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if trimmed.len() > MAX_COMMAND_BYTES {
            return Err(invalid(format!(
                "is {} bytes; RCON accepts at most {MAX_COMMAND_BYTES}",
                trimmed.len()
            )));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The command's root as the policy sees it: the first word, lowercased, without a leading
    /// `/` and without the `minecraft:` namespace (`/minecraft:OP x` and `op x` are one root).
    /// Other namespaces stay, so `essentials:kick` is a root of its own.
    pub fn root(&self) -> String {
        let first = self.0.split_whitespace().next().unwrap_or_default();
        let first = first.strip_prefix('/').unwrap_or(first).to_lowercase();
        match first.strip_prefix("minecraft:") {
            Some(rest) => rest.to_owned(),
            None => first,
        }
    }
}

impl fmt::Display for RconCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Removes Minecraft's `§x` formatting codes (colours, bold, reset, …) from a response. A `§`
/// at the very end, with no code after it, is dropped too.
pub fn strip_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '§' {
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// The first `max` bytes of `text`, cut on a character boundary (for audit details).
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_refused_when_empty_too_long_or_holding_control_characters() {
        for bad in ["", "   ", "say a\nop b", "say \r", "say \u{0}", "say \t x"] {
            assert!(RconCommand::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(RconCommand::parse(&"a".repeat(MAX_COMMAND_BYTES)).is_ok());
        assert!(RconCommand::parse(&"a".repeat(MAX_COMMAND_BYTES + 1)).is_err());
        // Bytes, not characters: 707 two-byte characters are 1,414 bytes.
        assert!(RconCommand::parse(&"é".repeat(707)).is_err());
    }

    #[test]
    fn the_root_ignores_slash_case_and_the_minecraft_namespace() {
        let root = |s: &str| RconCommand::parse(s).map(|c| c.root()).unwrap_or_default();
        assert_eq!(root("list"), "list");
        assert_eq!(root("/OP Steve"), "op");
        assert_eq!(root("minecraft:kick Alex"), "kick");
        assert_eq!(root("/minecraft:stop"), "stop");
        assert_eq!(root("essentials:kick Alex"), "essentials:kick");
    }

    #[test]
    fn server_names_are_short_lowercase_and_url_safe() {
        for good in ["default", "survival", "mc-2", "a_b", "1"] {
            assert!(ServerName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Survival", "a b", "-x", "_x", "a/b", &"a".repeat(33)] {
            assert!(ServerName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_codes_are_stripped() {
        assert_eq!(
            strip_formatting("§aGreen §lbold§r text§"),
            "Green bold text"
        );
        assert_eq!(strip_formatting("plain"), "plain");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_utf8("ééé", 3), "é");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
