//! Keeps somebody able to repair access: a change to users or roles that would leave no enabled
//! user holding `users.manage` and `roles.manage` globally is refused. Without this, an admin
//! who demotes or disables the last administrator (themselves included) locks every operator
//! out, and only the database could let them back in.

use std::collections::BTreeSet;

use super::rbac::{GLOBAL, Permission};
use crate::store::roles::Role;
use crate::store::users::UserSummary;

/// What an administrator must hold, globally, to give access back to anyone.
pub const ADMINISTRATOR: [Permission; 2] = [Permission::UsersManage, Permission::RolesManage];

/// Why such a change is refused (a 409).
pub const REFUSAL: &str = "this change would leave no enabled user holding users.manage and roles.manage globally; \
     give another user the admin role first";

/// A change about to be made, for checking before it is.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// The user's grants are replaced by these `(role_id, guild_id)` pairs.
    Grants {
        user_id: i64,
        grants: &'a [(i64, i64)],
    },
    Disabled {
        user_id: i64,
        disabled: bool,
    },
    /// The role's permissions are replaced.
    Permissions {
        role_id: i64,
        permissions: &'a BTreeSet<Permission>,
    },
}

fn is_administrator<'r>(
    (disabled, mfa_enabled): (bool, bool),
    grants: &[(i64, i64)],
    roles: &'r [Role],
    permissions_of: impl Fn(&'r Role) -> &'r BTreeSet<Permission>,
) -> bool {
    if disabled {
        return false;
    }
    ADMINISTRATOR.iter().all(|needed| {
        grants.iter().any(|(role_id, guild)| {
            *guild == GLOBAL
                && roles.iter().any(|r| {
                    r.id == *role_id
                        // A role that requires MFA grants nothing to a user without it.
                        && (!r.require_mfa || mfa_enabled)
                        && permissions_of(r).contains(needed)
                })
        })
    })
}

/// How many enabled users are administrators once `changes` are applied.
pub fn administrators_after<'a>(
    users: &[UserSummary],
    roles: &'a [Role],
    changes: &[Change<'a>],
) -> usize {
    users
        .iter()
        .filter(|u| {
            let mut disabled = u.disabled;
            let mut grants: Vec<(i64, i64)> =
                u.roles.iter().map(|g| (g.role_id, g.guild_id)).collect();
            for change in changes {
                match *change {
                    Change::Grants { user_id, grants: g } if user_id == u.id => {
                        grants = g.to_vec();
                    }
                    Change::Disabled {
                        user_id,
                        disabled: d,
                    } if user_id == u.id => disabled = d,
                    _ => {}
                }
            }
            is_administrator((disabled, u.mfa_enabled), &grants, roles, |r| {
                changes
                    .iter()
                    .find_map(|c| match *c {
                        Change::Permissions {
                            role_id,
                            permissions,
                        } if role_id == r.id => Some(permissions),
                        _ => None,
                    })
                    .unwrap_or(&r.permissions)
            })
        })
        .count()
}

/// Whether `changes` would take away the last administrator (a deployment that has none is
/// left to its operators: refusing would not give one back).
pub fn removes_last_administrator<'a>(
    users: &[UserSummary],
    roles: &'a [Role],
    changes: &[Change<'a>],
) -> bool {
    administrators_after(users, roles, changes) == 0 && administrators_after(users, roles, &[]) > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::RoleGrant;

    fn role(id: i64, permissions: &[Permission], require_mfa: bool) -> Role {
        Role {
            id,
            name: format!("r{id}"),
            description: String::new(),
            builtin: false,
            require_mfa,
            permissions: permissions.iter().copied().collect(),
        }
    }

    fn user(id: i64, grants: &[(i64, i64)]) -> UserSummary {
        UserSummary {
            id,
            username: format!("u{id}"),
            disabled: false,
            mfa_enabled: false,
            created_at: 0,
            roles: grants
                .iter()
                .map(|(role_id, guild_id)| RoleGrant {
                    role_id: *role_id,
                    role: format!("r{role_id}"),
                    guild_id: *guild_id,
                })
                .collect(),
        }
    }

    const ADMIN: i64 = 1;
    const VIEWER: i64 = 2;
    const MFA_ADMIN: i64 = 3;

    fn roles() -> Vec<Role> {
        vec![
            role(ADMIN, &ADMINISTRATOR, false),
            role(VIEWER, &[Permission::BotView], false),
            role(MFA_ADMIN, &ADMINISTRATOR, true),
        ]
    }

    #[test]
    fn the_last_administrator_cannot_be_demoted_disabled_or_emptied() {
        let users = vec![user(10, &[(ADMIN, GLOBAL)]), user(11, &[(VIEWER, GLOBAL)])];
        let roles = roles();
        let none: &[(i64, i64)] = &[];
        let viewer = [(VIEWER, GLOBAL)];
        let only_in_a_guild = [(ADMIN, 42)];
        let emptied = BTreeSet::new();
        for change in [
            Change::Grants {
                user_id: 10,
                grants: none,
            },
            Change::Grants {
                user_id: 10,
                grants: &viewer,
            },
            Change::Grants {
                user_id: 10,
                grants: &only_in_a_guild,
            },
            Change::Disabled {
                user_id: 10,
                disabled: true,
            },
            Change::Permissions {
                role_id: ADMIN,
                permissions: &emptied,
            },
        ] {
            assert!(
                removes_last_administrator(&users, &roles, &[change]),
                "{change:?}"
            );
        }
    }

    #[test]
    fn changes_that_keep_an_administrator_pass() {
        let users = vec![user(10, &[(ADMIN, GLOBAL)]), user(11, &[(VIEWER, GLOBAL)])];
        let roles = roles();
        let admin = [(ADMIN, GLOBAL)];
        let none: &[(i64, i64)] = &[];
        // Promote the other first: then the first may go.
        let changes = [
            Change::Grants {
                user_id: 11,
                grants: &admin,
            },
            Change::Disabled {
                user_id: 10,
                disabled: true,
            },
        ];
        assert!(!removes_last_administrator(&users, &roles, &changes));
        assert!(!removes_last_administrator(
            &users,
            &roles,
            &[Change::Grants {
                user_id: 11,
                grants: none
            }]
        ));
        // Nobody is an administrator already: nothing to protect.
        let users = vec![user(11, &[(VIEWER, GLOBAL)])];
        assert!(!removes_last_administrator(
            &users,
            &roles,
            &[Change::Disabled {
                user_id: 11,
                disabled: true
            }]
        ));
    }

    #[test]
    fn a_role_that_requires_mfa_makes_an_administrator_only_with_mfa() {
        let mut with_mfa = user(10, &[(MFA_ADMIN, GLOBAL)]);
        let roles = roles();
        assert_eq!(
            administrators_after(std::slice::from_ref(&with_mfa), &roles, &[]),
            0
        );
        with_mfa.mfa_enabled = true;
        assert_eq!(administrators_after(&[with_mfa], &roles, &[]), 1);
    }
}
