//! Per-guild settings and modules, cached in process. A change (through the API, a slash
//! command, the bot joining or leaving the guild, or `POST /api/v1/bot/reload`) is announced on
//! the invalidation bus, so this instance forgets the entry at once and, with Redis, every other
//! instance a moment later. With Redis configured, entries also expire after [`SHARED_TTL`]:
//! the bound on staleness while an instance is not subscribed.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::bot::input::ModuleName;
use crate::shared::cache_map::CacheMap;
use crate::shared::invalidation::{Bus, Invalidate, Invalidation};
use crate::store::guilds::GuildSettings;
use crate::store::{Store, StoreError};

/// How long an entry is trusted when other instances may change it.
pub const SHARED_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildConfig {
    /// The bot is in the guild (joined and not left). Cached with the rest so that an API read
    /// of a guild's settings needs no query; GUILD_CREATE and GUILD_DELETE invalidate it.
    pub present: bool,
    pub settings: GuildSettings,
    /// Every known module and whether it is enabled in the guild.
    pub modules: BTreeMap<String, bool>,
}

impl GuildConfig {
    pub fn module_enabled(&self, module: ModuleName) -> bool {
        self.modules.get(module.as_str()).copied().unwrap_or(true)
    }
}

struct Entries(CacheMap<i64, GuildConfig>);

impl Invalidate for Entries {
    fn invalidate(&self, what: &Invalidation) {
        match what {
            Invalidation::Guild(id) => self.0.remove(id),
            Invalidation::AllGuilds => self.0.clear(),
            Invalidation::User(_) | Invalidation::ApiKey(_) | Invalidation::AllAuth => {}
        }
    }
}

#[derive(Clone)]
pub struct GuildConfigCache {
    store: Store,
    entries: Arc<Entries>,
    bus: Bus,
}

impl GuildConfigCache {
    pub fn new(store: Store, bus: Bus) -> Self {
        // Alone, every change goes through this process: entries need no lifetime.
        let ttl = bus.is_shared().then_some(SHARED_TTL);
        let entries = Arc::new(Entries(CacheMap::new(ttl)));
        bus.register(Arc::downgrade(&entries) as Weak<dyn Invalidate>);
        Self {
            store,
            entries,
            bus,
        }
    }

    async fn load(&self, guild_id: i64) -> Result<GuildConfig, StoreError> {
        let present = self
            .store
            .guild(guild_id)
            .await?
            .is_some_and(|g| g.is_present());
        let settings = self.store.guild_settings(guild_id).await?;
        let modules = self
            .store
            .guild_modules(guild_id)
            .await?
            .into_iter()
            .collect();
        Ok(GuildConfig {
            present,
            settings,
            modules,
        })
    }

    pub async fn get(&self, guild_id: i64) -> Result<Arc<GuildConfig>, StoreError> {
        if let Some(config) = self.entries.0.get(&guild_id) {
            return Ok(config);
        }
        let since = self.entries.0.epoch();
        let config = self.load(guild_id).await?;
        Ok(self.entries.0.put(Some(since), guild_id, config))
    }

    /// Forgets one guild's entry everywhere; call after changing its settings or modules, or
    /// after the bot joins or leaves it.
    pub async fn invalidate(&self, guild_id: i64) {
        self.bus.publish(Invalidation::Guild(guild_id)).await;
    }

    /// Forgets every guild's entry, on every instance (`POST /api/v1/bot/reload`).
    pub async fn reload_all(&self) {
        self.bus.publish(Invalidation::AllGuilds).await;
    }
}

use crate::bot::input::{SettingKey, parse_snowflake_ref};
use crate::state::AppState;
use crate::store::audit::{Actor, NewAuditEntry};

/// The longest welcome message accepted (Discord's message limit is 2,000 characters).
pub const MAX_WELCOME_CHARS: usize = 1_000;
pub const MAX_SERVER_NAME_CHARS: usize = 64;

