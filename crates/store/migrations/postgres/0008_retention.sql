-- Contacts' data (issue 9): how long an inbox keeps closed conversations, and the indexes that
-- let a contact's data be found and deleted, and a retention period be applied, without
-- reading whole tables.

-- Days a closed conversation is kept (counted from when it was closed), then deleted with its
-- messages, files and raw emails. NULL: kept forever.
ALTER TABLE inboxes ADD COLUMN retention_days BIGINT;

-- A contact's conversations and the messages they wrote (also in others' conversations).
CREATE INDEX conversations_contact ON conversations (contact_id);
CREATE INDEX messages_author_contact ON messages (author_contact_id);
-- Closed conversations by when they were closed, per inbox (closed_at is set only while closed).
CREATE INDEX conversations_closed ON conversations (inbox_id, closed_at) WHERE closed_at IS NOT NULL;
-- The raw emails of messages, and what refers to rows being deleted: without an index on each
-- referencing column, deleting a row makes the database look through the whole referencing
-- table for it.
CREATE INDEX raw_emails_message ON raw_emails (message_id);
CREATE INDEX raw_emails_sha256 ON raw_emails (sha256);
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE INDEX outbox_message ON outbox (message_id);
CREATE INDEX messages_raw_email ON messages (raw_email_id);
CREATE INDEX messages_source ON messages (source_message_id) WHERE source_message_id IS NOT NULL;
CREATE INDEX conversations_origin ON conversations (origin_raw_email_id);
CREATE INDEX conversations_follows ON conversations (follows_id) WHERE follows_id IS NOT NULL;
