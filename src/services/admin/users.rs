//! Dashboard users, invites and the instance settings. Nobody can hand out more than they hold:
//! granting a role needs every permission of that role in the grant's scope, and changing a
//! user needs every permission that user holds.

use std::collections::BTreeSet;

use secrecy::SecretString;
use serde_json::json;

use super::{Acting, AdminError, AdminService};
use crate::auth::authenticate::Principal;
use crate::auth::lockout;
use crate::auth::rbac::GLOBAL;
use crate::services::accounts::{NewAccount, grant_details};
use crate::store::roles::{self, Role};
use crate::store::users::{self, RoleGrant, UserSummary};
use crate::store::{instance_settings, invites};
use crate::types::{NewPassword, Username};

/// A request may name at most this many grants.
const MAX_GRANTS: usize = 64;

/// A grant as asked for: a role by name, in one guild or (without one) globally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub role: String,
    pub guild_id: Option<i64>,
}

pub struct NewUser {
    pub username: String,
    pub password: SecretString,
    pub roles: Vec<GrantRequest>,
}

/// What to change of a user; `None` leaves it as it is.
pub struct UserChange {
    /// Replaces every grant of the user.
    pub roles: Option<Vec<GrantRequest>>,
    /// Disabling revokes every token of the user at once.
    pub disabled: Option<bool>,
}

/// A single-use invite; the only time it is shown.
pub struct NewInvite {
    pub invite: SecretString,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// True when `auth` holds every permission of `role` in the grant's scope.
fn may_grant(auth: &Principal, role: &Role, guild_id: i64) -> bool {
    let scope = (guild_id != GLOBAL).then_some(guild_id);
    role.permissions.iter().all(|p| match scope {
        None => auth.grants.allows_globally(*p),
        Some(g) => auth.grants.allows(*p, Some(g)),
    })
}

/// Resolves grant requests (the request's `roles`) to `(role_id, guild_id)`, checking each
/// against the caller's own.
fn resolve_grants(
    auth: &Principal,
    all_roles: &[Role],
    requests: &[GrantRequest],
) -> Result<Vec<(i64, i64)>, AdminError> {
    if requests.len() > MAX_GRANTS {
        return Err(AdminError::invalid(
            "roles",
            format!("at most {MAX_GRANTS} grants"),
        ));
    }
    let mut out = BTreeSet::new();
    for (i, g) in requests.iter().enumerate() {
        let role = all_roles
            .iter()
            .find(|r| r.name == g.role)
            .ok_or_else(|| AdminError::invalid(format!("roles[{i}].role"), "no such role"))?;
        let guild = g.guild_id.unwrap_or(GLOBAL);
        if !may_grant(auth, role, guild) {
            return Err(AdminError::NotAllowed);
        }
        out.insert((role.id, guild));
    }
    Ok(out.into_iter().collect())
}

/// True when `auth` could have granted each of the target's current grants itself.
fn may_manage(auth: &Principal, all_roles: &[Role], grants: &[RoleGrant]) -> bool {
    grants.iter().all(|g| {
        all_roles
            .iter()
            .find(|r| r.id == g.role_id)
            .is_none_or(|r| may_grant(auth, r, g.guild_id))
    })
}

impl AdminService {
    /// Every dashboard user with their grants.
    pub async fn list_users(&self) -> Result<Vec<UserSummary>, AdminError> {
        Ok(users::list(&self.store).await?)
    }

    /// Creates a user with grants the caller could hand out itself (`Accounts::create_user`,
    /// audited there as `users.create`).
    pub async fn create_user(
        &self,
        auth: &Acting<'_>,
        new: NewUser,
    ) -> Result<UserSummary, AdminError> {
        let username =
            Username::parse(&new.username).map_err(|m| AdminError::invalid("username", m))?;
        let password =
            NewPassword::parse(new.password).map_err(|m| AdminError::invalid("password", m))?;
        let all_roles = roles::list(&self.store).await?;
        let grants = resolve_grants(auth, &all_roles, &new.roles)?;
        let how = NewAccount::ByAdministrator {
            actor: auth.actor.clone(),
            grants: &grants,
        };
        Ok(self
            .accounts
            .create_user(&username, password, how, auth.origin())
            .await?)
    }

    /// Changes a user's grants and/or disables them: the caller must be able to grant what the
    /// user holds and what they are given; never leaves no administrator; disabling revokes
    /// every token of the user. Audited as `users.update` / `users.disable`.
    pub async fn update_user(
        &self,
        auth: &Acting<'_>,
        id: i64,
        change: UserChange,
    ) -> Result<UserSummary, AdminError> {
        let everyone = users::list(&self.store).await?;
        let target = everyone
            .iter()
            .find(|u| u.id == id)
            .ok_or(AdminError::UnknownUser(id))?;
        let all_roles = roles::list(&self.store).await?;
        if !may_manage(auth, &all_roles, &target.roles) {
            return Err(AdminError::NotAllowed);
        }
        let grants = change
            .roles
            .as_deref()
            .map(|requests| resolve_grants(auth, &all_roles, requests))
            .transpose()?;
        let mut changes = Vec::new();
        if let Some(grants) = &grants {
            changes.push(lockout::Change::Grants {
                user_id: id,
                grants,
            });
        }
        if let Some(disabled) = change.disabled {
            changes.push(lockout::Change::Disabled {
                user_id: id,
                disabled,
            });
        }
        if lockout::removes_last_administrator(&everyone, &all_roles, &changes) {
            return Err(AdminError::LastAdministrator);
        }
        if let Some(grants) = &grants {
            users::replace_grants(&self.store, id, grants).await?;
        }
        if let Some(disabled) = change.disabled {
            users::set_disabled(&self.store, id, disabled).await?;
        }
        let disabling = change.disabled == Some(true);
        if disabling {
            self.accounts.revoke_tokens(id).await?;
        } else {
            // New grants or a lifted ban: cached copies must not outlive the change.
            self.accounts.forget_cached_user(id).await;
        }
        let user = users::summary(&self.store, id).await?;
        let action = if disabling {
            "users.disable"
        } else {
            "users.update"
        };
        self.audit
            .record(
                auth.entry(action)
                    .target(format!("user:{id}"))
                    .details(json!({
                        "username": user.username,
                        "roles": grants.is_some().then(|| grant_details(&user)),
                        "disabled": change.disabled,
                    })),
            )
            .await?;
        Ok(user)
    }

    /// A single-use invite (7 days), to be shown once. Audited as `users.invite`.
    pub async fn invite(&self, auth: &Acting<'_>) -> Result<NewInvite, AdminError> {
        let (invite, expires_at) =
            invites::create(&self.store, &self.secret_key, auth.user_id).await?;
        self.audit
            .record(
                auth.entry("users.invite")
                    .details(json!({ "expires_at": expires_at })),
            )
            .await?;
        Ok(NewInvite { invite, expires_at })
    }

    /// Whether anyone may register (new accounts hold no permissions); otherwise an invite is
    /// needed.
    pub async fn registration_open(&self) -> Result<bool, AdminError> {
        Ok(instance_settings::registration_open(&self.store).await?)
    }

    /// Opens or closes registration. Audited as `instance.settings_update`.
    pub async fn set_registration_open(
        &self,
        auth: &Acting<'_>,
        open: bool,
    ) -> Result<bool, AdminError> {
        instance_settings::set(
            &self.store,
            instance_settings::REGISTRATION_OPEN,
            &json!(open),
        )
        .await?;
        self.audit
            .record(
                auth.entry("instance.settings_update")
                    .details(json!({ "registration_open": open })),
            )
            .await?;
        Ok(open)
    }
}
