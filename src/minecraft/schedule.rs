//! Cron-style scheduled commands: validation, the API's operations, and `ScheduleRunner`, the
//! actor that runs due occurrences.
//!
//! Each instance's runner looks for due schedules every `tick`. An occurrence is claimed by a
//! compare-and-set on `next_run_at` in the database (see `store::schedules::claim`), so with
//! several instances on one database each occurrence runs once, on whichever claims it first.
//! Claiming moves `next_run_at` on before the command runs: an instance that dies mid-run loses
//! that occurrence rather than letting another instance run it twice (for `stop` or a restart,
//! at most once is the safe side). Schedules live in the database, so they survive restarts;
//! an occurrence missed by more than `MISSED_GRACE` while no instance ran is recorded as missed
//! and not run late. Times are UTC.

use std::str::FromStr;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use croner::Cron;
use serde_json::json;

use super::command::{RconCommand, ServerName, truncate_utf8};
use super::service::{AUDIT_RESPONSE_BYTES, Caller, MinecraftError, MinecraftService};
use crate::domain::audit::AuditOrigin;
use crate::ids::now_ms;
use crate::store::audit::{Actor as AuditActor, NewAuditEntry};
use crate::store::schedules::{self, NewSchedule, StoredSchedule};

/// How often each instance looks for due schedules.
pub const TICK: Duration = Duration::from_secs(1);
/// An occurrence more than this late (every instance was down) is skipped, not run late.
pub const MISSED_GRACE: Duration = Duration::from_secs(300);
pub const MAX_COUNTDOWN_SECONDS: i64 = 3_600;
const MAX_CRON_LEN: usize = 120;
/// Countdown announcements are made at the start and at each of these marks below it.
const ANNOUNCE_AT: &[u32] = &[1800, 900, 600, 300, 120, 60, 30, 10, 5, 4, 3, 2, 1];
pub const DEFAULT_COUNTDOWN_MESSAGE: &str = "Scheduled maintenance in {seconds} seconds";

/// A validated cron expression: five fields (minute granularity) or six (with seconds first),
/// evaluated in UTC.
#[derive(Debug, Clone)]
pub struct CronExpr {
    source: String,
    cron: Cron,
}

impl CronExpr {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters or newlines".into());
        }
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_CRON_LEN {
            return Err(format!(
                "must be a cron expression of at most {MAX_CRON_LEN} characters"
            ));
        }
        let cron = Cron::from_str(raw)
            .map_err(|e| format!("`{raw}` is not a valid cron expression: {e}"))?;
        let parsed = Self {
            source: raw.to_owned(),
            cron,
        };
        // An expression that can never fire (31 February) is refused too.
        parsed
            .next_after(now_ms())
            .ok_or_else(|| format!("`{raw}` never fires"))?;
        Ok(parsed)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first occurrence strictly after `ms` (Unix ms), if any.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        let at: DateTime<Utc> = DateTime::from_timestamp_millis(ms)?;
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

/// A schedule as a caller describes it (unvalidated).
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub cron: String,
    pub command: String,
    pub only_when_empty: bool,
    pub countdown_seconds: i64,
    pub countdown_message: Option<String>,
}

fn countdown_text(template: &str, seconds: u32) -> String {
    template.replace("{seconds}", &seconds.to_string())
}

impl MinecraftService {
    /// The schedules of one server.
    pub async fn schedules(
        &self,
        server: &ServerName,
    ) -> Result<Vec<StoredSchedule>, MinecraftError> {
        self.server(server.as_str())?;
        Ok(schedules::list(self.store(), server.as_str()).await?)
    }

