//! The gateway's status as `/api/v1/bot/status`, `/ready` and the status stream show it.

use serde::Serialize;

use crate::actors::ComponentStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardStage {
    /// Opening its first session (never connected yet in this run of the gateway).
    Connecting,
    Connected,
    /// The connection was lost; the session is kept and RESUMEd as soon as Discord answers.
    Resuming,
    /// The connection was lost and Discord refused the session: identifying afresh.
    Reconnecting,
    Failed,
}

impl ShardStage {
    pub fn label(self) -> &'static str {
        match self {
            ShardStage::Connecting => "connecting",
            ShardStage::Connected => "connected",
            ShardStage::Resuming => "resuming",
            ShardStage::Reconnecting => "reconnecting",
            ShardStage::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardStatus {
    pub id: u32,
    pub stage: ShardStage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why the shard is not connected (the last failure), while it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BotStatus {
    #[serde(flatten)]
    pub status: ComponentStatus,
    /// `auto` or `first-last/total`.
    pub shard_spec: String,
    pub shard_total: Option<u32>,
    pub shards: Vec<ShardStatus>,
    pub guilds: usize,
    /// Seconds since every shard of the current session was last connected; `None` while any
    /// shard is not.
    pub uptime_secs: Option<u64>,
    pub last_error: Option<String>,
    pub bot_user_id: Option<String>,
    /// Messages waiting in this actor's mailbox.
    pub mailbox_depth: i64,
}
