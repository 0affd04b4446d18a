//! Builds the application: configuration → secrets → store (migrate, seed) → Redis → metrics →
//! supervised actors → HTTP server bound to its port. `run_until_stopped` serves until a signal
//! (or a handle) stops the server, then drains the audit queue and closes the pool.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix::{Addr, Supervisor};
use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use actix_web_prom::PrometheusMetricsBuilder;
use prometheus::Registry;
use tracing_actix_web::TracingLogger;

use crate::actors::audit::{AuditActor, AuditLog};
use crate::actors::broadcaster::LogBroadcaster;
use crate::actors::gateway::{GatewayActor, Shutdown as GatewayShutdown, Start as GatewayStart};
use crate::actors::health::{self, HealthMonitor};
use crate::actors::rcon::RconTiming;
use crate::bot::sweeper::{BanSweeper, StartSweeping};
use crate::config::{ConfigError, Settings};
use crate::metrics::Metrics;
use crate::minecraft::MinecraftService;
use crate::minecraft::schedule::{self, ScheduleRunner};
use crate::services::discord::DiscordLink;
use crate::services::guild_config::{GuildConfigCache, GuildConfigService};
use crate::services::moderation::ModerationService;
use crate::shared::ratelimit::{Clock, Quota, RateLimiter};
use crate::shared::redis::Redis;
use crate::state::AppState;
use crate::store::{Store, StoreError, seed};
use crate::web::request_span::RequestSpan;
use crate::{secrets, telemetry, web as routes};

/// How long shutdown waits for the audit queue to drain.
const AUDIT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub struct Application {
    port: u16,
    server: Server,
    /// The dedicated `/metrics` listener (`GUILDHALL_METRICS_BIND`), already serving.
    metrics: Option<MetricsListener>,
    state: AppState,
    monitor: Addr<HealthMonitor>,
}