    /// Adds a schedule after checking every field, and that the caller's role policy allows
    /// the command (and `say`, for a countdown): a schedule cannot run what its author may not.
    #[tracing::instrument(skip(self, caller, spec), fields(server = %server, cron = %spec.cron))]
    pub async fn add_schedule(
        &self,
        caller: &Caller,
        server: &ServerName,
        spec: ScheduleSpec,
    ) -> Result<StoredSchedule, MinecraftError> {
        self.server(server.as_str())?;
        let cron = CronExpr::parse(&spec.cron).map_err(|problem| MinecraftError::Invalid {
            field: "cron",
            problem,
        })?;
        let command =
            RconCommand::parse(&spec.command).map_err(|e| MinecraftError::invalid("command", e))?;
        let countdown = u32::try_from(spec.countdown_seconds)
            .ok()
            .filter(|s| i64::from(*s) <= MAX_COUNTDOWN_SECONDS)
            .ok_or_else(|| MinecraftError::Invalid {
                field: "countdown_seconds",
                problem: format!("must be 0 to {MAX_COUNTDOWN_SECONDS}"),
            })?;
        let message = spec
            .countdown_message
            .clone()
            .unwrap_or_else(|| DEFAULT_COUNTDOWN_MESSAGE.to_owned());
        // The longest announcement this template makes must itself be a valid command.
        let announcement = format!("say {}", countdown_text(&message, countdown.max(1800)));
        RconCommand::parse(&announcement)
            .map_err(|e| MinecraftError::invalid("countdown_message", e))?;
        for root in [
            Some(command.root()),
            (countdown > 0).then(|| "say".to_owned()),
        ]
        .into_iter()
        .flatten()
        {
            if !self.allowed(&caller.roles, &root).await? {
                return Err(MinecraftError::NotAllowed { root });
            }
        }
        let next_run_at = cron
            .next_after(now_ms() + i64::from(countdown) * 1000)
            .ok_or_else(|| MinecraftError::Invalid {
                field: "cron",
                problem: "never fires".into(),
            })?;
        let stored = schedules::insert(
            self.store(),
            &NewSchedule {
                server: server.to_string(),
                cron: cron.as_str().to_owned(),
                command: command.as_str().to_owned(),
                only_when_empty: spec.only_when_empty,
                countdown_seconds: countdown,
                countdown_message: spec.countdown_message,
                created_by: caller.actor.label(),
                next_run_at,
            },
        )
        .await?;
        self.record(
            caller,
            "minecraft.schedule_create",
            server,
            json!({"schedule_id": stored.id.to_string(), "cron": stored.cron, "command": stored.command,
                   "only_when_empty": stored.only_when_empty, "countdown_seconds": countdown}),
        )
        .await?;
        Ok(stored)
    }

    /// Pauses (`enabled: false`) or resumes a schedule; a resumed schedule next runs at its
    /// first occurrence after now. Audited as `minecraft.schedule_pause` / `_resume`.
    #[tracing::instrument(skip(self, caller), fields(server = %server, schedule = id, enabled))]
    pub async fn set_schedule_enabled(
        &self,
        caller: &Caller,
        server: &ServerName,
        id: i64,
        enabled: bool,
    ) -> Result<StoredSchedule, MinecraftError> {
        self.server(server.as_str())?;
        let not_found = |e| match e {
            crate::store::StoreError::NotFound => MinecraftError::UnknownSchedule(id),
            other => MinecraftError::Store(other),
        };
        let current = schedules::get(self.store(), id).await.map_err(not_found)?;
        if current.server != server.as_str() {
            return Err(MinecraftError::UnknownSchedule(id));
        }
        let cron = CronExpr::parse(&current.cron).map_err(|problem| MinecraftError::Invalid {
            field: "cron",
            problem,
        })?;
        let lead = i64::from(current.countdown_seconds) * 1000;
        let next_run_at = cron
            .next_after(now_ms() + lead)
            .unwrap_or(current.next_run_at);
        let stored =
            schedules::set_enabled(self.store(), server.as_str(), id, enabled, next_run_at)
                .await
                .map_err(not_found)?;
        self.record(
            caller,
            if enabled {
                "minecraft.schedule_resume"
            } else {
                "minecraft.schedule_pause"
            },
            server,
            json!({"schedule_id": id.to_string(), "command": stored.command}),
        )
        .await?;
        Ok(stored)
    }

    pub async fn remove_schedule(
        &self,
        caller: &Caller,
        server: &ServerName,
        id: i64,
    ) -> Result<(), MinecraftError> {
        self.server(server.as_str())?;
        schedules::delete(self.store(), server.as_str(), id)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => MinecraftError::UnknownSchedule(id),
                other => MinecraftError::Store(other),
            })?;
        self.record(
            caller,
            "minecraft.schedule_delete",
            server,
            json!({"schedule_id": id.to_string()}),
        )
        .await?;
        Ok(())
    }
}

