//! `MinecraftService`: the one entry point the HTTP API, the dashboard and the Discord `/mc`
//! commands share. It owns the registry of servers (the `default` server from `RCON_HOST` plus
//! the servers stored in the database), starts, reconfigures and retires their `RconActor`s,
//! and runs every command through the same path: policy check → actor → audit entry.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::{Addr, Supervisor, System};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::command::{InvalidInput, RconCommand, ServerName, strip_formatting, truncate_utf8};
use super::crypto::{CryptoError, PasswordCipher};
use super::players::{PlayerList, parse_list};
use crate::actors::audit::{AuditError, AuditLog};
use crate::actors::broadcaster::LogBroadcaster;
use crate::actors::rcon::{
    Execute, GetServerStatus, RconActor, RconError, RconState, RconTiming, Reconfigure, Retire,
    ServerConfig, ServerStatus,
};
use crate::actors::{ComponentStatus, GetStatus};
use crate::config::RconSettings;
use crate::domain::audit::AuditOrigin;
use crate::metrics::Metrics;
use crate::store::audit::{Actor, NewAuditEntry};
use crate::store::{Store, StoreError, rcon_servers};

/// At most this much of a response goes into the audit entry.
pub const AUDIT_RESPONSE_BYTES: usize = 1_024;
/// Resolving a new server's host gives up after this.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
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

