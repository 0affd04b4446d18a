//! The whitelist reconciliation: each server's `whitelist list` compared with its links, and
//! only the difference sent. `WhitelistSync` (one actor per instance) runs it every
//! `LinkService`'s interval per server; a round is claimed by a compare-and-set on
//! `next_run_at` in the database, as schedules are, so with several instances each round runs
//! once. A server that comes back after an outage is made due at once (the `RconActor`s
//! report their recoveries on `MinecraftService::recoveries`).
//!
//! Which names are guildhall's to manage: the linked names of guilds that have a Minecraft
//! role. Other names on the whitelist (operators, friends added by hand) are left alone and
//! counted as `unmanaged`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::command::{ServerName, strip_formatting, truncate_utf8};
use super::links::{LinkActor, LinkError, LinkService};
use super::links_whitelist::{self, Cause, Op, Subject, WhitelistError, parse_whitelist};
use crate::actors::rcon::RconError;
use crate::domain::audit::AuditOrigin;
use crate::store::audit::Actor as AuditActor;
use crate::store::minecraft_links as links;

/// How often each instance looks for due reconciliations.
pub const TICK: Duration = Duration::from_secs(1);
/// The default interval between two reconciliations of a server.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Whitelist commands kept queued on the server's `RconActor` at once: enough to keep the
/// connection busy, few enough that a user's command is not stuck behind a thousand.
const IN_FLIGHT: usize = 32;
/// At most this many failed names are listed in a result.
const LISTED_ERRORS: usize = 10;

/// What one reconciliation did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub server: String,
    pub linked: usize,
    /// Links whose guild has a Minecraft role (the names guildhall manages).
    pub managed: usize,
    pub on_whitelist: usize,
    pub added: usize,
    pub removed: usize,
    pub kicked: usize,
    /// Names on the whitelist no link manages (left alone).
    pub unmanaged: usize,
    /// Changes the server refused or that failed.
    pub failed: usize,
    pub errors: Vec<String>,
    /// Commands sent over RCON (the `whitelist list` included).
    pub commands: usize,
    pub duration_ms: u64,
}

impl LinkService {
    /// Reconciles one server now (the runner, after claiming the round, and the API).
    #[tracing::instrument(skip(self), fields(server = %server))]
    pub async fn reconcile(&self, server: &ServerName) -> Result<ReconcileReport, LinkError> {
        let started = Instant::now();
        let result = self.reconcile_inner(server).await;
        let at = self.now();
        let (outcome, record) = match &result {
            Ok(report) if report.failed == 0 => ("ok", json!(report)),
            Ok(report) => ("partial", json!(report)),
            Err(e) => ("failed", json!({"error": e.to_string()})),
        };
        links::ensure_sync(self.store(), server.as_str(), self.next_round()).await?;
        links::record_sync(self.store(), server.as_str(), at, outcome, &record).await?;
        let mut report = result?;
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(server = %server, added = report.added, removed = report.removed,
            failed = report.failed, unmanaged = report.unmanaged, ms = report.duration_ms,
            "whitelist reconciled");
        Ok(report)
    }

