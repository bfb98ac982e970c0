-- Duplicates are recognised by Message-ID and content together: an email that reuses a
-- Message-ID with different content (some mailers send a constant one) is a new message,
-- never dropped as a duplicate. NULL (outgoing and internal messages, and inbound ones stored
-- before this column) matches any content.
ALTER TABLE messages ADD COLUMN content_hash TEXT;
DROP INDEX messages_inbox_message_id;
CREATE INDEX messages_inbox_message_id ON messages (inbox_id, message_id);
CREATE UNIQUE INDEX messages_inbox_message_content ON messages (inbox_id, message_id, content_hash);
