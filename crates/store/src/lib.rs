//! The postdesk store: SQLite (the embedded default) and PostgreSQL (for scale-out) behind one
//! API. Both are driven through sqlx's `Any` driver with one dialect of SQL that both accept
//! (`$N` placeholders, `ON CONFLICT`, `RETURNING`); times are Unix milliseconds and flags 0/1,
//! because `Any` has no date or boolean type that reads the same from both. Each backend keeps
//! its own migrations folder, embedded in the binary and run on connect.
//!
//! # Layout
//! - [`records`]: the rows the rest of postdesk reads and writes.
//! - `users`: users and login sessions.
//! - `departments`: departments and their members.
//! - `two_factor`: TOTP secrets, used steps and recovery codes; system settings.
//! - `audit`: the append-only audit log, and the failed sign-ins throttling counts.
//! - `inboxes`: email inboxes, their health and their IMAP sync state.
//! - `ingest`: raw emails (stored before parsing) and turning them into conversations.
//! - `conversations`: queue, take, members, messages, uploads, close.
//! - `desk`: transfer, On Hold and resume, snooze and its wake-ups, merge.
//! - `lists`: the conversation lists, each one indexed query, paged by a cursor, and their counts.
//! - `outbox`: outgoing emails and their delivery state.
//! - `contacts`: the contact center (list, search, a contact's page, rename), a contact's data
//!   exported or deleted, and inboxes' retention periods.
//! - `oauth`: mailbox sign-in with OAuth2: providers, each inbox's tokens and refresh lease,
//!   connections under way.
//! - `search`: conversations' tags and full-text search (indexes kept by triggers).
//! - `routing`: assigning departments' queues to available agents, availability, and
//!   conversations returned to the queue when their agent leaves.
//! - `sent`: emails a colleague sent from the mailbox's own client into a conversation.
//! - `canned`: canned responses (global, a department's, a user's own).
//! - `drafts`: each agent's draft reply per conversation.
//! - `cluster`: several nodes on one database: nodes, inbox readers' leases, the shared event
//!   log.

mod audit;
mod batch;
mod canned;
mod cluster;
mod contacts;
mod conversations;
mod departments;
mod desk;
mod drafts;
mod inboxes;
mod ingest;
mod lists;
mod oauth;
mod outbox;
mod received;
pub mod records;
mod routing;
mod search;
mod sent;
mod two_factor;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use audit::Failures;
pub use canned::{CannedContent, CannedResponse};
pub use cluster::{
    EVENTS_CHANNEL, EventListener, Fence, HeldLease, NodeInfo, NodeRecord, ReaderLease, StoredEvent,
};
pub use contacts::{
    ContactCursor, ContactFilter, ContactPage, ContactSummary, MAX_CONTACT_NAME_CHARS,
};
pub use conversations::TakeError;
pub use desk::{DeskError, MAX_SNOOZE_MS, Merged, TransferTarget, Transferred, Waiting, Woken};
pub use drafts::{Draft, DraftContent};
pub use ingest::{IncomingEmail, IngestOutcome, NewAttachment, StoreFetched};
pub use lists::{
    BadCursor, ConversationFilter, ConversationPage, DEFAULT_PAGE, ListCounts, ListCursor,
    ListOrder,
};
pub use outbox::{CopyOutcome, OutboxItem, QueuedEmail, SentCopy};
pub use records::*;
pub use routing::{Assignment, ROUTING_BATCH, Requeued};
pub use search::{SearchHit, SearchQuery, TagCount};
pub use sent::SentOrigin;
pub use two_factor::TotpState;

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
    /// Another write held the database for longer than a writer waits for its turn.
    #[error("the database is busy: another write has held it for over {} s", SQLITE_BUSY_TIMEOUT.as_secs())]
    Busy,
    /// The database holds something postdesk cannot read back.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// An email was not queued: the conversation has newer emails than the sender had seen
    /// (these, oldest first).
    #[error("the conversation has {} newer email(s) than the one answered", .0.len())]
    NewerMessages(Vec<postdesk_core::ids::MessageId>),
    /// A write made under an inbox reader's lease found that its node no longer holds the
    /// lease: another node reads the inbox now, and nothing was written.
    #[error("this node no longer holds the lease of inbox {0}: another node reads it now")]
    LeaseLost(postdesk_core::ids::InboxId),
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
            StoreError::Busy => true,
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

/// A snapshot of the connection pool's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open, in use or idle.
    pub open: u32,
    /// Of those, the idle ones.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// The handle every part of postdesk stores through. Cheap to clone (a pool inside).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// On SQLite, taken for every write transaction: SQLite has one writer, and a connection
    /// that finds the write lock taken polls for it, sleeping up to 100 ms between tries
    /// (its busy handler), long after the lock is free. Waiting here instead wakes the next
    /// writer as soon as the previous one ends.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// On SQLite, when to copy the write-ahead log into the database file (see
    /// [`Checkpoints`]).
    checkpoints: std::sync::Arc<Checkpoints>,
    /// On PostgreSQL, the URL connected to: listening for events takes a connection of its own.
    url: Option<std::sync::Arc<DatabaseUrl>>,
}

