//! The services' handle on Discord's REST API: the running gateway session's client, published
//! here by the gateway actor when the session's client is built and withdrawn when it ends, and
//! the bot's own user id once a shard is ready. Services hold this handle rather than the
//! gateway's address, so they depend on neither the actor nor the bot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serenity::http::Http;

use crate::domain::Snowflake;

/// The running session as services use it: its REST client and the bot's user id.
#[derive(Clone)]
pub struct DiscordSession {
    pub http: Arc<Http>,
    pub bot_user_id: Snowflake,
}

#[derive(Clone, Default)]
pub struct DiscordLink {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    http: RwLock<Option<Arc<Http>>>,
    bot_user_id: AtomicU64,
}

impl DiscordLink {
    /// The session's REST client, or `None` while no session runs.
    pub fn http(&self) -> Option<Arc<Http>> {
        match self.inner.http.read() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Publishes (or, with `None`, withdraws) the session's REST client.
    pub fn set_http(&self, http: Option<Arc<Http>>) {
        let mut slot = match self.inner.http.write() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = http;
    }

    /// The bot's user id, once a shard has been ready.
    pub fn bot_user_id(&self) -> Option<Snowflake> {
        Snowflake::new(self.inner.bot_user_id.load(Ordering::Relaxed)).ok()
    }

    /// The session's REST client and the bot's user id, once a shard has been ready; the one
    /// way services and the ban sweeper reach Discord.
    pub fn session(&self) -> Option<DiscordSession> {
        Some(DiscordSession {
            http: self.http()?,
            bot_user_id: self.bot_user_id()?,
        })
    }

    pub fn set_bot_user_id(&self, id: Snowflake) {
        self.inner.bot_user_id.store(id.get(), Ordering::Relaxed);
    }
}
