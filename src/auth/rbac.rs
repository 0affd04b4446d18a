//! The permission catalogue and the built-in roles.

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
}
