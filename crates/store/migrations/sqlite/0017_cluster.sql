-- Several nodes on one database (issue 13). Keep in step with the other dialect's
-- 0017_cluster.sql. On SQLite there is one node by definition: it takes every lease at start.

-- The running postdesk processes: a random id per process start, and the last time each said
-- it is alive (the database's clock, ms).
CREATE TABLE nodes (
    id           TEXT    PRIMARY KEY,
    hostname     TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
) STRICT;

-- Which node reads each inbox: the holder of an unexpired lease (the database's clock, ms).
-- A release expires the lease and keeps the row, so that epoch, the fencing token, only ever
-- grows: a claim of a free or expired lease adds one.
CREATE TABLE inbox_leases (
    inbox_id    INTEGER PRIMARY KEY REFERENCES inboxes(id) ON DELETE CASCADE,
    node_id     TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX inbox_leases_node ON inbox_leases (node_id);

-- The events every node's live streams are fed from, in id order (the SSE id). Written and
-- read on PostgreSQL only (SQLite keeps its events in the one process); kept here so that both
-- dialects have the same schema. AUTOINCREMENT: an id is never used twice, even after pruning.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
