//! Idempotent seeding of the catalogue (permissions, built-in roles, modules) and, on a first
//! start with no users, an `admin` account.

use super::{Store, StoreError, flag};
use crate::auth::rbac::{BUILTIN_ROLES, Permission};
use crate::ids::{next_id, now_ms};

/// A module that can be switched on or off per guild.
pub struct BuiltinModule {
    pub name: &'static str,
    pub description: &'static str,
    pub default_enabled: bool,
}

pub const BUILTIN_MODULES: &[BuiltinModule] = &[
    BuiltinModule {
        name: "admin",
        description: "Guild settings and module management",
        default_enabled: true,
    },
    BuiltinModule {
        name: "moderation",
        description: "Warnings, kicks, bans, timeouts, purges and numbered cases",
        default_enabled: true,
    },
    BuiltinModule {
        name: "minecraft",
        description: "Minecraft server status, players and console over RCON",
        default_enabled: false,
    },
];

/// Seeds the catalogue: permissions, built-in roles and modules. The first start's `admin` is
/// created by `services::accounts::Accounts::create_initial_admin`, like every other user.
pub async fn seed(store: &Store) -> Result<(), StoreError> {
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    for p in Permission::ALL {
        sqlx::query(
            "INSERT INTO permissions (name, description) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description",
        )
        .bind(p.as_str())
        .bind(p.description())
        .execute(&mut *tx)
        .await?;
    }
    for role in BUILTIN_ROLES {
        let inserted = sqlx::query(
            "INSERT INTO roles (id, name, description, builtin, require_mfa, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, 0, $4, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(next_id())
        .bind(role.name)
        .bind(role.description)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // A new role gets its default permissions; an existing one keeps what an admin made of
        // it, except `admin`, which always holds every permission (new ones included).
        if inserted || role.name == "admin" {
            for p in role.permissions {
                sqlx::query(
                    "INSERT INTO role_permissions (role_id, permission) \
                     SELECT id, $2 FROM roles WHERE name = $1 \
                     ON CONFLICT (role_id, permission) DO NOTHING",
                )
                .bind(role.name)
                .bind(p.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    for module in BUILTIN_MODULES {
        sqlx::query(
            "INSERT INTO modules (name, description, default_enabled) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET description = excluded.description",
        )
        .bind(module.name)
        .bind(module.description)
        .bind(flag(module.default_enabled))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    Ok(())
}
