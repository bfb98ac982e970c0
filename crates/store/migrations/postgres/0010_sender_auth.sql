-- Sender authenticity (issue 10): the DKIM, SPF and DMARC verdicts of each inbound email,
-- computed once when it is processed. All NULL: not checked (emails processed before this
-- migration, and messages that are not inbound emails).

ALTER TABLE messages ADD COLUMN auth_dkim TEXT;         -- pass, fail, none, temperror, …
ALTER TABLE messages ADD COLUMN auth_spf TEXT;          -- pass, fail, softfail, neutral, none, …
ALTER TABLE messages ADD COLUMN auth_dmarc TEXT;        -- pass, fail, none, temperror, permerror
ALTER TABLE messages ADD COLUMN auth_from_domain TEXT;  -- the From domain, lowercase
ALTER TABLE messages ADD COLUMN auth_aligned BIGINT;    -- 1: DKIM or SPF aligned with From

-- The conversations with an email whose From failed DMARC (the mark in Queued Chats).
CREATE INDEX messages_dmarc_failed ON messages (conversation_id) WHERE auth_dmarc = 'fail';
