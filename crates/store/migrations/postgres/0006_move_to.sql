-- Optional: the IMAP folder an inbox moves emails to once they are stored (NULL: they stay).
ALTER TABLE inboxes ADD COLUMN imap_move_to TEXT;
