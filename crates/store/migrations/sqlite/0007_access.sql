-- Access (issue 9): departments' members, conversation membership by invitation only, sessions
-- that can be listed and revoked, and the append-only audit log.

-- The agents and managers of a department (their role is the user's).
CREATE TABLE department_members (
    department_id INTEGER NOT NULL REFERENCES departments(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    added_at      INTEGER NOT NULL,
    PRIMARY KEY (department_id, user_id)
) STRICT;
CREATE INDEX department_members_user ON department_members (user_id);

-- The assignee is a member by being the assignee; rows are invitations only, so a transfer or
-- a new Take it! ends the previous assignee's membership unless they were invited.
DELETE FROM conversation_members WHERE added_by IS NULL;

-- Sessions get an id (to list and revoke them), where they came from and when last used.
CREATE TABLE sessions_v2 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,       -- sha256 hex of the bearer token
    user_id      INTEGER NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ip           TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    method       TEXT    NOT NULL DEFAULT 'password'
) STRICT;
INSERT INTO sessions_v2 (token_hash, user_id, created_at, expires_at, last_seen_at)
    SELECT token_hash, user_id, created_at, expires_at, created_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v2 RENAME TO sessions;
CREATE INDEX sessions_user ON sessions (user_id);

-- Every administrative action and every sign-in: who, what, when, from where. Append-only.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor_id INTEGER,                            -- the user, when known
    actor    TEXT    NOT NULL,                   -- username (as typed, for failed sign-ins)
    action   TEXT    NOT NULL,                   -- e.g. sign_in, sign_in.failed, user.create
    target   TEXT    NOT NULL DEFAULT '',        -- e.g. user:7, inbox:2
    ip       TEXT    NOT NULL DEFAULT '',
    details  TEXT    NOT NULL DEFAULT '{}'       -- JSON
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (action, actor, at);
CREATE INDEX audit_log_ip ON audit_log (action, ip, at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