// ---- the runner ------------------------------------------------------------------------------

/// Runs due schedules; one per instance, supervised.
pub struct ScheduleRunner {
    service: MinecraftService,
    /// Recorded as `claimed_by`: which instance ran an occurrence.
    owner: String,
    tick: Duration,
    scanning: bool,
    /// Set on shutdown: no new occurrence is claimed (runs already started finish).
    stopped: bool,
    /// How many scans and runs are under way; `StopScheduling` answers once none is.
    busy: crate::actors::Busy,
}

/// Stops claiming occurrences, so that a stopping instance leaves them to the others, and
/// answers once the scan and the runs already started have finished (at most
/// [`crate::actors::STOP_WAIT`]; a countdown longer than that is left behind):
/// after shutdown a stopped instance sends nothing more, and every run's audit entry is
/// written before the pool closes.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopScheduling;

impl Handler<StopScheduling> for ScheduleRunner {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopScheduling, _ctx: &mut Self::Context) -> Self::Result {
        tracing::info!("schedule runner stopped claiming occurrences");
        self.stopped = true;
        let busy = self.busy.clone();
        Box::pin(async move {
            if !busy.idle_before_stop().await {
                tracing::warn!(
                    "scheduled runs still under way after {:?}; leaving them behind",
                    crate::actors::STOP_WAIT
                );
            }
        })
    }
}

impl ScheduleRunner {
    pub fn new(service: MinecraftService, tick: Duration) -> Self {
        Self {
            service,
            owner: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            tick,
            scanning: false,
            stopped: false,
            busy: crate::actors::Busy::new(),
        }
    }
}

impl Actor for ScheduleRunner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.tick, |act, ctx| {
            if act.scanning || act.stopped {
                return;
            }
            act.scanning = true;
            let (service, owner, busy) = (act.service.clone(), act.owner.clone(), act.busy.clone());
            let scan = busy.enter();
            ctx.spawn(
                async move {
                    let _scan = scan;
                    if let Err(e) = claim_due(&service, &owner, &busy).await {
                        tracing::warn!(error = %e, "schedule scan failed; retrying next tick");
                    }
                }
                .into_actor(act)
                .map(|(), act, _| act.scanning = false),
            );
        });
    }
}

impl Supervised for ScheduleRunner {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.service.metrics().actor_restarted("schedules");
        self.scanning = false;
    }
}

/// Claims every due occurrence this instance wins and starts running it.
async fn claim_due(
    service: &MinecraftService,
    owner: &str,
    busy: &crate::actors::Busy,
) -> Result<(), MinecraftError> {
    let now = now_ms();
    // On the runtime: a scan in flight when the System ends must not panic (see on_runtime).
    let store = service.store().clone();
    let due = crate::store::on_runtime(async move { schedules::due(&store, now).await })
        .await
        .unwrap_or_else(|| Ok(Vec::new()))?;
    for schedule in due {
        let Ok(cron) = CronExpr::parse(&schedule.cron) else {
            tracing::error!(
                schedule = schedule.id,
                "stored cron expression is invalid; disabled in effect"
            );
            continue;
        };
        let due = schedule.next_run_at;
        let late = now - due > i64::try_from(MISSED_GRACE.as_millis()).unwrap_or(i64::MAX);
        // The next occurrence whose countdown has not started yet.
        let from = if late { now } else { due };
        let countdown_ms = i64::from(schedule.countdown_seconds) * 1000;
        let Some(mut next) = cron.next_after(from) else {
            continue;
        };
        while next - countdown_ms <= due {
            match cron.next_after(next) {
                Some(n) => next = n,
                None => break,
            }
        }
        if !schedules::claim(service.store(), schedule.id, due, next, owner).await? {
            continue; // another instance (or an earlier tick) has it
        }
        let service = service.clone();
        let running = busy.enter();
        if late {
            actix::spawn(async move {
                let _running = running;
                finish(
                    &service,
                    &schedule,
                    due,
                    "missed",
                    json!({"late_ms": now - due}),
                )
                .await;
            });
        } else {
            actix::spawn(async move {
                let _running = running;
                run(&service, &schedule, due).await;
            });
        }
    }
    Ok(())
}

