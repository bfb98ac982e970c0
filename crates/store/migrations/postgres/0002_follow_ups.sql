-- A conversation opened by an email to a conversation closed longer ago than the inbox's
-- reopen window points back at it.
ALTER TABLE conversations ADD COLUMN follows_id BIGINT REFERENCES conversations(id);
