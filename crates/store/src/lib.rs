//! The postdesk store: SQLite (the embedded default) and PostgreSQL (for scale-out) behind one
//! API. Both are driven through sqlx's `Any` driver with one dialect of SQL that both accept
//! (`$N` placeholders, `ON CONFLICT`, `RETURNING`); times are Unix milliseconds and flags 0/1,
//! because `Any` has no date or boolean type that reads the same from both. Each backend keeps
//! its own migrations folder, embedded in the binary and run on connect.
//!
//! # Layout
//! - [`records`]: the rows the rest of postdesk reads and writes.
//! - `users`: users and login sessions.
//! - `inboxes`: email inboxes, their health and their IMAP sync state.
//! - `ingest`: raw emails (stored before parsing) and turning them into conversations.
//! - `conversations`: queue, take, members, messages, uploads, close.
//! - `outbox`: outgoing emails and their delivery state.

mod batch;
mod conversations;
mod inboxes;
mod ingest;
mod outbox;
mod received;
pub mod records;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use conversations::{ConversationFilter, TakeError};
pub use ingest::{IncomingEmail, IngestOutcome, NewAttachment, StoreFetched};
pub use outbox::{OutboxItem, QueuedEmail};
pub use records::*;

/// An error from the store that callers tell apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change would break a uniqueness rule (a username or inbox address already in use).
    #[error("{0}")]
    Conflict(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database holds something postdesk cannot read back.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the failure is of the database connection (down, overloaded, locked) rather than
    /// of the data: worth trying the same thing again later.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    let message = db.message();
                    // PostgreSQL's serialization failure and deadlock: the same work succeeds
                    // when tried again.
                    matches!(db.code().as_deref(), Some("40001" | "40P01"))
                        || message.contains("database is locked")
                        || message.contains("database is busy")
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// Results of store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file in the data folder, WAL mode.
    Sqlite,
    /// A PostgreSQL server, for several postdesk nodes.
    Postgres,
}

/// The handle every part of postdesk stores through. Cheap to clone (a pool inside).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a statement waits for SQLite's write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), creating the SQLite file if
    /// needed, and runs the embedded migrations.
    ///
    /// # Errors
    /// An unknown URL scheme (rather than silently creating an empty SQLite file), an
    /// unreachable server, or a failed migration.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            anyhow::bail!("Unsupported database URL {url:?}: use sqlite://PATH or postgres://…");
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).context("Invalid database URL")?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            let busy = sqlx::AssertSqlSafe(format!(
                                "PRAGMA busy_timeout = {}",
                                SQLITE_BUSY_TIMEOUT.as_millis()
                            ));
                            conn.execute(busy).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(10)
                    .connect_with(options)
                    .await
            }
        }
        .with_context(|| format!("Failed to connect to the database at {}", redact(&url)))?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .context("Failed to run database migrations")?;
        Ok(Self { pool, backend })
    }

    /// The database this store runs on.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails with
    /// `SQLITE_BUSY` instead of waiting when another connection wrote in between.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// Milliseconds since the Unix epoch, as stored.
#[must_use]
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A database URL with its password hidden, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The sha256 of `bytes`, hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{e}: {text:?}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden_in_database_urls() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
    }
}
