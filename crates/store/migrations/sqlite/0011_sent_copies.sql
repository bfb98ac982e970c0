-- The IMAP folder every email postdesk sends is also appended to: NULL finds it by the
-- \Sent special-use flag, '' turns copies off, anything else names it.
ALTER TABLE inboxes ADD COLUMN imap_sent_mailbox TEXT;

-- The copy of a sent email in the Sent folder, retried apart from its delivery:
-- none (not sent yet, or sent before copies existed), pending, done, failed, off.
ALTER TABLE outbox ADD COLUMN copy_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE outbox ADD COLUMN copy_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN copy_next_at INTEGER;
ALTER TABLE outbox ADD COLUMN copy_locked_until INTEGER;
ALTER TABLE outbox ADD COLUMN copy_error TEXT;
CREATE INDEX outbox_copy_due ON outbox (copy_state, copy_next_at);
