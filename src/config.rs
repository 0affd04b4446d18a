//! Layered settings: defaults < TOML file (`GUILDHALL_CONFIG`) < environment.
//!
//! Every secret also accepts `NAME_FILE`, a path whose contents are the secret (systemd
//! credentials, NixOS `environmentFile`s and Docker secrets all work this way). Resolution is
//! pure over an environment map so that tests never touch the process environment.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

mod proxies;
pub use proxies::{TrustedProxies, canonical_ip};

/// One problem with the configuration, naming the variable it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }
}

/// A configuration key: its environment name, its TOML name and whether it is a secret.
struct Key {
    env: &'static str,
    toml: &'static str,
    secret: bool,
}

const fn key(env: &'static str, toml: &'static str, secret: bool) -> Key {
    Key { env, toml, secret }
}

const BIND: Key = key("GUILDHALL_BIND", "bind", false);
const METRICS_BIND: Key = key("GUILDHALL_METRICS_BIND", "metrics_bind", false);
const TRUSTED_PROXIES: Key = key("GUILDHALL_TRUSTED_PROXIES", "trusted_proxies", false);
const DATA_DIR: Key = key("GUILDHALL_DATA_DIR", "data_dir", false);
const DATABASE_URL: Key = key("DATABASE_URL", "database_url", true);
const DATABASE_MAX_CONNECTIONS: Key = key(
    "GUILDHALL_DATABASE_MAX_CONNECTIONS",
    "database_max_connections",
    false,
);
const REDIS_URL: Key = key("REDIS_URL", "redis_url", true);
const REDIS_PREFIX: Key = key("GUILDHALL_REDIS_PREFIX", "redis_prefix", false);
const DISCORD_TOKEN: Key = key("DISCORD_TOKEN", "discord_token", true);
const DISCORD_PROXY_URL: Key = key("DISCORD_PROXY_URL", "discord_proxy_url", false);
const DISCORD_SHARDS: Key = key("GUILDHALL_SHARDS", "shards", false);
const DISCORD_DEV_GUILD_ID: Key = key("GUILDHALL_DEV_GUILD_ID", "dev_guild_id", false);
const DISCORD_MEMBERS_INTENT: Key = key(
    "GUILDHALL_DISCORD_MEMBERS_INTENT",
    "discord_members_intent",
    false,
);
const JWT_SECRET_KEY: Key = key("JWT_SECRET_KEY", "jwt_secret_key", true);
const SECRET_KEY: Key = key("SECRET_KEY", "secret_key", true);
const RCON_HOST: Key = key("RCON_HOST", "rcon_host", false);
const RCON_PORT: Key = key("RCON_PORT", "rcon_port", false);
const RCON_PASSWORD: Key = key("RCON_PASSWORD", "rcon_password", true);
const LOG_FORMAT: Key = key("LOG_FORMAT", "log_format", false);
const RUST_LOG: Key = key("RUST_LOG", "log_filter", false);
const RATE_LIMIT: Key = key(
    "GUILDHALL_RATE_LIMIT_PER_MINUTE",
    "rate_limit_per_minute",
    false,
);
const API_DOCS: Key = key("GUILDHALL_API_DOCS", "api_docs", false);
const SHUTDOWN_TIMEOUT: Key = key(
    "GUILDHALL_SHUTDOWN_TIMEOUT_SECS",
    "shutdown_timeout_secs",
    false,
);

const RCON_TIMEOUT: Key = key("GUILDHALL_RCON_TIMEOUT_MS", "rcon_timeout_ms", false);
const DISCORD_CLIENT_ID: Key = key("DISCORD_CLIENT_ID", "discord_client_id", false);
const DISCORD_CLIENT_SECRET: Key = key("DISCORD_CLIENT_SECRET", "discord_client_secret", true);
const PUBLIC_URL: Key = key("GUILDHALL_PUBLIC_URL", "public_url", false);
const DISCORD_OAUTH_TIMEOUT: Key = key(
    "GUILDHALL_DISCORD_OAUTH_TIMEOUT_MS",
    "discord_oauth_timeout_ms",
    false,
);
const RCON_POLL: Key = key("GUILDHALL_RCON_POLL_MS", "rcon_poll_ms", false);
const WHITELIST_RECONCILE: Key = key(
    "GUILDHALL_WHITELIST_RECONCILE_SECS",
    "whitelist_reconcile_secs",
    false,
);

const KEYS: &[&Key] = &[
    &BIND,
    &METRICS_BIND,
    &TRUSTED_PROXIES,
    &DATA_DIR,
    &DATABASE_URL,
    &DATABASE_MAX_CONNECTIONS,
    &REDIS_URL,
    &REDIS_PREFIX,
    &DISCORD_TOKEN,
    &DISCORD_PROXY_URL,
    &DISCORD_SHARDS,
    &DISCORD_DEV_GUILD_ID,
    &DISCORD_MEMBERS_INTENT,
    &JWT_SECRET_KEY,
    &SECRET_KEY,
    &RCON_HOST,
    &RCON_PORT,
    &RCON_PASSWORD,
    &LOG_FORMAT,
    &RUST_LOG,
    &RATE_LIMIT,
    &SHUTDOWN_TIMEOUT,
    &API_DOCS,
    &RCON_TIMEOUT,
    &RCON_POLL,
    &DISCORD_CLIENT_ID,
    &DISCORD_CLIENT_SECRET,
    &PUBLIC_URL,
    &DISCORD_OAUTH_TIMEOUT,
    &WHITELIST_RECONCILE,
];

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";
pub const DEFAULT_RCON_PORT: u16 = 25575;
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 600;

