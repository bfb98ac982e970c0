//! Several nodes on one database: the nodes and their heartbeats, the lease that lets exactly
//! one node read each inbox, and the shared log of events every node's live streams are fed
//! from.
//!
//! # Leases
//! A lease row says which node reads an inbox until when. Times are the database's clock (so
//! nodes whose clocks disagree still agree on who holds what), in ms. A node claims a free or
//! expired lease of an active inbox with one conditional upsert: of two nodes racing, the
//! second finds the row already taken (PostgreSQL re-checks the condition on the row the first
//! one committed), so two nodes never both win. Each claim adds one to the row's `epoch`, a
//! fencing token: [`Store::store_fetched_fenced`] writes only while its node still holds the
//! lease with that epoch, so a reader that lost its lease without noticing (a process paused
//! for longer than the lease) cannot store anything. A release expires the lease but keeps the
//! row, so the epoch never goes back.
//!
//! On SQLite there is one node by definition: [`Store::join_cluster`] forgets every other
//! node and frees their leases, so a restart after a crash reads at once.
//!
//! # Events
//! [`Store::append_events`] adds events in order and wakes every node (`NOTIFY`); each node
//! listens ([`Store::listen_for_events`]) and fetches what came after the last id it
//! delivered ([`Store::events_after`]). Old events are pruned ([`Store::prune_events`]).

use postdesk_core::ids::InboxId;
use sqlx::Row as _;

use crate::batch::Placeholders;
use crate::{Backend, Result, Store, StoreError, now_ms};

/// The channel `NOTIFY` wakes listening nodes on when events were added.
pub const EVENTS_CHANNEL: &str = "postdesk_events";

/// How long a node whose heartbeat stopped is still listed (ms): a day.
const FORGET_NODES_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// Most events fetched or added per statement.
const EVENTS_PER_STATEMENT: usize = 500;

/// A running postdesk process, as it introduces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Random, new at every start.
    pub id: String,
    /// The machine's name.
    pub hostname: String,
    /// The process id.
    pub pid: i64,
    /// postdesk's version.
    pub version: String,
    /// When the process started (ms).
    pub started_at: i64,
}

/// A node as stored, with its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Who it is.
    pub info: NodeInfo,
    /// Its last heartbeat (ms, the database's clock).
    pub heartbeat_at: i64,
    /// Whether that heartbeat is recent (within the `alive_ms` asked with).
    pub alive: bool,
}

/// A lease this node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    /// The inbox it lets this node read.
    pub inbox_id: InboxId,
    /// The fencing token: grows by one at every claim.
    pub epoch: i64,
    /// Until when (ms, the database's clock), unless renewed.
    pub expires_at: i64,
}

/// Who reads an inbox now: the holder of its unexpired lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderLease {
    /// The inbox.
    pub inbox_id: InboxId,
    /// The node reading it.
    pub node_id: String,
    /// That node's machine (empty when the node is no longer listed).
    pub hostname: String,
    /// The lease's fencing token.
    pub epoch: i64,
    /// Until when (ms, the database's clock), unless renewed.
    pub expires_at: i64,
}

/// The lease a write is made under: it is made only while `node_id` holds the inbox's lease
/// with this `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The writing node.
    pub node_id: String,
    /// The epoch it claimed the lease with.
    pub epoch: i64,
}

/// An event as stored in the shared log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its place in the log: the SSE id.
    pub id: i64,
    /// The event's JSON.
    pub event: String,
}

/// Wakes a node when events were added to the shared log (PostgreSQL `LISTEN`).
#[derive(Debug)]
pub struct EventListener {
    listener: sqlx::postgres::PgListener,
    url: std::sync::Arc<crate::DatabaseUrl>,
}

impl EventListener {
    async fn connect(url: std::sync::Arc<crate::DatabaseUrl>) -> Result<Self> {
        let mut listener = sqlx::postgres::PgListener::connect(&url.0).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        Ok(Self { listener, url })
    }

