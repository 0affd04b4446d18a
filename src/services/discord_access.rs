//! Guild access that comes from Discord: recomputed at each Discord sign-in (from the user's
//! guilds and permissions) and when the gateway reports that a linked member's roles changed
//! or that they left. Only `discord_grants` is written here; grants made by hand
//! (`role_grants`) are never touched. Every change is audited and announced on the
//! invalidation bus, so sessions lose (or gain) it within the auth cache's lifetime.

use std::collections::BTreeMap;

use serde_json::json;

use crate::actors::audit::{AuditError, AuditLog};
use crate::auth::cache::AuthCache;
use crate::auth::discord_access::{self, DiscordAccess, MemberStanding};
use crate::auth::discord_oauth::DiscordGuild;
use crate::domain::audit::AuditOrigin;
use crate::services::discord::DiscordLink;
use crate::services::guild_config::GuildConfigCache;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::{Store, StoreError, discord_accounts};

/// What caused a recomputation; written into the audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    SignIn,
    Linked,
    MemberUpdate,
    MemberLeft,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::SignIn => "sign_in",
            Cause::Linked => "linked",
            Cause::MemberUpdate => "member_update",
            Cause::MemberLeft => "member_left",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// One change of a user's access in one guild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub guild_id: i64,
    pub before: Option<DiscordAccess>,
    pub after: Option<DiscordAccess>,
}

#[derive(Clone)]
pub struct DiscordAccessService {
    store: Store,
    audit: AuditLog,
    auth_cache: AuthCache,
    guild_config: GuildConfigCache,
    discord: DiscordLink,
}

