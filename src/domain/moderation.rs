//! Moderation actions and their validated input (durations, reasons, purge counts), shared by
//! the slash commands, the API and the moderation service.

use std::fmt;
use std::time::Duration;

/// The longest reason Discord keeps in its audit log.
pub const MAX_REASON_CHARS: usize = 512;
/// Discord's longest timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(28 * 24 * 3600);
/// Temporary bans longer than this are almost certainly a typo (`100y`); use a permanent ban.
pub const MAX_BAN: Duration = Duration::from_secs(365 * 24 * 3600);
/// Discord's bulk delete takes 2 to 100 messages; one more call deletes a single message.
pub const MAX_PURGE: u32 = 100;

/// A positive duration written like `30s`, `10m`, `2h`, `7d`, `1w` or combined (`1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModDuration(Duration);

impl ModDuration {
    /// Parses and bounds a duration; `max` is the largest the action allows.
    pub fn parse(raw: &str, max: Duration) -> Result<Self, String> {
        let text = raw.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err("is empty; write a duration like `10m`, `2h` or `7d`".into());
        }
        if text.starts_with('-') {
            return Err(format!("`{raw}` is negative; a duration must be positive"));
        }
        let mut total: u64 = 0;
        let mut number = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit: u64 = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 604_800,
                'y' => 31_536_000,
                _ => {
                    return Err(format!(
                        "`{raw}` is not a duration; write one like `10m`, `2h` or `7d`"
                    ));
                }
            };
            let n: u64 = number.parse().map_err(|_| {
                format!("`{raw}` is not a duration; write one like `10m`, `2h` or `7d`")
            })?;
            number.clear();
            total = n
                .checked_mul(unit)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| format!("`{raw}` is far too long"))?;
        }
        if !number.is_empty() {
            return Err(format!(
                "`{raw}` has no unit; write `{number}m` for minutes or `{number}h` for hours"
            ));
        }
        if total == 0 {
            return Err(format!(
                "`{raw}` is zero; a duration must be at least 1 second"
            ));
        }
        let duration = Duration::from_secs(total);
        if duration > max {
            return Err(format!(
                "`{raw}` is longer than the maximum of {}",
                human(max)
            ));
        }
        Ok(Self(duration))
    }

    pub fn get(self) -> Duration {
        self.0
    }

    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for ModDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

