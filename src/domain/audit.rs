//! Where an action came from, for its audit entry: an HTTP request (address, user agent,
//! request id) or a Discord interaction (its id), and the instance that handled it. The web
//! layer builds one from the request, the bot from the interaction, and every audit entry
//! carries one the same way (`NewAuditEntry::origin`).

use std::sync::OnceLock;

use super::Snowflake;

/// What ties an entry to the request or interaction that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correlation {
    /// The `X-Request-Id` of an HTTP request.
    Request(String),
    /// The id of a Discord interaction (a slash command).
    Interaction(Snowflake),
    /// An internal job's run (a schedule's occurrence: `schedule-<id>-<due>`).
    Job(String),
}

impl Correlation {
    /// The stored form (the `request_id` column): `interaction:<id>` for an interaction.
    pub fn stored(&self) -> String {
        match self {
            Correlation::Request(id) | Correlation::Job(id) => id.clone(),
            Correlation::Interaction(id) => format!("interaction:{id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOrigin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub correlation: Option<Correlation>,
    /// The guildhall instance (host and process) that handled the action; several instances
    /// may share one database.
    pub instance: &'static str,
}

impl AuditOrigin {
    /// An action with no outside origin (a schedule, an expiring ban, the CLI).
    pub fn internal() -> Self {
        Self {
            ip: None,
            user_agent: None,
            correlation: None,
            instance: instance_name(),
        }
    }

    /// An HTTP request.
    pub fn http(
        ip: Option<String>,
        user_agent: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        Self {
            ip,
            user_agent,
            correlation: request_id.map(Correlation::Request),
            instance: instance_name(),
        }
    }

    /// An internal job's run, e.g. a schedule's occurrence.
    pub fn job(id: String) -> Self {
        Self {
            correlation: Some(Correlation::Job(id)),
            ..Self::internal()
        }
    }

    /// A Discord interaction.
    pub fn interaction(id: Snowflake) -> Self {
        Self {
            correlation: Some(Correlation::Interaction(id)),
            ..Self::internal()
        }
    }

    /// The request id or `interaction:<id>`, as stored.
    pub fn request_id(&self) -> Option<String> {
        self.correlation.as_ref().map(Correlation::stored)
    }
}

impl Default for AuditOrigin {
    fn default() -> Self {
        Self::internal()
    }
}

/// This process's name in audit entries: `host:pid`.
pub fn instance_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}:{}", std::process::id())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interaction_is_stored_as_its_prefixed_id_and_a_request_as_its_id() {
        let id = Snowflake::new(42).unwrap();
        assert_eq!(
            AuditOrigin::interaction(id).request_id().as_deref(),
            Some("interaction:42")
        );
        let http = AuditOrigin::http(None, Some("curl".into()), Some("r-1".into()));
        assert_eq!(http.request_id().as_deref(), Some("r-1"));
        assert_eq!(AuditOrigin::internal().request_id(), None);
        assert!(http.instance.contains(':'));
    }
}