fn to_i64(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

impl DiscordAccessService {
    pub fn new(
        store: Store,
        audit: AuditLog,
        auth_cache: AuthCache,
        guild_config: GuildConfigCache,
        discord: DiscordLink,
    ) -> Self {
        Self {
            store,
            audit,
            auth_cache,
            guild_config,
            discord,
        }
    }

    /// The guilds of `guilds` the bot is in now.
    pub async fn shared_guilds<'a>(
        &self,
        guilds: &'a [DiscordGuild],
    ) -> Result<Vec<&'a DiscordGuild>, StoreError> {
        let mut shared = Vec::new();
        for g in guilds {
            if self.guild_config.get(to_i64(g.id)).await?.present {
                shared.push(g);
            }
        }
        Ok(shared)
    }

    /// Recomputes a user's access from their guilds as Discord's `/users/@me/guilds` lists
    /// them (at sign-in or linking). A guild whose moderator role cannot be checked (the bot's
    /// session is down) keeps what it had.
    pub async fn sync_from_guilds(
        &self,
        user_id: i64,
        discord_user_id: u64,
        guilds: &[DiscordGuild],
        cause: Cause,
        origin: &AuditOrigin,
    ) -> Result<Vec<Change>, AccessError> {
        let before = discord_accounts::stored_access(&self.store, user_id).await?;
        let mut after: BTreeMap<i64, DiscordAccess> = BTreeMap::new();
        for g in self.shared_guilds(guilds).await? {
            let guild_id = to_i64(g.id);
            let config = self.guild_config.get(guild_id).await?;
            let mod_role = config.settings.mod_role.map(|r| r.get());
            let mut standing = MemberStanding {
                owner: g.owner,
                permissions: g.permissions,
                roles: Some(Vec::new()),
                mod_role,
            };
            let manages = DiscordAccess::of_member(&standing) == Some(DiscordAccess::Manage);
            if !manages && mod_role.is_some() {
                standing.roles = self.member_roles(g.id, discord_user_id).await;
                if standing.roles.is_none() {
                    if let Some(kept) = before.get(&guild_id) {
                        after.insert(guild_id, *kept);
                    }
                    continue;
                }
            }
            if let Some(access) = DiscordAccess::of_member(&standing) {
                after.insert(guild_id, access);
            }
        }
        let mut guild_ids: Vec<i64> = before.keys().chain(after.keys()).copied().collect();
        guild_ids.sort_unstable();
        guild_ids.dedup();
        let changes: Vec<Change> = guild_ids
            .into_iter()
            .map(|guild_id| Change {
                guild_id,
                before: before.get(&guild_id).copied(),
                after: after.get(&guild_id).copied(),
            })
            .filter(|c| c.before != c.after)
            .collect();
        self.apply(user_id, discord_user_id, &changes, cause, origin)
            .await?;
        Ok(changes)
    }

    /// GUILD_MEMBER_UPDATE from the event handler: recompute, log a failure (the next
    /// sign-in or event recomputes again).
    pub async fn on_member_update(&self, event: &serenity::all::GuildMemberUpdateEvent) {
        let roles: Vec<u64> = event.roles.iter().map(|r| r.get()).collect();
        let (guild, user) = (event.guild_id.get(), event.user.id.get());
        if let Err(e) = self.member_updated(guild, user, &roles).await {
            tracing::error!(guild, error = ?e, "cannot recompute Discord access after a role change");
        }
    }

    /// GUILD_MEMBER_REMOVE from the event handler.
    pub async fn on_member_remove(&self, guild: u64, user: u64) {
        if let Err(e) = self.member_left(guild, user).await {
            tracing::error!(guild, error = ?e, "cannot remove Discord access of a member who left");
        }
    }

    /// The gateway reported a member's roles (GUILD_MEMBER_UPDATE). Nothing happens for a
    /// Discord user no guildhall account is linked to.
    pub async fn member_updated(
        &self,
        guild_id: u64,
        discord_user_id: u64,
        roles: &[u64],
    ) -> Result<Vec<Change>, AccessError> {
        let Some(link) =
            discord_accounts::by_discord_id(&self.store, to_i64(discord_user_id)).await?
        else {
            return Ok(Vec::new());
        };
        let gid = to_i64(guild_id);
        let config = self.guild_config.get(gid).await?;
        let before = discord_accounts::stored_access(&self.store, link.user_id)
            .await?
            .get(&gid)
            .copied();
        let after = if config.present {
            let owner = self
                .store
                .guild(gid)
                .await?
                .and_then(|g| g.owner_id)
                .is_some_and(|o| o == to_i64(discord_user_id));
            let Some(permissions) = self.role_permissions(guild_id, roles).await else {
                // Without the guild's roles the permissions are unknown: change nothing.
                tracing::warn!(
                    guild = guild_id,
                    "cannot read the guild's roles; Discord access not recomputed"
                );
                return Ok(Vec::new());
            };
            DiscordAccess::of_member(&MemberStanding {
                owner,
                permissions,
                roles: Some(roles.to_vec()),
                mod_role: config.settings.mod_role.map(|r| r.get()),
            })
        } else {
            None
        };
        self.change_one(
            link.user_id,
            discord_user_id,
            gid,
            before,
            after,
            Cause::MemberUpdate,
        )
        .await
    }

    /// The gateway reported that a member left (GUILD_MEMBER_REMOVE): their access there goes.
    pub async fn member_left(
        &self,
        guild_id: u64,
        discord_user_id: u64,
    ) -> Result<Vec<Change>, AccessError> {
        let Some(link) =
            discord_accounts::by_discord_id(&self.store, to_i64(discord_user_id)).await?
        else {
            return Ok(Vec::new());
        };
        let gid = to_i64(guild_id);
        let before = discord_accounts::stored_access(&self.store, link.user_id)
            .await?
            .get(&gid)
            .copied();
        self.change_one(
            link.user_id,
            discord_user_id,
            gid,
            before,
            None,
            Cause::MemberLeft,
        )
        .await
    }

    async fn change_one(
        &self,
        user_id: i64,
        discord_user_id: u64,
        guild_id: i64,
        before: Option<DiscordAccess>,
        after: Option<DiscordAccess>,
        cause: Cause,
    ) -> Result<Vec<Change>, AccessError> {
        if before == after {
            return Ok(Vec::new());
        }
        let changes = vec![Change {
            guild_id,
            before,
            after,
        }];
        self.apply(
            user_id,
            discord_user_id,
            &changes,
            cause,
            &AuditOrigin::internal(),
        )
        .await?;
        Ok(changes)
    }

    /// Stores the changes in one transaction, forgets the user's cached grants everywhere and
    /// audits each change.
    async fn apply(
        &self,
        user_id: i64,
        discord_user_id: u64,
        changes: &[Change],
        cause: Cause,
        origin: &AuditOrigin,
    ) -> Result<(), AccessError> {
        if changes.is_empty() {
            return Ok(());
        }
        let rows: Vec<(i64, Option<DiscordAccess>)> =
            changes.iter().map(|c| (c.guild_id, c.after)).collect();
        discord_accounts::apply_access(&self.store, user_id, &rows).await?;
        self.auth_cache.forget_user(user_id).await;
        for c in changes {
            let action = match (c.before, c.after) {
                (None, Some(_)) => "discord.access_granted",
                (Some(_), None) => "discord.access_revoked",
                _ => "discord.access_changed",
            };
            self.audit
                .record(
                    NewAuditEntry::new(Actor::System, action)
                        .target(format!("user:{user_id}"))
                        .guild(c.guild_id)
                        .details(json!({
                            "discord_user_id": discord_user_id.to_string(),
                            "before": c.before.map(DiscordAccess::as_str),
                            "after": c.after.map(DiscordAccess::as_str),
                            "cause": cause.as_str(),
                        }))
                        .origin(origin.clone()),
                )
                .await?;
        }
        Ok(())
    }

    /// A member's role ids through the bot's REST client; `None` when it cannot tell (no
    /// session, or Discord failed). A member not in the guild holds no role.
    async fn member_roles(&self, guild_id: u64, user_id: u64) -> Option<Vec<u64>> {
        use serenity::model::id::{GuildId, UserId};
        let http = self.discord.http()?;
        match http
            .get_member(GuildId::new(guild_id), UserId::new(user_id))
            .await
        {
            Ok(member) => Some(member.roles.iter().map(|r| r.get()).collect()),
            Err(serenity::Error::Http(e)) if e.status_code().is_some_and(|s| s.as_u16() == 404) => {
                Some(Vec::new())
            }
            Err(e) => {
                tracing::warn!(guild = guild_id, error = %crate::services::moderation::describe_discord_error(&e), "cannot read a member's roles");
                None
            }
        }
    }

    /// The member's base permissions from the guild's roles (read through the bot's REST
    /// client); `None` when they cannot be read.
    async fn role_permissions(&self, guild_id: u64, member_roles: &[u64]) -> Option<u64> {
        use serenity::model::id::GuildId;
        let http = self.discord.http()?;
        match http.get_guild_roles(GuildId::new(guild_id)).await {
            Ok(roles) => {
                let roles: Vec<(u64, u64)> = roles
                    .iter()
                    .map(|r| (r.id.get(), r.permissions.bits()))
                    .collect();
                Some(discord_access::base_permissions(
                    guild_id,
                    member_roles,
                    &roles,
                ))
            }
            Err(e) => {
                tracing::warn!(guild = guild_id, error = %crate::services::moderation::describe_discord_error(&e), "cannot read the guild's roles");
                None
            }
        }
    }
}
