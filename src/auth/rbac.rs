//! The permission catalogue and the built-in roles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

macro_rules! permissions {
    ($($variant:ident => $name:literal, $description:literal;)*) => {
        /// Every permission guildhall knows. Routes and commands declare one of these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $($variant,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }

            pub fn description(self) -> &'static str {
                match self {
                    $(Permission::$variant => $description,)*
                }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Permission::$variant),)*
                    _ => Err(UnknownPermission(s.to_owned())),
                }
            }
        }
    };
}

permissions! {
    BotView => "bot.view", "See the bot's status, guilds and modules";
    BotManage => "bot.manage", "Reload the bot and re-sync its commands";
    SettingsRead => "settings.read", "Read guild settings";
    SettingsWrite => "settings.write", "Change guild settings";
    ModulesManage => "modules.manage", "Enable and disable modules per guild";
    ModerationAct => "moderation.act", "Warn, kick, ban and time out members";
    ModerationView => "moderation.view", "Read moderation cases";
    MinecraftView => "minecraft.view", "See Minecraft servers, players and status";
    MinecraftCommand => "minecraft.command", "Send RCON commands allowed by the role's policy";
    MinecraftManage => "minecraft.manage", "Add, change and remove Minecraft servers and schedules";
    AuditRead => "audit.read", "Read the audit log";
    UsersManage => "users.manage", "Create, change and disable dashboard users";
    RolesManage => "roles.manage", "Create and change roles";
    ApiKeysManage => "api_keys.manage", "Create and revoke API keys";
    LogsView => "logs.view", "Watch the daemon's live log stream";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`")]
pub struct UnknownPermission(pub String);

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role shipped with guildhall and seeded on every start.
pub struct BuiltinRole {
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: &'static [Permission],
}

use Permission as P;

pub const BUILTIN_ROLES: &[BuiltinRole] = &[
    BuiltinRole {
        name: "admin",
        description: "Everything, including users, roles and API keys",
        permissions: P::ALL,
    },
    BuiltinRole {
        name: "moderator",
        description: "Moderates guilds and runs everyday Minecraft commands",
        permissions: &[
            P::BotView,
            P::SettingsRead,
            P::ModerationAct,
            P::ModerationView,
            P::MinecraftView,
            P::MinecraftCommand,
            P::AuditRead,
        ],
    },
    BuiltinRole {
        name: "viewer",
        description: "Read-only access to status, settings and cases",
        permissions: &[
            P::BotView,
            P::SettingsRead,
            P::ModerationView,
            P::MinecraftView,
        ],
    },
];

/// Guild id that marks a global grant in `role_grants`.
pub const GLOBAL: i64 = 0;

/// The permissions a principal holds: globally, and per guild.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    global: BTreeSet<Permission>,
    guilds: BTreeMap<i64, BTreeSet<Permission>>,
}

impl Grants {
    /// Adds a grant; `guild_id` 0 is global.
    pub fn add(&mut self, guild_id: i64, permission: Permission) {
        if guild_id == GLOBAL {
            self.global.insert(permission);
        } else {
            self.guilds.entry(guild_id).or_default().insert(permission);
        }
    }

    /// Held globally, or in `guild` when one is given.
    pub fn allows(&self, permission: Permission, guild: Option<i64>) -> bool {
        self.global.contains(&permission)
            || guild
                .and_then(|g| self.guilds.get(&g))
                .is_some_and(|set| set.contains(&permission))
    }

    pub fn allows_globally(&self, permission: Permission) -> bool {
        self.global.contains(&permission)
    }

    /// Held globally or in at least one guild.
    pub fn allows_anywhere(&self, permission: Permission) -> bool {
        self.global.contains(&permission) || self.guilds.values().any(|s| s.contains(&permission))
    }

    /// The guilds where `permission` is held through a guild-scoped grant.
    pub fn guilds_with(&self, permission: Permission) -> Vec<i64> {
        self.guilds
            .iter()
            .filter(|(_, set)| set.contains(&permission))
            .map(|(g, _)| *g)
            .collect()
    }

    /// What is left after keeping only `allowed` permissions, and only `guild` when it is set:
    /// an API key never holds more than its list, its scope and its creator.
    pub fn restrict(&self, allowed: &BTreeSet<Permission>, guild: Option<i64>) -> Grants {
        let mut out = Grants::default();
        for p in allowed {
            match guild {
                None => {
                    if self.global.contains(p) {
                        out.add(GLOBAL, *p);
                    }
                    for g in self.guilds_with(*p) {
                        out.add(g, *p);
                    }
                }
                Some(g) => {
                    if self.allows(*p, Some(g)) {
                        out.add(g, *p);
                    }
                }
            }
        }
        out
    }

    /// Global permissions, then `guild:permission` pairs; for `/auth/me`.
    pub fn describe(&self) -> (Vec<&'static str>, BTreeMap<String, Vec<&'static str>>) {
        let global = self.global.iter().map(|p| p.as_str()).collect();
        let guilds = self
            .guilds
            .iter()
            .map(|(g, set)| (g.to_string(), set.iter().map(|p| p.as_str()).collect()))
            .collect();
        (global, guilds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_round_trips_through_its_name() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        assert!("bot.everything".parse::<Permission>().is_err());
    }

    #[test]
    fn guild_grants_apply_only_in_their_guild_and_restrict_narrows() {
        let mut g = Grants::default();
        g.add(GLOBAL, P::BotView);
        g.add(42, P::SettingsWrite);
        assert!(g.allows(P::BotView, None) && g.allows(P::BotView, Some(42)));
        assert!(g.allows(P::SettingsWrite, Some(42)));
        assert!(!g.allows(P::SettingsWrite, Some(43)) && !g.allows(P::SettingsWrite, None));
        assert!(g.allows_anywhere(P::SettingsWrite));
        let only = BTreeSet::from([P::SettingsWrite, P::UsersManage]);
        let scoped = g.restrict(&only, Some(43));
        assert_eq!(scoped, Grants::default(), "nothing held in guild 43");
        let r = g.restrict(&only, None);
        assert!(r.allows(P::SettingsWrite, Some(42)) && !r.allows(P::BotView, None));
    }
}
