//! Roles and their permissions. A caller can only put permissions it holds globally into a
//! role, and the built-in `admin` role always holds every permission.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Acting, AdminError, AdminService, text};
use crate::auth::authenticate::Principal;
use crate::auth::lockout;
use crate::auth::rbac::Permission;
use crate::store::roles::{self, Role, RoleUpdate};
use crate::store::users;

pub struct NewRole {
    /// Lower-case letters, digits, `_` and `-`.
    pub name: String,
    pub description: String,
    /// Permission names from the catalogue, e.g. `settings.read`.
    pub permissions: Vec<String>,
    pub require_mfa: bool,
}

/// What to change of a role; `None` leaves it as it is.
pub struct RoleChange {
    pub description: Option<String>,
    /// Replaces the role's permissions.
    pub permissions: Option<Vec<String>>,
    /// Users holding the role get its permissions only once they have MFA enabled.
    pub require_mfa: Option<bool>,
}

/// Parses permission names (the request's `permissions`), naming the bad entry; the caller
/// must hold each one globally.
fn parse_permissions(
    auth: &Principal,
    names: &[String],
) -> Result<BTreeSet<Permission>, AdminError> {
    if names.len() > Permission::ALL.len() * 2 {
        return Err(AdminError::invalid("permissions", "too many entries"));
    }
    let mut out = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let p: Permission = name.parse().map_err(|_| {
            AdminError::invalid(format!("permissions[{i}]"), "not a known permission")
        })?;
        if !auth.grants.allows_globally(p) {
            return Err(AdminError::NotAllowed);
        }
        out.insert(p);
    }
    Ok(out)
}

fn role_name(raw: &str) -> Result<&str, AdminError> {
    text("name", raw, 1, 64)?;
    if !raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(AdminError::invalid(
            "name",
            "may contain only lower-case letters, digits, `_` and `-`",
        ));
    }
    Ok(raw)
}

/// The names of a role's permissions, as the audit log records them.
fn names(role: &Role) -> Vec<&'static str> {
    role.permissions.iter().map(|p| p.as_str()).collect()
}

impl AdminService {
    /// Every role with its permissions.
    pub async fn list_roles(&self) -> Result<Vec<Role>, AdminError> {
        Ok(roles::list(&self.store).await?)
    }

    /// Creates a role holding at most the caller's own permissions. Audited as `roles.create`.
    pub async fn create_role(&self, auth: &Acting<'_>, new: NewRole) -> Result<Role, AdminError> {
        let name = role_name(&new.name)?;
        text("description", &new.description, 0, 256)?;
        let permissions = parse_permissions(auth, &new.permissions)?;
        let role = roles::create(
            &self.store,
            name,
            &new.description,
            &permissions,
            new.require_mfa,
        )
        .await?;
        self.audit
            .record(
                auth.entry("roles.create")
                    .target(format!("role:{}", role.id))
                    .details(json!({ "name": role.name, "permissions": names(&role),
                        "require_mfa": role.require_mfa })),
            )
            .await?;
        Ok(role)
    }

    /// Changes a role (every holder at once): the caller must hold what it has now and what it
    /// is given; `admin` keeps every permission; never leaves no administrator. Audited as
    /// `roles.update`.
    pub async fn update_role(
        &self,
        auth: &Acting<'_>,
        id: i64,
        change: RoleChange,
    ) -> Result<Role, AdminError> {
        if let Some(d) = &change.description {
            text("description", d, 0, 256)?;
        }
        let permissions = change
            .permissions
            .as_deref()
            .map(|p| parse_permissions(auth, p))
            .transpose()?;
        let all_roles = roles::list(&self.store).await?;
        let existing = all_roles
            .iter()
            .find(|r| r.id == id)
            .ok_or(AdminError::UnknownRole(id))?;
        // Changing a role changes every holder: the caller must hold what it has now, too.
        if !existing
            .permissions
            .iter()
            .all(|p| auth.grants.allows_globally(*p))
        {
            return Err(AdminError::NotAllowed);
        }
        if existing.builtin && existing.name == "admin" && permissions.is_some() {
            return Err(AdminError::AdminRoleIsFixed);
        }
        if let Some(permissions) = &permissions {
            let change = lockout::Change::Permissions {
                role_id: id,
                permissions,
            };
            let everyone = users::list(&self.store).await?;
            if lockout::removes_last_administrator(&everyone, &all_roles, &[change]) {
                return Err(AdminError::LastAdministrator);
            }
        }
        roles::update(
            &self.store,
            id,
            RoleUpdate {
                description: change.description.as_deref(),
                permissions: permissions.as_ref(),
                require_mfa: change.require_mfa,
            },
        )
        .await?;
        // A role's change reaches every holder and every key of theirs.
        self.auth_cache.clear().await;
        let role = roles::find(&self.store, id).await?;
        self.audit
            .record(
                auth.entry("roles.update")
                    .target(format!("role:{id}"))
                    .details(json!({ "name": role.name,
                        "permissions": change.permissions.is_some().then(|| names(&role)),
                        "require_mfa": change.require_mfa,
                        "description_changed": change.description.is_some() })),
            )
            .await?;
        Ok(role)
    }
}