    async fn reconcile_inner(&self, server: &ServerName) -> Result<ReconcileReport, LinkError> {
        let all = links::of_server(self.store(), server.as_str()).await?;
        let mut roles: HashMap<i64, Option<i64>> = HashMap::new();
        for guild in all.iter().map(|l| l.guild_id) {
            if let std::collections::hash_map::Entry::Vacant(slot) = roles.entry(guild) {
                slot.insert(self.role_of(guild).await?);
            }
        }
        let answer =
            links_whitelist::system_command(self.minecraft(), server, "whitelist list").await?;
        let listed = parse_whitelist(&answer).ok_or_else(|| {
            LinkError::Minecraft(super::service::MinecraftError::Rcon(RconError::Protocol(
                format!(
                    "`whitelist list` answered in an unknown format: {}",
                    truncate_utf8(&strip_formatting(&answer), 200)
                ),
            )))
        })?;
        let on_list: HashSet<String> = listed.iter().map(|n| n.to_lowercase()).collect();
        let mut report = ReconcileReport {
            server: server.to_string(),
            linked: all.len(),
            on_whitelist: listed.len(),
            commands: 1,
            ..ReconcileReport::default()
        };
        let mut managed_names = HashSet::new();
        let mut changes = Vec::new();
        for link in &all {
            let Some(wanted) = Self::wanted(
                roles.get(&link.guild_id).copied().flatten(),
                &link.roles,
                link.in_guild,
            ) else {
                continue;
            };
            report.managed += 1;
            let key = link.minecraft_name.to_lowercase();
            let present = on_list.contains(&key);
            managed_names.insert(key);
            let subject = Subject {
                link_id: Some(link.id),
                guild_id: link.guild_id,
                discord_user_id: link.discord_user_id,
                minecraft_name: link.minecraft_name.clone(),
            };
            match (wanted, present) {
                (true, false) => changes.push((subject, Op::Add)),
                (false, true) => changes.push((subject, Op::Remove)),
                // Nothing to send; only the recorded state may be stale.
                _ if link.whitelisted != present => {
                    links::set_whitelisted(self.store(), link.id, present).await?;
                }
                _ => {}
            }
        }
        report.unmanaged = on_list.difference(&managed_names).count();
        let kicks = changes.iter().any(|(_, op)| *op == Op::Remove) && self.kicks(server).await?;
        let online: HashSet<String> = if kicks {
            self.minecraft()
                .players(server)
                .await?
                .names
                .iter()
                .map(|n| n.to_lowercase())
                .collect()
        } else {
            HashSet::new()
        };
        report.commands += usize::from(kicks);
        let by = LinkActor {
            actor: AuditActor::System,
            origin: AuditOrigin::job(format!("whitelist-reconcile-{server}-{}", self.now())),
        };
        let by = &by;
        let outcomes: Vec<(Op, bool, Result<(), WhitelistError>)> =
            futures_util::stream::iter(changes)
                .map(|(subject, op)| {
                    let kick =
                        op == Op::Remove && online.contains(&subject.minecraft_name.to_lowercase());
                    async move {
                        let mut result = links_whitelist::change(
                            self,
                            server,
                            &subject,
                            op,
                            Cause::Reconcile,
                            by,
                        )
                        .await;
                        if result.is_ok() && kick {
                            result =
                                links_whitelist::kick(self, server, &subject, Cause::Reconcile, by)
                                    .await;
                        }
                        let result = result.map_err(|e| match e {
                            WhitelistError::Refused(answer) => WhitelistError::Refused(format!(
                                "{}: {answer}",
                                subject.minecraft_name
                            )),
                            other => other,
                        });
                        (op, kick, result)
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
        for (op, kick, result) in outcomes {
            report.commands += 1 + usize::from(kick && result.is_ok());
            match result {
                Ok(()) => {
                    match op {
                        Op::Add => report.added += 1,
                        Op::Remove => report.removed += 1,
                    }
                    report.kicked += usize::from(kick);
                }
                Err(e) => {
                    report.failed += 1;
                    if report.errors.len() < LISTED_ERRORS {
                        report.errors.push(e.to_string());
                    }
                }
            }
        }
        Ok(report)
    }

    /// Claims every due round this instance wins and runs it.
    async fn run_due(&self, owner: &str) -> Result<(), LinkError> {
        let now = self.now();
        for sync in links::due_syncs(self.store(), now).await? {
            let next = self.next_round();
            if !links::claim_sync(self.store(), &sync.server, sync.next_run_at, next, owner).await?
            {
                continue; // another instance has it
            }
            let Ok(server) = self.minecraft().server(&sync.server) else {
                tracing::debug!(server = %sync.server, "reconciliation skipped: the server no longer exists");
                continue;
            };
            if let Err(e) = self.reconcile(&server).await {
                tracing::warn!(server = %server, error = %e, "whitelist reconciliation failed; it runs again when the server is back or at the next round");
            }
        }
        Ok(())
    }

    /// Makes the server's round due now, if it has links (after it came back).
    async fn due_now(&self, server: &ServerName) -> Result<(), LinkError> {
        if links::sync_state(self.store(), server.as_str())
            .await?
            .is_some()
        {
            links::make_due(self.store(), server.as_str(), self.now()).await?;
        }
        Ok(())
    }
}

// ---- the runner ------------------------------------------------------------------------------

/// Runs due reconciliations; one per instance, supervised.
pub struct WhitelistSync {
    links: LinkService,
    owner: String,
    tick: Duration,
    scanning: bool,
    stopped: bool,
    /// Scans finished since start: lets a caller (a test, an operator's probe) know that this
    /// instance has looked at the due rounds again after some point.
    scans: u64,
}

impl WhitelistSync {
    pub fn new(links: LinkService, tick: Duration) -> Self {
        Self {
            links,
            owner: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            tick,
            scanning: false,
            stopped: false,
            scans: 0,
        }
    }
}

/// Stops claiming rounds (at shutdown), leaving them to the other instances.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopSyncing;

impl Handler<StopSyncing> for WhitelistSync {
    type Result = ();

    fn handle(&mut self, _: StopSyncing, _ctx: &mut Self::Context) {
        self.stopped = true;
    }
}

/// This instance's runner: the owner tag it claims rounds under and how many scans it has
/// finished (a scan that starts after a round was claimed sees the round's new due time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncInfo {
    pub owner: String,
    pub scans: u64,
    /// True once it stopped claiming rounds (shutdown).
    pub stopped: bool,
}

#[derive(Debug, Message)]
#[rtype(result = "SyncInfo")]
pub struct GetSyncInfo;

impl Handler<GetSyncInfo> for WhitelistSync {
    type Result = MessageResult<GetSyncInfo>;

    fn handle(&mut self, _: GetSyncInfo, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(SyncInfo {
            owner: self.owner.clone(),
            scans: self.scans,
            stopped: self.stopped,
        })
    }
}

/// A server's RCON connection came back after an outage.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct ServerBack(ServerName);

impl Handler<ServerBack> for WhitelistSync {
    type Result = ();

    fn handle(&mut self, msg: ServerBack, ctx: &mut Self::Context) {
        let links = self.links.clone();
        ctx.spawn(
            async move {
                tracing::info!(server = %msg.0, "minecraft server is back; reconciling its whitelist");
                if let Err(e) = links.due_now(&msg.0).await {
                    tracing::warn!(server = %msg.0, error = %e, "cannot schedule the reconciliation");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for WhitelistSync {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let recoveries = self.links.minecraft().recoveries();
        let stream = futures_util::stream::unfold(recoveries, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(name) => return Some((ServerBack(name), rx)),
                    // Missed some: the next ones still arrive.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        ctx.add_message_stream(stream);
        ctx.run_interval(self.tick, |act, ctx| {
            if act.scanning || act.stopped {
                return;
            }
            act.scanning = true;
            let (links, owner) = (act.links.clone(), act.owner.clone());
            // On the runtime: a scan in flight when the System ends must not panic (see
            // `store::on_runtime`).
            let scan = crate::store::on_runtime(async move {
                if let Err(e) = links.run_due(&owner).await {
                    tracing::warn!(error = %e, "whitelist reconciliation scan failed; retrying next tick");
                }
            });
            ctx.spawn(scan.into_actor(act).map(|_, act, _| {
                act.scanning = false;
                act.scans += 1;
            }));
        });
    }
}

impl Supervised for WhitelistSync {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.links
            .minecraft()
            .metrics()
            .actor_restarted("whitelist_sync");
        self.scanning = false;
    }
}
