//! The whitelist commands the links send over RCON, read with Minecraft's own answers, each
//! followed by its audit entry (with its cause) and the link's recorded state. Shared by the
//! member events, `/mc link` and `/mc unlink`, and the reconciliation.

use serde_json::json;

use super::command::{RconCommand, ServerName, strip_formatting, truncate_utf8};
use super::links::{LinkActor, LinkService};
use super::service::{MinecraftError, MinecraftService};
use crate::actors::audit::AuditError;
use crate::actors::rcon::{Execute, RconError};
use crate::store::StoreError;
use crate::store::minecraft_links as links;

/// Why the whitelist changed; recorded in every audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    RoleAdded,
    RoleRemoved,
    MemberLeft,
    Reconcile,
    Link,
    Unlink,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::RoleAdded => "role_added",
            Cause::RoleRemoved => "role_removed",
            Cause::MemberLeft => "member_left",
            Cause::Reconcile => "reconcile",
            Cause::Link => "link",
            Cause::Unlink => "unlink",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
        }
    }
}

/// Whose name is changed.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The stored link whose `whitelisted` follows the change (none while a link is created).
    pub link_id: Option<i64>,
    pub guild_id: i64,
    pub discord_user_id: i64,
    pub minecraft_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WhitelistError {
    #[error(transparent)]
    Minecraft(#[from] MinecraftError),
    /// The server answered, but not with success (`That player does not exist`, …).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A command guildhall sends on its own behalf (not a user's: no policy check); the caller
/// audits it. Returns the answer without formatting codes.
pub async fn system_command(
    minecraft: &MinecraftService,
    server: &ServerName,
    raw: &str,
) -> Result<String, MinecraftError> {
    let command = RconCommand::parse(raw).map_err(|e| MinecraftError::invalid("command", e))?;
    let output = minecraft
        .actor(server)?
        .send(Execute(command))
        .await
        .unwrap_or(Err(RconError::Restarted))?;
    Ok(strip_formatting(&output.raw))
}

/// Reads Minecraft's answer to `whitelist add|remove`: true when the name ends up as asked
/// (already being so counts), an error with the answer otherwise.
fn outcome(op: Op, answer: &str) -> Result<(), String> {
    let answer = answer.trim();
    let ok = match op {
        // "Added Steve to the whitelist" / "Player is already whitelisted"
        Op::Add => {
            (answer.starts_with("Added ") && answer.ends_with(" to the whitelist"))
                || answer == "Player is already whitelisted"
        }
        // "Removed Steve from the whitelist" / "Player is not whitelisted"
        Op::Remove => {
            (answer.starts_with("Removed ") && answer.ends_with(" from the whitelist"))
                || answer == "Player is not whitelisted"
        }
    };
    if ok { Ok(()) } else { Err(answer.to_owned()) }
}

/// `whitelist add|remove <name>`, then the link's state, then the audit entry naming the
/// cause. An RCON failure changes nothing and is returned; a refused change is audited too.
pub async fn change(
    service: &LinkService,
    server: &ServerName,
    who: &Subject,
    op: Op,
    cause: Cause,
    by: &LinkActor,
) -> Result<(), WhitelistError> {
    let command = format!("whitelist {} {}", op.verb(), who.minecraft_name);
    let answer = system_command(service.minecraft(), server, &command).await?;
    let result = outcome(op, &answer);
    if result.is_ok()
        && let Some(id) = who.link_id
    {
        links::set_whitelisted(service.store(), id, op == Op::Add).await?;
    }
    let action = match op {
        Op::Add => "minecraft.whitelist_add",
        Op::Remove => "minecraft.whitelist_remove",
    };
    service
        .audit(
            by,
            who.guild_id,
            action,
            json!({
                "server": server,
                "minecraft_name": who.minecraft_name,
                "discord_user_id": who.discord_user_id.to_string(),
                "cause": cause.as_str(),
                "ok": result.is_ok(),
                "response": truncate_utf8(&answer, 200),
            }),
        )
        .await?;
    result.map_err(WhitelistError::Refused)
}

/// Kicks the player if the server says they are online (audited with the cause).
pub async fn kick_if_online(
    service: &LinkService,
    server: &ServerName,
    who: &Subject,
    cause: Cause,
    by: &LinkActor,
) -> Result<bool, WhitelistError> {
    let players = service.minecraft().players(server).await?;
    if !players
        .names
        .iter()
        .any(|p| p.eq_ignore_ascii_case(&who.minecraft_name))
    {
        return Ok(false);
    }
    kick(service, server, who, cause, by).await?;
    Ok(true)
}

pub async fn kick(
    service: &LinkService,
    server: &ServerName,
    who: &Subject,
    cause: Cause,
    by: &LinkActor,
) -> Result<(), WhitelistError> {
    let answer = system_command(
        service.minecraft(),
        server,
        &format!(
            "kick {} You are no longer on this server's whitelist",
            who.minecraft_name
        ),
    )
    .await?;
    service
        .audit(
            by,
            who.guild_id,
            "minecraft.kick",
            json!({
                "server": server,
                "minecraft_name": who.minecraft_name,
                "discord_user_id": who.discord_user_id.to_string(),
                "cause": cause.as_str(),
                "response": truncate_utf8(&answer, 200),
            }),
        )
        .await?;
    Ok(())
}

/// Parses `whitelist list`: `There are no whitelisted players`, or `There are N whitelisted
/// player(s): a, b` (1.13 and later; older servers put the names on the next line after
/// `There are N (out of M seen) whitelisted players:`). `None` for any other text, so an
/// unexpected answer never reads as an empty whitelist (which would re-add everyone).
pub fn parse_whitelist(raw: &str) -> Option<Vec<String>> {
    let text = strip_formatting(raw);
    let text = text.trim();
    if text == "There are no whitelisted players" {
        return Some(Vec::new());
    }
    let rest = text.strip_prefix("There are ")?;
    let (head, names) = rest.split_once(':')?;
    if !head.contains("whitelisted player") {
        return None;
    }
    let count: usize = head.split_whitespace().next()?.parse().ok()?;
    let names: Vec<String> = names
        .split([',', '\n'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    // A count that disagrees with the names means a cut or garbled answer.
    (names.len() == count).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whitelist_answers_of_every_version_parse_and_others_do_not() {
        assert_eq!(
            parse_whitelist("There are no whitelisted players"),
            Some(vec![])
        );
        assert_eq!(
            parse_whitelist("There are 2 whitelisted player(s): Alex, Steve"),
            Some(vec!["Alex".to_owned(), "Steve".to_owned()])
        );
        assert_eq!(
            parse_whitelist("There are 1 (out of 3 seen) whitelisted players:\nNotch"),
            Some(vec!["Notch".to_owned()])
        );
        assert_eq!(parse_whitelist("Unknown or incomplete command"), None);
        assert_eq!(parse_whitelist(""), None);
        // Three announced, two given: the answer was cut.
        assert_eq!(
            parse_whitelist("There are 3 whitelisted player(s): Alex, Steve"),
            None
        );
    }

    #[test]
    fn minecrafts_answers_decide_whether_a_change_took() {
        assert!(outcome(Op::Add, "Added Steve to the whitelist").is_ok());
        assert!(outcome(Op::Add, "Player is already whitelisted").is_ok());
        assert!(outcome(Op::Add, "That player does not exist").is_err());
        assert!(outcome(Op::Remove, "Removed Steve from the whitelist").is_ok());
        assert!(outcome(Op::Remove, "Player is not whitelisted").is_ok());
        assert!(outcome(Op::Remove, "Unknown or incomplete command").is_err());
    }
}
