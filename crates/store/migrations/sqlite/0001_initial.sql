-- postdesk schema, SQLite dialect. Times are Unix milliseconds (INTEGER); flags are 0/1.
-- Keep in step with ../postgres/0001_initial.sql: the same tables, columns and meanings.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL,            -- space separated: admin manager agent
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,            -- sha256 hex of the bearer token
    user_id    INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE departments (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT    NOT NULL UNIQUE
) STRICT;

CREATE TABLE inboxes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    email            TEXT    NOT NULL UNIQUE,
    sender_name      TEXT    NOT NULL,
    department_id    INTEGER REFERENCES departments(id),
    active           INTEGER NOT NULL,
    imap_host        TEXT    NOT NULL,
    imap_port        INTEGER NOT NULL,
    imap_security    TEXT    NOT NULL,
    imap_username    TEXT    NOT NULL,
    imap_password    BLOB    NOT NULL,         -- encrypted with the data folder's key
    imap_mailbox     TEXT    NOT NULL,
    imap_tls_verify  INTEGER NOT NULL,
    smtp_host        TEXT    NOT NULL,
    smtp_port        INTEGER NOT NULL,
    smtp_security    TEXT    NOT NULL,
    smtp_username    TEXT    NOT NULL,
    smtp_password    BLOB    NOT NULL,         -- encrypted with the data folder's key
    smtp_tls_verify  INTEGER NOT NULL,
    reopen_days      INTEGER NOT NULL DEFAULT 30,
    status_state     TEXT    NOT NULL DEFAULT 'stopped',
    status_error     TEXT,
    status_sync_at   INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- Per (inbox, mailbox): the UIDVALIDITY seen and the next UID to fetch (the watermark).
CREATE TABLE mailbox_sync (
    inbox_id    INTEGER NOT NULL REFERENCES inboxes(id),
    mailbox     TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    next_uid    INTEGER NOT NULL,
    PRIMARY KEY (inbox_id, mailbox)
) STRICT;

-- Content-addressed bytes: attachments and raw emails share one copy per sha256.
CREATE TABLE blobs (
    sha256 TEXT    PRIMARY KEY,
    size   INTEGER NOT NULL,
    bytes  BLOB    NOT NULL
) STRICT;

-- Every fetched email exactly as fetched, stored before it is parsed.
CREATE TABLE raw_emails (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    inbox_id    INTEGER NOT NULL REFERENCES inboxes(id),
    mailbox     TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    sha256      TEXT    NOT NULL REFERENCES blobs(sha256),
    size        INTEGER NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'new', -- new, processed, duplicate, quarantined
    reason      TEXT,                           -- why quarantined or duplicate
    message_id  INTEGER,                        -- the message it became
    fetched_at  INTEGER NOT NULL,
    processed_at INTEGER,
    UNIQUE (inbox_id, mailbox, uidvalidity, uid)
) STRICT;
CREATE INDEX raw_emails_pending ON raw_emails (state, id);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    inbox_id        INTEGER NOT NULL REFERENCES inboxes(id),
    contact_id      INTEGER NOT NULL REFERENCES contacts(id),
    subject         TEXT    NOT NULL,
    status          TEXT    NOT NULL,           -- queued, open, on_hold, closed
    assignee_id     INTEGER REFERENCES users(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_message_at INTEGER NOT NULL,
    closed_at       INTEGER
) STRICT;
CREATE INDEX conversations_status ON conversations (status, last_message_at);
CREATE INDEX conversations_assignee ON conversations (assignee_id, status);

CREATE TABLE conversation_members (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    added_by        INTEGER REFERENCES users(id),
    added_at        INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) STRICT;

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id   INTEGER NOT NULL REFERENCES conversations(id),
    inbox_id          INTEGER NOT NULL REFERENCES inboxes(id),
    kind              TEXT    NOT NULL,         -- email_in, email_out, internal, system
    author_user_id    INTEGER REFERENCES users(id),
    author_contact_id INTEGER REFERENCES contacts(id),
    text              TEXT    NOT NULL,
    html              TEXT,                     -- sanitised
    message_id        TEXT,                     -- RFC 5322 Message-ID without <>
    in_reply_to       TEXT,
    refs              TEXT    NOT NULL DEFAULT '[]',  -- JSON list
    from_json         TEXT,                     -- JSON {name, email}
    to_json           TEXT    NOT NULL DEFAULT '[]',
    cc_json           TEXT    NOT NULL DEFAULT '[]',
    subject           TEXT,
    email_date        INTEGER,
    thread_reason     TEXT,
    raw_email_id      INTEGER REFERENCES raw_emails(id),
    source_message_id INTEGER REFERENCES messages(id), -- the file message a Send via Email came from
    delivery_status   TEXT,                     -- email_out: queued, sent, failed
    delivery_error    TEXT,
    created_at        INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX messages_inbox_message_id ON messages (inbox_id, message_id);
CREATE INDEX messages_conversation ON messages (conversation_id, id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL REFERENCES blobs(sha256),
    content_id   TEXT,
    inline       INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX attachments_message ON attachments (message_id);

-- Outgoing emails: the exact MIME bytes to send and where they stand.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      INTEGER NOT NULL REFERENCES messages(id),
    inbox_id        INTEGER NOT NULL REFERENCES inboxes(id),
    mail_from       TEXT    NOT NULL,
    rcpt_to         TEXT    NOT NULL,           -- JSON list
    mime            BLOB    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'queued', -- queued, sent, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
