//! Guilds the bot is (or was) in, their settings and their modules.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Lookup, Store, StoreError, find_by, flag};
use crate::domain::Snowflake;
use crate::domain::settings::{
    GuildSettings, MinecraftServerRef, SettingChange, SettingKey, WelcomeMessage,
};
use crate::ids::now_ms;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuildRow {
    #[serde(with = "snowflake")]
    #[schema(value_type = String, pattern = "^[1-9][0-9]{0,18}$")]
    pub id: i64,
    pub name: String,
    pub icon: Option<String>,
    #[serde(with = "snowflake_opt")]
    #[schema(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    pub owner_id: Option<i64>,
    pub member_count: i64,
    pub joined_at: Option<i64>,
    pub left_at: Option<i64>,
    pub updated_at: i64,
}

impl GuildRow {
    pub fn is_present(&self) -> bool {
        self.left_at.is_none()
    }
}

/// What GUILD_CREATE / GUILD_UPDATE tell about a guild.
#[derive(Debug, Clone)]
pub struct GuildUpsert {
    pub id: i64,
    pub name: String,
    pub icon: Option<String>,
    pub owner_id: Option<i64>,
    /// `None` keeps the stored count (GUILD_UPDATE does not carry one).
    pub member_count: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleRow {
    pub name: String,
    pub description: String,
    pub default_enabled: bool,
}

/// Snowflakes are strings in JSON (JavaScript loses precision above 2^53), as Discord does.
mod snowflake {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

mod snowflake_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let raw = Option::<String>::deserialize(d)?;
        raw.map(|r| r.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

const GUILD_COLUMNS: &str =
    "id, name, icon, owner_id, member_count, joined_at, left_at, updated_at";

/// A guild's settings and the version the row is at (bumped by every change).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionedSettings {
    pub settings: GuildSettings,
    pub version: i64,
}

const SETTINGS_COLUMNS: &str = "log_channel_id, mod_role_id, welcome_channel_id, \
     welcome_message, minecraft_server, minecraft_role_id, version";

fn column_of(key: SettingKey) -> &'static str {
    match key {
        SettingKey::LogChannel => "log_channel_id",
        SettingKey::ModRole => "mod_role_id",
        SettingKey::WelcomeChannel => "welcome_channel_id",
        SettingKey::WelcomeMessage => "welcome_message",
        SettingKey::MinecraftServer => "minecraft_server",
        SettingKey::MinecraftRole => "minecraft_role_id",
    }
}

fn settings_from_row(row: &AnyRow) -> Result<VersionedSettings, StoreError> {
    fn corrupt(column: &'static str) -> impl Fn(String) -> StoreError {
        move |e| StoreError::Corrupt(format!("guild_settings.{column}: {e}"))
    }
    let id = |column: &'static str| -> Result<Option<Snowflake>, StoreError> {
        row.try_get::<Option<i64>, _>(column)?
            .map(|v| Snowflake::from_i64(v).map_err(|e| corrupt(column)(e.to_string())))
            .transpose()
    };
    let text = |column: &str| -> Result<Option<String>, StoreError> {
        Ok(row.try_get::<Option<String>, _>(column)?)
    };
    Ok(VersionedSettings {
        settings: GuildSettings {
            log_channel: id("log_channel_id")?,
            mod_role: id("mod_role_id")?,
            welcome_channel: id("welcome_channel_id")?,
            welcome_message: text("welcome_message")?
                .map(|t| WelcomeMessage::parse(&t).map_err(corrupt("welcome_message")))
                .transpose()?,
            minecraft_server: text("minecraft_server")?
                .map(|t| MinecraftServerRef::parse(&t).map_err(corrupt("minecraft_server")))
                .transpose()?,
            minecraft_role: id("minecraft_role_id")?,
        },
        version: row.try_get("version")?,
    })
}

