//! Minecraft accounts linked to Discord members (`LinkService`): `/mc link` whispers a one-time
//! code in game, `/mc verify` completes the link, `/mc unlink` and the API's admin link and
//! unlink; and the whitelist that follows the guild's Minecraft role, applied on each member
//! event (`member_updated`, `member_left`). The reconciliation that compares a server's whole
//! whitelist with the links is in [`super::links_sync`]; the whitelist commands and their
//! audit entries, shared by both, in [`super::links_whitelist`].
//!
//! Nothing is half-done: a link is stored only after its whitelist change succeeded (an RCON
//! outage refuses the link and keeps the code usable); an unlink removes the name from the
//! whitelist before it forgets the link; every whitelist change is audited with its cause.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::Sha256;

use super::command::ServerName;
use super::links_whitelist::{Cause, Op, WhitelistError};
use super::service::{MinecraftError, MinecraftService};
use crate::actors::audit::AuditError;
use crate::clock::Clock;
use crate::domain::audit::AuditOrigin;
use crate::services::discord::DiscordLink;
use crate::services::guild_config::GuildConfigCache;
use crate::shared::ratelimit::{Quota, RateLimiter};
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::minecraft_links::{self as links, LinkConflict, NewLink, StoredLink};
use crate::store::{Store, StoreError};

/// A code is valid this long after it was whispered.
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// Wrong guesses a code survives; the next one burns it.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// `/mc link` per member and guild: each whispers in game, so it is kept rare.
pub const LINK_QUOTA: Quota = Quota {
    limit: 3,
    window: Duration::from_secs(600),
};
/// `/mc verify` per member and guild, on top of the attempts a code survives.
pub const VERIFY_QUOTA: Quota = Quota {
    limit: 10,
    window: Duration::from_secs(600),
};
/// Codes avoid characters read alike (0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 6;

/// A Minecraft Java player name: 3 to 16 of `A-Z a-z 0-9 _`. Names are case-insensitive in
/// the game; the case given is kept for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinecraftName(String);