struct MetricsListener {
    port: u16,
    handle: ServerHandle,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Clock::System).await
    }

    /// As [`Application::build`], with the clock that rate-limit windows and cache lifetimes
    /// are counted by (tests hold it still, so a slow machine cannot move a burst across a
    /// window boundary or let a cached entry expire before the test says so).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> Result<Self, StartupError> {
        let started_at = Instant::now();
        let secrets = secrets::load(&settings)?;

        let store =
            Store::connect(&settings.database_url, settings.database_max_connections).await?;
        store.migrate().await?;
        seed::seed(&store).await?;

        let registry = Registry::new();
        let metrics =
            Metrics::new(registry.clone()).map_err(|e| StartupError::Other(e.to_string()))?;
        let redis = settings
            .redis_url
            .as_ref()
            .map(|url| Redis::new(url, &settings.redis_prefix, metrics.clone()))
            .transpose()
            .map_err(|e| ConfigError {
                variable: "REDIS_URL".into(),
                message: e.to_string(),
            })?;
        let prometheus = PrometheusMetricsBuilder::new("guildhall")
            .registry(registry)
            .mask_unmatched_patterns("UNMATCHED")
            .build()
            .map_err(|e| StartupError::Other(format!("metrics: {e}")))?;

        let broadcaster = {
            let (metrics, redis, clock) = (metrics.clone(), redis.clone(), clock.clone());
            Supervisor::start(move |_| {
                LogBroadcaster::new(metrics)
                    .with_redis(redis)
                    .with_clock(clock.clone())
            })
        };
        telemetry::global_sink().attach(broadcaster.clone().recipient());
        let audit = {
            let (store, metrics) = (store.clone(), metrics.clone());
            AuditLog::new(Supervisor::start(move |_| AuditActor::new(store, metrics)))
        };
        let gateway = {
            let (token, metrics) = (settings.discord_token.clone(), metrics.clone());
            let (discord, proxy) = (settings.discord.clone(), settings.discord_proxy_url.clone());
            Supervisor::start(move |_| GatewayActor::new(token, discord, proxy, metrics))
        };
        let minecraft = MinecraftService::start(
            store.clone(),
            audit.clone(),
            metrics.clone(),
            Some(broadcaster.clone()),
            &secrets.secret_key,
            settings.rcon.clone(),
            RconTiming {
                poll_interval: settings.rcon_poll_interval,
                ..RconTiming::with_timeout(settings.rcon_timeout)
            },
        )
        .await?;
        let schedules = {
            let minecraft = minecraft.clone();
            Supervisor::start(move |_| ScheduleRunner::new(minecraft, schedule::TICK))
        };

        let health = health::first_view(&store, redis.as_ref()).await;
        let monitor = {
            let (store, redis, metrics) = (store.clone(), redis.clone(), metrics.clone());
            let (gateway, broadcaster) = (gateway.clone().recipient(), broadcaster.clone());
            let view = health.clone();
            Supervisor::start(move |_| {
                HealthMonitor::new(store, redis, gateway, broadcaster, metrics, view)
            })
        };

        let ban_sweeper = {
            let (shards, metrics) = (settings.discord.shards, metrics.clone());
            Supervisor::start(move |_| {
                BanSweeper::new(shards, metrics, crate::services::moderation::SWEEP_INTERVAL)
            })
        };

        let invalidations = crate::shared::invalidation::Bus::new(redis.clone());
        let auth_cache =
            crate::auth::cache::AuthCache::with_clock(invalidations.clone(), clock.clone());
        let authenticator = crate::auth::authenticate::Authenticator::new(
            store.clone(),
            auth_cache.clone(),
            secrets.jwt_secret_key.clone(),
            secrets.secret_key.clone(),
        );
        // The same clock times link codes, so a test holding it still can also expire them.
        let links_clock = clock.clone();
        let rate_limiter = RateLimiter::with_clock(redis.clone(), clock.clone());
        let accounts = crate::services::accounts::Accounts::new(
            store.clone(),
            audit.clone(),
            auth_cache.clone(),
            rate_limiter.clone(),
            secrets.clone(),
        );
        let initial_admin = accounts.create_initial_admin().await.map_err(|e| match e {
            crate::services::accounts::AccountError::Store(e) => StartupError::Store(e),
            other => StartupError::Other(format!("creating the initial admin: {other}")),
        })?;
        if let Some(password) = initial_admin {
            announce_initial_admin(&password);
        }
        let guild_config =
            GuildConfigCache::with_clock(store.clone(), invalidations.clone(), clock.clone());
        let discord = DiscordLink::default();
        let discord_oauth = settings
            .discord_oauth
            .as_ref()
            .map(|o| {
                crate::auth::discord_oauth::DiscordOAuth::new(
                    o,
                    settings.discord_proxy_url.as_ref(),
                )
            })
            .transpose()
            .map_err(|e| StartupError::Other(format!("Discord sign-in: {e}")))?;
        let discord_sign_in = crate::services::discord_sign_in::DiscordSignIn::new(
            discord_oauth,
            store.clone(),
            audit.clone(),
            accounts.clone(),
            crate::services::discord_access::DiscordAccessService::new(
                store.clone(),
                audit.clone(),
                auth_cache.clone(),
                guild_config.clone(),
                discord.clone(),
            ),
            rate_limiter.clone(),
            secrets.clone(),
        );
        let links = crate::minecraft::links::LinkService::new(
            minecraft.clone(),
            guild_config.clone(),
            discord.clone(),
            rate_limiter.clone(),
            links_clock,
            secrets.secret_key.clone(),
            settings.whitelist_reconcile_interval,
        );
        let whitelist_sync = {
            let links = links.clone();
            Supervisor::start(move |_| {
                crate::minecraft::links_sync::WhitelistSync::new(
                    links,
                    crate::minecraft::links_sync::TICK,
                )
            })
        };
        let admin = crate::services::admin::AdminService::new(
            store.clone(),
            audit.clone(),
            auth_cache.clone(),
            accounts.clone(),
            secrets.secret_key.clone(),
        );
        let state = AppState {
            admin,
            guilds: GuildConfigService::new(store.clone(), audit.clone(), guild_config.clone()),
            moderation: ModerationService::new(
                store.clone(),
                audit.clone(),
                guild_config.clone(),
                discord.clone(),
            ),
            discord,
            store: store.clone(),
            rate_limiter,
            redis: redis.clone(),
            default_quota: settings.rate_limit_per_minute.map(Quota::per_minute),
            audit,
            broadcaster,
            gateway,
            minecraft,
            links,
            whitelist_sync,
            schedules,
            ban_sweeper,
            metrics,
            secrets,
            started_at,
            guild_config,
            auth_cache,
            authenticator,
            accounts,
            discord_sign_in,
            history: crate::history::History::new(clock),
            health,
        };
        state.history.start_sampling(state.metrics.clone());
        // Compress the static assets now rather than in the first request for each.
        std::thread::spawn(routes::assets::warm);
        invalidations.subscribe();
        state.gateway.do_send(GatewayStart(state.clone()));
        state.ban_sweeper.do_send(StartSweeping(state.clone()));

        let listener = TcpListener::bind(settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Other(e.to_string()))?
            .port();
        let data = web::Data::new(state.clone());
        let docs = web::Data::new(routes::openapi::DocsEnabled(settings.api_docs));
        let trusted_proxies = settings.trusted_proxies.clone();
        let metrics_here = settings.metrics_bind.is_none();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(docs.clone())
                .app_data(trusted_proxies.clone())
                .configure(routes::configure)
                .configure(|cfg| {
                    if metrics_here {
                        routes::configure_metrics(cfg);
                    }
                })
                .default_service(web::to(routes::not_found))
                // Innermost first: the edge sees every response, errors included.
                .wrap(routes::middleware::Edge)
                .wrap(prometheus.clone())
                .wrap(TracingLogger::<RequestSpan>::new())
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .run();
        let metrics = settings
            .metrics_bind
            .map(|addr| serve_metrics(addr, web::Data::new(state.clone())))
            .transpose()?;

        tracing::info!(
            address = %std::net::SocketAddr::new(settings.bind.ip(), port),
            metrics_port = metrics.as_ref().map(|m| m.port),
            database = ?state.store.kind(),
            redis = state.redis.is_some(),
            startup_ms = started_at.elapsed().as_millis() as u64,
            "guildhall is serving"
        );
        Ok(Self {
            port,
            server,
            metrics,
            state,
            monitor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the dedicated `/metrics` listener, when `GUILDHALL_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|m| m.port)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops the server from elsewhere (tests; signals are handled by the server itself).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT or `handle().stop(true)`: stop accepting, finish in-flight
    /// requests, then drain the audit queue and close the database pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            state,
            monitor,
            metrics,
            ..
        } = self;
        // actix stops accepting on the signal and waits for connections in flight; live streams
        // would hold it for the whole shutdown timeout, so they are told to close at once.
        actix_web::rt::spawn(async {
            use tokio::signal::unix::{SignalKind, signal};
            if let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                crate::web::ws::close_all_viewers();
            }
        });
        let served = server.await;
        if let Some(metrics) = metrics {
            metrics.handle.stop(true).await;
        }
        // Before the pool closes, or the closed pool would be reported as a database outage.
        let _ = monitor.send(health::StopMonitoring).await;
        let _ = state.schedules.send(schedule::StopScheduling).await;
        let _ = state
            .ban_sweeper
            .send(crate::bot::sweeper::StopSweeping)
            .await;
        let _ = state
            .whitelist_sync
            .send(crate::minecraft::links_sync::StopSyncing)
            .await;
        // Close the Discord shards cleanly (close code 1000) rather than letting them time out.
        let _ = state.gateway.send(GatewayShutdown).await;
        tracing::info!("http server stopped; draining the audit queue");
        if tokio::time::timeout(AUDIT_DRAIN_TIMEOUT, state.audit.drain())
            .await
            .is_err()
        {
            tracing::error!("audit queue did not drain within {AUDIT_DRAIN_TIMEOUT:?}");
        }
        state.store.close().await;
        tracing::info!("shutdown complete");
        served
    }
}

/// `/metrics` alone on its own listener, so the public one need not expose it. It follows the
/// main server: no signal handling of its own, stopped once the main server has stopped.
fn serve_metrics(
    addr: std::net::SocketAddr,
    data: web::Data<AppState>,
) -> Result<MetricsListener, StartupError> {
    let bind_error = |source| StartupError::Bind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(routes::configure_metrics)
            .default_service(web::to(routes::not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(MetricsListener { port, handle })
}

/// Printed once, to standard error and not through the log pipeline, so the password reaches
/// the operator's terminal but no log file, log viewer or aggregator.
fn announce_initial_admin(password: &secrecy::SecretString) {
    use secrecy::ExposeSecret;
    eprintln!(
        "\n  guildhall: created the initial admin user.\n    username: admin\n    password: {}\n  \
         This password is shown once. Sign in and change it.\n",
        password.expose_secret()
    );
    tracing::info!("created the initial admin user `admin` (password shown once on stderr)");
}
