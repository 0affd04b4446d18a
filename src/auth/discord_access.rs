//! What a Discord member is given in guildhall from their standing in a guild the bot is in:
//! Administrator or Manage Server gives guild-scoped management, the guild's configured
//! moderator role gives guild-scoped moderation, anything else nothing. Pure rules; the sync
//! that stores them is `services::discord_access`.

use std::fmt;

use super::rbac::Permission as P;
use super::rbac::{Grants, Permission};

/// Discord's permission bits that count here (Discord's `permissions` bitfield).
pub const ADMINISTRATOR: u64 = 1 << 3;
pub const MANAGE_GUILD: u64 = 1 << 5;

/// The access a Discord member has in one guild. `Manage` includes everything `Moderate` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiscordAccess {
    Moderate,
    Manage,
}

const MODERATE: &[Permission] = &[
    P::BotView,
    P::SettingsRead,
    P::ModerationAct,
    P::ModerationView,
];

const MANAGE: &[Permission] = &[
    P::BotView,
    P::SettingsRead,
    P::SettingsWrite,
    P::ModulesManage,
    P::ModerationAct,
    P::ModerationView,
    P::AuditRead,
];

impl DiscordAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscordAccess::Moderate => "moderate",
            DiscordAccess::Manage => "manage",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "moderate" => Some(DiscordAccess::Moderate),
            "manage" => Some(DiscordAccess::Manage),
            _ => None,
        }
    }

    /// What the access allows, always scoped to its guild.
    pub fn permissions(self) -> &'static [Permission] {
        match self {
            DiscordAccess::Moderate => MODERATE,
            DiscordAccess::Manage => MANAGE,
        }
    }

    /// Adds the access in `guild_id` to `grants`.
    pub fn grant_into(self, grants: &mut Grants, guild_id: i64) {
        // Guild 0 marks a global grant: never let a Discord grant become one.
        if guild_id == super::rbac::GLOBAL {
            return;
        }
        for p in self.permissions() {
            grants.add(guild_id, *p);
        }
    }

    /// The access of a member from what Discord says about them in one guild.
    pub fn of_member(standing: &MemberStanding) -> Option<Self> {
        if standing.owner || standing.permissions & (ADMINISTRATOR | MANAGE_GUILD) != 0 {
            return Some(DiscordAccess::Manage);
        }
        match (standing.mod_role, &standing.roles) {
            (Some(role), Some(roles)) if roles.contains(&role) => Some(DiscordAccess::Moderate),
            _ => None,
        }
    }
}

impl fmt::Display for DiscordAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's standing in one guild, as far as Discord told it.
#[derive(Debug, Clone, Default)]
pub struct MemberStanding {
    pub owner: bool,
    /// The member's effective guild permissions (Discord's bitfield).
    pub permissions: u64,
    /// The member's role ids; `None` when they could not be read.
    pub roles: Option<Vec<u64>>,
    /// The guild's configured moderator role.
    pub mod_role: Option<u64>,
}

/// Discord's base permissions of a member: the `@everyone` role (whose id is the guild's) and
/// every role they hold, OR-ed; Administrator stands for all.
pub fn base_permissions(guild_id: u64, member_roles: &[u64], roles: &[(u64, u64)]) -> u64 {
    roles
        .iter()
        .filter(|(id, _)| *id == guild_id || member_roles.contains(id))
        .fold(0, |acc, (_, bits)| acc | bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(
        permissions: u64,
        roles: Option<Vec<u64>>,
        mod_role: Option<u64>,
    ) -> MemberStanding {
        MemberStanding {
            owner: false,
            permissions,
            roles,
            mod_role,
        }
    }

    #[test]
    fn administrator_manage_server_and_ownership_give_management() {
        assert_eq!(
            DiscordAccess::of_member(&standing(ADMINISTRATOR, None, None)),
            Some(DiscordAccess::Manage)
        );
        assert_eq!(
            DiscordAccess::of_member(&standing(MANAGE_GUILD, None, None)),
            Some(DiscordAccess::Manage)
        );
        let owner = MemberStanding {
            owner: true,
            ..MemberStanding::default()
        };
        assert_eq!(
            DiscordAccess::of_member(&owner),
            Some(DiscordAccess::Manage)
        );
    }

    #[test]
    fn the_moderator_role_gives_moderation_and_nothing_else_gives_anything() {
        assert_eq!(
            DiscordAccess::of_member(&standing(0, Some(vec![7, 9]), Some(9))),
            Some(DiscordAccess::Moderate)
        );
        assert_eq!(
            DiscordAccess::of_member(&standing(0, Some(vec![7]), Some(9))),
            None
        );
        assert_eq!(DiscordAccess::of_member(&standing(0, None, Some(9))), None);
        assert_eq!(
            DiscordAccess::of_member(&standing(1 << 1, Some(vec![9]), None)),
            None
        );
    }

    #[test]
    fn grants_are_scoped_to_their_guild_and_never_global() {
        let mut g = Grants::default();
        DiscordAccess::Manage.grant_into(&mut g, 42);
        DiscordAccess::Manage.grant_into(&mut g, 0);
        assert!(g.allows(P::SettingsWrite, Some(42)));
        assert!(!g.allows(P::SettingsWrite, Some(43)) && !g.allows_globally(P::SettingsWrite));
        assert!(!g.allows_anywhere(P::UsersManage));
    }

    #[test]
    fn base_permissions_add_everyone_and_held_roles_only() {
        let roles = [(1, 1 << 0), (2, MANAGE_GUILD), (3, ADMINISTRATOR)];
        assert_eq!(base_permissions(1, &[2], &roles), 1 | MANAGE_GUILD);
        assert_eq!(base_permissions(1, &[], &roles), 1);
    }
}