impl MinecraftName {
    pub fn parse(raw: &str) -> Result<Self, LinkError> {
        let name = raw.trim();
        let valid = (3..=16).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(LinkError::InvalidName(raw.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The links boundary's error; the HTTP layer and the bot map every variant.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("`{0}` is not a Minecraft player name (3 to 16 letters, digits or `_`)")]
    InvalidName(String),
    #[error("{0} is not online on the Minecraft server; join the server first, then ask again")]
    PlayerNotOnline(String),
    #[error("the Minecraft name {0} is already linked to a member on this server")]
    NameTaken(String),
    #[error("already linked to the Minecraft name {0}; unlink it first")]
    AlreadyLinked(String),
    #[error("no Minecraft name is linked")]
    NotLinked,
    #[error("no link code is pending; ask for one with `/mc link`")]
    NoPendingCode,
    #[error("that code has expired; ask for a new one with `/mc link`")]
    CodeExpired,
    #[error("that code is wrong ({attempts_left} attempts left)")]
    WrongCode { attempts_left: i64 },
    #[error("too many attempts; try again in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("that user is not a member of the guild")]
    NotAMember,
    #[error("Discord cannot be reached: {0}")]
    Discord(String),
    #[error("the Minecraft server refused the whitelist change: {0}")]
    WhitelistRefused(String),
    #[error(transparent)]
    Minecraft(#[from] MinecraftError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the action was not recorded in the audit log: {0}")]
    Audit(#[from] AuditError),
}

impl LinkError {
    /// The message as a sentence (capitalised), for Discord replies.
    pub fn reply(&self) -> String {
        let text = self.to_string();
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
            None => text,
        }
    }
}

impl From<WhitelistError> for LinkError {
    fn from(e: WhitelistError) -> Self {
        match e {
            WhitelistError::Minecraft(e) => LinkError::Minecraft(e),
            WhitelistError::Refused(answer) => LinkError::WhitelistRefused(answer),
            WhitelistError::Store(e) => LinkError::Store(e),
            WhitelistError::Audit(e) => LinkError::Audit(e),
        }
    }
}

/// Who acts, as the audit log records it.
#[derive(Debug, Clone)]
pub struct LinkActor {
    pub actor: Actor,
    pub origin: AuditOrigin,
}

/// A guild's links with the state of its server's reconciliation.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct GuildLinks {
    /// The server the guild's links are on; null when the guild has none.
    pub server: Option<String>,
    /// The guild's Minecraft role (a string id): members holding it are whitelisted; null
    /// when unset (then the whitelist does not follow roles).
    pub minecraft_role: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub links: Vec<StoredLink>,
    /// The last reconciliation of the server: `at`, `outcome` and `result`; null before one.
    #[schema(value_type = Option<Object>)]
    pub last_reconciliation: Option<serde_json::Value>,
    /// When the next reconciliation is due (Unix ms).
    pub next_reconciliation_at: Option<i64>,
    pub kick_on_remove: bool,
}

#[derive(Clone)]
pub struct LinkService {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) minecraft: MinecraftService,
    pub(super) guild_config: GuildConfigCache,
    discord: DiscordLink,
    limiter: RateLimiter,
    pub(super) clock: Clock,
    code_key: SecretString,
    /// How often each server's whitelist is reconciled.
    pub(super) interval: Duration,
}

impl LinkService {
    pub fn new(
        minecraft: MinecraftService,
        guild_config: GuildConfigCache,
        discord: DiscordLink,
        limiter: RateLimiter,
        clock: Clock,
        code_key: SecretString,
        interval: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                minecraft,
                guild_config,
                discord,
                limiter,
                clock,
                code_key,
                interval,
            }),
        }
    }

    pub(super) fn store(&self) -> &Store {
        self.inner.minecraft.store()
    }

    pub(super) fn minecraft(&self) -> &MinecraftService {
        &self.inner.minecraft
    }

    pub(super) fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The server the guild's `/mc` talks to: its `minecraft_server` setting, else the server
    /// linked to the guild, else `default`.
    pub async fn server_for(&self, guild_id: i64) -> Result<ServerName, LinkError> {
        let config = self.inner.guild_config.get(guild_id).await?;
        Ok(match &config.settings.minecraft_server {
            Some(name) => self.minecraft().server(name.as_str())?,
            None => self.minecraft().server_for_guild(guild_id).await?,
        })
    }

    /// The guild's Minecraft role, if set.
    pub(super) async fn role_of(&self, guild_id: i64) -> Result<Option<i64>, StoreError> {
        let config = self.inner.guild_config.get(guild_id).await?;
        Ok(config.settings.minecraft_role.map(|r| r.as_i64()))
    }

    async fn limit(
        &self,
        bucket: &str,
        guild: i64,
        user: i64,
        quota: Quota,
    ) -> Result<(), LinkError> {
        let decision = self
            .inner
            .limiter
            .hit(bucket, &format!("{guild}:{user}"), quota)
            .await;
        if decision.allowed {
            Ok(())
        } else {
            Err(LinkError::RateLimited {
                retry_after: decision.reset_after,
            })
        }
    }

    fn code_hash(&self, guild: i64, user: i64, code: &str) -> String {
        let key = self.inner.code_key.expose_secret().as_bytes();
        // HMAC accepts keys of any length; the fallback only satisfies the type.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return String::new();
        };
        mac.update(format!("minecraft-link:{guild}:{user}:{code}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `/mc link <name>`: checks the name and that the player is online, then whispers a code
    /// to them in game (`tellraw`). The code is stored only as an HMAC.
    #[tracing::instrument(skip(self, by), fields(guild = guild_id, user = user_id))]
    pub async fn request_code(
        &self,
        guild_id: i64,
        user_id: i64,
        raw_name: &str,
        by: &LinkActor,
    ) -> Result<ServerName, LinkError> {
        let name = MinecraftName::parse(raw_name)?;
        self.limit("mc_link", guild_id, user_id, LINK_QUOTA).await?;
        let server = self.server_for(guild_id).await?;
        if let Some(link) = links::of_member(self.store(), guild_id, user_id).await? {
            return Err(LinkError::AlreadyLinked(link.minecraft_name));
        }
        if let Some(link) = links::of_name(self.store(), server.as_str(), name.as_str()).await? {
            return Err(LinkError::NameTaken(link.minecraft_name));
        }
        let players = self.minecraft().players(&server).await?;
        // The name as the server spells it.
        let Some(online) = players
            .names
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name.as_str()))
            .cloned()
        else {
            return Err(LinkError::PlayerNotOnline(name.as_str().to_owned()));
        };
        let code: String = {
            let mut rng = rand::rng();
            (0..CODE_LEN)
                .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
                .collect()
        };
        let expires_at = self.now() + i64::try_from(CODE_LIFETIME.as_millis()).unwrap_or(0);
        links::put_code(
            self.store(),
            guild_id,
            user_id,
            server.as_str(),
            &online,
            &self.code_hash(guild_id, user_id, &code),
            expires_at,
        )
        .await?;
        let whispered = self.whisper(&server, &online, &code).await;
        if let Err(e) = whispered {
            // The player never saw it: no code stays behind.
            links::drop_code(self.store(), guild_id, user_id).await?;
            return Err(e);
        }
        self.audit(
            by,
            guild_id,
            "minecraft.link_code_sent",
            json!({"server": server, "minecraft_name": online, "discord_user_id": user_id.to_string(),
                   "expires_at": expires_at}),
        )
        .await?;
        Ok(server)
    }

    async fn whisper(&self, server: &ServerName, name: &str, code: &str) -> Result<(), LinkError> {
        let message = json!([
            {"text": "[guildhall] ", "color": "gray"},
            {"text": "Your Discord link code is "},
            {"text": code, "color": "gold", "bold": true},
            {"text": format!(" — type /mc verify {code} in Discord within 10 minutes.")}
        ]);
        let answer = super::links_whitelist::system_command(
            self.minecraft(),
            server,
            &format!("tellraw {name} {message}"),
        )
        .await?;
        // tellraw answers nothing when it reached the player; Minecraft's "No player was
        // found" means they left meanwhile.
        if answer.trim().is_empty() {
            Ok(())
        } else if answer.contains("No player was found") {
            Err(LinkError::PlayerNotOnline(name.to_owned()))
        } else {
            Err(LinkError::WhitelistRefused(answer))
        }
    }

    /// `/mc verify <code>`: completes the link when the code is the member's, unexpired and
    /// unused. `roles` are the member's Discord roles (from the interaction).
    #[tracing::instrument(skip(self, code, roles, by), fields(guild = guild_id, user = user_id))]
    pub async fn verify(
        &self,
        guild_id: i64,
        user_id: i64,
        code: &str,
        roles: &[i64],
        by: &LinkActor,
    ) -> Result<StoredLink, LinkError> {
        self.limit("mc_verify", guild_id, user_id, VERIFY_QUOTA)
            .await?;
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let Some(pending) = links::code(self.store(), guild_id, user_id).await? else {
            return Err(LinkError::NoPendingCode);
        };
        if self.now() > pending.expires_at {
            links::drop_code(self.store(), guild_id, user_id).await?;
            return Err(LinkError::CodeExpired);
        }
        let hash = self.code_hash(guild_id, user_id, &code);
        // Single use: exactly one caller deletes the matching row.
        if !links::take_code(self.store(), guild_id, user_id, &hash).await? {
            let attempts = links::count_attempt(self.store(), guild_id, user_id).await?;
            if attempts >= MAX_CODE_ATTEMPTS {
                links::drop_code(self.store(), guild_id, user_id).await?;
            }
            return Err(LinkError::WrongCode {
                attempts_left: (MAX_CODE_ATTEMPTS - attempts).max(0),
            });
        }
        let server = self.minecraft().server(&pending.server)?;
        let created = self
            .create_link(
                guild_id,
                user_id,
                &server,
                &pending.minecraft_name,
                roles,
                by,
            )
            .await;
        if created.is_err() {
            // The code was right: it stays usable for another try once the cause is gone.
            links::put_code(
                self.store(),
                guild_id,
                user_id,
                &pending.server,
                &pending.minecraft_name,
                &pending.code_hash,
                pending.expires_at,
            )
            .await?;
        }
        created
    }

    /// An admin links a member without a code (the API and the dashboard). The member's roles
    /// are read from Discord, which also proves they are a member.
    #[tracing::instrument(skip(self, by), fields(guild = guild_id, user = user_id))]
    pub async fn admin_link(
        &self,
        guild_id: i64,
        user_id: i64,
        raw_name: &str,
        by: &LinkActor,
    ) -> Result<StoredLink, LinkError> {
        let name = MinecraftName::parse(raw_name)?;
        let server = self.server_for(guild_id).await?;
        let roles = self.member_roles(guild_id, user_id).await?;
        self.create_link(guild_id, user_id, &server, name.as_str(), &roles, by)
            .await
    }

    async fn member_roles(&self, guild_id: i64, user_id: i64) -> Result<Vec<i64>, LinkError> {
        use serenity::model::id::{GuildId, UserId};
        let http = self
            .inner
            .discord
            .http()
            .ok_or_else(|| LinkError::Discord("no Discord session is running".into()))?;
        let (Ok(g), Ok(u)) = (u64::try_from(guild_id), u64::try_from(user_id)) else {
            return Err(LinkError::NotAMember);
        };
        if g == 0 || u == 0 {
            return Err(LinkError::NotAMember);
        }
        match http.get_member(GuildId::new(g), UserId::new(u)).await {
            Ok(member) => Ok(member
                .roles
                .iter()
                .filter_map(|r| i64::try_from(r.get()).ok())
                .collect()),
            Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)))
                if r.status_code.as_u16() == 404 =>
            {
                Err(LinkError::NotAMember)
            }
            Err(e) => Err(LinkError::Discord(
                crate::services::moderation::describe_discord_error(&e),
            )),
        }
    }

    /// Whether a member with these roles belongs on the whitelist (`None`: the guild has no
    /// Minecraft role, so the whitelist does not follow roles there).
    pub(super) fn wanted(role: Option<i64>, roles: &[i64], in_guild: bool) -> Option<bool> {
        role.map(|r| in_guild && roles.contains(&r))
    }

    async fn create_link(
        &self,
        guild_id: i64,
        user_id: i64,
        server: &ServerName,
        name: &str,
        roles: &[i64],
        by: &LinkActor,
    ) -> Result<StoredLink, LinkError> {
        if let Some(link) = links::of_member(self.store(), guild_id, user_id).await? {
            return Err(LinkError::AlreadyLinked(link.minecraft_name));
        }
        if let Some(link) = links::of_name(self.store(), server.as_str(), name).await? {
            return Err(LinkError::NameTaken(link.minecraft_name));
        }
        let wanted = Self::wanted(self.role_of(guild_id).await?, roles, true).unwrap_or(false);
        let new = NewLink {
            guild_id,
            server: server.to_string(),
            discord_user_id: user_id,
            minecraft_name: name.to_owned(),
            roles: roles.to_vec(),
            whitelisted: wanted,
            linked_by: by.actor.label(),
        };
        // The whitelist first: a link is stored only with its whitelist state true.
        if wanted {
            self.change(server, &new_subject(&new), Op::Add, Cause::Link, by)
                .await?;
        }
        let stored = match links::insert(self.store(), &new).await? {
            Ok(stored) => stored,
            Err(conflict) => {
                if wanted {
                    // Lost a race for the name or the member: undo our whitelist change.
                    self.change(server, &new_subject(&new), Op::Remove, Cause::Link, by)
                        .await?;
                }
                return Err(match conflict {
                    LinkConflict::NameTaken => LinkError::NameTaken(name.to_owned()),
                    LinkConflict::MemberLinked => LinkError::AlreadyLinked(name.to_owned()),
                });
            }
        };
        links::ensure_sync(self.store(), server.as_str(), self.next_round()).await?;
        self.audit(
            by,
            guild_id,
            "minecraft.link",
            json!({"server": server, "minecraft_name": name, "discord_user_id": user_id.to_string(),
                   "whitelisted": wanted, "cause": Cause::Link.as_str()}),
        )
        .await?;
        Ok(stored)
    }

    pub(super) fn next_round(&self) -> i64 {
        self.now() + i64::try_from(self.inner.interval.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// `/mc unlink` and the admin unlink: off the whitelist first (an RCON outage refuses the
    /// unlink and changes nothing), then the link is forgotten.
    #[tracing::instrument(skip(self, by), fields(guild = guild_id, user = user_id))]
    pub async fn unlink(
        &self,
        guild_id: i64,
        user_id: i64,
        by: &LinkActor,
    ) -> Result<StoredLink, LinkError> {
        let Some(link) = links::of_member(self.store(), guild_id, user_id).await? else {
            return Err(LinkError::NotLinked);
        };
        if link.whitelisted {
            let server = self.minecraft().server(&link.server)?;
            self.change(&server, &subject(&link), Op::Remove, Cause::Unlink, by)
                .await?;
        }
        links::delete(self.store(), link.id).await?;
        self.audit(
            by,
            guild_id,
            "minecraft.unlink",
            json!({"server": link.server, "minecraft_name": link.minecraft_name,
                   "discord_user_id": user_id.to_string(), "cause": Cause::Unlink.as_str()}),
        )
        .await?;
        Ok(link)
    }

    /// GUILD_MEMBER_UPDATE: records the member's roles and, when the guild's Minecraft role
    /// came or went, changes the whitelist. Failures are logged; the reconciliation (and the
    /// one that follows a server coming back) repairs what an event could not do.
    pub async fn member_updated(&self, guild_id: i64, user_id: i64, roles: Vec<i64>) {
        if let Err(e) = self.apply_member(guild_id, user_id, &roles, true).await {
            tracing::warn!(guild = guild_id, user = user_id, error = %e, "whitelist not updated after a role change; the reconciliation will retry");
        }
    }

    /// GUILD_MEMBER_REMOVE: the member is off the whitelist (the link is kept, marked as
    /// having left, so a return with the role whitelists them again).
    pub async fn member_left(&self, guild_id: i64, user_id: i64) {
        if let Err(e) = self.apply_member(guild_id, user_id, &[], false).await {
            tracing::warn!(guild = guild_id, user = user_id, error = %e, "whitelist not updated after a member left; the reconciliation will retry");
        }
    }

    async fn apply_member(
        &self,
        guild_id: i64,
        user_id: i64,
        roles: &[i64],
        in_guild: bool,
    ) -> Result<(), LinkError> {
        let Some(link) =
            links::set_member(self.store(), guild_id, user_id, roles, in_guild).await?
        else {
            return Ok(()); // not linked: nothing to follow
        };
        let Some(wanted) = Self::wanted(self.role_of(guild_id).await?, roles, in_guild) else {
            return Ok(());
        };
        if wanted == link.whitelisted {
            return Ok(());
        }
        let (op, cause) = match (wanted, in_guild) {
            (true, _) => (Op::Add, Cause::RoleAdded),
            (false, true) => (Op::Remove, Cause::RoleRemoved),
            (false, false) => (Op::Remove, Cause::MemberLeft),
        };
        let server = self.minecraft().server(&link.server)?;
        let by = LinkActor {
            actor: Actor::System,
            origin: AuditOrigin::internal(),
        };
        self.change(&server, &subject(&link), op, cause, &by)
            .await?;
        if op == Op::Remove && self.kicks(&server).await? {
            super::links_whitelist::kick_if_online(self, &server, &subject(&link), cause, &by)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn kicks(&self, server: &ServerName) -> Result<bool, StoreError> {
        Ok(links::sync_state(self.store(), server.as_str())
            .await?
            .is_some_and(|s| s.kick_on_remove))
    }

    /// One whitelist change with its audit entry and the link's recorded state.
    async fn change(
        &self,
        server: &ServerName,
        who: &super::links_whitelist::Subject,
        op: Op,
        cause: Cause,
        by: &LinkActor,
    ) -> Result<(), LinkError> {
        super::links_whitelist::change(self, server, who, op, cause, by).await?;
        Ok(())
    }

    /// A guild's links and its server's reconciliation.
    pub async fn guild_links(&self, guild_id: i64) -> Result<GuildLinks, LinkError> {
        let all = links::of_guild(self.store(), guild_id).await?;
        let server = match all.first() {
            Some(link) => Some(link.server.clone()),
            None => self.server_for(guild_id).await.ok().map(|s| s.to_string()),
        };
        let sync = match &server {
            Some(s) => links::sync_state(self.store(), s).await?,
            None => None,
        };
        Ok(GuildLinks {
            minecraft_role: self.role_of(guild_id).await?.map(|r| r.to_string()),
            server,
            links: all,
            last_reconciliation: sync.as_ref().and_then(|s| {
                s.last_run_at
                    .map(|at| json!({"at": at, "outcome": s.last_outcome, "result": s.last_result}))
            }),
            next_reconciliation_at: sync.as_ref().map(|s| s.next_run_at),
            kick_on_remove: sync.is_some_and(|s| s.kick_on_remove),
        })
    }

    /// Turns kicking on removal on or off for the guild's server (audited).
    pub async fn set_kick_on_remove(
        &self,
        guild_id: i64,
        kick: bool,
        by: &LinkActor,
    ) -> Result<(), LinkError> {
        let server = self.server_for(guild_id).await?;
        links::set_kick_on_remove(self.store(), server.as_str(), kick).await?;
        self.audit(
            by,
            guild_id,
            "minecraft.whitelist_options",
            json!({"server": server, "kick_on_remove": kick}),
        )
        .await?;
        Ok(())
    }

    pub(super) async fn audit(
        &self,
        by: &LinkActor,
        guild_id: i64,
        action: &str,
        details: serde_json::Value,
    ) -> Result<i64, AuditError> {
        let server = details["server"].as_str().unwrap_or_default().to_owned();
        let entry = NewAuditEntry::new(by.actor.clone(), action)
            .origin(by.origin.clone())
            .target(format!("minecraft:{server}"))
            .guild(guild_id)
            .details(details);
        self.minecraft().audit_log().record(entry).await
    }
}

fn subject(link: &StoredLink) -> super::links_whitelist::Subject {
    super::links_whitelist::Subject {
        link_id: Some(link.id),
        guild_id: link.guild_id,
        discord_user_id: link.discord_user_id,
        minecraft_name: link.minecraft_name.clone(),
    }
}

fn new_subject(link: &NewLink) -> super::links_whitelist::Subject {
    super::links_whitelist::Subject {
        link_id: None,
        guild_id: link.guild_id,
        discord_user_id: link.discord_user_id,
        minecraft_name: link.minecraft_name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minecraft_names_are_3_to_16_letters_digits_or_underscores() {
        for good in ["Steve", "abc", "Notch_1234567890", "___"] {
            assert!(MinecraftName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "ab", "Notch_12345678901", "a b", "Stéve", "x;op", "a-b"] {
            assert!(MinecraftName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_members_in_the_guild_holding_the_role_are_wanted() {
        assert_eq!(LinkService::wanted(None, &[1], true), None);
        assert_eq!(LinkService::wanted(Some(1), &[1, 2], true), Some(true));
        assert_eq!(LinkService::wanted(Some(1), &[2], true), Some(false));
        assert_eq!(LinkService::wanted(Some(1), &[1], false), Some(false));
    }
}
