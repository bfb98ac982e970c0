//! Email inboxes, their reader health and their IMAP sync state.

use postdesk_core::ids::InboxId;
use postdesk_core::model::{InboxState, MailAuth, Security};
use sqlx::Row as _;

use crate::records::{Inbox, InboxSettings, InboxStatus, ServerSettings};
use crate::{Result, Store, StoreError, is_unique_violation, now_ms};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn server_from_row(row: &sqlx::any::AnyRow, prefix: &str) -> Result<ServerSettings> {
    let col = |name: &str| format!("{prefix}_{name}");
    let port: i64 = row.try_get(col("port").as_str())?;
    let security: String = row.try_get(col("security").as_str())?;
    let auth: String = row.try_get(col("auth").as_str())?;
    Ok(ServerSettings {
        host: row.try_get(col("host").as_str())?,
        port: u16::try_from(port).map_err(corrupt)?,
        security: Security::parse(&security).map_err(corrupt)?,
        username: row.try_get(col("username").as_str())?,
        password_encrypted: row.try_get(col("password").as_str())?,
        tls_verify: row.try_get::<i64, _>(col("tls_verify").as_str())? != 0,
        auth: MailAuth::parse(&auth).map_err(corrupt)?,
    })
}

fn inbox_from_row(row: &sqlx::any::AnyRow) -> Result<Inbox> {
    let state: String = row.try_get("status_state")?;
    Ok(Inbox {
        id: InboxId(row.try_get("id")?),
        settings: InboxSettings {
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            sender_name: row.try_get("sender_name")?,
            department_id: row.try_get("department_id")?,
            active: row.try_get::<i64, _>("active")? != 0,
            imap: server_from_row(row, "imap")?,
            imap_mailbox: row.try_get("imap_mailbox")?,
            imap_move_to: row.try_get("imap_move_to")?,
            imap_sent_mailbox: row.try_get("imap_sent_mailbox")?,
            smtp: server_from_row(row, "smtp")?,
            reopen_days: row.try_get("reopen_days")?,
            retention_days: row.try_get("retention_days")?,
            oauth_provider_id: row.try_get("oauth_provider_id")?,
            signature: row.try_get("signature")?,
            quote_history: row.try_get::<i64, _>("quote_history")? != 0,
        },
        status: InboxStatus {
            state: InboxState::parse(&state).map_err(corrupt)?,
            last_error: row.try_get("status_error")?,
            last_sync_at: row.try_get("status_sync_at")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn conflict_on_address(settings: &InboxSettings) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("an inbox for {} already exists", settings.email))
        } else {
            e.into()
        }
    }
}

/// Binds the settings as `$1` to `$27`, in the column order both inbox statements use.
fn bind_settings<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    s: &'q InboxSettings,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(&s.name)
        .bind(&s.email)
        .bind(&s.sender_name)
        .bind(s.department_id)
        .bind(i64::from(s.active))
        .bind(&s.imap.host)
        .bind(i64::from(s.imap.port))
        .bind(s.imap.security.as_str())
        .bind(&s.imap.username)
        .bind(&s.imap.password_encrypted)
        .bind(&s.imap_mailbox)
        .bind(i64::from(s.imap.tls_verify))
        .bind(&s.smtp.host)
        .bind(i64::from(s.smtp.port))
        .bind(s.smtp.security.as_str())
        .bind(&s.smtp.username)
        .bind(&s.smtp.password_encrypted)
        .bind(i64::from(s.smtp.tls_verify))
        .bind(s.reopen_days)
        .bind(&s.imap_move_to)
        .bind(s.retention_days)
        .bind(&s.imap_sent_mailbox)
        .bind(s.imap.auth.as_str())
        .bind(s.smtp.auth.as_str())
        .bind(s.oauth_provider_id)
        .bind(&s.signature)
        .bind(i64::from(s.quote_history))
}

