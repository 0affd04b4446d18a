//! Per-guild settings and modules, cached in process. A change (through the API, a slash
//! command, the bot joining or leaving the guild, or `POST /api/v1/bot/reload`) is announced on
//! the invalidation bus, so this instance forgets the entry at once and, with Redis, every other
//! instance a moment later. With Redis configured, entries also expire after [`SHARED_TTL`]:
//! the bound on staleness while an instance is not subscribed.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::domain::settings::{GuildSettings, ModuleName};
use crate::shared::cache_map::CacheMap;
use crate::shared::invalidation::{Bus, Invalidate, Invalidation};
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

use crate::domain::audit::AuditOrigin;
use crate::state::AppState;
use crate::store::audit::{Actor, NewAuditEntry};

/// Saves a guild's settings, invalidates every instance's cache and records who changed what.
pub async fn save_settings(
    state: &AppState,
    guild_id: i64,
    settings: &GuildSettings,
    actor: Actor,
    origin: &AuditOrigin,
    changed: &[&str],
) -> Result<(), crate::bot::error::CommandError> {
    state.store.put_guild_settings(guild_id, settings).await?;
    state.guild_config.invalidate(guild_id).await;
    state
        .audit
        .record(
            NewAuditEntry::new(actor, "settings.update")
                .origin(origin.clone())
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
    module: ModuleName,
    enabled: bool,
    actor: Actor,
    origin: &AuditOrigin,
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
            NewAuditEntry::new(actor, action)
                .origin(origin.clone())
                .target(format!("module:{module}"))
                .guild(guild_id),
        )
        .await
        .map_err(|e| crate::bot::error::CommandError::Moderation(e.into()))?;
    Ok(())
}
