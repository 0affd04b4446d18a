//! Per-guild settings and modules, cached in process. A change (through the API, a slash
//! command, the bot joining or leaving the guild, or `POST /api/v1/bot/reload`) is announced on
//! the invalidation bus, so this instance forgets the entry at once and, with Redis, every other
//! instance a moment later. With Redis configured, entries also expire after [`SHARED_TTL`]:
//! the bound on staleness while an instance is not subscribed.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::clock::Clock;
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
    /// The settings' version (the `ETag` of `GET /api/v1/settings/{guild}`), cached with them
    /// so that a read needs no query; every write invalidates the entry.
    pub version: i64,
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
        Self::with_clock(store, bus, Clock::System)
    }

    /// Entries age by `clock` (tests hold a manual one still).
    pub fn with_clock(store: Store, bus: Bus, clock: Clock) -> Self {
        // Alone, every change goes through this process: entries need no lifetime.
        let ttl = bus.is_shared().then_some(SHARED_TTL);
        let entries = Arc::new(Entries(CacheMap::with_clock(ttl, clock)));
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
        let VersionedSettings { settings, version } =
            self.store.guild_settings_versioned(guild_id).await?;
        let modules = self
            .store
            .guild_modules(guild_id)
            .await?
            .into_iter()
            .collect();
        Ok(GuildConfig {
            present,
            settings,
            version,
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

use crate::actors::audit::{AuditError, AuditLog};
use crate::domain::Snowflake;
use crate::domain::audit::AuditOrigin;
use crate::domain::settings::SettingChange;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::guilds::{GuildRow, VersionedSettings};

#[derive(Debug, thiserror::Error)]
pub enum GuildConfigError {
    #[error("the bot is not in guild {0}")]
    UnknownGuild(Snowflake),
    #[error("the body names no setting to change")]
    NothingToChange,
    #[error(
        "the settings were changed since version {expected} was read (now version {current}); read them again"
    )]
    VersionMismatch { expected: i64, current: i64 },
    #[error("the guild configuration could not be read or saved")]
    Store(#[from] StoreError),
    #[error("the audit log could not be written")]
    Audit(#[from] AuditError),
}

/// A guild as the API shows it: its row, settings and modules.
#[derive(Debug, Clone)]
pub struct GuildOverview {
    pub guild: GuildRow,
    pub settings: GuildSettings,
    pub modules: BTreeMap<String, bool>,
}

/// Reads and changes guilds' settings and modules, for the API, the pages and `/settings` and
/// `/module` alike: every change is one atomic write, invalidates every instance's cache and is
/// recorded in the audit log before it is acknowledged.
#[derive(Clone)]
pub struct GuildConfigService {
    store: Store,
    audit: AuditLog,
    cache: GuildConfigCache,
}

impl GuildConfigService {
    pub fn new(store: Store, audit: AuditLog, cache: GuildConfigCache) -> Self {
        Self {
            store,
            audit,
            cache,
        }
    }

    /// The guild's cached configuration, if the bot is in it. No query when cached.
    pub async fn config(&self, guild: Snowflake) -> Result<Arc<GuildConfig>, GuildConfigError> {
        let config = self.cache.get(guild.as_i64()).await?;
        if config.present {
            Ok(config)
        } else {
            Err(GuildConfigError::UnknownGuild(guild))
        }
    }

    /// The guilds the bot is in.
    pub async fn list(&self) -> Result<Vec<GuildRow>, GuildConfigError> {
        Ok(self.store.list_guilds(false).await?)
    }

    /// The guild's row (read fresh: its member count changes with every join), settings and
    /// modules.
    pub async fn overview(&self, guild: Snowflake) -> Result<GuildOverview, GuildConfigError> {
        let row = self
            .store
            .guild(guild.as_i64())
            .await?
            .filter(GuildRow::is_present)
            .ok_or(GuildConfigError::UnknownGuild(guild))?;
        let config = self.cache.get(guild.as_i64()).await?;
        Ok(GuildOverview {
            guild: row,
            settings: config.settings.clone(),
            modules: config.modules.clone(),
        })
    }

    /// The guild's settings with their version (the `ETag` a later write names in
    /// `If-Match`), from the cache: no query when cached. A write elsewhere invalidates the
    /// entry before it is acknowledged, and `If-Match` is checked against the row itself.
    pub async fn settings(&self, guild: Snowflake) -> Result<VersionedSettings, GuildConfigError> {
        let config = self.config(guild).await?;
        Ok(VersionedSettings {
            settings: config.settings.clone(),
            version: config.version,
        })
    }

    /// Replaces every setting.
    pub async fn replace(
        &self,
        guild: Snowflake,
        settings: &GuildSettings,
        if_match: Option<i64>,
        actor: Actor,
        origin: AuditOrigin,
    ) -> Result<VersionedSettings, GuildConfigError> {
        self.change(guild, settings.changes(), if_match, actor, origin)
            .await
    }

    /// Changes the named settings and only those, in one statement on the current row (so a
    /// concurrent change of another setting is kept), bumping the version. With `if_match`,
    /// nothing changes unless the row is still at that version.
    pub async fn change(
        &self,
        guild: Snowflake,
        changes: Vec<SettingChange>,
        if_match: Option<i64>,
        actor: Actor,
        origin: AuditOrigin,
    ) -> Result<VersionedSettings, GuildConfigError> {
        if changes.is_empty() {
            return Err(GuildConfigError::NothingToChange);
        }
        self.config(guild).await?;
        let id = guild.as_i64();
        let saved = match self
            .store
            .update_guild_settings(id, &changes, if_match)
            .await?
        {
            Some(saved) => saved,
            None => {
                let current = self.store.guild_settings_versioned(id).await?.version;
                return Err(GuildConfigError::VersionMismatch {
                    expected: if_match.unwrap_or(current),
                    current,
                });
            }
        };
        self.cache.invalidate(id).await;
        let changed: Vec<&str> = changes.iter().map(|c| c.key().as_str()).collect();
        self.audit
            .record(
                NewAuditEntry::new(actor, "settings.update")
                    .origin(origin)
                    .target(format!("guild:{guild}"))
                    .guild(id)
                    .details(serde_json::json!({ "changed": changed, "version": saved.version })),
            )
            .await?;
        Ok(saved)
    }

    /// Enables or disables a module in a guild.
    pub async fn set_module(
        &self,
        guild: Snowflake,
        module: ModuleName,
        enabled: bool,
        actor: Actor,
        origin: AuditOrigin,
    ) -> Result<(), GuildConfigError> {
        self.config(guild).await?;
        let id = guild.as_i64();
        self.store
            .set_guild_module(id, module.as_str(), enabled)
            .await?;
        self.cache.invalidate(id).await;
        let action = if enabled {
            "module.enable"
        } else {
            "module.disable"
        };
        self.audit
            .record(
                NewAuditEntry::new(actor, action)
                    .origin(origin)
                    .target(format!("module:{module}"))
                    .guild(id),
            )
            .await?;
        Ok(())
    }
}
