//! Data access over sqlx's `Any` driver: one schema and one SQL text for SQLite and PostgreSQL.
//! No SQL lives outside this folder.

pub mod api_keys;
pub mod audit;
pub mod cases;
pub mod discord_accounts;
mod error;
pub mod guilds;
pub mod instance_settings;
pub mod invites;
pub mod minecraft_links;
pub mod rcon_servers;
pub mod refresh_tokens;
pub mod roles;
pub mod schedules;
pub mod seed;
pub mod users;

use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::config::{DatabaseKind, DatabaseUrl};
pub use error::StoreError;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// WAL lets readers run beside the writer; NORMAL sync in WAL mode loses nothing on a process
/// crash (kill -9), only on power loss. A locked database is waited on for 5 s before SQLITE_BUSY.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

/// The handle every component shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: DatabaseKind,
}

impl Store {
    /// Connects (creating a SQLite file and its directory when missing) without migrating.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<Self, StoreError> {
        install_default_drivers();
        let kind = url.kind();
        let raw = match kind {
            DatabaseKind::Sqlite => prepare_sqlite(url.expose())?,
            DatabaseKind::Postgres => url.expose().to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if kind == DatabaseKind::Sqlite {
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect(&raw)
            .await
            .map_err(StoreError::from)?;
        Ok(Self { pool, kind })
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies every pending migration. Safe to run from several instances at once: sqlx
    /// takes an advisory lock on PostgreSQL, and SQLite serialises writers.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Reverts the most recently applied migration; returns its version, if any was applied.
    pub async fn revert_last_migration(&self) -> Result<Option<i64>, StoreError> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version DESC")
                .fetch_all(&self.pool)
                .await?;
        let Some(last) = applied.first().copied() else {
            return Ok(None);
        };
        let target = applied.get(1).copied().unwrap_or(0);
        MIGRATOR
            .undo(&self.pool, target)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Some(last))
    }

    /// A round trip to the database, for `/ready`.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(started.elapsed())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Runs a background actor's database work as a task of the Tokio runtime instead of the
/// actor's own (actix `LocalSet`) task, and waits for it. When an actix `System` ends, it drops
/// its `LocalSet` outside the runtime's context; a query in flight there drops its pooled
/// connection, whose `Drop` needs that context, and sqlx panics ("this functionality requires
/// a Tokio context"). The runtime drops its own tasks inside its context. `None` if the task
/// did not finish (it panicked, or the runtime is shutting down).
pub async fn on_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    tokio::spawn(work).await.ok()
}

/// Makes sure a SQLite database can be created: its directory exists and the URL asks sqlx to
/// create the file (`mode=rwc`) unless the operator chose a mode.
fn prepare_sqlite(raw: &str) -> Result<String, StoreError> {
    let without_scheme = raw.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = match without_scheme.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (without_scheme, None),
    };
    if path != ":memory:" && !path.is_empty() {
        let file = std::path::Path::new(path);
        if let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
        {
            crate::private_fs::ensure_dir(parent).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create database directory `{}`: {e}",
                    parent.display()
                ))
            })?;
        }
        // Created here with mode 0600 (SQLite would use 0644), or tightened if it exists;
        // SQLite then gives its -wal and -shm files the same mode.
        crate::private_fs::ensure_file(file).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create database file `{}`: {e}",
                file.display()
            ))
        })?;
        for suffix in ["-wal", "-shm"] {
            let mut side = file.as_os_str().to_owned();
            side.push(suffix);
            crate::private_fs::tighten_existing_file(std::path::Path::new(&side)).map_err(|e| {
                StoreError::Unavailable(format!("cannot restrict `{}`: {e}", file.display()))
            })?;
        }
    }
    Ok(match query {
        Some(q) if q.split('&').any(|kv| kv.starts_with("mode=")) => raw.to_owned(),
        Some(_) => format!("{raw}&mode=rwc"),
        None => format!("{raw}?mode=rwc"),
    })
}

/// Flags are INTEGER 0/1 so that both engines read them the same way.
pub(crate) fn flag(b: bool) -> i32 {
    i32::from(b)
}

/// Where a `*_by_*` reader looks: the columns it reads, from which table, matched on which
/// column. `'static` because each is one of the store's own constants: never input, so the SQL
/// built from them is safe to format.
#[derive(Clone, Copy)]
struct Lookup {
    columns: &'static str,
    table: &'static str,
    key: &'static str,
}

impl Lookup {
    /// `SELECT columns FROM table WHERE key = $1`.
    const fn new(columns: &'static str, table: &'static str, key: &'static str) -> Self {
        Lookup {
            columns,
            table,
            key,
        }
    }
}

/// The row of `lookup.table` whose `lookup.key` equals `value`, read by `map`, or `None`. The
/// value is bound as `$1`, which both engines accept through `Any`, so the one SQL text serves
/// SQLite and PostgreSQL. For a key that is unique (an id, a prefix, a username).
async fn find_by<'v, T, V>(
    store: &Store,
    lookup: Lookup,
    value: V,
    map: fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError>
where
    V: sqlx::Encode<'v, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    let Lookup {
        columns,
        table,
        key,
    } = lookup;
    let sql = format!("SELECT {columns} FROM {table} WHERE {key} = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(map)
        .transpose()
}