/// `90061s` → `1d 1h 1m 1s`.
pub fn human(d: Duration) -> String {
    let mut secs = d.as_secs();
    let mut parts = Vec::new();
    for (unit, name) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
        if secs >= unit {
            parts.push(format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

/// A moderation reason: trimmed, at most 512 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let len = text.chars().count();
        if len > MAX_REASON_CHARS {
            return Err(format!(
                "is {len} characters long; the limit is {MAX_REASON_CHARS}"
            ));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err("contains control characters".into());
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many messages `/purge` deletes: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCount(u32);

impl PurgeCount {
    pub fn parse(raw: i64) -> Result<Self, String> {
        match u32::try_from(raw) {
            Ok(n) if (1..=MAX_PURGE).contains(&n) => Ok(Self(n)),
            _ => Err(format!(
                "{raw} is out of range; purge deletes 1 to {MAX_PURGE} messages at a time"
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// What a moderation request does to its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Warn,
    Kick,
    Ban {
        /// Days of the user's messages to delete, 0 to 7.
        delete_message_days: u8,
        /// `None` bans permanently.
        duration: Option<ModDuration>,
    },
    Unban,
    Timeout {
        duration: ModDuration,
    },
    Untimeout,
}

/// The names of the actions, as the API path and the slash commands spell them.
pub const ACTION_NAMES: [&str; 6] = ["warn", "kick", "ban", "unban", "timeout", "untimeout"];

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Warn => "warn",
            Action::Kick => "kick",
            Action::Ban { .. } => "ban",
            Action::Unban => "unban",
            Action::Timeout { .. } => "timeout",
            Action::Untimeout => "untimeout",
        }
    }

    pub fn past_tense(&self) -> &'static str {
        match self {
            Action::Warn => "Warned",
            Action::Kick => "Kicked",
            Action::Ban { .. } => "Banned",
            Action::Unban => "Unbanned",
            Action::Timeout { .. } => "Timed out",
            Action::Untimeout => "Removed the timeout of",
        }
    }

    /// Whether the bot itself acts on Discord (a warning is only recorded).
    pub fn bot_acts(&self) -> bool {
        !matches!(self, Action::Warn)
    }

    /// Whether the target must be a member of the guild (bans work on any user id).
    pub fn needs_member(&self) -> bool {
        matches!(
            self,
            Action::Warn | Action::Kick | Action::Timeout { .. } | Action::Untimeout
        )
    }

    /// How long the action lasts, for those that expire.
    pub fn duration(&self) -> Option<ModDuration> {
        match self {
            Action::Ban { duration, .. } => *duration,
            Action::Timeout { duration } => Some(*duration),
            Action::Warn | Action::Kick | Action::Unban | Action::Untimeout => None,
        }
    }

    /// Builds an action from its name and its raw parameters; each problem names its field.
    pub fn parse(
        name: &str,
        duration: Option<&str>,
        delete_message_days: Option<i64>,
    ) -> Result<Self, InvalidInput> {
        let no_extra = |field: &'static str, present: bool| {
            if present {
                Err(InvalidInput::new(
                    field,
                    format!("does not apply to `{name}`"),
                ))
            } else {
                Ok(())
            }
        };
        let parse_duration = |max| {
            duration
                .map(|d| ModDuration::parse(d, max).map_err(|p| InvalidInput::new("duration", p)))
                .transpose()
        };
        match name {
            "warn" | "kick" | "unban" | "untimeout" => {
                no_extra("duration", duration.is_some())?;
                no_extra("delete_message_days", delete_message_days.is_some())?;
                Ok(match name {
                    "warn" => Action::Warn,
                    "kick" => Action::Kick,
                    "unban" => Action::Unban,
                    _ => Action::Untimeout,
                })
            }
            "ban" => {
                let days = delete_message_days.unwrap_or(0);
                let delete_message_days =
                    u8::try_from(days).ok().filter(|d| *d <= 7).ok_or_else(|| {
                        InvalidInput::new(
                            "delete_message_days",
                            format!("{days} is not between 0 and 7"),
                        )
                    })?;
                Ok(Action::Ban {
                    delete_message_days,
                    duration: parse_duration(MAX_BAN)?,
                })
            }
            "timeout" => {
                no_extra("delete_message_days", delete_message_days.is_some())?;
                Ok(Action::Timeout {
                    duration: parse_duration(MAX_TIMEOUT)?.ok_or_else(|| {
                        InvalidInput::new("duration", "is required for a timeout")
                    })?,
                })
            }
            other => Err(InvalidInput::new(
                "action",
                format!("`{other}` is not one of {}", ACTION_NAMES.join(", ")),
            )),
        }
    }
}

/// A field of some input and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub problem: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_are_refused() {
        let max = MAX_TIMEOUT;
        assert_eq!(
            ModDuration::parse("10m", max).map(ModDuration::get),
            Ok(Duration::from_secs(600))
        );
        assert_eq!(
            ModDuration::parse("1h30m", max).map(ModDuration::get),
            Ok(Duration::from_secs(5400))
        );
        for bad in [
            "0s",
            "-5m",
            "100y",
            "garbage",
            "",
            "10",
            "5x",
            "99999999999999999999d",
        ] {
            assert!(ModDuration::parse(bad, max).is_err(), "{bad}");
        }
    }

    #[test]
    fn reasons_and_purge_counts_are_checked() {
        assert!(Reason::parse(&"x".repeat(513)).is_err());
        assert_eq!(Reason::parse("  "), Ok(None));
        assert!(PurgeCount::parse(0).is_err());
        assert!(PurgeCount::parse(10_000).is_err());
        assert!(PurgeCount::parse(100).is_ok());
    }

    #[test]
    fn actions_parse_from_their_names_and_refuse_parameters_that_do_not_apply() {
        assert_eq!(Action::parse("kick", None, None), Ok(Action::Kick));
        assert_eq!(
            Action::parse("ban", Some("7d"), Some(1)).map(|a| a.duration().map(|d| d.get())),
            Ok(Some(Duration::from_secs(7 * 86_400)))
        );
        for (name, duration, days, field) in [
            ("kick", Some("1h"), None, "duration"),
            ("warn", None, Some(1), "delete_message_days"),
            ("ban", None, Some(8), "delete_message_days"),
            ("timeout", None, None, "duration"),
            ("timeout", Some("29d"), None, "duration"),
            ("timeout", Some("1h"), Some(0), "delete_message_days"),
            ("hug", None, None, "action"),
        ] {
            assert_eq!(
                Action::parse(name, duration, days).map_err(|e| e.field),
                Err(field),
                "{name} {duration:?} {days:?}"
            );
        }
    }
}