/// One occurrence: the player check, the countdown, the command, the outcome.
async fn run(service: &MinecraftService, schedule: &StoredSchedule, due: i64) {
    let Ok(server) = ServerName::parse(&schedule.server) else {
        finish(
            service,
            schedule,
            due,
            "failed",
            json!({"error": "invalid server name"}),
        )
        .await;
        return;
    };
    let caller = Caller {
        origin: AuditOrigin::job(format!("schedule-{}-{due}", schedule.id)),
        ..Caller::system()
    };
    if schedule.only_when_empty {
        match service.players(&server).await {
            Ok(players) if players.online > 0 => {
                finish(
                    service,
                    schedule,
                    due,
                    "skipped_players_online",
                    json!({"players_online": players.online}),
                )
                .await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                // Unknown player count: not running is the safe reading of "only when empty".
                finish(
                    service,
                    schedule,
                    due,
                    "failed",
                    json!({"error": format!("player check: {e}")}),
                )
                .await;
                return;
            }
        }
    }
    if schedule.countdown_seconds > 0 {
        let template = schedule
            .countdown_message
            .as_deref()
            .unwrap_or(DEFAULT_COUNTDOWN_MESSAGE);
        let marks = std::iter::once(schedule.countdown_seconds).chain(
            ANNOUNCE_AT
                .iter()
                .copied()
                .filter(|m| *m < schedule.countdown_seconds),
        );
        for mark in marks {
            sleep_until(due - i64::from(mark) * 1000).await;
            let text = format!("say {}", countdown_text(template, mark));
            if let Ok(say) = RconCommand::parse(&text)
                && let Err(e) = service.command(&caller, &server, say).await
            {
                tracing::warn!(schedule = schedule.id, error = %e, "countdown announcement failed");
            }
        }
        sleep_until(due).await;
    }
    let outcome = match RconCommand::parse(&schedule.command) {
        Ok(command) => service.command(&caller, &server, command).await,
        Err(e) => Err(MinecraftError::invalid("command", e)),
    };
    match outcome {
        Ok(response) => {
            finish(
                service,
                schedule,
                due,
                "ok",
                json!({"response": truncate_utf8(&response.raw, AUDIT_RESPONSE_BYTES)}),
            )
            .await;
        }
        Err(e) => {
            finish(
                service,
                schedule,
                due,
                "failed",
                json!({"error": e.to_string()}),
            )
            .await
        }
    }
}

async fn sleep_until(at_ms: i64) {
    let wait = at_ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    }
}

/// Records the outcome on the schedule and in the audit log.
async fn finish(
    service: &MinecraftService,
    schedule: &StoredSchedule,
    due: i64,
    outcome: &str,
    extra: serde_json::Value,
) {
    tracing::info!(schedule = schedule.id, server = %schedule.server, outcome, "scheduled command");
    if let Err(e) = schedules::record_outcome(service.store(), schedule.id, now_ms(), outcome).await
    {
        tracing::warn!(schedule = schedule.id, error = %e, "cannot record the schedule's outcome");
    }
    let entry = NewAuditEntry::new(AuditActor::System, "minecraft.schedule_run")
        .target(format!("minecraft:{}", schedule.server))
        .details(json!({
            "schedule_id": schedule.id.to_string(),
            "server": schedule.server,
            "command": schedule.command,
            "occurrence": due,
            "outcome": outcome,
            "detail": extra,
        }));
    if let Err(e) = service.audit_log().record(entry).await {
        tracing::error!(schedule = schedule.id, error = %e, "cannot audit the schedule's run");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_field_expressions_parse_and_nonsense_does_not() {
        for good in ["0 4 * * *", "*/5 * * * * *", "@hourly", "0 0 * * MON"] {
            assert!(CronExpr::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "61 * * * *",
            "* * *",
            "every day",
            "0 0 31 2 *",
            "* * * * *\n",
        ] {
            assert!(CronExpr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_next_occurrence_is_strictly_after_the_given_time() {
        let cron = CronExpr::parse("0 * * * *").unwrap();
        // 2026-11-25T10:00:00Z
        let ten = 1_795_600_800_000_i64;
        assert_eq!(cron.next_after(ten), Some(ten + 3_600_000));
        assert_eq!(cron.next_after(ten - 1), Some(ten));
    }
}