/// Sets one setting from its textual form (`none` clears it).
pub fn apply_setting(s: &mut GuildSettings, key: SettingKey, raw: &str) -> Result<(), String> {
    let text = raw.trim();
    let cleared = matches!(
        text.to_ascii_lowercase().as_str(),
        "none" | "off" | "-" | ""
    );
    match key {
        SettingKey::LogChannel => s.log_channel_id = parse_snowflake_ref(text)?,
        SettingKey::ModRole => s.mod_role_id = parse_snowflake_ref(text)?,
        SettingKey::WelcomeChannel => s.welcome_channel_id = parse_snowflake_ref(text)?,
        SettingKey::MinecraftRole => s.minecraft_role_id = parse_snowflake_ref(text)?,
        SettingKey::WelcomeMessage => {
            if text.chars().count() > MAX_WELCOME_CHARS {
                return Err(format!("is longer than {MAX_WELCOME_CHARS} characters"));
            }
            s.welcome_message = (!cleared).then(|| text.to_owned());
        }
        SettingKey::MinecraftServer => {
            if text.chars().count() > MAX_SERVER_NAME_CHARS
                || !text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(format!(
                    "`{text}` is not a server name (letters, digits, `-`, `_`, `.`; at most {MAX_SERVER_NAME_CHARS})"
                ));
            }
            s.minecraft_server = (!cleared).then(|| text.to_owned());
        }
    }
    Ok(())
}

/// The textual value of one setting, for `/settings show` and the API.
pub fn show_setting(s: &GuildSettings, key: SettingKey) -> String {
    let mention = |v: Option<i64>, f: fn(i64) -> String| v.map_or("not set".to_owned(), f);
    match key {
        SettingKey::LogChannel => mention(s.log_channel_id, |id| format!("<#{id}>")),
        SettingKey::ModRole => mention(s.mod_role_id, |id| format!("<@&{id}>")),
        SettingKey::WelcomeChannel => mention(s.welcome_channel_id, |id| format!("<#{id}>")),
        SettingKey::MinecraftRole => mention(s.minecraft_role_id, |id| format!("<@&{id}>")),
        SettingKey::WelcomeMessage => s
            .welcome_message
            .clone()
            .unwrap_or_else(|| "not set".into()),
        SettingKey::MinecraftServer => s
            .minecraft_server
            .clone()
            .unwrap_or_else(|| "not set (the default server)".into()),
    }
}

/// Where a change came from, for its audit entry (an HTTP request, or a Discord interaction).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Origin {
    fn entry(&self, actor: Actor, action: &str) -> NewAuditEntry {
        let mut entry = NewAuditEntry::new(actor, action);
        entry.ip = self.ip.clone();
        entry.user_agent = self.user_agent.clone();
        entry.request_id = self.request_id.clone();
        entry
    }
}

/// Saves a guild's settings, invalidates every instance's cache and records who changed what.
pub async fn save_settings(
    state: &AppState,
    guild_id: i64,
    settings: &GuildSettings,
    actor: Actor,
    origin: &Origin,
    changed: &[&str],
) -> Result<(), crate::bot::error::CommandError> {
    state.store.put_guild_settings(guild_id, settings).await?;
    state.guild_config.invalidate(guild_id).await;
    state
        .audit
        .record(
            origin
                .entry(actor, "settings.update")
                .target(format!("guild:{guild_id}"))
                .guild(guild_id)
                .details(serde_json::json!({ "changed": changed })),
        )
        .await
        .map_err(|e| crate::bot::error::CommandError::Moderation(e.into()))?;
    Ok(())
}

/// Enables or disables a module in a guild, invalidates caches and records it.
pub async fn set_module(
    state: &AppState,
    guild_id: i64,
    module: crate::bot::input::ModuleName,
    enabled: bool,
    actor: Actor,
    origin: &Origin,
) -> Result<(), crate::bot::error::CommandError> {
    state
        .store
        .set_guild_module(guild_id, module.as_str(), enabled)
        .await?;
    state.guild_config.invalidate(guild_id).await;
    let action = if enabled {
        "module.enable"
    } else {
        "module.disable"
    };
    state
        .audit
        .record(
            origin
                .entry(actor, action)
                .target(format!("module:{module}"))
                .guild(guild_id),
        )
        .await
        .map_err(|e| crate::bot::error::CommandError::Moderation(e.into()))?;
    Ok(())
}
