-- Two-factor sign-in (TOTP, RFC 6238) with one-time recovery codes, and the system settings
-- an admin changes at run time (e.g. who must use two-factor sign-in).

ALTER TABLE users ADD COLUMN totp_secret BLOB;                          -- encrypted; NULL: none
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;   -- 1 once confirmed
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0; -- no code is used twice

CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER NOT NULL REFERENCES users(id),
    code_hash TEXT    NOT NULL,                                         -- sha256 hex
    used_at   INTEGER
) STRICT;
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

CREATE TABLE system_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
