-- The raw email that opened a conversation. Processing adds many emails' conversations with
-- one INSERT and tells the new ids apart by this column (RETURNING order is not guaranteed).
ALTER TABLE conversations ADD COLUMN origin_raw_email_id INTEGER REFERENCES raw_emails(id);
