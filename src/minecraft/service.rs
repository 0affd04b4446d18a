//! `MinecraftService`: the one entry point the HTTP API, the dashboard and the Discord `/mc`
//! commands share. Two halves, each in its own file:
//! - [`super::registry`]: which servers exist (the `default` server from `RCON_HOST` plus the
//!   servers stored in the database) and their `RconActor`s (start, reconfigure, retire);
//! - [`super::command_path`]: every command through the same path: policy check → actor →
//!   audit entry.
//!
//! This file holds what both share: the service handle, its dependencies and its error type.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use actix::Addr;
use secrecy::SecretString;

use super::command::{InvalidInput, ServerName};
use super::crypto::{CryptoError, PasswordCipher};
use super::registry::Entry;
use crate::actors::audit::{AuditError, AuditLog};
use crate::actors::broadcaster::LogBroadcaster;
use crate::actors::rcon::{RconError, RconTiming};
use crate::config::RconSettings;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

pub use super::command_path::{
    ALLOW_ALL, AUDIT_RESPONSE_BYTES, AUDIT_WAIT, AuditStatus, Caller, CommandResponse,
};
pub use super::registry::{ServerInfo, ServerPatch, ServerSource, ServerSpec, ServerStatusView};

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
    #[error("unknown role `{0}`")]
    UnknownRole(String),
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

#[derive(Clone)]
pub struct MinecraftService {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Store,
    pub(super) audit: AuditLog,
    pub(super) metrics: Metrics,
    pub(super) broadcaster: Option<Addr<LogBroadcaster>>,
    pub(super) cipher: PasswordCipher,
    pub(super) timing: RconTiming,
    pub(super) servers: RwLock<BTreeMap<ServerName, Entry>>,
    /// Serialises add/change/remove so the database and the running actors agree.
    pub(super) changes: tokio::sync::Mutex<()>,
    /// Each `RconActor` sends its server's name here when it is connected again after an
    /// outage (the whitelist reconciliation runs then).
    pub(super) recovered: tokio::sync::broadcast::Sender<ServerName>,
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
                recovered: tokio::sync::broadcast::channel(64).0,
            }),
        };
        service.load_servers(env_default).await?;
        Ok(service)
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

    /// The names of servers whose connection came back after an outage, as they come back.
    pub fn recoveries(&self) -> tokio::sync::broadcast::Receiver<ServerName> {
        self.inner.recovered.subscribe()
    }
}
