//! A guild's settings and modules: the keys, the typed values and their validation. Discord's
//! `/settings set` (text) and the API (typed JSON) both end in a [`SettingChange`], so a value
//! is checked by the same rules whichever way it arrives.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Snowflake;

/// The longest welcome message accepted (Discord's message limit is 2,000 characters).
pub const MAX_WELCOME_CHARS: usize = 1_000;
pub const MAX_SERVER_NAME_CHARS: usize = 64;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// The key's name, as `/settings` and the API spell it.
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

/// The message posted when a member joins (`{user}` mentions them): 1 to 1,000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WelcomeMessage(String);

impl WelcomeMessage {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("is empty; clear the setting instead (null)".into());
        }
        if text.chars().count() > MAX_WELCOME_CHARS {
            return Err(format!("is longer than {MAX_WELCOME_CHARS} characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WelcomeMessage {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<WelcomeMessage> for String {
    fn from(v: WelcomeMessage) -> String {
        v.0
    }
}

/// The name of the guild's Minecraft server: letters, digits, `-`, `_`, `.`; at most 64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MinecraftServerRef(String);

impl MinecraftServerRef {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        if text.is_empty()
            || text.chars().count() > MAX_SERVER_NAME_CHARS
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "`{text}` is not a server name (letters, digits, `-`, `_`, `.`; at most {MAX_SERVER_NAME_CHARS})"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MinecraftServerRef {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw)
    }
}

impl From<MinecraftServerRef> for String {
    fn from(v: MinecraftServerRef) -> String {
        v.0
    }
}

/// A guild's settings. This is also their JSON representation in the API (what `GET` returns
/// and `PUT` takes): ids as strings, `null` for a setting that is not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuildSettings {
    /// The channel cases are posted to.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub log_channel: Option<Snowflake>,
    /// The role that may warn and see cases without Discord's moderation permissions.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub mod_role: Option<Snowflake>,
    /// Where new members are welcomed.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub welcome_channel: Option<Snowflake>,
    /// The welcome text; `{user}` mentions the newcomer. 1 to 1,000 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1000)]
    pub welcome_message: Option<WelcomeMessage>,
    /// The Minecraft server `/mc` talks to (the default server when unset).
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub minecraft_server: Option<MinecraftServerRef>,
    /// The role allowed to run `/mc cmd`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub minecraft_role: Option<Snowflake>,
}

/// One setting set to a new value (`None` clears it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingChange {
    LogChannel(Option<Snowflake>),
    ModRole(Option<Snowflake>),
    WelcomeChannel(Option<Snowflake>),
    WelcomeMessage(Option<WelcomeMessage>),
    MinecraftServer(Option<MinecraftServerRef>),
    MinecraftRole(Option<Snowflake>),
}

/// Words that clear a setting when typed in Discord.
fn is_clear_word(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "none" | "off" | "-" | ""
    )
}

/// A channel or role reference as typed in Discord: `<#123>`, `<@&123>` or `123`.
fn parse_mention(text: &str) -> Result<Snowflake, String> {
    let digits = text
        .trim_start_matches("<#")
        .trim_start_matches("<@&")
        .trim_end_matches('>');
    Snowflake::parse(digits).map_err(|_| {
        format!("`{text}` is not a channel or role (mention it, or give its id; `none` clears it)")
    })
}

impl SettingChange {
    /// A value as typed in `/settings set`: a mention or an id for channels and roles, text
    /// otherwise; `none` (or `off`, `-`) clears the setting.
    pub fn from_text(key: SettingKey, raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let cleared = is_clear_word(text);
        let id = || {
            if cleared {
                Ok(None)
            } else {
                parse_mention(text).map(Some)
            }
        };
        Ok(match key {
            SettingKey::LogChannel => SettingChange::LogChannel(id()?),
            SettingKey::ModRole => SettingChange::ModRole(id()?),
            SettingKey::WelcomeChannel => SettingChange::WelcomeChannel(id()?),
            SettingKey::MinecraftRole => SettingChange::MinecraftRole(id()?),
            SettingKey::WelcomeMessage => SettingChange::WelcomeMessage(if cleared {
                None
            } else {
                Some(WelcomeMessage::parse(text)?)
            }),
            SettingKey::MinecraftServer => SettingChange::MinecraftServer(if cleared {
                None
            } else {
                Some(MinecraftServerRef::parse(text)?)
            }),
        })
    }

    pub fn key(&self) -> SettingKey {
        match self {
            SettingChange::LogChannel(_) => SettingKey::LogChannel,
            SettingChange::ModRole(_) => SettingKey::ModRole,
            SettingChange::WelcomeChannel(_) => SettingKey::WelcomeChannel,
            SettingChange::WelcomeMessage(_) => SettingKey::WelcomeMessage,
            SettingChange::MinecraftServer(_) => SettingKey::MinecraftServer,
            SettingChange::MinecraftRole(_) => SettingKey::MinecraftRole,
        }
    }
}