/// Where an effective value came from, shown by `guildhall check-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Environment,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Default => "default",
            Origin::File => "config file",
            Origin::Environment => "environment",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// A validated database URL. The URL may carry a password, so it is kept secret and only its
/// redacted form is ever displayed.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    url: SecretString,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let scheme = raw.split(':').next().unwrap_or_default();
        let kind = match scheme {
            "sqlite" => DatabaseKind::Sqlite,
            "postgres" | "postgresql" => DatabaseKind::Postgres,
            "" => return Err("is empty; expected sqlite://PATH or postgres://…".into()),
            other => {
                return Err(format!(
                    "unsupported scheme `{other}`; expected sqlite://PATH or postgres://…"
                ));
            }
        };
        if kind == DatabaseKind::Postgres {
            let url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
            if url.host_str().unwrap_or_default().is_empty() && !raw.contains("host=") {
                return Err("has no host".into());
            }
        } else {
            let path = raw
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .split('?')
                .next()
                .unwrap_or_default();
            if path.is_empty() {
                return Err("has no file path; expected sqlite://PATH or sqlite::memory:".into());
            }
        }
        Ok(Self {
            url: SecretString::from(raw.to_owned()),
            kind,
        })
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(self.url.expose_secret())
    }
}

fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            // set_password fails only for URLs that cannot have one, which this one has.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

/// Which gateway shards this instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    /// As many as Discord recommends (`GET /gateway/bot`), all in this instance.
    Auto,
    /// Shards `first..=last` of `total`, so several instances can split one bot.
    Range { first: u32, last: u32, total: u32 },
}

impl ShardSpec {
    /// Whether this instance serves the guild: its shard (`(id >> 22) % total`) is in range.
    pub fn serves(&self, guild_id: u64) -> bool {
        match *self {
            ShardSpec::Auto => true,
            ShardSpec::Range { first, last, total } => {
                let shard = (guild_id >> 22) % u64::from(total);
                (u64::from(first)..=u64::from(last)).contains(&shard)
            }
        }
    }

    /// `auto` or `a-b/total` (a single shard may be written `a/total`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("auto") {
            return Ok(ShardSpec::Auto);
        }
        let bad = || format!("`{raw}` is neither `auto` nor a range like `0-3/16`");
        let (range, total) = raw.split_once('/').ok_or_else(bad)?;
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (range, range),
        };
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        let (first, last, total) = (number(first)?, number(last)?, number(total)?);
        if total == 0 || total > 4096 {
            return Err(format!("`{raw}`: the total must be between 1 and 4096"));
        }
        if first > last || last >= total {
            return Err(format!(
                "`{raw}`: the range must be ascending and below the total (shard ids are 0-based)"
            ));
        }
        Ok(ShardSpec::Range { first, last, total })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardSpec::Auto => f.write_str("auto"),
            ShardSpec::Range { first, last, total } => write!(f, "{first}-{last}/{total}"),
        }
    }
}

/// Everything the Discord gateway needs besides its token.
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub shards: ShardSpec,
    /// Register slash commands in this guild only (instant, for development) instead of globally.
    pub dev_guild_id: Option<u64>,
    /// The privileged GUILD_MEMBERS intent, needed for welcome messages; off by default because
    /// Discord refuses it (close code 4014) unless it is enabled in the developer portal.
    pub members_intent: bool,
}

/// Sign in with Discord (OAuth2): on only when the application's id and secret and the public
/// URL the browser reaches guildhall at are all set.
#[derive(Debug, Clone)]
pub struct DiscordOAuthSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    /// Where browsers reach guildhall; the redirect URI is derived from it.
    pub public_url: Url,
    /// Per request to Discord's token and user endpoints.
    pub timeout: Duration,
}

impl DiscordOAuthSettings {
    /// `<public URL>/auth/discord/callback`, the redirect URI to register with Discord.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/auth/discord/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }
}

#[derive(Debug, Clone)]
pub struct RconSettings {
    pub host: String,
    pub port: u16,
    pub password: SecretString,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    /// `/metrics` on a listener of its own (and not on `bind`); `None` serves it on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (see `web::client`).
    pub trusted_proxies: TrustedProxies,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub redis_url: Option<SecretString>,
    /// Namespace of every Redis key, so deployments can share one Redis.
    pub redis_prefix: String,
    pub discord_token: Option<SecretString>,
    pub discord_proxy_url: Option<Url>,
    pub discord: DiscordSettings,
    /// `None`: Discord sign-in is off (none of its settings is given).
    pub discord_oauth: Option<DiscordOAuthSettings>,
    /// The public base URL, when set (also without Discord sign-in).
    pub public_url: Option<Url>,
    /// `None` means: load or generate it in the data directory on start.
    pub jwt_secret_key: Option<SecretString>,
    pub secret_key: Option<SecretString>,
    pub rcon: Option<RconSettings>,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Requests per minute per client address; `None` turns the limit off.
    pub rate_limit_per_minute: Option<u32>,
    pub shutdown_timeout: Duration,
    /// Serve the API reference at `/docs`; on by default in debug builds.
    pub api_docs: bool,
    /// Per-command (and login) timeout of every RCON connection.
    pub rcon_timeout: Duration,
    /// How often a connected Minecraft server is asked `list` (players, liveness).
    pub rcon_poll_interval: Duration,
    /// How often each Minecraft server's whitelist is reconciled with the linked members.
    pub whitelist_reconcile_interval: Duration,
    /// Where each key's value came from, for `check-config`.
    origins: BTreeMap<&'static str, Origin>,
}

