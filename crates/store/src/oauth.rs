//! Mailbox sign-in with OAuth2: the providers (OAuth2 clients), each inbox's tokens, the
//! refresh lease that keeps refreshes one at a time across nodes, and connections under way.
//!
//! Tokens and secrets arrive here encrypted; the store never sees them in clear.

use postdesk_core::ids::{InboxId, UserId};
use postdesk_core::model::InboxState;
use sqlx::Row as _;

use crate::OutboxItem;
use crate::records::{OAuthPending, OAuthProvider, OAuthProviderSettings, OAuthTokens};
use crate::{Result, Store, StoreError, is_unique_violation, now_ms};

fn provider_from_row(row: &sqlx::any::AnyRow) -> Result<OAuthProvider> {
    let scopes: String = row.try_get("scopes")?;
    Ok(OAuthProvider {
        id: row.try_get("id")?,
        settings: OAuthProviderSettings {
            name: row.try_get("name")?,
            kind: row.try_get("kind")?,
            client_id: row.try_get("client_id")?,
            client_secret_encrypted: row.try_get("client_secret")?,
            auth_url: row.try_get("auth_url")?,
            token_url: row.try_get("token_url")?,
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        },
        created_at: row.try_get("created_at")?,
    })
}

fn tokens_from_row(row: &sqlx::any::AnyRow) -> Result<OAuthTokens> {
    Ok(OAuthTokens {
        inbox_id: InboxId(row.try_get("inbox_id")?),
        provider_id: row.try_get("provider_id")?,
        refresh_token_encrypted: row.try_get("refresh_token")?,
        access_token_encrypted: row.try_get("access_token")?,
        access_expires_at: row.try_get("access_expires_at")?,
        reauth_error: row.try_get("reauth_error")?,
        connected_at: row.try_get("connected_at")?,
        refreshed_at: row.try_get("refreshed_at")?,
    })
}

fn name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("an OAuth2 provider named {name:?} already exists"))
        } else {
            e.into()
        }
    }
}

/// Binds the settings as `$1` to `$7`, in the column order both provider statements use.
fn bind_provider<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    s: &'q OAuthProviderSettings,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(&s.name)
        .bind(&s.kind)
        .bind(&s.client_id)
        .bind(&s.client_secret_encrypted)
        .bind(&s.auth_url)
        .bind(&s.token_url)
        .bind(s.scopes.join(" "))
}

impl Store {
    /// Adds an OAuth2 provider.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another provider has the name.
    pub async fn create_oauth_provider(&self, s: &OAuthProviderSettings) -> Result<OAuthProvider> {
        let now = now_ms();
        let row = bind_provider(
            sqlx::query(
            "INSERT INTO oauth_providers (name, kind, client_id, client_secret, auth_url, token_url, scopes, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             RETURNING id",
            ),
            s,
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(name_taken(&s.name))?;
        let id: i64 = row.try_get("id")?;
        self.find_oauth_provider(id)
            .await?
            .ok_or(StoreError::NotFound("OAuth2 provider"))
    }

    /// Replaces a provider's settings.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or [`StoreError::Conflict`] when another provider has the name.
    pub async fn update_oauth_provider(
        &self,
        id: i64,
        s: &OAuthProviderSettings,
    ) -> Result<OAuthProvider> {
        let done = bind_provider(
            sqlx::query(
            "UPDATE oauth_providers SET name = $1, kind = $2, client_id = $3, client_secret = $4,
                auth_url = $5, token_url = $6, scopes = $7, updated_at = $8
             WHERE id = $9",
            ),
            s,
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(name_taken(&s.name))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("OAuth2 provider"));
        }
        self.find_oauth_provider(id)
            .await?
            .ok_or(StoreError::NotFound("OAuth2 provider"))
    }