impl Store {
    /// Creates an inbox.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when an inbox already has that address.
    pub async fn create_inbox(&self, s: &InboxSettings) -> Result<Inbox> {
        let now = now_ms();
        let row = bind_settings(
            sqlx::query(
            "INSERT INTO inboxes (name, email, sender_name, department_id, active,
                imap_host, imap_port, imap_security, imap_username, imap_password, imap_mailbox, imap_tls_verify,
                smtp_host, smtp_port, smtp_security, smtp_username, smtp_password, smtp_tls_verify,
                reopen_days, imap_move_to, retention_days, imap_sent_mailbox, imap_auth, smtp_auth,
                oauth_provider_id, signature, quote_history, status_state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
                $23, $24, $25, $26, $27, $28, $29, $29)
             RETURNING id",
        ),
            s,
        )
        .bind(if s.active { InboxState::Connecting } else { InboxState::Stopped }.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_address(s))?;
        let id = InboxId(row.try_get("id")?);
        self.find_inbox(id)
            .await?
            .ok_or(StoreError::NotFound("inbox"))
    }

    /// Replaces an inbox's settings. The reader state is left to the reader.
    ///
    /// When its department changes, its conversations that were in the old one (not
    /// transferred elsewhere) follow it, in the same transaction.
    pub async fn update_inbox(&self, id: InboxId, s: &InboxSettings) -> Result<Inbox> {
        let mut tx = self.write_tx().await?;
        // Before the update: the department its conversations follow.
        let old: Option<i64> = sqlx::query("SELECT department_id FROM inboxes WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("inbox"))?
            .try_get("department_id")?;
        let done = bind_settings(
            sqlx::query(
            "UPDATE inboxes SET name = $1, email = $2, sender_name = $3, department_id = $4, active = $5,
                imap_host = $6, imap_port = $7, imap_security = $8, imap_username = $9, imap_password = $10,
                imap_mailbox = $11, imap_tls_verify = $12,
                smtp_host = $13, smtp_port = $14, smtp_security = $15, smtp_username = $16, smtp_password = $17,
                smtp_tls_verify = $18, reopen_days = $19, imap_move_to = $20, retention_days = $21,
                imap_sent_mailbox = $22, imap_auth = $23, smtp_auth = $24, oauth_provider_id = $25,
                signature = $26, quote_history = $27, updated_at = $28
             WHERE id = $29",
        ),
            s,
        )
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_address(s))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("inbox"));
        }
        if old != s.department_id {
            sqlx::query(
                "UPDATE conversations SET department_id = $1
                 WHERE inbox_id = $2 AND (department_id = $3 OR (department_id IS NULL AND $3 IS NULL))",
            )
            .bind(s.department_id)
            .bind(id.0)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.find_inbox(id)
            .await?
            .ok_or(StoreError::NotFound("inbox"))
    }

    /// An inbox by id.
    pub async fn find_inbox(&self, id: InboxId) -> Result<Option<Inbox>> {
        let row = sqlx::query("SELECT * FROM inboxes WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(inbox_from_row).transpose()
    }

    /// Every inbox, by name.
    pub async fn list_inboxes(&self) -> Result<Vec<Inbox>> {
        let rows = sqlx::query("SELECT * FROM inboxes ORDER BY name, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(inbox_from_row).collect()
    }

    /// Every inbox with its reader's state as recorded, by id (for the metrics).
    pub async fn inbox_states(&self) -> Result<Vec<(InboxId, InboxState)>> {
        let rows = sqlx::query("SELECT id, status_state FROM inboxes ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("status_state")?;
                Ok((
                    InboxId(row.try_get("id")?),
                    InboxState::parse(&state).map_err(corrupt)?,
                ))
            })
            .collect()
    }

    /// Records the reader's state. `synced` sets the last successful sync to now and clears the
    /// last error; an `error` is kept until then.
    pub async fn set_inbox_status(
        &self,
        id: InboxId,
        state: InboxState,
        error: Option<&str>,
        synced: bool,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE inboxes SET status_state = $1,
                status_error = CASE WHEN $2 = 1 THEN NULL WHEN $3 IS NOT NULL THEN $3 ELSE status_error END,
                status_sync_at = CASE WHEN $2 = 1 THEN $4 ELSE status_sync_at END
             WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(i64::from(synced))
        .bind(error)
        .bind(now)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The stored UIDVALIDITY and next UID to fetch for an inbox's mailbox.
    pub async fn find_sync_state(
        &self,
        inbox: InboxId,
        mailbox: &str,
    ) -> Result<Option<(u32, u32)>> {
        let row = sqlx::query(
            "SELECT uidvalidity, next_uid FROM mailbox_sync WHERE inbox_id = $1 AND mailbox = $2",
        )
        .bind(inbox.0)
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let validity: i64 = row.try_get("uidvalidity")?;
            let next: i64 = row.try_get("next_uid")?;
            Ok((
                u32::try_from(validity).map_err(corrupt)?,
                u32::try_from(next).map_err(corrupt)?,
            ))
        })
        .transpose()
    }

    /// Sets a mailbox's watermark: the next UID to fetch is `next_uid` (the Sent folder starts
    /// from the UIDNEXT it first had: what was sent before is not read).
    pub async fn set_sync_state(
        &self,
        inbox: InboxId,
        mailbox: &str,
        uidvalidity: u32,
        next_uid: u32,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mailbox_sync (inbox_id, mailbox, uidvalidity, next_uid) VALUES ($1, $2, $3, $4)
             ON CONFLICT (inbox_id, mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, next_uid = excluded.next_uid",
        )
        .bind(inbox.0)
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(i64::from(next_uid))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Starts (or restarts, after a UIDVALIDITY change) the sync of a mailbox from UID 1.
    /// Emails already stored are not stored twice: processing skips an email whose Message-ID and content the inbox has.
    pub async fn reset_sync_state(
        &self,
        inbox: InboxId,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mailbox_sync (inbox_id, mailbox, uidvalidity, next_uid) VALUES ($1, $2, $3, 1)
             ON CONFLICT (inbox_id, mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, next_uid = 1",
        )
        .bind(inbox.0)
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
