//! The optional Redis connection, with a circuit breaker: while Redis is down, callers skip it
//! (no per-request connect timeout) and use their in-process fallback; one caller probes again
//! every `PROBE_INTERVAL`. Transitions are logged once, not per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::PubSub;
use deadpool_redis::{Config, Connection, Pool, PoolConfig, Runtime, Timeouts};
use secrecy::{ExposeSecret, SecretString};

use crate::ids::now_ms;
use crate::metrics::Metrics;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const WAIT_TIMEOUT: Duration = Duration::from_millis(500);
const PROBE_INTERVAL_MS: i64 = 1_000;
const POOL_SIZE: usize = 16;

#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// For pub/sub, which needs a connection of its own rather than a pooled one.
    client: deadpool_redis::redis::Client,
    prefix: String,
    metrics: Metrics,
    up: AtomicBool,
    /// When the last attempt while down was made (Unix ms).
    last_probe_ms: AtomicI64,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RedisConfigError(String);

impl Redis {
    /// Builds the pool; connects lazily, so a Redis that is down at start is not fatal.
    pub fn new(
        url: &SecretString,
        prefix: &str,
        metrics: Metrics,
    ) -> Result<Self, RedisConfigError> {
        let mut config = Config::from_url(url.expose_secret());
        let mut pool_config = PoolConfig::new(POOL_SIZE);
        pool_config.timeouts = Timeouts {
            wait: Some(WAIT_TIMEOUT),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(CONNECT_TIMEOUT),
        };
        config.pool = Some(pool_config);
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            // The error names the URL's problem, never the URL (it may hold a password).
            .map_err(|e| RedisConfigError(format!("cannot build a pool: {e}")))?;
        let client = deadpool_redis::redis::Client::open(url.expose_secret())
            .map_err(|e| RedisConfigError(format!("cannot build a client: {e}")))?;
        metrics.redis_up.set(1);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                client,
                prefix: prefix.to_owned(),
                metrics,
                up: AtomicBool::new(true),
                last_probe_ms: AtomicI64::new(0),
            }),
        })
    }

    /// A key in this deployment's namespace: `<prefix>:<parts joined by ':'>`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.inner.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// A connection, or `None` when Redis is down (the caller falls back in-process).
    pub async fn conn(&self) -> Option<Connection> {
        if !self.is_up() {
            let now = now_ms();
            let last = self.inner.last_probe_ms.load(Ordering::Relaxed);
            // Only the caller that wins this exchange probes; the others fall back at once.
            if now - last < PROBE_INTERVAL_MS
                || self
                    .inner
                    .last_probe_ms
                    .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                return None;
            }
        }
        match self.inner.pool.get().await {
            Ok(conn) => {
                self.mark_up();
                Some(conn)
            }
            Err(e) => {
                self.mark_down(&e);
                None
            }
        }
    }

    /// Reports a failed command on a connection obtained from `conn`.
    pub fn report_failure(&self, error: &dyn std::fmt::Display) {
        self.mark_down(error);
    }

    fn mark_up(&self) {
        if !self.inner.up.swap(true, Ordering::AcqRel) {
            self.inner.metrics.redis_up.set(1);
            self.inner
                .metrics
                .redis_transitions
                .with_label_values(&["up"])
                .inc();
            tracing::info!("redis is reachable again; shared state goes through redis");
        }
    }

    fn mark_down(&self, error: &dyn std::fmt::Display) {
        self.inner.last_probe_ms.store(now_ms(), Ordering::Relaxed);
        if self.inner.up.swap(false, Ordering::AcqRel) {
            self.inner.metrics.redis_up.set(0);
            self.inner
                .metrics
                .redis_transitions
                .with_label_values(&["down"])
                .inc();
            tracing::error!(error = %error, "redis is unavailable; using in-process fallbacks until it returns");
        }
    }

    /// A connection subscribed to `channel`. It bypasses the breaker: its one caller retries
    /// on its own schedule.
    pub async fn pubsub(&self, channel: &str) -> Result<PubSub, String> {
        let subscribed = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut pubsub = self.inner.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, deadpool_redis::redis::RedisError>(pubsub)
        })
        .await;
        match subscribed {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                CONNECT_TIMEOUT.as_millis()
            )),
        }
    }

    /// Shown by `guildhall_cache_invalidation_subscribed`.
    pub fn report_subscription(&self, subscribed: bool) {
        self.inner
            .metrics
            .invalidation_subscribed
            .set(i64::from(subscribed));
    }

    /// A PING round trip, for `/ready`. Always tries, whatever the breaker says.
    pub async fn ping(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let mut conn = match self.inner.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                self.mark_down(&e);
                return Err(e.to_string());
            }
        };
        let pong: Result<String, _> = deadpool_redis::redis::cmd("PING")
            .query_async(&mut conn)
            .await;
        match pong {
            Ok(_) => {
                self.mark_up();
                Ok(started.elapsed())
            }
            Err(e) => {
                self.mark_down(&e);
                Err(e.to_string())
            }
        }
    }
}
