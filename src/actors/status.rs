use serde::Serialize;

/// The state of an external dependency an actor owns (the Discord gateway, an RCON server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Turned off by configuration; `reason` tells the operator how to turn it on.
    Disabled {
        reason: String,
    },
    Connecting,
    Connected,
    /// Lost its connection and is trying again.
    Reconnecting {
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
            ComponentStatus::Connecting => "connecting",
            ComponentStatus::Connected => "connected",
            ComponentStatus::Reconnecting { .. } => "reconnecting",
            ComponentStatus::Failed { .. } => "failed",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            ComponentStatus::Disabled { reason }
            | ComponentStatus::Reconnecting { reason }
            | ComponentStatus::Failed { reason } => Some(reason),
            ComponentStatus::Connecting | ComponentStatus::Connected => None,
        }
    }
}
