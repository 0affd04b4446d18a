//! Validated input of bot commands and the moderation API: parse at the edge, trust inside.

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

/// A module guildhall knows (the `modules` table is seeded with the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModuleName {
    Admin,
    Moderation,
    Minecraft,
}

impl ModuleName {
    pub const ALL: [ModuleName; 3] = [
        ModuleName::Admin,
        ModuleName::Moderation,
        ModuleName::Minecraft,
    ];

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(ModuleName::Admin),
            "moderation" => Ok(ModuleName::Moderation),
            "minecraft" => Ok(ModuleName::Minecraft),
            other => Err(format!(
                "`{other}` is not a module; the modules are admin, moderation and minecraft"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ModuleName::Admin => "admin",
            ModuleName::Moderation => "moderation",
            ModuleName::Minecraft => "minecraft",
        }
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A guild setting editable from Discord, the API and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKey {
    LogChannel,
    ModRole,
    WelcomeChannel,
    WelcomeMessage,
    MinecraftServer,
    MinecraftRole,
}

impl SettingKey {
    pub const ALL: [SettingKey; 6] = [
        SettingKey::LogChannel,
        SettingKey::ModRole,
        SettingKey::WelcomeChannel,
        SettingKey::WelcomeMessage,
        SettingKey::MinecraftServer,
        SettingKey::MinecraftRole,
    ];

    pub fn parse(raw: &str) -> Result<Self, String> {
        let key = raw.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == key)
            .ok_or_else(|| {
                format!(
                    "`{}` is not a setting; the settings are {}",
                    raw.trim(),
                    Self::ALL.map(|k| k.as_str()).join(", ")
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SettingKey::LogChannel => "log_channel",
            SettingKey::ModRole => "mod_role",
            SettingKey::WelcomeChannel => "welcome_channel",
            SettingKey::WelcomeMessage => "welcome_message",
            SettingKey::MinecraftServer => "minecraft_server",
            SettingKey::MinecraftRole => "minecraft_role",
        }
    }
}

/// A channel or role reference as typed in Discord: `<#123>`, `<@&123>` or `123`; `none`
/// (or `off`, `-`) clears the setting.
pub fn parse_snowflake_ref(raw: &str) -> Result<Option<i64>, String> {
    let text = raw.trim();
    if matches!(
        text.to_ascii_lowercase().as_str(),
        "none" | "off" | "-" | ""
    ) {
        return Ok(None);
    }
    let digits = text
        .trim_start_matches("<#")
        .trim_start_matches("<@&")
        .trim_end_matches('>');
    match digits.parse::<i64>() {
        Ok(id) if id > 0 => Ok(Some(id)),
        _ => Err(format!(
            "`{text}` is not a channel or role (mention it, or give its id; `none` clears it)"
        )),
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
    fn reasons_purge_counts_modules_and_keys_are_checked() {
        assert!(Reason::parse(&"x".repeat(513)).is_err());
        assert_eq!(Reason::parse("  "), Ok(None));
        assert!(PurgeCount::parse(0).is_err());
        assert!(PurgeCount::parse(10_000).is_err());
        assert!(PurgeCount::parse(100).is_ok());
        assert!(ModuleName::parse("fun").is_err());
        assert!(SettingKey::parse("colour").is_err());
        assert_eq!(SettingKey::parse("log-channel"), Ok(SettingKey::LogChannel));
        assert_eq!(parse_snowflake_ref("<#42>"), Ok(Some(42)));
        assert_eq!(parse_snowflake_ref("none"), Ok(None));
        assert!(parse_snowflake_ref("#general").is_err());
    }
}