fn guild_from_row(row: &AnyRow) -> Result<GuildRow, StoreError> {
    Ok(GuildRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        icon: row.try_get("icon")?,
        owner_id: row.try_get("owner_id")?,
        member_count: row.try_get("member_count")?,
        joined_at: row.try_get("joined_at")?,
        left_at: row.try_get("left_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Records that the bot is in a guild (GUILD_CREATE): a guild seen again after leaving is
    /// joined anew; one that was never left keeps its join time.
    pub async fn upsert_guild(&self, g: &GuildUpsert) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO guilds (id, name, icon, owner_id, member_count, joined_at, left_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $6) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, icon = excluded.icon, \
             owner_id = excluded.owner_id, member_count = excluded.member_count, \
             joined_at = CASE WHEN guilds.left_at IS NULL AND guilds.joined_at IS NOT NULL \
                 THEN guilds.joined_at ELSE excluded.joined_at END, \
             left_at = NULL, updated_at = excluded.updated_at",
        )
        .bind(g.id)
        .bind(&g.name)
        .bind(&g.icon)
        .bind(g.owner_id)
        .bind(g.member_count.unwrap_or(0))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// GUILD_UPDATE: name, icon and owner change; membership does not.
    pub async fn update_guild(&self, g: &GuildUpsert) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE guilds SET name = $2, icon = $3, owner_id = $4, \
             member_count = COALESCE($5, member_count), updated_at = $6 WHERE id = $1",
        )
        .bind(g.id)
        .bind(&g.name)
        .bind(&g.icon)
        .bind(g.owner_id)
        .bind(g.member_count)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn adjust_member_count(&self, guild_id: i64, delta: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE guilds SET member_count = member_count + $2, updated_at = $3 WHERE id = $1",
        )
        .bind(guild_id)
        .bind(delta)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// GUILD_DELETE without `unavailable`: the bot was removed. Settings and cases stay, so a
    /// guild that re-invites the bot finds them again.
    pub async fn mark_guild_left(&self, guild_id: i64) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query("UPDATE guilds SET left_at = $2, updated_at = $2 WHERE id = $1")
            .bind(guild_id)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn guild(&self, guild_id: i64) -> Result<Option<GuildRow>, StoreError> {
        let lookup = Lookup::new(GUILD_COLUMNS, "guilds", "id");
        find_by(self, lookup, guild_id, guild_from_row).await
    }

    /// The guilds the bot is in now (`include_left` adds the ones it left).
    pub async fn list_guilds(&self, include_left: bool) -> Result<Vec<GuildRow>, StoreError> {
        let filter = if include_left {
            ""
        } else {
            "WHERE left_at IS NULL"
        };
        let sql = format!("SELECT {GUILD_COLUMNS} FROM guilds {filter} ORDER BY name, id");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(guild_from_row)
            .collect()
    }

    /// A guild's settings; defaults when none were saved.
    pub async fn guild_settings(&self, guild_id: i64) -> Result<GuildSettings, StoreError> {
        Ok(self.guild_settings_versioned(guild_id).await?.settings)
    }

    /// A guild's settings and their version (0 when none were saved).
    pub async fn guild_settings_versioned(
        &self,
        guild_id: i64,
    ) -> Result<VersionedSettings, StoreError> {
        let sql = format!("SELECT {SETTINGS_COLUMNS} FROM guild_settings WHERE guild_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(guild_id)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => settings_from_row(&row),
            None => Ok(VersionedSettings::default()),
        }
    }

    /// Sets the given settings (and only those) on the guild's current row in one `UPDATE`,
    /// bumping its version. With `expected`, the row changes only if it is still at that
    /// version; `None` is returned when it was not. A guild without a row gets one first.
    pub async fn update_guild_settings(
        &self,
        guild_id: i64,
        changes: &[SettingChange],
        expected: Option<i64>,
    ) -> Result<Option<VersionedSettings>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO guild_settings (guild_id, updated_at, version) VALUES ($1, $2, 0) \
             ON CONFLICT (guild_id) DO NOTHING",
        )
        .bind(guild_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Column names come from a fixed list; every value is bound.
        let mut sets = Vec::with_capacity(changes.len());
        for (n, change) in changes.iter().enumerate() {
            sets.push(format!("{} = ${}", column_of(change.key()), n + 3));
        }
        let mut sql = format!(
            "UPDATE guild_settings SET {}, version = version + 1, updated_at = $2 \
             WHERE guild_id = $1",
            sets.join(", ")
        );
        if expected.is_some() {
            sql.push_str(&format!(" AND version = ${}", changes.len() + 3));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(guild_id)
            .bind(now);
        for change in changes {
            query = match change {
                SettingChange::LogChannel(v)
                | SettingChange::ModRole(v)
                | SettingChange::WelcomeChannel(v)
                | SettingChange::MinecraftRole(v) => query.bind(v.map(Snowflake::as_i64)),
                SettingChange::WelcomeMessage(v) => {
                    query.bind(v.as_ref().map(|m| m.as_str().to_owned()))
                }
                SettingChange::MinecraftServer(v) => {
                    query.bind(v.as_ref().map(|m| m.as_str().to_owned()))
                }
            };
        }
        if let Some(version) = expected {
            query = query.bind(version);
        }
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let sql = format!("SELECT {SETTINGS_COLUMNS} FROM guild_settings WHERE guild_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(guild_id)
            .fetch_one(&mut *tx)
            .await?;
        let saved = settings_from_row(&row)?;
        tx.commit().await?;
        Ok(Some(saved))
    }

    pub async fn modules(&self) -> Result<Vec<ModuleRow>, StoreError> {
        sqlx::query("SELECT name, description, default_enabled FROM modules ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(ModuleRow {
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    default_enabled: row.try_get::<i32, _>("default_enabled")? != 0,
                })
            })
            .collect()
    }

    /// Each known module with whether it is enabled in the guild (its default when unset).
    pub async fn guild_modules(&self, guild_id: i64) -> Result<Vec<(String, bool)>, StoreError> {
        sqlx::query(
            "SELECT m.name AS name, COALESCE(gm.enabled, m.default_enabled) AS enabled \
             FROM modules m LEFT JOIN guild_modules gm ON gm.module = m.name AND gm.guild_id = $1 \
             ORDER BY m.name",
        )
        .bind(guild_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|row| Ok((row.try_get("name")?, row.try_get::<i32, _>("enabled")? != 0)))
        .collect()
    }

    pub async fn set_guild_module(
        &self,
        guild_id: i64,
        module: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO guild_modules (guild_id, module, enabled, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (guild_id, module) DO UPDATE SET enabled = excluded.enabled, \
             updated_at = excluded.updated_at",
        )
        .bind(guild_id)
        .bind(module)
        .bind(flag(enabled))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
