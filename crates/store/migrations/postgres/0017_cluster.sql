-- Several nodes on one database (issue 13). Keep in step with the other dialect's
-- 0017_cluster.sql.

-- The running postdesk processes: a random id per process start, and the last time each said
-- it is alive (the database's clock, ms).
CREATE TABLE nodes (
    id           TEXT   PRIMARY KEY,
    hostname     TEXT   NOT NULL,
    pid          BIGINT NOT NULL,
    version      TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- Which node reads each inbox: the holder of an unexpired lease (the database's clock, ms).
-- A release expires the lease and keeps the row, so that epoch, the fencing token, only ever
-- grows: a claim of a free or expired lease adds one.
CREATE TABLE inbox_leases (
    inbox_id    BIGINT PRIMARY KEY REFERENCES inboxes(id) ON DELETE CASCADE,
    node_id     TEXT   NOT NULL,
    epoch       BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX inbox_leases_node ON inbox_leases (node_id);

-- The events every node's live streams are fed from, in id order (the SSE id). Writers take
-- the table's EXCLUSIVE lock for their insert, so ids become visible in the order they were
-- given (a reader fetching "after the last id it saw" never skips one committed late), then
-- NOTIFY postdesk_events wakes every node.
CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    event      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
