//! The command policy per guildhall role: which command roots a role's members may send over
//! RCON. Read and changed here, by the API (`/api/v1/minecraft/policy`) and the dashboard
//! alike; [`super::command_path`] enforces it on every command.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use super::command_path::ALLOW_ALL;
use super::service::{Caller, MinecraftError, MinecraftService};
use crate::store::audit::NewAuditEntry;
use crate::store::{rcon_servers, roles};

/// At most this many roots per role: a list longer than this is a mistake, not a policy.
pub const MAX_ROOTS: usize = 100;
/// The longest root accepted (Minecraft's own command names are far shorter; namespaced ones
/// such as `essentials:broadcast` fit).
pub const MAX_ROOT_LEN: usize = 64;

/// One role's policy as the API and the dashboard show it. A role without a stored policy
/// allows nothing and has no `updated_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RolePolicy {
    pub role: String,
    /// Command roots (`list`, `whitelist`, `essentials:kick`), or `*` for every command.
    pub allowed: Vec<String>,
    /// Unix milliseconds of the last change; absent when the role never had a policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// Normalises one root the way [`super::RconCommand::root`] reads a command (lowercase, no
/// leading `/`, no `minecraft:` namespace), so that what is stored is what is compared.
fn normalise_root(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed == ALLOW_ALL {
        return Ok(ALLOW_ALL.to_owned());
    }
    let lower = trimmed.strip_prefix('/').unwrap_or(trimmed).to_lowercase();
    let root = lower.strip_prefix("minecraft:").unwrap_or(&lower);
    if root.is_empty() {
        return Err("an entry is empty".into());
    }
    if root.len() > MAX_ROOT_LEN {
        return Err(format!("`{root}` is longer than {MAX_ROOT_LEN} characters"));
    }
    if let Some(bad) = root
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.')))
    {
        return Err(format!(
            "`{root}` contains `{bad}`: a root is one command name (letters, digits, `_`, `-`, \
             `:`, `.`), or `*` for every command"
        ));
    }
    Ok(root.to_owned())
}

/// Checks and normalises a whole list: sorted, without duplicates.
pub fn parse_roots(raw: &[String]) -> Result<Vec<String>, MinecraftError> {
    if raw.len() > MAX_ROOTS {
        return Err(MinecraftError::Invalid {
            field: "allowed",
            problem: format!("at most {MAX_ROOTS} entries"),
        });
    }
    let mut roots = BTreeSet::new();
    for entry in raw {
        let root = normalise_root(entry).map_err(|problem| MinecraftError::Invalid {
            field: "allowed",
            problem,
        })?;
        roots.insert(root);
    }
    Ok(roots.into_iter().collect())
}

impl MinecraftService {
    /// Every role's policy, roles without one included (they allow nothing), by role name.
    pub async fn policies(&self) -> Result<Vec<RolePolicy>, MinecraftError> {
        let stored = rcon_servers::command_policy_rows(&self.inner.store).await?;
        let roles = roles::list(&self.inner.store).await?;
        let mut out: Vec<RolePolicy> = roles
            .into_iter()
            .map(|role| {
                let row = stored.iter().find(|p| p.role == role.name);
                RolePolicy {
                    allowed: row.map(|p| p.allowed.clone()).unwrap_or_default(),
                    updated_at: row.map(|p| p.updated_at),
                    role: role.name,
                }
            })
            .collect();
        out.sort_by(|a, b| a.role.cmp(&b.role));
        Ok(out)
    }

    /// One role's policy; an unknown role is [`MinecraftError::UnknownRole`].
    pub async fn policy(&self, role: &str) -> Result<RolePolicy, MinecraftError> {
        self.policies()
            .await?
            .into_iter()
            .find(|p| p.role == role)
            .ok_or_else(|| MinecraftError::UnknownRole(role.to_owned()))
    }

    /// Replaces a role's command roots (an empty list allows nothing) and records the change,
    /// before and after, in the audit log. Takes effect on the next command: the command path
    /// reads the policy from the database each time.
    #[tracing::instrument(skip(self, caller, allowed), fields(role = %role, actor = %caller.actor.label()))]
    pub async fn set_policy(
        &self,
        caller: &Caller,
        role: &str,
        allowed: &[String],
    ) -> Result<RolePolicy, MinecraftError> {
        let roots = parse_roots(allowed)?;
        let before = self.policy(role).await?;
        let stored = rcon_servers::set_command_policy(&self.inner.store, role, &roots).await?;
        let mut entry = NewAuditEntry::new(caller.actor.clone(), "minecraft.policy_update")
            .origin(caller.origin.clone())
            .target(format!("role:{role}"))
            .details(json!({"role": role, "before": before.allowed, "after": stored.allowed}));
        if let Some(guild) = caller.guild_id {
            entry = entry.guild(guild);
        }
        self.inner.audit.record(entry).await?;
        Ok(RolePolicy {
            role: stored.role,
            allowed: stored.allowed,
            updated_at: Some(stored.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(raw: &[&str]) -> Result<Vec<String>, MinecraftError> {
        parse_roots(&raw.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn roots_are_read_the_way_commands_are_so_what_is_stored_is_what_is_compared() {
        assert_eq!(
            roots(&["/Kick", " minecraft:OP ", "essentials:ban", "list", "list"]).unwrap(),
            ["essentials:ban", "kick", "list", "op"]
        );
        assert_eq!(roots(&["*"]).unwrap(), ["*"]);
        assert!(roots(&[]).unwrap().is_empty());
    }

    #[test]
    fn an_entry_that_is_not_one_command_name_is_refused_naming_the_field() {
        for bad in ["", "  ", "/", "op Alex", "say\nhi", "kick;stop", "é", "**"] {
            let err = roots(&[bad]).unwrap_err();
            assert!(
                matches!(
                    err,
                    MinecraftError::Invalid {
                        field: "allowed",
                        ..
                    }
                ),
                "{bad:?}: {err:?}"
            );
        }
        assert!(roots(&[&"a".repeat(MAX_ROOT_LEN)]).is_ok());
        assert!(roots(&[&"a".repeat(MAX_ROOT_LEN + 1)]).is_err());
        let many: Vec<String> = (0..=MAX_ROOTS).map(|i| format!("c{i}")).collect();
        assert!(parse_roots(&many).is_err());
    }
}