/// The Minecraft boundary's error; the HTTP layer and the bot map every variant.
#[derive(Debug, thiserror::Error)]
pub enum MinecraftError {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("unknown Minecraft server `{0}`")]
    UnknownServer(String),
    #[error("no Minecraft server is linked to this guild")]
    NoServerForGuild,
    #[error("your role policy does not allow `{root}` commands")]
    NotAllowed { root: String },
    #[error("server `default` comes from RCON_HOST/RCON_PORT/RCON_PASSWORD; {0}")]
    EnvironmentManaged(&'static str),
    #[error("server `{0}` is disabled")]
    Disabled(String),
    #[error("unknown schedule {0}")]
    UnknownSchedule(i64),
    #[error(transparent)]
    Rcon(#[from] RconError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the action was not recorded in the audit log: {0}")]
    Audit(#[from] AuditError),
}

impl MinecraftError {
    pub fn invalid(field: &'static str, problem: InvalidInput) -> Self {
        MinecraftError::Invalid {
            field,
            problem: problem.0,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerSource {
    Environment,
    Database,
}

/// A server as listed by the API (never with its password).
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub name: ServerName,
    pub host: String,
    pub port: u16,
    pub enabled: bool,
    pub source: ServerSource,
    /// Linked guild ids, as strings (snowflakes do not fit a JSON number exactly).
    pub guilds: Vec<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// A server's status for the API: connection state and players.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatusView {
    pub name: ServerName,
    pub enabled: bool,
    #[serde(flatten)]
    pub status: Option<ServerStatus>,
    /// Why the server has no running connection (disabled, undecryptable password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A new server as a caller describes it (fields still unvalidated).
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub name: String,
    pub host: String,
    pub port: i64,
    pub password: SecretString,
    pub enabled: bool,
    pub guilds: Vec<String>,
}

/// Changes to a server (fields still unvalidated); `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ServerPatch {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub password: Option<SecretString>,
    pub enabled: Option<bool>,
    pub guilds: Option<Vec<String>>,
}

impl ServerPatch {
    fn touches_connection(&self) -> bool {
        self.host.is_some()
            || self.port.is_some()
            || self.password.is_some()
            || self.enabled.is_some()
    }
}

struct Entry {
    source: ServerSource,
    host: String,
    port: u16,
    enabled: bool,
    actor: Option<Addr<RconActor>>,
    /// Why there is no actor although the server is enabled.
    problem: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
}

#[derive(Clone)]
pub struct MinecraftService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    audit: AuditLog,
    metrics: Metrics,
    broadcaster: Option<Addr<LogBroadcaster>>,
    cipher: PasswordCipher,
    timing: RconTiming,
    servers: RwLock<BTreeMap<ServerName, Entry>>,
    /// Serialises add/change/remove so the database and the running actors agree.
    changes: tokio::sync::Mutex<()>,
}

impl MinecraftService {
    /// Loads the stored servers and starts an actor for each enabled one, plus `default` from
    /// the environment. Actors connect lazily, so nothing here waits on a Minecraft server.
    pub async fn start(
        store: Store,
        audit: AuditLog,
        metrics: Metrics,
        broadcaster: Option<Addr<LogBroadcaster>>,
        secret_key: &SecretString,
        env_default: Option<RconSettings>,
        timing: RconTiming,
    ) -> Result<Self, StoreError> {
        let service = Self {
            inner: Arc::new(Inner {
                store,
                audit,
                metrics,
                broadcaster,
                cipher: PasswordCipher::new(secret_key),
                timing,
                servers: RwLock::new(BTreeMap::new()),
                changes: tokio::sync::Mutex::new(()),
            }),
        };
        let mut servers = BTreeMap::new();
        if let Some(settings) = env_default {
            let name = ServerName::default_server();
            let config = ServerConfig {
                host: settings.host.clone(),
                port: settings.port,
                password: settings.password.clone(),
            };
            servers.insert(
                name.clone(),
                Entry {
                    source: ServerSource::Environment,
                    host: settings.host,
                    port: settings.port,
                    enabled: true,
                    actor: Some(service.spawn_actor(&name, config)),
                    problem: None,
                    created_at: None,
                    updated_at: None,
                },
            );
        }
        for stored in rcon_servers::list(&service.inner.store).await? {
            let Ok(name) = ServerName::parse(&stored.name) else {
                tracing::error!(server = %stored.name, "stored Minecraft server has an invalid name; skipped");
                continue;
            };
            if servers.contains_key(&name) {
                tracing::warn!(server = %name, "a stored server shadows RCON_HOST's `default`; the environment wins");
                continue;
            }
            let entry = service.entry_for(&name, &stored);
            servers.insert(name, entry);
        }
        if let Ok(mut map) = service.inner.servers.write() {
            *map = servers;
        }
        Ok(service)
    }

    fn spawn_actor(&self, name: &ServerName, config: ServerConfig) -> Addr<RconActor> {
        let (name, timing, metrics, broadcaster) = (
            name.clone(),
            self.inner.timing.clone(),
            self.inner.metrics.clone(),
            self.inner.broadcaster.clone(),
        );
        // On the system arbiter, not the calling HTTP worker's, so an actor's life does not
        // depend on which worker thread handled the request that created it.
        Supervisor::start_in_arbiter(System::current().arbiter(), move |_| {
            RconActor::new(name, config, timing, metrics, broadcaster)
        })
    }

    fn entry_for(&self, name: &ServerName, stored: &rcon_servers::StoredServer) -> Entry {
        let (actor, problem) = if stored.enabled {
            match self
                .inner
                .cipher
                .decrypt(name.as_str(), &stored.password_encrypted)
            {
                Ok(password) => {
                    let config = ServerConfig {
                        host: stored.host.clone(),
                        port: stored.port,
                        password,
                    };
                    (Some(self.spawn_actor(name, config)), None)
                }
                Err(e) => {
                    tracing::error!(server = %name, error = %e, "cannot start RCON for this server");
                    (None, Some(e.to_string()))
                }
            }
        } else {
            (None, None)
        };
        Entry {
            source: ServerSource::Database,
            host: stored.host.clone(),
            port: stored.port,
            enabled: stored.enabled,
            actor,
            problem,
            created_at: Some(stored.created_at),
            updated_at: Some(stored.updated_at),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<ServerName, Entry>) -> T) -> T {
        match self.inner.servers.read() {
            Ok(map) => f(&map),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut BTreeMap<ServerName, Entry>) -> T) -> T {
        match self.inner.servers.write() {
            Ok(mut map) => f(&mut map),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Parses a server name from a URL or a command option and checks that it exists.
    pub fn server(&self, raw: &str) -> Result<ServerName, MinecraftError> {
        let name =
            ServerName::parse(raw).map_err(|_| MinecraftError::UnknownServer(raw.to_owned()))?;
        if self.read(|map| map.contains_key(&name)) {
            Ok(name)
        } else {
            Err(MinecraftError::UnknownServer(raw.to_owned()))
        }
    }

    /// The running actor of a server.
    pub fn actor(&self, name: &ServerName) -> Result<Addr<RconActor>, MinecraftError> {
        self.read(|map| match map.get(name) {
            None => Err(MinecraftError::UnknownServer(name.to_string())),
            Some(entry) if !entry.enabled => Err(MinecraftError::Disabled(name.to_string())),
            Some(entry) => entry.actor.clone().ok_or_else(|| {
                MinecraftError::Rcon(RconError::Unreachable(
                    entry
                        .problem
                        .clone()
                        .unwrap_or_else(|| "not running".into()),
                ))
            }),
        })
    }

    /// Every configured server with its connection status, for `/ready` and the dashboard.
    pub async fn component_statuses(&self) -> BTreeMap<String, ComponentStatus> {
        let targets = self.read(|map| {
            map.iter()
                .map(|(name, e)| {
                    (
                        name.to_string(),
                        e.enabled,
                        e.actor.clone(),
                        e.problem.clone(),
                    )
                })
                .collect::<Vec<_>>()
        });
        let mut out = BTreeMap::new();
        for (name, enabled, actor, problem) in targets {
            let status = match (enabled, actor) {
                (false, _) => ComponentStatus::disabled("disabled in its settings"),
                (true, Some(addr)) => {
                    match tokio::time::timeout(Duration::from_secs(2), addr.send(GetStatus)).await {
                        Ok(Ok(status)) => status,
                        Ok(Err(_)) | Err(_) => ComponentStatus::Failed {
                            reason: "actor did not answer".into(),
                        },
                    }
                }
                (true, None) => ComponentStatus::Failed {
                    reason: problem.unwrap_or_else(|| "not running".into()),
                },
            };
            out.insert(name, status);
        }
        out
    }

    /// The servers, without passwords, with their linked guilds.
    pub async fn servers(&self) -> Result<Vec<ServerInfo>, MinecraftError> {
        let links = rcon_servers::links(&self.inner.store).await?;
        Ok(self.read(|map| {
            map.iter()
                .map(|(name, e)| ServerInfo {
                    name: name.clone(),
                    host: e.host.clone(),
                    port: e.port,
                    enabled: e.enabled,
                    source: e.source,
                    guilds: links
                        .get(name.as_str())
                        .map(|g| g.iter().map(i64::to_string).collect())
                        .unwrap_or_default(),
                    created_at: e.created_at,
                    updated_at: e.updated_at,
                })
                .collect()
        }))
    }

    pub async fn server_info(&self, name: &ServerName) -> Result<ServerInfo, MinecraftError> {
        self.servers()
            .await?
            .into_iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| MinecraftError::UnknownServer(name.to_string()))
    }

    /// The server `/mc` in this guild talks to: its linked server, else `default` when that
    /// is configured, else none.
    pub async fn server_for_guild(&self, guild_id: i64) -> Result<ServerName, MinecraftError> {
        if let Some(name) = rcon_servers::server_for_guild(&self.inner.store, guild_id).await?
            && let Ok(name) = self.server(&name)
        {
            return Ok(name);
        }
        self.server(ServerName::DEFAULT)
            .map_err(|_| MinecraftError::NoServerForGuild)
    }

    /// The connection status of one server (cached; asks the actor, never the server).
    pub async fn status(&self, name: &ServerName) -> Result<ServerStatusView, MinecraftError> {
        let (enabled, actor, problem) = self.read(|map| {
            map.get(name)
                .map(|e| (e.enabled, e.actor.clone(), e.problem.clone()))
                .ok_or_else(|| MinecraftError::UnknownServer(name.to_string()))
        })?;
        let status = match actor {
            Some(addr) => Some(
                addr.send(GetServerStatus)
                    .await
                    .map_err(|_| RconError::Restarted)?,
            ),
            None => None,
        };
        Ok(ServerStatusView {
            name: name.clone(),
            enabled,
            status,
            problem: if enabled {
                problem
            } else {
                Some("disabled".into())
            },
        })
    }

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
        self.record(caller, "minecraft.command", server, details)
            .await?;
        let output = result?;
        Ok(CommandResponse {
            server: server.clone(),
            command: command.as_str().to_owned(),
            text: strip_formatting(&output.raw),
            raw: output.raw,
            rtt_ms: output.rtt.as_secs_f64() * 1000.0,
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

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// Adds a server: validates every field (and resolves the host) before anything is stored.
    #[tracing::instrument(skip(self, caller, spec), fields(server = %spec.name, host = %spec.host, port = spec.port))]
    pub async fn add_server(
        &self,
        caller: &Caller,
        spec: ServerSpec,
    ) -> Result<ServerInfo, MinecraftError> {
        let name = ServerName::parse(&spec.name).map_err(|e| MinecraftError::invalid("name", e))?;
        if name.is_default() {
            return Err(MinecraftError::Invalid {
                field: "name",
                problem: "`default` is reserved for the server configured by RCON_HOST".into(),
            });
        }
        let port = validate_port(spec.port)?;
        let host = validate_host(&spec.host, port).await?;
        let password = validate_password(spec.password)?;
        let guilds = parse_guilds(&spec.guilds)?;
        let _changes = self.inner.changes.lock().await;
        let stored = rcon_servers::insert(
            &self.inner.store,
            &rcon_servers::NewServer {
                name: name.to_string(),
                host,
                port,
                password_encrypted: self.inner.cipher.encrypt(name.as_str(), &password)?,
                enabled: spec.enabled,
                guilds: guilds.clone(),
            },
        )
        .await?;
        let entry = self.entry_for(&name, &stored);
        self.write(|map| map.insert(name.clone(), entry));
        self.record(
            caller,
            "minecraft.server_create",
            &name,
            json!({"server": name, "host": stored.host, "port": stored.port, "enabled": stored.enabled, "guilds": spec.guilds}),
        )
        .await?;
        self.server_info(&name).await
    }

    /// Changes a server; a new host, port or password restarts its connection (and clears an
    /// `auth failed` state). Only guild links of `default` can change here.
    #[tracing::instrument(skip(self, caller, patch), fields(server = %name))]
    pub async fn update_server(
        &self,
        caller: &Caller,
        name: &ServerName,
        patch: ServerPatch,
    ) -> Result<ServerInfo, MinecraftError> {
        let source = self.read(|map| map.get(name).map(|e| e.source));
        let Some(source) = source else {
            return Err(MinecraftError::UnknownServer(name.to_string()));
        };
        let guilds = patch.guilds.as_deref().map(parse_guilds).transpose()?;
        if source == ServerSource::Environment {
            if patch.touches_connection() {
                return Err(MinecraftError::EnvironmentManaged(
                    "change those variables and restart guildhall; only `guilds` can change here",
                ));
            }
            if let Some(guilds) = &guilds {
                rcon_servers::set_links(&self.inner.store, name.as_str(), guilds).await?;
            }
        } else {
            let port = patch.port.map(validate_port).transpose()?;
            let host = match &patch.host {
                Some(host) => {
                    let current_port = self.read(|map| map.get(name).map(|e| e.port));
                    let port = port.or(current_port).unwrap_or(0);
                    Some(validate_host(host, port).await?)
                }
                None => None,
            };
            let password = patch.password.clone().map(validate_password).transpose()?;
            let password_encrypted = password
                .as_ref()
                .map(|p| self.inner.cipher.encrypt(name.as_str(), p))
                .transpose()?;
            let _changes = self.inner.changes.lock().await;
            let stored = rcon_servers::update(
                &self.inner.store,
                name.as_str(),
                &rcon_servers::ServerChanges {
                    host,
                    port,
                    password_encrypted,
                    enabled: patch.enabled,
                    guilds: guilds.clone(),
                },
            )
            .await?;
            self.apply(name, &stored)?;
        }
        self.record(
            caller,
            "minecraft.server_update",
            name,
            json!({
                "server": name,
                "host": patch.host,
                "port": patch.port,
                "password_changed": patch.password.is_some(),
                "enabled": patch.enabled,
                "guilds": patch.guilds,
            }),
        )
        .await?;
        self.server_info(name).await
    }

    /// Brings the running actor in line with the stored row.
    fn apply(
        &self,
        name: &ServerName,
        stored: &rcon_servers::StoredServer,
    ) -> Result<(), MinecraftError> {
        let existing = self.write(|map| {
            map.get_mut(name).map(|e| {
                e.host = stored.host.clone();
                e.port = stored.port;
                e.enabled = stored.enabled;
                e.updated_at = Some(stored.updated_at);
                e.actor.clone()
            })
        });
        match (existing.flatten(), stored.enabled) {
            (Some(addr), true) => {
                let password = self
                    .inner
                    .cipher
                    .decrypt(name.as_str(), &stored.password_encrypted)?;
                addr.do_send(Reconfigure(ServerConfig {
                    host: stored.host.clone(),
                    port: stored.port,
                    password,
                }));
            }
            (Some(addr), false) => {
                addr.do_send(Retire);
                self.write(|map| map.get_mut(name).map(|e| e.actor = None));
            }
            (None, _) => {
                let entry = self.entry_for(name, stored);
                self.write(|map| map.insert(name.clone(), entry));
            }
        }
        Ok(())
    }

    /// Removes a server with its guild links and schedules, and stops its actor.
    #[tracing::instrument(skip(self, caller), fields(server = %name))]
    pub async fn remove_server(
        &self,
        caller: &Caller,
        name: &ServerName,
    ) -> Result<(), MinecraftError> {
        if name.is_default() && self.read(|map| map.contains_key(name)) {
            return Err(MinecraftError::EnvironmentManaged(
                "unset RCON_HOST and restart guildhall to remove it",
            ));
        }
        let _changes = self.inner.changes.lock().await;
        rcon_servers::delete(&self.inner.store, name.as_str())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => MinecraftError::UnknownServer(name.to_string()),
                other => MinecraftError::Store(other),
            })?;
        if let Some(addr) = self.write(|map| map.remove(name)).and_then(|e| e.actor) {
            addr.do_send(Retire);
        }
        self.record(
            caller,
            "minecraft.server_delete",
            name,
            json!({"server": name}),
        )
        .await?;
        Ok(())
    }

    /// The state of a server's connection, if it has a running actor.
    pub async fn state(&self, name: &ServerName) -> Option<RconState> {
        let addr = self.actor(name).ok()?;
        addr.send(GetServerStatus).await.ok().map(|s| s.state)
    }
}

fn validate_port(port: i64) -> Result<u16, MinecraftError> {
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(MinecraftError::Invalid {
            field: "port",
            problem: format!("{port} is not a TCP port (1 to 65535)"),
        }),
    }
}

fn validate_password(password: SecretString) -> Result<SecretString, MinecraftError> {
    use secrecy::ExposeSecret;
    let p = password.expose_secret();
    if p.is_empty() {
        return Err(MinecraftError::Invalid {
            field: "password",
            problem: "must not be empty (Minecraft refuses RCON without a password)".into(),
        });
    }
    if p.len() > 512 || p.chars().any(char::is_control) {
        return Err(MinecraftError::Invalid {
            field: "password",
            problem: "must be at most 512 bytes without control characters".into(),
        });
    }
    Ok(password)
}

/// A host name or IP address that resolves now. Syntax first, so an obviously bad host costs
/// no DNS query; then resolution, so a typo is refused before it is stored.
async fn validate_host(host: &str, port: u16) -> Result<String, MinecraftError> {
    let host = host.trim();
    let bad = |problem: String| MinecraftError::Invalid {
        field: "host",
        problem,
    };
    if host.is_empty() || host.len() > 253 {
        return Err(bad("must be a host name or an IP address".into()));
    }
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let valid_name = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !is_ip && !valid_name {
        return Err(bad(format!(
            "`{host}` is not a valid host name or IP address"
        )));
    }
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => match addrs.next() {
            Some(_) => Ok(host.to_owned()),
            None => Err(bad(format!("`{host}` does not resolve"))),
        },
        Ok(Err(_)) => Err(bad(format!("`{host}` does not resolve"))),
        Err(_) => Err(bad(format!(
            "`{host}` did not resolve within {RESOLVE_TIMEOUT:?}"
        ))),
    }
}

fn parse_guilds(raw: &[String]) -> Result<Vec<i64>, MinecraftError> {
    raw.iter()
        .map(|g| {
            g.trim()
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| MinecraftError::Invalid {
                    field: "guilds",
                    problem: format!("`{g}` is not a Discord guild id"),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_outside_1_to_65535_are_refused() {
        for bad in [0, -1, 65_536, 70_000] {
            assert!(validate_port(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_port(25_575).ok(), Some(25_575));
    }

    #[actix_web::test]
    async fn malformed_and_unresolvable_hosts_are_refused() {
        for bad in ["", "bad host", "-x.example", "a..b", "nonexistent.invalid"] {
            assert!(validate_host(bad, 25_575).await.is_err(), "{bad}");
        }
        assert!(validate_host("127.0.0.1", 25_575).await.is_ok());
        assert!(validate_host("localhost", 25_575).await.is_ok());
    }
}