/// One value as found in a layer.
struct Found {
    value: String,
    origin: Origin,
}

/// The raw layers: environment map and the parsed TOML file.
struct Layers<'a> {
    env: &'a HashMap<String, String>,
    file: Option<(PathBuf, toml::Table)>,
}

impl Layers<'_> {
    fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn file_value(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let Some((path, table)) = &self.file else {
            return Ok(None);
        };
        match table.get(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) if s.is_empty() => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(toml::Value::Integer(i)) => Ok(Some(i.to_string())),
            Some(toml::Value::Boolean(b)) => Ok(Some(b.to_string())),
            // Lists (e.g. `trusted_proxies = ["127.0.0.1", "::1"]`) read as comma-separated.
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    _ => Err(ConfigError::new(
                        format!("{} ({})", name, path.display()),
                        "a list may hold only strings",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|items| Some(items.join(",")).filter(|s| !s.is_empty())),
            Some(_) => Err(ConfigError::new(
                format!("{} ({})", name, path.display()),
                "must be a string or a number",
            )),
        }
    }

    /// Looks a key up: environment (`NAME`, then `NAME_FILE`), then the file (`name`,
    /// `name_file`). Setting both a value and its `_FILE` in one layer is an error, since one
    /// of them would be silently ignored.
    fn get(&self, key: &Key) -> Result<Option<Found>, ConfigError> {
        let env_file = format!("{}_FILE", key.env);
        let direct = self.env_value(key.env);
        let via_file = if key.secret {
            self.env_value(&env_file)
        } else {
            None
        };
        match (direct, via_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    key.env,
                    format!("both {} and {env_file} are set; set only one", key.env),
                ));
            }
            (Some(v), None) => {
                return Ok(Some(Found {
                    value: v.to_owned(),
                    origin: Origin::Environment,
                }));
            }
            (None, Some(path)) => {
                return read_secret_file(&env_file, Path::new(path)).map(|value| {
                    Some(Found {
                        value,
                        origin: Origin::Environment,
                    })
                });
            }
            (None, None) => {}
        }
        let toml_file = format!("{}_file", key.toml);
        let direct = self.file_value(key.toml)?;
        let via_file = if key.secret {
            self.file_value(&toml_file)?
        } else {
            None
        };
        match (direct, via_file) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                key.toml,
                format!(
                    "both `{}` and `{toml_file}` are set in the config file; set only one",
                    key.toml
                ),
            )),
            (Some(value), None) => Ok(Some(Found {
                value,
                origin: Origin::File,
            })),
            (None, Some(path)) => read_secret_file(&toml_file, Path::new(&path)).map(|value| {
                Some(Found {
                    value,
                    origin: Origin::File,
                })
            }),
            (None, None) => Ok(None),
        }
    }
}

fn read_secret_file(variable: &str, path: &Path) -> Result<String, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(variable, format!("cannot read `{}`: {e}", path.display()))
    })?;
    // Files written by `echo` or editors end with a newline that is not part of the secret.
    let trimmed = contents.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(ConfigError::new(
            variable,
            format!("`{}` is empty", path.display()),
        ));
    }
    Ok(trimmed.to_owned())
}

fn load_file(env: &HashMap<String, String>) -> Result<Option<(PathBuf, toml::Table)>, ConfigError> {
    let Some(path) = env.get("GUILDHALL_CONFIG").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::new(
            "GUILDHALL_CONFIG",
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::new(
            "GUILDHALL_CONFIG",
            format!(
                "`{}` is not valid TOML: {}",
                path.display(),
                e.message().trim()
            ),
        )
    })?;
    for name in table.keys() {
        let known = KEYS.iter().any(|k| {
            k.toml == name.as_str() || (k.secret && format!("{}_file", k.toml) == name.as_str())
        });
        if !known {
            return Err(ConfigError::new(
                "GUILDHALL_CONFIG",
                format!("unknown key `{name}` in `{}`", path.display()),
            ));
        }
    }
    Ok(Some((path, table)))
}