impl GuildSettings {
    pub fn apply(&mut self, change: SettingChange) {
        match change {
            SettingChange::LogChannel(v) => self.log_channel = v,
            SettingChange::ModRole(v) => self.mod_role = v,
            SettingChange::WelcomeChannel(v) => self.welcome_channel = v,
            SettingChange::WelcomeMessage(v) => self.welcome_message = v,
            SettingChange::MinecraftServer(v) => self.minecraft_server = v,
            SettingChange::MinecraftRole(v) => self.minecraft_role = v,
        }
    }

    /// Every setting as a change, for writing the whole set.
    pub fn changes(&self) -> Vec<SettingChange> {
        vec![
            SettingChange::LogChannel(self.log_channel),
            SettingChange::ModRole(self.mod_role),
            SettingChange::WelcomeChannel(self.welcome_channel),
            SettingChange::WelcomeMessage(self.welcome_message.clone()),
            SettingChange::MinecraftServer(self.minecraft_server.clone()),
            SettingChange::MinecraftRole(self.minecraft_role),
        ]
    }

    /// The settings that differ from `other`.
    pub fn changed_keys(&self, other: &GuildSettings) -> Vec<SettingKey> {
        let mut next = other.clone();
        self.changes()
            .into_iter()
            .filter_map(|c| {
                let key = c.key();
                let before = next.clone();
                next.apply(c);
                (next != before).then_some(key)
            })
            .collect()
    }
}

/// A partial update: only the named settings change; `null` clears one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub log_channel: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub mod_role: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub welcome_channel: Option<Option<Snowflake>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1000)]
    pub welcome_message: Option<Option<WelcomeMessage>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub minecraft_server: Option<Option<MinecraftServerRef>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub minecraft_role: Option<Option<Snowflake>>,
}

/// A field that is present (`Some`), holding a value or `null` (`Some(None)`).
fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl SettingsPatch {
    /// The changes the patch names, in key order.
    pub fn changes(&self) -> Vec<SettingChange> {
        let mut out = Vec::new();
        if let Some(v) = self.log_channel {
            out.push(SettingChange::LogChannel(v));
        }
        if let Some(v) = self.mod_role {
            out.push(SettingChange::ModRole(v));
        }
        if let Some(v) = self.welcome_channel {
            out.push(SettingChange::WelcomeChannel(v));
        }
        if let Some(v) = &self.welcome_message {
            out.push(SettingChange::WelcomeMessage(v.clone()));
        }
        if let Some(v) = &self.minecraft_server {
            out.push(SettingChange::MinecraftServer(v.clone()));
        }
        if let Some(v) = self.minecraft_role {
            out.push(SettingChange::MinecraftRole(v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Snowflake {
        Snowflake::new(n).unwrap()
    }

    #[test]
    fn modules_and_keys_are_checked() {
        assert!(ModuleName::parse("fun").is_err());
        assert!(SettingKey::parse("colour").is_err());
        assert_eq!(SettingKey::parse("log-channel"), Ok(SettingKey::LogChannel));
    }

    #[test]
    fn values_typed_in_discord_become_the_same_changes_as_typed_json() {
        for (key, text, expected) in [
            (
                SettingKey::LogChannel,
                "<#42>",
                Ok(SettingChange::LogChannel(Some(id(42)))),
            ),
            (
                SettingKey::ModRole,
                "<@&43>",
                Ok(SettingChange::ModRole(Some(id(43)))),
            ),
            (
                SettingKey::WelcomeChannel,
                "44",
                Ok(SettingChange::WelcomeChannel(Some(id(44)))),
            ),
            (
                SettingKey::MinecraftRole,
                "none",
                Ok(SettingChange::MinecraftRole(None)),
            ),
            (
                SettingKey::WelcomeMessage,
                "off",
                Ok(SettingChange::WelcomeMessage(None)),
            ),
            (SettingKey::LogChannel, "#general", Err(())),
            (SettingKey::LogChannel, "0", Err(())),
            (SettingKey::MinecraftServer, "bad name!", Err(())),
        ] {
            assert_eq!(
                SettingChange::from_text(key, text).map_err(|_| ()),
                expected,
                "{key:?} {text}"
            );
        }
        let patch: SettingsPatch =
            serde_json::from_str(r#"{"log_channel": "42", "welcome_message": null}"#).unwrap();
        assert_eq!(
            patch.changes(),
            vec![
                SettingChange::LogChannel(Some(id(42))),
                SettingChange::WelcomeMessage(None)
            ]
        );
        for bad in [
            r#"{"colour": "red"}"#,
            r#"{"mod_role": true}"#,
            r#"{"minecraft_server": "bad name!"}"#,
            r#"{"welcome_message": ""}"#,
        ] {
            assert!(serde_json::from_str::<SettingsPatch>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_serialise_to_what_they_deserialise_from() {
        let mut s = GuildSettings::default();
        s.apply(SettingChange::LogChannel(Some(id(800_000_000_000_000_001))));
        s.apply(SettingChange::WelcomeMessage(
            WelcomeMessage::parse("Hi {user}").ok(),
        ));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["log_channel"], "800000000000000001");
        assert_eq!(serde_json::from_value::<GuildSettings>(json).unwrap(), s);
        assert_eq!(
            s.changed_keys(&GuildSettings::default()),
            vec![SettingKey::LogChannel, SettingKey::WelcomeMessage]
        );
    }
}
