-- Replying like a mail client (issue 12): Bcc, signatures, quoted history, canned responses,
-- drafts. Keep in step with the other dialect's 0016_replies.sql.

-- The Bcc of an email we sent (JSON list of {name, email}): shown to agents, never written
-- in the email's headers (it only reaches the envelope).
ALTER TABLE messages ADD COLUMN bcc_json TEXT NOT NULL DEFAULT '[]';

-- An inbox's signature (Markdown with {{agent.name}}, {{inbox.name}}, ...; '' for none),
-- added once to every Reply via Email, and whether a reply quotes the email it answers.
ALTER TABLE inboxes ADD COLUMN signature TEXT NOT NULL DEFAULT '';
ALTER TABLE inboxes ADD COLUMN quote_history BIGINT NOT NULL DEFAULT 1;

-- Canned responses: 'global' (every agent), 'department' (that department's agents) or
-- 'user' (their owner alone). A shortcut is unique within its scope and owner.
CREATE TABLE canned_responses (
    id            BIGSERIAL PRIMARY KEY,
    shortcut      TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    scope         TEXT    NOT NULL,           -- global, department, user
    department_id BIGINT  REFERENCES departments(id),
    user_id       BIGINT  REFERENCES users(id),
    created_by    BIGINT  REFERENCES users(id),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX canned_responses_shortcut
    ON canned_responses (scope, COALESCE(department_id, 0), COALESCE(user_id, 0), shortcut);

-- A reply being written: one per agent and conversation, never sent by itself.
CREATE TABLE drafts (
    user_id                BIGINT  NOT NULL REFERENCES users(id),
    conversation_id        BIGINT  NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    text                   TEXT    NOT NULL,
    via                    TEXT    NOT NULL DEFAULT 'email',   -- email, internal
    to_json                TEXT,                               -- JSON list of strings; NULL: the default
    cc_json                TEXT,
    bcc_json               TEXT,
    in_reply_to_message_id BIGINT,
    format                 TEXT    NOT NULL DEFAULT 'markdown',
    updated_at             BIGINT  NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