impl Settings {
    /// Reads the process environment (and the file it names).
    pub fn from_process_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_env(&env)
    }

    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let layers = Layers {
            env,
            file: load_file(env)?,
        };
        let mut origins = BTreeMap::new();
        let mut get = |key: &'static Key| -> Result<Option<String>, ConfigError> {
            let found = layers.get(key)?;
            let origin = found.as_ref().map_or(Origin::Default, |f| f.origin);
            origins.insert(key.env, origin);
            Ok(found.map(|f| f.value))
        };

        let bind_raw = get(&BIND)?.unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind = parse_bind(BIND.env, &bind_raw)?;
        let metrics_bind = get(&METRICS_BIND)?
            .map(|raw| parse_bind(METRICS_BIND.env, &raw))
            .transpose()?;
        if let Some(metrics) = metrics_bind
            && metrics.port() != 0
            && metrics.port() == bind.port()
            && (metrics.ip() == bind.ip()
                || metrics.ip().is_unspecified()
                || bind.ip().is_unspecified())
        {
            return Err(ConfigError::new(
                METRICS_BIND.env,
                format!(
                    "`{metrics}` is the address of GUILDHALL_BIND; give /metrics a port of its own"
                ),
            ));
        }
        let trusted_proxies = get(&TRUSTED_PROXIES)?
            .map(|raw| {
                TrustedProxies::parse(&raw).map_err(|m| ConfigError::new(TRUSTED_PROXIES.env, m))
            })
            .transpose()?
            .unwrap_or_default();
        let data_dir = PathBuf::from(get(&DATA_DIR)?.unwrap_or_else(|| DEFAULT_DATA_DIR.into()));
        let database_url = match get(&DATABASE_URL)? {
            Some(raw) => {
                DatabaseUrl::parse(&raw).map_err(|m| ConfigError::new(DATABASE_URL.env, m))?
            }
            None => default_database_url(&data_dir)?,
        };
        let database_max_connections = parse_number(
            DATABASE_MAX_CONNECTIONS.env,
            get(&DATABASE_MAX_CONNECTIONS)?,
            match database_url.kind() {
                DatabaseKind::Sqlite => 8,
                DatabaseKind::Postgres => 16,
            },
            1..=1000,
        )?;
        let redis_url = get(&REDIS_URL)?
            .map(|raw| {
                let url = Url::parse(&raw).map_err(|e| {
                    ConfigError::new(REDIS_URL.env, format!("not a valid URL ({e})"))
                })?;
                match url.scheme() {
                    "redis" | "rediss" | "redis+unix" | "unix" => Ok(SecretString::from(raw)),
                    other => Err(ConfigError::new(
                        REDIS_URL.env,
                        format!("unsupported scheme `{other}`; expected redis://HOST:PORT"),
                    )),
                }
            })
            .transpose()?;
        let redis_prefix = get(&REDIS_PREFIX)?.unwrap_or_else(|| "guildhall".to_owned());
        if !redis_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::new(
                REDIS_PREFIX.env,
                "may contain only letters, digits, `-`, `_` and `.`",
            ));
        }
        let discord_token = get(&DISCORD_TOKEN)?.map(SecretString::from);
        let discord_proxy_url = get(&DISCORD_PROXY_URL)?
            .map(|raw| {
                let url = Url::parse(&raw).map_err(|e| {
                    ConfigError::new(DISCORD_PROXY_URL.env, format!("not a valid URL ({e})"))
                })?;
                if matches!(url.scheme(), "http" | "https") {
                    Ok(url)
                } else {
                    Err(ConfigError::new(
                        DISCORD_PROXY_URL.env,
                        "must be an http:// or https:// URL",
                    ))
                }
            })
            .transpose()?;
        let shards = get(&DISCORD_SHARDS)?
            .map(|raw| ShardSpec::parse(&raw).map_err(|m| ConfigError::new(DISCORD_SHARDS.env, m)))
            .transpose()?
            .unwrap_or(ShardSpec::Auto);
        let dev_guild_id = get(&DISCORD_DEV_GUILD_ID)?
            .map(|raw| match raw.trim().parse::<u64>() {
                Ok(id) if id > 0 => Ok(id),
                _ => Err(ConfigError::new(
                    DISCORD_DEV_GUILD_ID.env,
                    format!("`{raw}` is not a Discord guild id (a positive number)"),
                )),
            })
            .transpose()?;
        let members_intent = match get(&DISCORD_MEMBERS_INTENT)?.as_deref().map(str::trim) {
            None | Some("0" | "false" | "off" | "no") => false,
            Some("1" | "true" | "on" | "yes") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    DISCORD_MEMBERS_INTENT.env,
                    format!("`{other}` is not a boolean; expected `true` or `false`"),
                ));
            }
        };
        let public_url = get(&PUBLIC_URL)?
            .map(|raw| {
                let url = Url::parse(raw.trim()).map_err(|e| {
                    ConfigError::new(PUBLIC_URL.env, format!("not a valid URL ({e})"))
                })?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.query().is_some()
                    || url.fragment().is_some()
                {
                    return Err(ConfigError::new(
                        PUBLIC_URL.env,
                        "must be an http:// or https:// URL without query or fragment",
                    ));
                }
                Ok(url)
            })
            .transpose()?;
        let oauth_timeout_ms: u64 = parse_number(
            DISCORD_OAUTH_TIMEOUT.env,
            get(&DISCORD_OAUTH_TIMEOUT)?,
            10_000,
            100..=120_000,
        )?;
        let client_id = get(&DISCORD_CLIENT_ID)?.map(|v| v.trim().to_owned());
        let client_secret = get(&DISCORD_CLIENT_SECRET)?;
        if let Some(id) = &client_id
            && (id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(ConfigError::new(
                DISCORD_CLIENT_ID.env,
                "must be the application's id (digits)",
            ));
        }
        // Half a configuration is a mistake worth stopping for; none at all turns the feature off.
        let discord_oauth = match (client_id, client_secret, &public_url) {
            (Some(client_id), Some(secret), Some(public_url)) => Some(DiscordOAuthSettings {
                client_id,
                client_secret: SecretString::from(secret),
                public_url: public_url.clone(),
                timeout: Duration::from_millis(oauth_timeout_ms),
            }),
            (None, None, _) => None,
            (Some(_), None, _) => {
                return Err(ConfigError::new(
                    DISCORD_CLIENT_SECRET.env,
                    "is required when DISCORD_CLIENT_ID is set",
                ));
            }
            (None, Some(_), _) => {
                return Err(ConfigError::new(
                    DISCORD_CLIENT_ID.env,
                    "is required when DISCORD_CLIENT_SECRET is set",
                ));
            }
            (Some(_), Some(_), None) => {
                return Err(ConfigError::new(
                    PUBLIC_URL.env,
                    "is required for Discord sign-in (the redirect URI is derived from it)",
                ));
            }
        };
        let jwt_secret_key = get(&JWT_SECRET_KEY)?
            .map(|v| check_secret_strength(JWT_SECRET_KEY.env, v))
            .transpose()?;
        let secret_key = get(&SECRET_KEY)?
            .map(|v| check_secret_strength(SECRET_KEY.env, v))
            .transpose()?;

        let rcon_host = get(&RCON_HOST)?;
        let rcon_port = parse_number(
            RCON_PORT.env,
            get(&RCON_PORT)?,
            DEFAULT_RCON_PORT,
            1..=u16::MAX,
        )?;
        let rcon_password = get(&RCON_PASSWORD)?;
        let rcon = match (rcon_host, rcon_password) {
            (Some(host), Some(password)) => Some(RconSettings {
                host,
                port: rcon_port,
                password: SecretString::from(password),
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    RCON_PASSWORD.env,
                    "is required when RCON_HOST is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    RCON_HOST.env,
                    "is required when RCON_PASSWORD is set",
                ));
            }
            (None, None) => None,
        };

        let log_format = match get(&LOG_FORMAT)?.as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    LOG_FORMAT.env,
                    format!("unknown format `{other}`; expected `pretty` or `json`"),
                ));
            }
        };
        let log_filter = get(&RUST_LOG)?.unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| ConfigError::new(RUST_LOG.env, format!("invalid filter ({e})")))?;
        let rate_limit: u32 = parse_number(
            RATE_LIMIT.env,
            get(&RATE_LIMIT)?,
            DEFAULT_RATE_LIMIT_PER_MINUTE,
            0..=1_000_000,
        )?;
        let shutdown_timeout: u64 =
            parse_number(SHUTDOWN_TIMEOUT.env, get(&SHUTDOWN_TIMEOUT)?, 30, 0..=3600)?;
        let rcon_timeout_ms: u64 =
            parse_number(RCON_TIMEOUT.env, get(&RCON_TIMEOUT)?, 10_000, 100..=300_000)?;
        let rcon_poll_ms: u64 =
            parse_number(RCON_POLL.env, get(&RCON_POLL)?, 30_000, 100..=86_400_000)?;
        let whitelist_reconcile_secs: u64 = parse_number(
            WHITELIST_RECONCILE.env,
            get(&WHITELIST_RECONCILE)?,
            300,
            10..=604_800,
        )?;

        let api_docs = match get(&API_DOCS)?.as_deref() {
            None => cfg!(debug_assertions),
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    API_DOCS.env,
                    format!("`{other}` is not a boolean; use true or false"),
                ));
            }
        };

        Ok(Settings {
            bind,
            metrics_bind,
            trusted_proxies,
            data_dir,
            database_url,
            database_max_connections,
            redis_url,
            redis_prefix,
            discord_token,
            discord_proxy_url,
            discord: DiscordSettings {
                shards,
                dev_guild_id,
                members_intent,
            },
            discord_oauth,
            public_url,
            jwt_secret_key,
            secret_key,
            rcon,
            log_format,
            log_filter,
            rate_limit_per_minute: (rate_limit > 0).then_some(rate_limit),
            shutdown_timeout: Duration::from_secs(shutdown_timeout),
            api_docs,
            rcon_timeout: Duration::from_millis(rcon_timeout_ms),
            rcon_poll_interval: Duration::from_millis(rcon_poll_ms),
            whitelist_reconcile_interval: Duration::from_secs(whitelist_reconcile_secs),
            origins,
        })
    }

    /// The effective configuration as `NAME = value (origin)` lines, secrets shown as `***`.
    pub fn describe(&self) -> Vec<String> {
        let origin = |name: &str| self.origins.get(name).copied().unwrap_or(Origin::Default);
        let secret = |s: &Option<SecretString>, unset: &str| match s {
            Some(_) => "***".to_owned(),
            None => unset.to_owned(),
        };
        let rows: Vec<(&Key, String)> = vec![
            (&BIND, self.bind.to_string()),
            (
                &METRICS_BIND,
                self.metrics_bind.map_or(
                    "(not set: /metrics is served on GUILDHALL_BIND)".into(),
                    |a| a.to_string(),
                ),
            ),
            (
                &TRUSTED_PROXIES,
                if self.trusted_proxies.is_empty() {
                    "(none: X-Forwarded-* headers are ignored)".into()
                } else {
                    self.trusted_proxies.to_string()
                },
            ),
            (&DATA_DIR, self.data_dir.display().to_string()),
            (&DATABASE_URL, self.database_url.redacted()),
            (
                &DATABASE_MAX_CONNECTIONS,
                self.database_max_connections.to_string(),
            ),
            (
                &REDIS_URL,
                self.redis_url
                    .as_ref()
                    .map_or("(not set: in-process fallbacks)".into(), |u| {
                        redact_url(u.expose_secret())
                    }),
            ),
            (&REDIS_PREFIX, self.redis_prefix.clone()),
            (
                &DISCORD_TOKEN,
                secret(
                    &self.discord_token,
                    "(not set: the Discord gateway is disabled)",
                ),
            ),
            (
                &DISCORD_PROXY_URL,
                self.discord_proxy_url
                    .as_ref()
                    .map_or("(not set)".into(), Url::to_string),
            ),
            (&DISCORD_SHARDS, self.discord.shards.to_string()),
            (
                &DISCORD_DEV_GUILD_ID,
                self.discord
                    .dev_guild_id
                    .map_or("(not set: commands are registered globally)".into(), |id| {
                        id.to_string()
                    }),
            ),
            (
                &DISCORD_MEMBERS_INTENT,
                self.discord.members_intent.to_string(),
            ),
            (
                &JWT_SECRET_KEY,
                secret(
                    &self.jwt_secret_key,
                    "(not set: generated into the data directory)",
                ),
            ),
            (
                &SECRET_KEY,
                secret(
                    &self.secret_key,
                    "(not set: generated into the data directory)",
                ),
            ),
            (
                &RCON_HOST,
                self.rcon
                    .as_ref()
                    .map_or("(not set: no default Minecraft server)".into(), |r| {
                        r.host.clone()
                    }),
            ),
            (
                &RCON_PORT,
                self.rcon
                    .as_ref()
                    .map_or(DEFAULT_RCON_PORT, |r| r.port)
                    .to_string(),
            ),
            (
                &RCON_PASSWORD,
                self.rcon
                    .as_ref()
                    .map_or("(not set)".into(), |_| "***".to_owned()),
            ),
            (
                &LOG_FORMAT,
                match self.log_format {
                    LogFormat::Pretty => "pretty".into(),
                    LogFormat::Json => "json".into(),
                },
            ),
            (&RUST_LOG, self.log_filter.clone()),
            (
                &RATE_LIMIT,
                self.rate_limit_per_minute
                    .map_or("0 (off)".into(), |n| n.to_string()),
            ),
            (
                &SHUTDOWN_TIMEOUT,
                self.shutdown_timeout.as_secs().to_string(),
            ),
            (&API_DOCS, self.api_docs.to_string()),
            (&RCON_TIMEOUT, self.rcon_timeout.as_millis().to_string()),
            (&RCON_POLL, self.rcon_poll_interval.as_millis().to_string()),
            (
                &DISCORD_CLIENT_ID,
                self.discord_oauth
                    .as_ref()
                    .map_or("(not set: Discord sign-in is off)".into(), |o| {
                        o.client_id.clone()
                    }),
            ),
            (
                &DISCORD_CLIENT_SECRET,
                self.discord_oauth
                    .as_ref()
                    .map_or("(not set)".into(), |_| "***".to_owned()),
            ),
            (
                &PUBLIC_URL,
                match (&self.public_url, &self.discord_oauth) {
                    (None, _) => "(not set)".into(),
                    (Some(u), Some(o)) => format!("{u} (redirect URI {})", o.redirect_uri()),
                    (Some(u), None) => u.to_string(),
                },
            ),
            (
                &DISCORD_OAUTH_TIMEOUT,
                self.discord_oauth
                    .as_ref()
                    .map_or("10000".into(), |o| o.timeout.as_millis().to_string()),
            ),
            (
                &WHITELIST_RECONCILE,
                self.whitelist_reconcile_interval.as_secs().to_string(),
            ),
        ];
        rows.into_iter()
            .map(|(key, value)| format!("{} = {} ({})", key.env, value, origin(key.env)))
            .collect()
    }

    /// A settings value for tests and embedding: defaults rooted in `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Result<Self, ConfigError> {
        let mut env = HashMap::new();
        env.insert(
            "GUILDHALL_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        );
        Self::from_env(&env)
    }
}

