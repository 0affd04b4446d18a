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
