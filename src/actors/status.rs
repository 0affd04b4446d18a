use serde::Serialize;

/// The state of an external dependency an actor owns (the Discord gateway, an RCON server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Turned off by configuration; `reason` tells the operator how to turn it on.
    Disabled {
        reason: String,
    },
    /// Not used yet; connects on first use (RCON servers connect lazily).
    Idle,
    Connecting,
    Connected,
    /// Lost its connection and is trying again.
    Reconnecting {
        reason: String,
    },
    /// Cannot connect at all (refused, unresolvable, no answer); trying again with backoff.
    Unreachable {
        reason: String,
    },
    /// Credentials refused; no retry until the configuration changes.
    AuthFailed {
        reason: String,
    },
    /// Gave up until its configuration changes (bad credentials, for example).
    Failed {
        reason: String,
    },
}

impl ComponentStatus {
    pub fn disabled(reason: impl Into<String>) -> Self {
        ComponentStatus::Disabled {
            reason: reason.into(),
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            ComponentStatus::Disabled { .. } => "disabled",
            ComponentStatus::Idle => "idle",
            ComponentStatus::Connecting => "connecting",
            ComponentStatus::Connected => "connected",
            ComponentStatus::Reconnecting { .. } => "reconnecting",
            ComponentStatus::Unreachable { .. } => "unreachable",
            ComponentStatus::AuthFailed { .. } => "auth_failed",
            ComponentStatus::Failed { .. } => "failed",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            ComponentStatus::Disabled { reason }
            | ComponentStatus::Reconnecting { reason }
            | ComponentStatus::Unreachable { reason }
            | ComponentStatus::AuthFailed { reason }
            | ComponentStatus::Failed { reason } => Some(reason),
            ComponentStatus::Idle | ComponentStatus::Connecting | ComponentStatus::Connected => {
                None
            }
        }
    }
}