fn default_database_url(data_dir: &Path) -> Result<DatabaseUrl, ConfigError> {
    let raw = format!("sqlite://{}/guildhall.db", data_dir.display());
    DatabaseUrl::parse(&raw).map_err(|m| ConfigError::new(DATA_DIR.env, m))
}

/// `HOST:PORT` with an IP address (`[::]:8080` for IPv6), or `localhost:PORT`.
fn parse_bind(variable: &str, raw: &str) -> Result<SocketAddr, ConfigError> {
    let normalised = raw
        .strip_prefix("localhost:")
        .map_or_else(|| raw.to_owned(), |port| format!("127.0.0.1:{port}"));
    normalised.parse().map_err(|_| {
        ConfigError::new(
            variable,
            format!(
                "`{raw}` is not HOST:PORT with an IP address (IPv6 in brackets: [::]:8080) and a port from 0 to 65535"
            ),
        )
    })
}

fn parse_number<T>(
    variable: &str,
    raw: Option<String>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = raw else {
        return Ok(default);
    };
    let out_of_range = || {
        ConfigError::new(
            variable,
            format!(
                "`{raw}` is out of range ({}-{})",
                range.start(),
                range.end()
            ),
        )
    };
    let trimmed = raw.trim();
    let value: T = trimmed.parse().map_err(|_| {
        if !trimmed.is_empty()
            && trimmed
                .trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit())
        {
            out_of_range()
        } else {
            ConfigError::new(variable, format!("`{raw}` is not a number"))
        }
    })?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(out_of_range())
    }
}

