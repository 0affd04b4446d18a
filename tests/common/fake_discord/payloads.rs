//! Payload builders: complete objects in the shapes Discord documents (API v10). serenity drops
//! a gateway event whose payload lacks a field its model requires, so every field the models
//! need is here, and `FakeDiscord::dispatch` re-checks each event against serenity's own types.

use serde_json::{Value, json};

pub const TIMESTAMP: &str = "2026-11-25T12:00:00.000000+00:00";

/// Discord's permission bits the bot checks.
pub mod perms {
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    /// What a moderator typically has.
    pub const MODERATOR: u64 = KICK_MEMBERS
        | BAN_MEMBERS
        | MANAGE_MESSAGES
        | MODERATE_MEMBERS
        | SEND_MESSAGES
        | READ_MESSAGE_HISTORY;
    /// What the bot is invited with.
    pub const BOT: u64 = MODERATOR | EMBED_LINKS;
    pub const NONE: u64 = SEND_MESSAGES | READ_MESSAGE_HISTORY;
}

#[derive(Debug, Clone)]
pub struct FakeRole {
    pub id: u64,
    pub name: String,
    pub position: u16,
    pub permissions: u64,
}

#[derive(Debug, Clone)]
pub struct FakeMember {
    pub id: u64,
    pub username: String,
    pub roles: Vec<u64>,
    pub bot: bool,
}

#[derive(Debug, Clone)]
pub struct FakeGuild {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    pub roles: Vec<FakeRole>,
    pub members: Vec<FakeMember>,
    pub channels: Vec<(u64, String)>,
}

impl FakeGuild {
    pub fn role(&self, id: u64) -> Option<&FakeRole> {
        self.roles.iter().find(|r| r.id == id)
    }

    pub fn member(&self, id: u64) -> Option<&FakeMember> {
        self.members.iter().find(|m| m.id == id)
    }

    /// The guild's permissions of a member: the union of @everyone's and its roles' bits.
    pub fn permissions_of(&self, member: u64) -> u64 {
        // The owner has every permission, whatever their roles.
        if member == self.owner_id {
            return perms::ADMINISTRATOR | perms::MODERATOR | perms::MANAGE_GUILD;
        }
        let everyone = self.role(self.id).map_or(0, |r| r.permissions);
        self.member(member).map_or(everyone, |m| {
            m.roles
                .iter()
                .filter_map(|r| self.role(*r))
                .fold(everyone, |acc, r| acc | r.permissions)
        })
    }
}

pub fn user(id: u64, username: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": username,
        "discriminator": "0",
        "global_name": username,
        "avatar": null,
        "bot": bot,
        "system": false,
        "mfa_enabled": false,
        "banner": null,
        "accent_color": null,
        "locale": "en-US",
        "verified": true,
        "email": null,
        "flags": 0,
        "premium_type": 0,
        "public_flags": 0,
        "avatar_decoration_data": null
    })
}

pub fn role(guild_id: u64, r: &FakeRole) -> Value {
    json!({
        "id": r.id.to_string(),
        "guild_id": guild_id.to_string(),
        "name": r.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": r.position,
        "permissions": r.permissions.to_string(),
        "managed": false,
        "mentionable": false,
        "flags": 0
    })
}

/// A guild member object; `permissions` is set for members inside interactions.
pub fn member(guild_id: u64, m: &FakeMember, permissions: Option<u64>) -> Value {
    let mut v = json!({
        "user": user(m.id, &m.username, m.bot),
        "nick": null,
        "avatar": null,
        "roles": m.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "joined_at": TIMESTAMP,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
        "guild_id": guild_id.to_string()
    });
    if let Some(p) = permissions {
        v["permissions"] = json!(p.to_string());
    }
    v
}

pub fn channel(guild_id: u64, id: u64, name: &str) -> Value {
    json!({
        "id": id.to_string(),
        "type": 0,
        "guild_id": guild_id.to_string(),
        "position": 0,
        "permission_overwrites": [],
        "name": name,
        "topic": null,
        "nsfw": false,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "parent_id": null,
        "flags": 0
    })
}

/// The GUILD_CREATE payload (the guild object with its gateway-only fields).
pub fn guild_create(g: &FakeGuild) -> Value {
    let mut v = guild_base(g);
    v["joined_at"] = json!(TIMESTAMP);
    v["large"] = json!(false);
    v["unavailable"] = json!(false);
    v["member_count"] = json!(g.members.len());
    v["voice_states"] = json!([]);
    v["members"] = json!(
        g.members
            .iter()
            .map(|m| member(g.id, m, None))
            .collect::<Vec<_>>()
    );
    v["channels"] = json!(
        g.channels
            .iter()
            .map(|(id, name)| channel(g.id, *id, name))
            .collect::<Vec<_>>()
    );
    v["threads"] = json!([]);
    v["presences"] = json!([]);
    v["stage_instances"] = json!([]);
    v["guild_scheduled_events"] = json!([]);
    v["soundboard_sounds"] = json!([]);
    v
}

/// The guild object as REST and GUILD_UPDATE carry it.
pub fn guild_base(g: &FakeGuild) -> Value {
    json!({
        "id": g.id.to_string(),
        "name": g.name,
        "icon": null,
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": g.owner_id.to_string(),
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": g.roles.iter().map(|r| role(g.id, r)).collect::<Vec<_>>(),
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": null,
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_presences": null,
        "max_members": 500000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "approximate_member_count": null,
        "approximate_presence_count": null,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null
    })
}

pub fn message(
    id: u64,
    guild_id: u64,
    channel_id: u64,
    author: &FakeMember,
    content: &str,
) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "guild_id": guild_id.to_string(),
        "author": user(author.id, &author.username, author.bot),
        "member": {
            "roles": author.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            "joined_at": TIMESTAMP,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "premium_since": null,
            "nick": null
        },
        "content": content,
        "timestamp": TIMESTAMP,
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": [],
        "embeds": [],
        "reactions": [],
        "nonce": null,
        "pinned": false,
        "webhook_id": null,
        "type": 0,
        "flags": 0,
        "components": []
    })
}

pub fn guild_member_update(guild_id: u64, m: &FakeMember) -> Value {
    json!({
        "guild_id": guild_id.to_string(),
        "roles": m.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "user": user(m.id, &m.username, m.bot),
        "nick": null,
        "avatar": null,
        "joined_at": TIMESTAMP,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "pending": false,
        "communication_disabled_until": null,
        "flags": 0
    })
}

/// One option of an application command interaction: `(name, type, value)`; type 1 (or 2)
/// with a JSON array value makes a subcommand (group) holding those options.
#[derive(Debug, Clone)]
pub struct Opt {
    pub name: String,
    pub kind: u8,
    pub value: Value,
}

impl Opt {
    pub fn string(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            kind: 3,
            value: json!(value),
        }
    }
    pub fn int(name: &str, value: i64) -> Self {
        Self {
            name: name.into(),
            kind: 4,
            value: json!(value),
        }
    }
    pub fn user(name: &str, id: u64) -> Self {
        Self {
            name: name.into(),
            kind: 6,
            value: json!(id.to_string()),
        }
    }
    pub fn sub(name: &str, options: Vec<Opt>) -> Self {
        Self {
            name: name.into(),
            kind: 1,
            value: Value::Array(options.into_iter().map(|o| o.to_json()).collect()),
        }
    }
    pub fn to_json(&self) -> Value {
        match self.kind {
            1 | 2 => json!({"name": self.name, "type": self.kind, "options": self.value}),
            _ => json!({"name": self.name, "type": self.kind, "value": self.value}),
        }
    }
}
