use std::fmt;

/// The store's boundary error. Transient failures are told apart from permanent ones so that
/// callers (the audit writer above all) know what is worth retrying.
#[derive(thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or is momentarily busy; retrying may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug prints the cause chain for operators; Display stays short for clients.
        match self {
            StoreError::Database(e) => write!(f, "Database({e})"),
            other => write!(f, "{other}"),
        }
    }
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// SQLSTATE classes and codes PostgreSQL uses for conditions that pass on their own.
fn is_transient_pg_code(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || matches!(code, "40001" | "40P01" | "57P01" | "57P02" | "57P03")
}

/// SQLite's BUSY (5) and LOCKED (6), with their extended codes (low byte).
fn is_transient_sqlite_code(code: &str) -> bool {
    code.parse::<i64>()
        .map(|c| matches!(c & 0xff, 5 | 6))
        .unwrap_or(false)
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            // A connection that breaks mid-handshake surfaces as a protocol error; all of
            // these pass once the database is reachable again.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if db.is_unique_violation() {
                    StoreError::Conflict(db.message().to_owned())
                } else if is_transient_pg_code(&code) || is_transient_sqlite_code(&code) {
                    StoreError::Unavailable(db.message().to_owned())
                } else {
                    StoreError::Database(e)
                }
            }
            _ => StoreError::Database(e),
        }
    }
}