    /// Deletes a provider no inbox uses, with the tokens and connections under way it issued.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] while an inbox uses it; [`StoreError::NotFound`].
    pub async fn delete_oauth_provider(&self, id: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT email FROM inboxes WHERE oauth_provider_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "the OAuth2 provider is used by the inbox {}: switch it to another sign-in first",
                users.join(", ")
            )));
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE provider_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM oauth_pending WHERE provider_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM oauth_providers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::NotFound("OAuth2 provider"));
        }
        tx.commit().await
    }

    /// A provider by id.
    pub async fn find_oauth_provider(&self, id: i64) -> Result<Option<OAuthProvider>> {
        let row = sqlx::query("SELECT * FROM oauth_providers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(provider_from_row).transpose()
    }

    /// Every provider, by name.
    pub async fn list_oauth_providers(&self) -> Result<Vec<OAuthProvider>> {
        let rows = sqlx::query("SELECT * FROM oauth_providers ORDER BY name, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(provider_from_row).collect()
    }

    /// Keeps a connection under way until the callback takes it (or it expires). Expired ones
    /// are dropped on the way.
    pub async fn save_oauth_pending(&self, p: &OAuthPending) -> Result<()> {
        sqlx::query("DELETE FROM oauth_pending WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_pending (state, inbox_id, provider_id, session_hash, user_id, verifier, redirect_uri, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.state)
        .bind(p.inbox_id.0)
        .bind(p.provider_id)
        .bind(&p.session_hash)
        .bind(p.user_id.0)
        .bind(&p.verifier_encrypted)
        .bind(&p.redirect_uri)
        .bind(p.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The connection under way with `state`, used up (a state works once); `None` when
    /// unknown, used or expired.
    pub async fn take_oauth_pending(&self, state: &str) -> Result<Option<OAuthPending>> {
        let row = sqlx::query("DELETE FROM oauth_pending WHERE state = $1 RETURNING *")
            .bind(state)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let pending = OAuthPending {
            state: row.try_get("state")?,
            inbox_id: InboxId(row.try_get("inbox_id")?),
            provider_id: row.try_get("provider_id")?,
            session_hash: row.try_get("session_hash")?,
            user_id: UserId(row.try_get("user_id")?),
            verifier_encrypted: row.try_get("verifier")?,
            redirect_uri: row.try_get("redirect_uri")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok((pending.expires_at >= now_ms()).then_some(pending))
    }

    /// Stores the tokens of a (re)connected inbox: whatever was there before is replaced, a
    /// refusal is forgotten and a refresh lease released; the emails it has waiting in the
    /// outbox are due at once.
    pub async fn connect_oauth(
        &self,
        inbox: InboxId,
        provider_id: i64,
        refresh_token: Option<&[u8]>,
        access_token: &[u8],
        access_expires_at: Option<i64>,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO oauth_tokens (inbox_id, provider_id, refresh_token, access_token, access_expires_at,
                refreshing_until, reauth_error, connected_at, refreshed_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, NULL, $6)
             ON CONFLICT (inbox_id) DO UPDATE SET provider_id = excluded.provider_id,
                refresh_token = excluded.refresh_token, access_token = excluded.access_token,
                access_expires_at = excluded.access_expires_at, refreshing_until = NULL,
                reauth_error = NULL, connected_at = excluded.connected_at, refreshed_at = NULL,
                updated_at = excluded.updated_at",
        )
        .bind(inbox.0)
        .bind(provider_id)
        .bind(refresh_token)
        .bind(access_token)
        .bind(access_expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1 WHERE inbox_id = $2 AND state = 'queued' AND next_attempt_at > $1",
        )
        .bind(now)
        .bind(inbox.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Forgets an inbox's OAuth2 connection (its provider changed, or it signs in with a
    /// password again).
    pub async fn disconnect_oauth(&self, inbox: InboxId) -> Result<()> {
        sqlx::query("DELETE FROM oauth_tokens WHERE inbox_id = $1")
            .bind(inbox.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts back a claimed email whose inbox must be connected again: still queued, with the
    /// reason, due at `retry_at` (and at once when the inbox is connected again), and the
    /// attempt not counted, so that waiting for an admin never fails an email.
    pub async fn wait_for_reconnect(
        &self,
        item: &OutboxItem,
        retry_at: i64,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE outbox SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                last_error = $1, next_attempt_at = $2, locked_until = NULL, updated_at = $3
             WHERE id = $4 AND state = 'queued'",
        )
        .bind(reason)
        .bind(retry_at)
        .bind(now_ms())
        .bind(item.id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE messages SET delivery_error = $1 WHERE id = $2")
            .bind(reason)
            .bind(item.message_id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// An inbox's OAuth2 connection, when it has one.
    pub async fn find_oauth_tokens(&self, inbox: InboxId) -> Result<Option<OAuthTokens>> {
        let row = sqlx::query("SELECT * FROM oauth_tokens WHERE inbox_id = $1")
            .bind(inbox.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tokens_from_row).transpose()
    }

    /// Takes the refresh lease of an inbox's tokens until `until` (ms): true for exactly one
    /// of any number of callers on any node, until it stores the result, releases the lease,
    /// or the lease runs out (a node that died while refreshing).
    pub async fn lease_oauth_refresh(&self, inbox: InboxId, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oauth_tokens SET refreshing_until = $1
             WHERE inbox_id = $2 AND reauth_error IS NULL
               AND (refreshing_until IS NULL OR refreshing_until < $3)",
        )
        .bind(until)
        .bind(inbox.0)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the refresh lease back without a result (the provider could not be reached).
    pub async fn release_oauth_lease(&self, inbox: InboxId) -> Result<()> {
        sqlx::query("UPDATE oauth_tokens SET refreshing_until = NULL WHERE inbox_id = $1")
            .bind(inbox.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a refreshed access token and, when the provider rotated it, the new refresh
    /// token, in one statement (the old refresh token is already used up at the provider, so
    /// the new one must never be lost); releases the lease.
    pub async fn store_refreshed_oauth(
        &self,
        inbox: InboxId,
        access_token: &[u8],
        access_expires_at: Option<i64>,
        rotated_refresh_token: Option<&[u8]>,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE oauth_tokens SET access_token = $1, access_expires_at = $2,
                refresh_token = COALESCE($3, refresh_token), refreshing_until = NULL,
                refreshed_at = $4, updated_at = $4
             WHERE inbox_id = $5",
        )
        .bind(access_token)
        .bind(access_expires_at)
        .bind(rotated_refresh_token)
        .bind(now)
        .bind(inbox.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The provider refused to renew the inbox's sign-in: keeps its words, drops the tokens
    /// (they no longer work), releases the lease and turns the inbox to `needs_reauth`, in
    /// one transaction. Only a new connection ([`Store::connect_oauth`]) clears it.
    pub async fn oauth_refresh_refused(&self, inbox: InboxId, words: &str) -> Result<()> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE oauth_tokens SET reauth_error = $1, access_token = NULL, access_expires_at = NULL,
                refreshing_until = NULL, updated_at = $2
             WHERE inbox_id = $3",
        )
        .bind(words)
        .bind(now)
        .bind(inbox.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE inboxes SET status_state = $1, status_error = $2 WHERE id = $3")
            .bind(InboxState::NeedsReauth.as_str())
            .bind(words)
            .bind(inbox.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}