/// Short signing keys make forged tokens practical; refuse them rather than warn.
fn check_secret_strength(variable: &str, value: String) -> Result<SecretString, ConfigError> {
    if value.len() < 32 {
        return Err(ConfigError::new(
            variable,
            "is too short; use at least 32 characters (e.g. `openssl rand -hex 32`)",
        ));
    }
    Ok(SecretString::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_need_no_environment() -> Result<(), ConfigError> {
        let s = Settings::from_env(&HashMap::new())?;
        assert_eq!(s.bind.to_string(), DEFAULT_BIND);
        assert_eq!(s.database_url.kind(), DatabaseKind::Sqlite);
        assert_eq!(s.database_url.expose(), "sqlite://./data/guildhall.db");
        assert!(s.redis_url.is_none() && s.discord_token.is_none() && s.rcon.is_none());
        Ok(())
    }

    #[test]
    fn discord_sign_in_is_on_only_with_all_three_settings_and_its_secret_is_redacted()
    -> Result<(), ConfigError> {
        assert!(Settings::from_env(&HashMap::new())?.discord_oauth.is_none());
        let full = [
            ("DISCORD_CLIENT_ID", "123456789012345678"),
            ("DISCORD_CLIENT_SECRET", "very-secret-value"),
            ("GUILDHALL_PUBLIC_URL", "https://bot.example.org/"),
        ];
        let s = Settings::from_env(&env(&full))?;
        let oauth = s
            .discord_oauth
            .as_ref()
            .ok_or_else(|| ConfigError::new("DISCORD_CLIENT_ID", "Discord sign-in should be on"))?;
        assert_eq!(
            oauth.redirect_uri(),
            "https://bot.example.org/auth/discord/callback"
        );
        let described = s.describe().join("\n");
        assert!(described.contains("DISCORD_CLIENT_SECRET = *** (environment)"));
        assert!(!described.contains("very-secret-value"));
        assert!(!format!("{s:?}").contains("very-secret-value"));
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&full[..1], "DISCORD_CLIENT_SECRET"),
            (&full[1..2], "DISCORD_CLIENT_ID"),
            (&full[..2], "GUILDHALL_PUBLIC_URL"),
            (&[("DISCORD_CLIENT_ID", "my-app")], "DISCORD_CLIENT_ID"),
            (
                &[("GUILDHALL_PUBLIC_URL", "ftp://x")],
                "GUILDHALL_PUBLIC_URL",
            ),
            (
                &[("GUILDHALL_PUBLIC_URL", "https://x/?a=1")],
                "GUILDHALL_PUBLIC_URL",
            ),
        ];
        for (pairs, variable) in cases {
            match Settings::from_env(&env(pairs)) {
                Err(e) => assert_eq!(e.variable, *variable, "{pairs:?}"),
                Ok(_) => panic!("{pairs:?} should be refused"),
            }
        }
        Ok(())
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("GUILDHALL_BIND", "127.0.0.1:70000")], "GUILDHALL_BIND"),
            (&[("GUILDHALL_BIND", "nonsense")], "GUILDHALL_BIND"),
            (&[("GUILDHALL_BIND", "::1:8080")], "GUILDHALL_BIND"),
            (
                &[("GUILDHALL_METRICS_BIND", "127.0.0.1")],
                "GUILDHALL_METRICS_BIND",
            ),
            (
                &[("GUILDHALL_METRICS_BIND", "127.0.0.1:8080")],
                "GUILDHALL_METRICS_BIND",
            ),
            (
                &[
                    ("GUILDHALL_BIND", "[::]:9000"),
                    ("GUILDHALL_METRICS_BIND", "127.0.0.1:9000"),
                ],
                "GUILDHALL_METRICS_BIND",
            ),
            (
                &[("GUILDHALL_TRUSTED_PROXIES", "127.0.0.1, nginx")],
                "GUILDHALL_TRUSTED_PROXIES",
            ),
            (
                &[("GUILDHALL_TRUSTED_PROXIES", "10.0.0.0/40")],
                "GUILDHALL_TRUSTED_PROXIES",
            ),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("DATABASE_URL", "postgres://")], "DATABASE_URL"),
            (
                &[
                    ("RCON_HOST", "mc"),
                    ("RCON_PASSWORD", "pw"),
                    ("RCON_PORT", "0"),
                ],
                "RCON_PORT",
            ),
            (
                &[
                    ("RCON_HOST", "mc"),
                    ("RCON_PASSWORD", "pw"),
                    ("RCON_PORT", "70000"),
                ],
                "RCON_PORT",
            ),
            (&[("RCON_HOST", "mc")], "RCON_PASSWORD"),
            (&[("REDIS_URL", "http://x")], "REDIS_URL"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("GUILDHALL_SHARDS", "4-2/8")], "GUILDHALL_SHARDS"),
            (&[("GUILDHALL_SHARDS", "0-8/8")], "GUILDHALL_SHARDS"),
            (&[("GUILDHALL_SHARDS", "some")], "GUILDHALL_SHARDS"),
            (
                &[("GUILDHALL_DEV_GUILD_ID", "abc")],
                "GUILDHALL_DEV_GUILD_ID",
            ),
            (
                &[("GUILDHALL_DISCORD_MEMBERS_INTENT", "maybe")],
                "GUILDHALL_DISCORD_MEMBERS_INTENT",
            ),
            (
                &[("DISCORD_TOKEN", "a"), ("DISCORD_TOKEN_FILE", "/x")],
                "DISCORD_TOKEN",
            ),
            (
                &[("DISCORD_TOKEN_FILE", "/nonexistent/token")],
                "DISCORD_TOKEN_FILE",
            ),
            (&[("JWT_SECRET_KEY", "short")], "JWT_SECRET_KEY"),
            (
                &[("GUILDHALL_CONFIG", "/nonexistent.toml")],
                "GUILDHALL_CONFIG",
            ),
        ];
        for (pairs, variable) in cases {
            match Settings::from_env(&env(pairs)) {
                Ok(_) => panic!("{pairs:?} was accepted"),
                Err(e) => assert_eq!(&e.variable, variable, "{pairs:?} -> {e}"),
            }
        }
    }

    #[test]
    fn environment_wins_over_file_and_file_over_defaults() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let token = dir.path().join("token");
        std::fs::write(&token, "file-token\n")?;
        let file = dir.path().join("guildhall.toml");
        std::fs::write(
            &file,
            format!(
                "bind = \"127.0.0.1:9000\"\nrcon_host = \"mc\"\nrcon_port = 25000\nrcon_password = \"p\"\ndiscord_token_file = \"{}\"\n",
                token.display()
            ),
        )?;
        let s = Settings::from_env(&env(&[
            ("GUILDHALL_CONFIG", &file.display().to_string()),
            ("RCON_PORT", "25001"),
        ]))?;
        assert_eq!(s.bind.port(), 9000);
        let rcon = s.rcon.as_ref().ok_or("rcon missing")?;
        assert_eq!(rcon.port, 25001);
        assert_eq!(
            s.discord_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            Some("file-token".to_owned())
        );
        let described = s.describe().join("\n");
        assert!(described.contains("RCON_PORT = 25001 (environment)"));
        assert!(described.contains("GUILDHALL_BIND = 127.0.0.1:9000 (config file)"));
        assert!(described.contains("DISCORD_TOKEN = *** (config file)"));
        assert!(!described.contains("file-token"));
        Ok(())
    }

    #[test]
    fn ipv6_listen_addresses_and_proxy_lists_are_accepted() -> Result<(), Box<dyn std::error::Error>>
    {
        for (bind, expected) in [("[::]:8080", "[::]:8080"), ("[::1]:8080", "[::1]:8080")] {
            let s = Settings::from_env(&env(&[
                ("GUILDHALL_BIND", bind),
                ("GUILDHALL_METRICS_BIND", "[::1]:9464"),
            ]))?;
            assert_eq!(s.bind.to_string(), expected);
            assert_eq!(
                s.metrics_bind.map(|a| a.to_string()).as_deref(),
                Some("[::1]:9464")
            );
        }
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("guildhall.toml");
        std::fs::write(&file, "trusted_proxies = [\"127.0.0.1\", \"::1\"]\n")?;
        let s = Settings::from_env(&env(&[("GUILDHALL_CONFIG", &file.display().to_string())]))?;
        assert_eq!(s.trusted_proxies.to_string(), "127.0.0.1/32,::1/128");
        let described = s.describe().join("\n");
        assert!(
            described.contains("GUILDHALL_TRUSTED_PROXIES = 127.0.0.1/32,::1/128 (config file)"),
            "{described}"
        );
        assert!(
            described.contains("GUILDHALL_METRICS_BIND = (not set"),
            "{described}"
        );
        Ok(())
    }

    #[test]
    fn shard_ranges_parse() {
        assert_eq!(ShardSpec::parse("auto"), Ok(ShardSpec::Auto));
        assert_eq!(
            ShardSpec::parse("0-3/16"),
            Ok(ShardSpec::Range {
                first: 0,
                last: 3,
                total: 16
            })
        );
        assert_eq!(
            ShardSpec::parse("2/4"),
            Ok(ShardSpec::Range {
                first: 2,
                last: 2,
                total: 4
            })
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("guildhall.toml");
        std::fs::write(&file, "bnid = \"127.0.0.1:9000\"\n")?;
        let err = Settings::from_env(&env(&[("GUILDHALL_CONFIG", &file.display().to_string())]))
            .err()
            .ok_or("accepted")?;
        assert_eq!(err.variable, "GUILDHALL_CONFIG");
        assert!(err.message.contains("unknown key `bnid`"), "{err}");
        Ok(())
    }

    #[test]
    fn database_passwords_are_redacted() -> Result<(), String> {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db:5432/guildhall")?;
        assert_eq!(url.redacted(), "postgres://app:***@db:5432/guildhall");
        Ok(())
    }
}
