//! The command path every Minecraft command takes, whoever sends it (the API, the dashboard
//! console, the Discord `/mc` commands, schedules): policy check → `RconActor` → audit entry.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::command::{RconCommand, ServerName, strip_formatting, truncate_utf8};
use super::players::{PlayerList, parse_list};
use super::service::{MinecraftError, MinecraftService};
use crate::actors::rcon::{Execute, RconError};
use crate::domain::audit::AuditOrigin;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::rcon_servers;

/// At most this much of a response goes into the audit entry.
pub const AUDIT_RESPONSE_BYTES: usize = 1_024;
/// A policy entry allowing every command.
pub const ALLOW_ALL: &str = "*";

/// Who is asking, as the command policy and the audit log need it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// guildhall role names (`admin`, `moderator`, …) whose command policies apply. The
    /// Discord bot passes the roles its own mapping grants the member.
    pub roles: Vec<String>,
    /// The guild the command came from, if any (recorded in the audit entry).
    pub guild_id: Option<i64>,
    /// Where the command came from (an HTTP request or a Discord interaction).
    pub origin: AuditOrigin,
}

impl Caller {
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            roles: vec!["admin".into()],
            guild_id: None,
            origin: AuditOrigin::internal(),
        }
    }
}

/// The answer to a command: raw text and the same with `§` codes removed.
#[derive(Debug, Clone, Serialize)]
pub struct CommandResponse {
    pub server: ServerName,
    pub command: String,
    pub raw: String,
    pub text: String,
    pub rtt_ms: f64,
    /// Whether the command's audit entry was committed before this answer.
    pub audit: AuditStatus,
}

/// How long a command that ran waits for its audit entry before answering without it.
///
/// The command has already run on the server, so failing it would invite a retry that runs it
/// twice; waiting for the audit writer's whole retry window (about 10 s, on top of the RCON
/// command timeout) would outlive many clients' patience and Discord's. After this bound the
/// answer says `audit: pending` (HTTP 202): the entry stays queued and is committed as soon
/// as the database is back, within the audit writer's retry window (past it, the loss is
/// logged at ERROR and counted in `guildhall_audit_failures_total`).
pub const AUDIT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    /// The audit entry is committed.
    Recorded,
    /// The command ran; its audit entry was not committed within [`AUDIT_WAIT`] (the
    /// database is slow or down) and is still queued.
    Pending,
}

impl MinecraftService {
    /// Runs `list` now and parses it. A read: no policy check and no audit entry.
    #[tracing::instrument(skip(self), fields(server = %name))]
    pub async fn players(&self, name: &ServerName) -> Result<PlayerList, MinecraftError> {
        let actor = self.actor(name)?;
        let list = RconCommand::parse("list").map_err(|e| MinecraftError::invalid("command", e))?;
        let output = actor
            .send(Execute(list))
            .await
            .map_err(|_| RconError::Restarted)??;
        parse_list(&output.raw).ok_or_else(|| {
            MinecraftError::Rcon(RconError::Protocol(format!(
                "`list` answered in an unknown format: {}",
                truncate_utf8(&strip_formatting(&output.raw), 200)
            )))
        })
    }

    /// Whether any of `roles` may run commands with this root.
    pub async fn allowed(&self, roles: &[String], root: &str) -> Result<bool, MinecraftError> {
        let policy = rcon_servers::command_policy(&self.inner.store).await?;
        Ok(roles.iter().any(|role| {
            policy
                .get(role)
                .is_some_and(|roots| roots.iter().any(|r| r == ALLOW_ALL || r == root))
        }))
    }

    /// The one command path, shared by the API, the dashboard console, the Discord `/mc`
    /// commands and schedules: policy check → RconActor → audit entry (committed before the
    /// answer is returned). A refused command is audited too and never reaches the server.
    #[tracing::instrument(skip(self, caller, command), fields(server = %server, command = %command.root(), actor = %caller.actor.label()))]
    pub async fn command(
        &self,
        caller: &Caller,
        server: &ServerName,
        command: RconCommand,
    ) -> Result<CommandResponse, MinecraftError> {
        let root = command.root();
        if !self.allowed(&caller.roles, &root).await? {
            self.record(
                caller,
                "minecraft.command_denied",
                server,
                json!({"server": server, "command": command.as_str(), "root": root, "roles": caller.roles}),
            )
            .await?;
            return Err(MinecraftError::NotAllowed { root });
        }
        let actor = self.actor(server)?;
        let result = actor
            .send(Execute(command.clone()))
            .await
            .unwrap_or(Err(RconError::Restarted));
        let details = match &result {
            Ok(output) => json!({
                "server": server,
                "command": command.as_str(),
                "ok": true,
                "response": truncate_utf8(&output.raw, AUDIT_RESPONSE_BYTES),
                "response_bytes": output.raw.len(),
                "rtt_ms": output.rtt.as_secs_f64() * 1000.0,
            }),
            Err(e) => json!({
                "server": server,
                "command": command.as_str(),
                "ok": false,
                "error": e.to_string(),
                "may_have_run": e.may_have_run(),
            }),
        };
        let recorded = tokio::time::timeout(
            AUDIT_WAIT,
            self.record(caller, "minecraft.command", server, details),
        )
        .await;
        let audit = match recorded {
            Ok(Ok(_)) => AuditStatus::Recorded,
            Ok(Err(e)) => return Err(e),
            Err(_) => AuditStatus::Pending,
        };
        let output = result?;
        if audit == AuditStatus::Pending {
            tracing::warn!(
                server = %server,
                command = %command.root(),
                "the command ran but its audit entry is not committed yet; answering without it"
            );
        }
        Ok(CommandResponse {
            server: server.clone(),
            command: command.as_str().to_owned(),
            text: strip_formatting(&output.raw),
            raw: output.raw,
            rtt_ms: output.rtt.as_secs_f64() * 1000.0,
            audit,
        })
    }

    pub(crate) async fn record(
        &self,
        caller: &Caller,
        action: &str,
        server: &ServerName,
        details: serde_json::Value,
    ) -> Result<i64, MinecraftError> {
        let mut entry = NewAuditEntry::new(caller.actor.clone(), action)
            .origin(caller.origin.clone())
            .target(format!("minecraft:{server}"))
            .details(details);
        if let Some(guild) = caller.guild_id {
            entry = entry.guild(guild);
        }
        Ok(self.inner.audit.record(entry).await?)
    }
}
