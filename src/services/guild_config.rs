//! Per-guild settings and modules, cached. With Redis, the cache lives there, so a change made
//! by any instance (it deletes the key) is seen by all at once; a global generation number,
//! bumped by `POST /api/v1/bot/reload`, invalidates every guild in one step. Without Redis (or
//! while it is down) an in-process cache is used, invalidated on local changes; entries then
//! expire after `LOCAL_TTL` so that changes made by other instances show up eventually.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_redis::redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::bot::input::ModuleName;
use crate::shared::redis::Redis;
use crate::store::guilds::GuildSettings;
use crate::store::{Store, StoreError};

/// How long Redis keeps a cached entry (the database stays the source of truth).
const REDIS_TTL_SECS: u64 = 600;
/// How long an in-process entry is trusted while Redis is configured but unreachable.
const LOCAL_TTL_WITH_REDIS: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Serialize, Deserialize)]
struct Cached {
    generation: i64,
    config: GuildConfig,
}

/// In-process entries: when each was loaded, and the configuration.
type LocalCache = HashMap<i64, (Instant, Arc<GuildConfig>)>;

#[derive(Clone)]
pub struct GuildConfigCache {
    store: Store,
    redis: Option<Redis>,
    local: Arc<Mutex<LocalCache>>,
}

impl GuildConfigCache {
    pub fn new(store: Store, redis: Option<Redis>) -> Self {
        Self {
            store,
            redis,
            local: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, LocalCache> {
        match self.local.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
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

    #[tracing::instrument(skip(self), level = "debug")]
    pub async fn get(&self, guild_id: i64) -> Result<Arc<GuildConfig>, StoreError> {
        if let Some(redis) = &self.redis
            && let Some(mut conn) = redis.conn().await
        {
            let key = redis.key(&["guild_config", &guild_id.to_string()]);
            let gen_key = redis.key(&["guild_config", "generation"]);
            let found: Result<(Option<String>, Option<i64>), _> =
                conn.mget(&[&key, &gen_key]).await;
            match found {
                Ok((cached, generation)) => {
                    let generation = generation.unwrap_or(0);
                    if let Some(cached) =
                        cached.and_then(|c| serde_json::from_str::<Cached>(&c).ok())
                        && cached.generation == generation
                    {
                        return Ok(Arc::new(cached.config));
                    }
                    let config = self.load(guild_id).await?;
                    if let Ok(text) = serde_json::to_string(&Cached {
                        generation,
                        config: config.clone(),
                    }) {
                        let stored: Result<(), _> = conn.set_ex(&key, text, REDIS_TTL_SECS).await;
                        if let Err(e) = stored {
                            redis.report_failure(&e);
                        }
                    }
                    return Ok(Arc::new(config));
                }
                Err(e) => redis.report_failure(&e),
            }
        }
        let ttl = self.redis.as_ref().map(|_| LOCAL_TTL_WITH_REDIS);
        if let Some((at, config)) = self.local().get(&guild_id)
            && ttl.is_none_or(|ttl| at.elapsed() < ttl)
        {
            return Ok(config.clone());
        }
        let config = Arc::new(self.load(guild_id).await?);
        self.local()
            .insert(guild_id, (Instant::now(), config.clone()));
        Ok(config)
    }

    /// Forgets one guild's entry everywhere; call after changing its settings or modules, or
    /// after the bot joins or leaves it.
    pub async fn invalidate(&self, guild_id: i64) {
        self.local().remove(&guild_id);
        if let Some(redis) = &self.redis
            && let Some(mut conn) = redis.conn().await
        {
            let key = redis.key(&["guild_config", &guild_id.to_string()]);
            let deleted: Result<(), _> = conn.del(&key).await;
            if let Err(e) = deleted {
                redis.report_failure(&e);
            }
        }
    }

    /// Forgets every guild's entry, on every instance (`POST /api/v1/bot/reload`).
    pub async fn reload_all(&self) {
        self.local().clear();
        if let Some(redis) = &self.redis
            && let Some(mut conn) = redis.conn().await
        {
            let gen_key = redis.key(&["guild_config", "generation"]);
            let bumped: Result<i64, _> = conn.incr(&gen_key, 1).await;
            if let Err(e) = bumped {
                redis.report_failure(&e);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_config_round_trips_through_json() {
        let config = GuildConfig {
            present: true,
            settings: GuildSettings {
                log_channel_id: Some(42),
                ..GuildSettings::default()
            },
            modules: BTreeMap::from([("moderation".to_owned(), false)]),
        };
        let text = serde_json::to_string(&Cached {
            generation: 3,
            config: config.clone(),
        })
        .unwrap_or_default();
        let back: Result<Cached, _> = serde_json::from_str(&text);
        assert!(
            back.as_ref().is_ok_and(|c| c.config == config),
            "{text} {:?}",
            back.err()
        );
    }
}
