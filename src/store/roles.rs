//! Roles, their permissions and the grants that give them to users (globally or per guild).

use std::collections::BTreeSet;

use sqlx::Row;

use super::{Store, StoreError};
use crate::auth::rbac::{Grants, Permission};

/// The permissions `user_id` holds through its role grants. Roles that require MFA count only
/// when the user has MFA enabled (signing in then always involved a second factor).
pub async fn grants_of(
    store: &Store,
    user_id: i64,
    mfa_enabled: bool,
) -> Result<Grants, StoreError> {
    let rows = sqlx::query(
        "SELECT g.guild_id, rp.permission, r.require_mfa FROM role_grants g \
         JOIN roles r ON r.id = g.role_id \
         JOIN role_permissions rp ON rp.role_id = r.id WHERE g.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(store.pool())
    .await?;
    let mut grants = Grants::default();
    for row in rows {
        let require_mfa = row.try_get::<i64, _>("require_mfa")? != 0;
        if require_mfa && !mfa_enabled {
            continue;
        }
        // A permission dropped from the catalogue but still in a row grants nothing.
        if let Ok(p) = row
            .try_get::<String, _>("permission")?
            .parse::<Permission>()
        {
            grants.add(row.try_get("guild_id")?, p);
        }
    }
    // Access from Discord roles (kept apart from the grants above, which are made by hand).
    for (guild_id, access) in super::discord_accounts::effective_access(store, user_id).await? {
        access.grant_into(&mut grants, guild_id);
    }
    Ok(grants)
}

/// True when one of the user's roles requires MFA.
pub async fn mfa_required_for(store: &Store, user_id: i64) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM role_grants g JOIN roles r ON r.id = g.role_id \
         WHERE g.user_id = $1 AND r.require_mfa = 1",
    )
    .bind(user_id)
    .fetch_one(store.pool())
    .await?;
    Ok(n > 0)
}

/// Parses a stored JSON list of permission names, skipping names no longer in the catalogue.
pub fn parse_permission_list(json: &str) -> Result<BTreeSet<Permission>, StoreError> {
    let names: Vec<String> =
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("permissions: {e}")))?;
    Ok(names.iter().filter_map(|n| n.parse().ok()).collect())
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub require_mfa: bool,
    pub permissions: BTreeSet<Permission>,
}

pub async fn list(store: &Store) -> Result<Vec<Role>, StoreError> {
    let rows =
        sqlx::query("SELECT id, name, description, builtin, require_mfa FROM roles ORDER BY name")
            .fetch_all(store.pool())
            .await?;
    let perms = sqlx::query("SELECT role_id, permission FROM role_permissions")
        .fetch_all(store.pool())
        .await?;
    let mut by_role: std::collections::HashMap<i64, BTreeSet<Permission>> = Default::default();
    for p in perms {
        if let Ok(perm) = p.try_get::<String, _>("permission")?.parse() {
            by_role
                .entry(p.try_get("role_id")?)
                .or_default()
                .insert(perm);
        }
    }
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(Role {
                id,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                builtin: row.try_get::<i64, _>("builtin")? != 0,
                require_mfa: row.try_get::<i64, _>("require_mfa")? != 0,
                permissions: by_role.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

pub async fn find(store: &Store, id: i64) -> Result<Role, StoreError> {
    list(store)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(StoreError::NotFound)
}

pub async fn find_by_name(store: &Store, name: &str) -> Result<Option<Role>, StoreError> {
    Ok(list(store).await?.into_iter().find(|r| r.name == name))
}

async fn write_permissions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    role_id: i64,
    permissions: &BTreeSet<Permission>,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
        .bind(role_id)
        .execute(&mut **tx)
        .await?;
    for p in permissions {
        sqlx::query("INSERT INTO role_permissions (role_id, permission) VALUES ($1, $2)")
            .bind(role_id)
            .bind(p.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub async fn create(
    store: &Store,
    name: &str,
    description: &str,
    permissions: &BTreeSet<Permission>,
    require_mfa: bool,
) -> Result<Role, StoreError> {
    let id = crate::ids::next_id();
    let now = crate::ids::now_ms();
    let mut tx = store.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO roles (id, name, description, builtin, require_mfa, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $5) ON CONFLICT (name) DO NOTHING",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(super::flag(require_mfa))
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("role `{name}` exists")));
    }
    write_permissions(&mut tx, id, permissions).await?;
    tx.commit().await?;
    Ok(Role {
        id,
        name: name.to_owned(),
        description: description.to_owned(),
        builtin: false,
        require_mfa,
        permissions: permissions.clone(),
    })
}

pub struct RoleUpdate<'a> {
    pub description: Option<&'a str>,
    pub permissions: Option<&'a BTreeSet<Permission>>,
    pub require_mfa: Option<bool>,
}

pub async fn update(store: &Store, id: i64, change: RoleUpdate<'_>) -> Result<(), StoreError> {
    let now = crate::ids::now_ms();
    let mut tx = store.pool().begin().await?;
    let n = sqlx::query(
        "UPDATE roles SET description = COALESCE($2, description), \
         require_mfa = COALESCE($3, require_mfa), updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(change.description)
    .bind(change.require_mfa.map(super::flag))
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    if let Some(perms) = change.permissions {
        write_permissions(&mut tx, id, perms).await?;
    }
    tx.commit().await?;
    Ok(())
}
