-- Mailbox sign-in with OAuth2 (Gmail, Microsoft 365, any OAuth2 server).

-- The OAuth2 clients postdesk is registered as, one per provider (an admin adds them).
CREATE TABLE oauth_providers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL,          -- google, microsoft, generic
    client_id     TEXT    NOT NULL,
    client_secret BLOB    NOT NULL,          -- encrypted with the data folder's key
    auth_url      TEXT    NOT NULL,
    token_url     TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,          -- space separated
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- How the reader and the outbox sign in: password (as before) or oauth2 with the inbox's
-- provider (one provider and one connection serve both IMAP and SMTP).
ALTER TABLE inboxes ADD COLUMN imap_auth TEXT NOT NULL DEFAULT 'password';
ALTER TABLE inboxes ADD COLUMN smtp_auth TEXT NOT NULL DEFAULT 'password';
ALTER TABLE inboxes ADD COLUMN oauth_provider_id INTEGER REFERENCES oauth_providers(id);

-- An inbox's OAuth2 connection: tokens encrypted with the data folder's key. One refresh at a
-- time, also across nodes: whoever sets refreshing_until (a lease, ms) refreshes; the others
-- wait and read again. reauth_error holds the provider's words when it refused a refresh:
-- the inbox needs to be connected again.
CREATE TABLE oauth_tokens (
    inbox_id          INTEGER PRIMARY KEY REFERENCES inboxes(id),
    provider_id       INTEGER NOT NULL REFERENCES oauth_providers(id),
    refresh_token     BLOB,
    access_token      BLOB,
    access_expires_at INTEGER,
    refreshing_until  INTEGER,
    reauth_error      TEXT,
    connected_at      INTEGER NOT NULL,
    refreshed_at      INTEGER,
    updated_at        INTEGER NOT NULL
) STRICT;

-- Connections under way (authorization code flow with PKCE), in the database so that any
-- node can finish them: the state, bound to the session that started it.
CREATE TABLE oauth_pending (
    state         TEXT    PRIMARY KEY,
    inbox_id      INTEGER NOT NULL REFERENCES inboxes(id),
    provider_id   INTEGER NOT NULL REFERENCES oauth_providers(id),
    session_hash  TEXT    NOT NULL,
    user_id       INTEGER NOT NULL,
    verifier      BLOB    NOT NULL,          -- the PKCE verifier, encrypted
    redirect_uri  TEXT    NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;
