//! The server registry: which Minecraft servers exist (the `default` server from `RCON_HOST`
//! plus the servers stored in the database), their settings, and the `RconActor` that owns
//! each enabled one's connection. Adding, changing or removing a server goes through here, so
//! the database and the running actors agree.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::{Addr, Supervisor, System};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::command::ServerName;
use super::command_path::Caller;
use super::service::{MinecraftError, MinecraftService};
use crate::actors::rcon::{
    GetServerStatus, RconActor, RconError, RconState, Reconfigure, Retire, ServerConfig,
    ServerStatus,
};
use crate::actors::{ComponentStatus, GetStatus};
use crate::config::RconSettings;
use crate::store::{StoreError, rcon_servers};

/// Resolving a new server's host gives up after this.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

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

pub(super) struct Entry {
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

impl MinecraftService {
    /// Fills the registry at start: `default` from the environment, then the stored servers.
    pub(super) async fn load_servers(
        &self,
        env_default: Option<RconSettings>,
    ) -> Result<(), StoreError> {
        let service = self;
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
        Ok(())
    }

    fn spawn_actor(&self, name: &ServerName, config: ServerConfig) -> Addr<RconActor> {
        let (name, timing, metrics, broadcaster, recovered) = (
            name.clone(),
            self.inner.timing.clone(),
            self.inner.metrics.clone(),
            self.inner.broadcaster.clone(),
            self.inner.recovered.clone(),
        );
        // On the system arbiter, not the calling HTTP worker's, so an actor's life does not
        // depend on which worker thread handled the request that created it.
        Supervisor::start_in_arbiter(System::current().arbiter(), move |_| {
            RconActor::new(name, config, timing, metrics, broadcaster).reporting_recovery(recovered)
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
    /// Asks the actors together, each bounded by `within`, so one busy actor cannot hold
    /// `/ready`.
    pub async fn component_statuses(&self, within: Duration) -> BTreeMap<String, ComponentStatus> {
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
        let asks = targets
            .into_iter()
            .map(|(name, enabled, actor, problem)| async move {
                let status = match (enabled, actor) {
                    (false, _) => ComponentStatus::disabled("disabled in its settings"),
                    (true, Some(addr)) => {
                        match tokio::time::timeout(within, addr.send(GetStatus)).await {
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
                (name, status)
            });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .collect()
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