    /// Waits until events may have been added: `Ok(true)` on a notice, `Ok(false)` when the
    /// connection was lost and made again (notices may have been missed meanwhile: fetch what
    /// came after the last id anyway).
    ///
    /// # Errors
    /// When the connection was lost and cannot be made again (the caller waits a little and
    /// calls again).
    pub async fn wait(&mut self) -> Result<bool> {
        match self.listener.try_recv().await {
            Ok(notice) => Ok(notice.is_some()),
            // Cut in a way the listener does not reconnect from by itself (the server ended
            // the session): a new connection, listening again.
            Err(e) => {
                tracing::debug!("Listening for events failed ({e}); connecting again");
                *self = Self::connect(self.url.clone()).await?;
                Ok(false)
            }
        }
    }
}

/// The database's clock, in ms since the Unix epoch, as SQL.
fn db_now(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

fn held(row: &sqlx::any::AnyRow) -> Result<HeldLease> {
    Ok(HeldLease {
        inbox_id: InboxId(row.try_get("inbox_id")?),
        epoch: row.try_get("epoch")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn stored_event(row: &sqlx::any::AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.try_get("id")?,
        event: row.try_get("event")?,
    })
}

/// One lease statement, bound.
type Statement<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

impl Store {
    /// Runs one statement on its own and answers its rows: on PostgreSQL in autocommit, so
    /// that a process paused right after sending it (SIGSTOP, a network partition) holds no
    /// lock that would keep the other nodes from claiming its leases; on SQLite in a write
    /// transaction (the writers' turn).
    async fn alone(&self, statement: Statement<'_>) -> Result<Vec<sqlx::any::AnyRow>> {
        if self.backend == Backend::Postgres {
            return Ok(statement.fetch_all(&self.pool).await?);
        }
        let mut tx = self.write_tx().await?;
        let rows = statement.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Adds this node to the cluster (its first heartbeat). On SQLite, the one node, it also
    /// forgets every other node and frees their leases: they can only be this process's
    /// predecessors, gone.
    pub async fn join_cluster(&self, node: &NodeInfo) -> Result<()> {
        if self.backend == Backend::Sqlite {
            let mut tx = self.write_tx().await?;
            sqlx::query("DELETE FROM nodes WHERE id <> $1")
                .bind(&node.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE inbox_leases SET expires_at = 0 WHERE node_id <> $1")
                .bind(&node.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        self.beat(node).await
    }

    /// Records `node` alive now, adding it when it is not listed.
    async fn beat(&self, node: &NodeInfo) -> Result<()> {
        let now = db_now(self.backend);
        let sql = format!(
            "INSERT INTO nodes (id, hostname, pid, version, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, {now})
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
        );
        self.alone(
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&node.id)
                .bind(&node.hostname)
                .bind(node.pid)
                .bind(&node.version)
                .bind(node.started_at),
        )
        .await?;
        Ok(())
    }

    /// The node's heartbeat: records it alive (adding it again if it was forgotten), renews
    /// every lease it still holds by `lease_ms` from now, and answers those. A lease that
    /// expired meanwhile is not renewed (another node may hold it now): it is missing from
    /// the answer, and the node must stop reading that inbox.
    pub async fn heartbeat(&self, node: &NodeInfo, lease_ms: i64) -> Result<Vec<HeldLease>> {
        let now = db_now(self.backend);
        self.beat(node).await?;
        let forget = format!("DELETE FROM nodes WHERE heartbeat_at < {now} - $1");
        self.alone(sqlx::query(sqlx::AssertSqlSafe(forget)).bind(FORGET_NODES_AFTER_MS))
            .await?;
        let renew = format!(
            "UPDATE inbox_leases SET expires_at = {now} + $2
             WHERE node_id = $1 AND expires_at > {now}
             RETURNING inbox_id, epoch, expires_at"
        );
        let rows = self
            .alone(
                sqlx::query(sqlx::AssertSqlSafe(renew))
                    .bind(&node.id)
                    .bind(lease_ms),
            )
            .await?;
        let mut leases = rows.iter().map(held).collect::<Result<Vec<_>>>()?;
        leases.sort_by_key(|l| l.inbox_id.0);
        Ok(leases)
    }

    /// Claims for `node_id`, for `lease_ms`, the free or expired leases of active inboxes (of
    /// `only`, when given); answers those it won. A lease another node holds is never taken,
    /// and of several nodes claiming at once exactly one wins each lease.
    pub async fn claim_leases(
        &self,
        node_id: &str,
        lease_ms: i64,
        only: Option<InboxId>,
    ) -> Result<Vec<HeldLease>> {
        let now = db_now(self.backend);
        let free = format!(
            "SELECT i.id FROM inboxes i LEFT JOIN inbox_leases l ON l.inbox_id = i.id
             WHERE i.active = 1 AND (l.inbox_id IS NULL OR l.expires_at <= {now})
               AND ($1 IS NULL OR i.id = $1)
             ORDER BY i.id"
        );
        let candidates: Vec<i64> = sqlx::query(sqlx::AssertSqlSafe(free))
            .bind(only.map(|i| i.0))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        // The times of a taken-over lease are read when the row is taken (after waiting for
        // another claimer, if any), not when the statement began.
        let claim = format!(
            "INSERT INTO inbox_leases (inbox_id, node_id, epoch, acquired_at, expires_at)
             VALUES ($1, $2, 1, {now}, {now} + $3)
             ON CONFLICT (inbox_id) DO UPDATE SET node_id = excluded.node_id,
                epoch = inbox_leases.epoch + 1, acquired_at = {now}, expires_at = {now} + $3
             WHERE inbox_leases.expires_at <= {now}
             RETURNING inbox_id, epoch, expires_at"
        );
        let mut won = Vec::new();
        for inbox in candidates {
            let rows = self
                .alone(
                    sqlx::query(sqlx::AssertSqlSafe(claim.as_str()))
                        .bind(inbox)
                        .bind(node_id)
                        .bind(lease_ms),
                )
                .await?;
            for row in &rows {
                won.push(held(row)?);
            }
        }
        Ok(won)
    }

    /// Frees `node_id`'s lease of `inbox` (of every inbox, when `None`) at once, so another
    /// node takes the inbox without waiting for the lease to expire.
    pub async fn release_leases(&self, node_id: &str, inbox: Option<InboxId>) -> Result<()> {
        self.alone(
            sqlx::query(
                "UPDATE inbox_leases SET expires_at = 0 WHERE node_id = $1 AND ($2 IS NULL OR inbox_id = $2)",
            )
            .bind(node_id)
            .bind(inbox.map(|i| i.0)),
        )
        .await?;
        Ok(())
    }

    /// A node stopping: frees its leases and takes it off the list of nodes.
    pub async fn leave_cluster(&self, node_id: &str) -> Result<()> {
        self.release_leases(node_id, None).await?;
        self.alone(sqlx::query("DELETE FROM nodes WHERE id = $1").bind(node_id))
            .await?;
        Ok(())
    }

    /// Every listed node (gone ones for a day), oldest first; `alive` when its last heartbeat
    /// is less than `alive_ms` old.
    pub async fn list_nodes(&self, alive_ms: i64) -> Result<Vec<NodeRecord>> {
        let now = db_now(self.backend);
        let sql = format!(
            "SELECT id, hostname, pid, version, started_at, heartbeat_at,
                    CAST(CASE WHEN heartbeat_at > {now} - $1 THEN 1 ELSE 0 END AS BIGINT) AS alive
             FROM nodes ORDER BY started_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(alive_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeRecord {
                    info: NodeInfo {
                        id: row.try_get("id")?,
                        hostname: row.try_get("hostname")?,
                        pid: row.try_get("pid")?,
                        version: row.try_get("version")?,
                        started_at: row.try_get("started_at")?,
                    },
                    heartbeat_at: row.try_get("heartbeat_at")?,
                    alive: row.try_get::<i64, _>("alive")? == 1,
                })
            })
            .collect()
    }

    /// Who reads each inbox (`only` that one, when given) now: the unexpired leases, by inbox
    /// id.
    pub async fn reader_leases(&self, only: Option<InboxId>) -> Result<Vec<ReaderLease>> {
        let now = db_now(self.backend);
        let sql = format!(
            "SELECT l.inbox_id, l.node_id, COALESCE(n.hostname, '') AS hostname, l.epoch, l.expires_at
             FROM inbox_leases l LEFT JOIN nodes n ON n.id = l.node_id
             WHERE l.expires_at > {now} AND ($1 IS NULL OR l.inbox_id = $1) ORDER BY l.inbox_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(only.map(|i| i.0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReaderLease {
                    inbox_id: InboxId(row.try_get("inbox_id")?),
                    node_id: row.try_get("node_id")?,
                    hostname: row.try_get("hostname")?,
                    epoch: row.try_get("epoch")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Inside a write transaction, as its last statement: whether `fence` still holds
    /// `inbox`'s lease. The lease row stays locked until the transaction ends (a moment
    /// later), so a node claiming it meanwhile waits, and then reads on from what this
    /// transaction wrote.
    pub(crate) async fn holds_lease(
        &self,
        tx: &mut crate::WriteTx,
        inbox: InboxId,
        fence: &Fence,
    ) -> Result<bool> {
        let now = db_now(self.backend);
        let sql = format!(
            "UPDATE inbox_leases SET epoch = epoch
             WHERE inbox_id = $1 AND node_id = $2 AND epoch = $3 AND expires_at > {now}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(inbox.0)
            .bind(&fence.node_id)
            .bind(fence.epoch)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds `events` (JSON) to the shared log, in order, and wakes the listening nodes;
    /// answers the id of the last. Ids become visible in order: on PostgreSQL writers take
    /// turns (the table's EXCLUSIVE lock, which readers do not wait for), so a node that
    /// fetched up to id N never later finds an id below N.
    pub async fn append_events(&self, events: &[String]) -> Result<i64> {
        let mut last = 0;
        if events.is_empty() {
            return Ok(last);
        }
        let p = Placeholders(self.backend);
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        for chunk in events.chunks(EVENTS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO events (event, created_at) VALUES {} RETURNING id",
                p.values(1, chunk.len(), 2)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for event in chunk {
                query = query.bind(event.as_str()).bind(now);
            }
            for row in query.fetch_all(&mut *tx).await? {
                last = last.max(row.try_get::<i64, _>("id")?);
            }
        }
        if self.backend == Backend::Postgres {
            // Delivered at commit, once per transaction.
            sqlx::query(sqlx::AssertSqlSafe(format!("NOTIFY {EVENTS_CHANNEL}")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(last)
    }

    /// The events after id `after`, oldest first, at most `limit` (and at most 500).
    pub async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        let limit = i64::try_from(limit.min(EVENTS_PER_STATEMENT)).unwrap_or(1);
        let rows = sqlx::query("SELECT id, event FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_event).collect()
    }

    /// The last `count` events of the log, oldest first, and the highest id in the log (0
    /// when it is empty): where a starting node begins.
    pub async fn latest_events(&self, count: usize) -> Result<(Vec<StoredEvent>, i64)> {
        let last: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("last")?;
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let rows =
            sqlx::query("SELECT id, event FROM events WHERE id <= $1 ORDER BY id DESC LIMIT $2")
                .bind(last)
                .bind(count)
                .fetch_all(&self.pool)
                .await?;
        let mut events = rows.iter().map(stored_event).collect::<Result<Vec<_>>>()?;
        events.reverse();
        Ok((events, last))
    }

    /// Deletes the events older than `max_age_ms`, and all but the last `keep`; answers how
    /// many went.
    pub async fn prune_events(&self, keep: i64, max_age_ms: i64) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "DELETE FROM events WHERE created_at < $1
                OR id <= (SELECT COALESCE(MAX(id), 0) FROM events) - $2",
        )
        .bind(now_ms() - max_age_ms)
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Listens for the events any node adds (PostgreSQL only: SQLite keeps its events in its
    /// one process).
    ///
    /// # Errors
    /// On SQLite, or when the server cannot be reached.
    pub async fn listen_for_events(&self) -> Result<EventListener> {
        let Some(url) = &self.url else {
            return Err(StoreError::Conflict(
                "Listening for other nodes' events needs PostgreSQL (SQLite has one node)"
                    .to_owned(),
            ));
        };
        EventListener::connect(url.clone()).await
    }
}