/// A database URL, shown with its password hidden.
pub(crate) struct DatabaseUrl(pub(crate) String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// SQLite checkpoints, taken off the writers' path. By default the connection whose commit
/// makes the write-ahead log pass 1,000 pages copies the log into the database file and syncs
/// it, as part of its commit: tens of milliseconds during which, here, no other writer may
/// begin. Instead, every [`CHECKPOINT_EVERY`]th write transaction starts a passive checkpoint
/// on a connection of its own after its commit, beside the next writer. SQLite's own
/// automatic checkpoint stays on, later ([`SQLITE_AUTOCHECKPOINT_PAGES`]), for writes made
/// outside write transactions.
#[derive(Debug, Default)]
struct Checkpoints {
    commits: std::sync::atomic::AtomicU64,
    running: std::sync::atomic::AtomicBool,
}

/// Write transactions between two checkpoints on SQLite.
const CHECKPOINT_EVERY: u64 = 4;

/// SQLite's own automatic checkpoint, in pages of the write-ahead log.
const SQLITE_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// A write transaction (see [`Store::write_tx`]): the transaction, and on SQLite the turn of
/// this process's writers, held until it is committed or dropped.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    /// On SQLite: the writers' turn, and what a commit needs to start a checkpoint.
    sqlite: Option<(tokio::sync::OwnedMutexGuard<()>, Store)>,
}

impl WriteTx {
    /// Commits the transaction, then gives the next writer its turn and, on SQLite, every few
    /// commits starts a checkpoint beside it.
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        if let Some((turn, store)) = self.sqlite {
            drop(turn);
            store.checkpoint_now_and_then();
        }
        Ok(())
    }

    /// Rolls the transaction back (and then gives the next writer its turn).
    pub(crate) async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a PostgreSQL transaction may wait for its client between two statements before
/// the server ends it. postdesk's transactions only ever wait for the database itself.
const POSTGRES_IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// How long a statement waits for SQLite's write lock, and a write transaction for its turn,
/// before failing with an error worth retrying.
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
                            // Only takes effect when the file is new (before WAL is on).
                            conn.execute("PRAGMA page_size = 16384").await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            let autocheckpoint = sqlx::AssertSqlSafe(format!(
                                "PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES}"
                            ));
                            conn.execute(autocheckpoint).await?;
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
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // A transaction left open by a node that stopped answering (paused,
                            // cut off by the network) would hold its locks until the server
                            // noticed the dead connection, maybe hours: it is ended instead.
                            let timeout = sqlx::AssertSqlSafe(format!(
                                "SET idle_in_transaction_session_timeout = {}",
                                POSTGRES_IDLE_IN_TRANSACTION.as_millis()
                            ));
                            conn.execute(timeout).await?;
                            Ok(())
                        })
                    })
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
        Ok(Self {
            pool,
            backend,
            writer: std::sync::Arc::default(),
            checkpoints: std::sync::Arc::default(),
            url: (backend == Backend::Postgres).then(|| std::sync::Arc::new(DatabaseUrl(url))),
        })
    }

    /// The connection pool itself, for tools and tests that check the database directly
    /// (e.g. that it refuses to change the audit log). Everything else goes through the
    /// store's methods.
    #[must_use]
    pub fn raw_pool(&self) -> &AnyPool {
        &self.pool
    }

    /// How the connection pool is used now (for the metrics).
    #[must_use]
    pub fn pool_use(&self) -> PoolUse {
        PoolUse {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
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
    ///
    /// On SQLite it also waits for the turn of this process's writers (see `Store::writer`);
    /// another process writing to the same file is still waited for by SQLite's busy timeout.
    async fn write_tx(&self) -> Result<WriteTx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                // As long as SQLite's own busy timeout would have let it wait for the lock.
                let turn =
                    tokio::time::timeout(SQLITE_BUSY_TIMEOUT, self.writer.clone().lock_owned())
                        .await
                        .map_err(|_| StoreError::Busy)?;
                WriteTx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    sqlite: Some((turn, self.clone())),
                }
            }
            Backend::Postgres => WriteTx {
                tx: self.pool.begin().await?,
                sqlite: None,
            },
        })
    }

    /// After a write transaction on SQLite: every [`CHECKPOINT_EVERY`]th one starts a
    /// passive checkpoint in the background, unless one is running. Passive: it copies what
    /// no reader still needs and never waits, so writers and readers go on beside it.
    fn checkpoint_now_and_then(&self) {
        use std::sync::atomic::Ordering;
        let commits = self.checkpoints.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if !commits.is_multiple_of(CHECKPOINT_EVERY)
            || tokio::runtime::Handle::try_current().is_err()
            || self.checkpoints.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.pool.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::warn!("SQLite checkpoint failed (it is tried again later): {e}");
            }
            store.checkpoints.running.store(false, Ordering::Release);
        });
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

    /// On SQLite, writers of one process take turns: the next begins as soon as the previous
    /// commits, and one kept waiting past the busy timeout gets an error worth retrying.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_writers_take_turns_and_a_long_wait_is_a_transient_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/postdesk.db", dir.path().display());
        let store = super::Store::connect(&url).await.unwrap();
        let first = store.write_tx().await.unwrap();
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.write_tx().await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "the second writer waits for its turn"
        );
        first.commit().await.unwrap();
        waiting
            .await
            .unwrap()
            .expect("the second writer's turn came");

        let held = store.write_tx().await.unwrap();
        let started = std::time::Instant::now();
        let error = match store.write_tx().await {
            Ok(_) => panic!("a second writer began while the first held the database"),
            Err(e) => e,
        };
        assert!(matches!(error, super::StoreError::Busy), "{error}");
        assert!(error.is_transient());
        assert!(started.elapsed() >= super::SQLITE_BUSY_TIMEOUT);
        held.rollback().await.unwrap();
        store.write_tx().await.unwrap().commit().await.unwrap();
    }
}
