//! Outgoing emails. "Reply via Email" writes the email_out message and its outbox row in one
//! transaction ([`Store::queue_email`]); the outbox worker claims due rows
//! ([`Store::claim_outbox`]), counting the attempt before it sends, and records the outcome on
//! both the row and the message ([`Store::finish_outbox`]), so the message always shows where
//! its delivery stands.
//!
//! Once sent, an email's copy for the inbox's Sent folder is due ([`Store::claim_sent_copy`]):
//! appended apart from the delivery, retried on its own, and never holding a delivery up.

use postdesk_core::delivery::SendOutcome;
use postdesk_core::ids::{ConversationId, InboxId, MessageId, OutboxId, UserId};
use postdesk_core::model::DeliveryStatus;
use sqlx::Row as _;

use crate::conversations::touch_conversation;
use crate::records::{Addr, Message};
use crate::{Backend, Result, Store, StoreError, now_ms, to_json};

/// An email to queue for sending.
#[derive(Debug, Clone)]
pub struct QueuedEmail {
    /// The text as the agent wrote it.
    pub text: String,
    /// Message-ID without <>.
    pub message_id: String,
    /// In-Reply-To without <>.
    pub in_reply_to: Option<String>,
    /// References without <>.
    pub references: Vec<String>,
    /// From.
    pub from: Addr,
    /// To.
    pub to: Vec<Addr>,
    /// Cc.
    pub cc: Vec<Addr>,
    /// Bcc: in the envelope only, never in the email's headers; kept for the agents to see.
    pub bcc: Vec<Addr>,
    /// Subject.
    pub subject: String,
    /// The HTML the agents see (a formatted reply), sanitised; `None` for a plain one.
    pub html: Option<String>,
    /// Date (ms).
    pub date: i64,
    /// The rendered MIME bytes.
    pub mime: Vec<u8>,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The file message whose attachments this email carries (Send via Email as attachment).
    pub source_message_id: Option<MessageId>,
    /// The newest email of the conversation the agent had seen when sending (the send-time
    /// collision check): when a newer email, in or out, exists, nothing is queued and
    /// [`StoreError::NewerMessages`] names them. `None` skips the check.
    pub seen_message_id: Option<MessageId>,
}

/// A claimed outbox row, to send now.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Row id.
    pub id: OutboxId,
    /// The email_out message.
    pub message_id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// The inbox whose SMTP server sends it.
    pub inbox_id: InboxId,
    /// Envelope sender.
    pub mail_from: String,
    /// Envelope recipients.
    pub rcpt_to: Vec<String>,
    /// The bytes to send.
    pub mime: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// When it was queued (ms).
    pub queued_at: i64,
}

/// A sent email whose copy is to be appended to its inbox's Sent folder now.
#[derive(Debug, Clone)]
pub struct SentCopy {
    /// The outbox row.
    pub id: OutboxId,
    /// The email_out message.
    pub message_id: MessageId,
    /// The inbox whose Sent folder gets the copy.
    pub inbox_id: InboxId,
    /// The bytes that were sent.
    pub mime: Vec<u8>,
    /// When it was sent (ms): the copy's internal date.
    pub sent_at: i64,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// What became of one attempt to append a sent email's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    /// The copy is in the Sent folder.
    Done,
    /// The inbox keeps no copies (its Sent folder is turned off or cannot be found).
    Off {
        /// Why, for the log and the row.
        reason: String,
    },
    /// Try again at `at` (ms).
    Retry {
        /// The server's or the connection's words.
        reason: String,
        /// When (ms).
        at: i64,
    },
    /// Given up.
    Failed {
        /// Why.
        reason: String,
    },
}

impl Store {
    /// Writes an email_out message (status queued) and its outbox row in one transaction.
    pub async fn queue_email(
        &self,
        conversation: ConversationId,
        author: UserId,
        email: &QueuedEmail,
    ) -> Result<Message> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        if let Some(seen) = email.seen_message_id {
            // PostgreSQL: the conversation's row lock makes two agents' sends take turns, so the
            // second sees the first's email (SQLite's write transaction already serialises).
            let lock = match self.backend {
                Backend::Postgres => " FOR UPDATE",
                Backend::Sqlite => "",
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM conversations WHERE id = $1{lock}"
            )))
            .bind(conversation.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
            let newer: Vec<MessageId> = sqlx::query(
                "SELECT id FROM messages WHERE conversation_id = $1 AND id > $2
                   AND kind IN ('email_in', 'email_out') ORDER BY id",
            )
            .bind(conversation.0)
            .bind(seen.0)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("id").map(MessageId))
            .collect::<std::result::Result<_, _>>()?;
            if !newer.is_empty() {
                return Err(StoreError::NewerMessages(newer));
            }
        }
        let row = sqlx::query(
            "INSERT INTO messages (conversation_id, inbox_id, kind, author_user_id, text, message_id, in_reply_to,
                refs, from_json, to_json, cc_json, subject, email_date, source_message_id, delivery_status, created_at,
                bcc_json, html)
             SELECT id, inbox_id, 'email_out', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12, $14, $15
             FROM conversations WHERE id = $13
             RETURNING id, inbox_id",
        )
        .bind(author.0)
        .bind(&email.text)
        .bind(&email.message_id)
        .bind(&email.in_reply_to)
        .bind(to_json(&email.references))
        .bind(to_json(&email.from))
        .bind(to_json(&email.to))
        .bind(to_json(&email.cc))
        .bind(&email.subject)
        .bind(email.date)
        .bind(email.source_message_id.map(|m| m.0))
        .bind(now)
        .bind(conversation.0)
        .bind(to_json(&email.bcc))
        .bind(&email.html)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
        let message = MessageId(row.try_get("id")?);
        let inbox: i64 = row.try_get("inbox_id")?;
        if let Some(source) = email.source_message_id {
            sqlx::query(
                "INSERT INTO attachments (message_id, filename, content_type, size, sha256, content_id, inline, created_at)
                 SELECT $1, filename, content_type, size, sha256, content_id, inline, $2 FROM attachments WHERE message_id = $3
                 ORDER BY id",
            )
            .bind(message.0)
            .bind(now)
            .bind(source.0)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO outbox (message_id, inbox_id, mail_from, rcpt_to, mime, state, attempts, next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $6)",
        )
        .bind(message.0)
        .bind(inbox)
        .bind(&email.mail_from)
        .bind(to_json(&email.rcpt_to))
        .bind(&email.mime)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        touch_conversation(&mut tx, conversation, now).await?;
        tx.commit().await?;
        self.find_message(message)
            .await?
            .ok_or(StoreError::NotFound("message"))
    }

    /// Claims the oldest due outbox row for `lease_ms` and counts the attempt. Several workers
    /// (several postdesk nodes on PostgreSQL) never claim the same row: the update re-checks the
    /// lease on the row it locks.
    pub async fn claim_outbox(&self, lease_ms: i64) -> Result<Option<OutboxItem>> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, locked_until = $1, updated_at = $2
             WHERE id = (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $2
                           AND (locked_until IS NULL OR locked_until <= $2) ORDER BY id LIMIT 1)
               AND state = 'queued' AND (locked_until IS NULL OR locked_until <= $2)
             RETURNING id, message_id, inbox_id, mail_from, rcpt_to, mime, attempts, created_at",
        )
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let message = MessageId(row.try_get("message_id")?);
        let conversation: i64 = sqlx::query("SELECT conversation_id FROM messages WHERE id = $1")
            .bind(message.0)
            .fetch_one(&self.pool)
            .await?
            .try_get("conversation_id")?;
        let rcpt: String = row.try_get("rcpt_to")?;
        Ok(Some(OutboxItem {
            id: OutboxId(row.try_get("id")?),
            message_id: message,
            conversation_id: ConversationId(conversation),
            inbox_id: InboxId(row.try_get("inbox_id")?),
            mail_from: row.try_get("mail_from")?,
            rcpt_to: crate::from_json(&rcpt)?,
            mime: row.try_get("mime")?,
            attempts: row.try_get("attempts")?,
            queued_at: row.try_get("created_at")?,
        }))
    }

    /// Records the outcome of an attempt on the outbox row and on its message. A retry waits
    /// until `retry_at` (ms). Returns the message's new delivery status.
    pub async fn finish_outbox(
        &self,
        item: &OutboxItem,
        outcome: &SendOutcome,
        retry_at: i64,
    ) -> Result<DeliveryStatus> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let (state, error) = match outcome {
            SendOutcome::Sent => (DeliveryStatus::Sent, None),
            SendOutcome::Retry { reason } => (DeliveryStatus::Queued, Some(reason.as_str())),
            SendOutcome::Failed { reason } => (DeliveryStatus::Failed, Some(reason.as_str())),
        };
        // A sent email's copy for the Sent folder is due at once.
        sqlx::query(
            "UPDATE outbox SET state = $1, last_error = $2, next_attempt_at = $3, locked_until = NULL, updated_at = $4,
                copy_state = CASE WHEN $1 = 'sent' THEN 'pending' ELSE copy_state END,
                copy_next_at = CASE WHEN $1 = 'sent' THEN $4 ELSE copy_next_at END
             WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .bind(item.id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE messages SET delivery_status = $1, delivery_error = $2 WHERE id = $3")
            .bind(state.as_str())
            .bind(error)
            .bind(item.message_id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(state)
    }

    /// Queues a failed email again, now, with a fresh count of attempts (the Retry action).
    pub async fn retry_email(&self, message: MessageId) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $1, locked_until = NULL, updated_at = $1
             WHERE message_id = $2 AND state = 'failed'",
        )
        .bind(now)
        .bind(message.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "only a failed email can be retried".to_owned(),
            ));
        }
        sqlx::query("UPDATE messages SET delivery_status = 'queued' WHERE id = $1")
            .bind(message.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims the oldest sent email whose Sent-folder copy is due, for `lease_ms`, and counts
    /// the attempt. Never the same row to two workers (as [`Store::claim_outbox`]).
    pub async fn claim_sent_copy(&self, lease_ms: i64) -> Result<Option<SentCopy>> {
        let now = now_ms();
        let row = sqlx::query(
            "UPDATE outbox SET copy_attempts = copy_attempts + 1, copy_locked_until = $1
             WHERE id = (SELECT id FROM outbox WHERE copy_state = 'pending' AND copy_next_at <= $2
                           AND (copy_locked_until IS NULL OR copy_locked_until <= $2) ORDER BY id LIMIT 1)
               AND copy_state = 'pending' AND (copy_locked_until IS NULL OR copy_locked_until <= $2)
             RETURNING id, message_id, inbox_id, mime, updated_at, copy_attempts",
        )
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SentCopy {
            id: OutboxId(row.try_get("id")?),
            message_id: MessageId(row.try_get("message_id")?),
            inbox_id: InboxId(row.try_get("inbox_id")?),
            mime: row.try_get("mime")?,
            sent_at: row.try_get("updated_at")?,
            attempts: row.try_get("copy_attempts")?,
        }))
    }

    /// Records what became of a Sent-folder copy.
    pub async fn finish_sent_copy(&self, copy: &SentCopy, outcome: &CopyOutcome) -> Result<()> {
        let (state, error, next) = match outcome {
            CopyOutcome::Done => ("done", None, None),
            CopyOutcome::Off { reason } => ("off", Some(reason.as_str()), None),
            CopyOutcome::Retry { reason, at } => ("pending", Some(reason.as_str()), Some(*at)),
            CopyOutcome::Failed { reason } => ("failed", Some(reason.as_str()), None),
        };
        sqlx::query(
            "UPDATE outbox SET copy_state = $1, copy_error = $2, copy_next_at = $3, copy_locked_until = NULL
             WHERE id = $4",
        )
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(copy.id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where a sent email's Sent-folder copy stands: `none`, `pending`, `done`, `off` or
    /// `failed`, with the last error. `None` for a message without an outbox row.
    pub async fn sent_copy_state(
        &self,
        message: MessageId,
    ) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query("SELECT copy_state, copy_error FROM outbox WHERE message_id = $1")
            .bind(message.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((row.try_get("copy_state")?, row.try_get("copy_error")?)))
            .transpose()
    }

    /// When the next Sent-folder copy is due (ms).
    pub async fn next_sent_copy_due(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query("SELECT MIN(copy_next_at) AS due FROM outbox WHERE copy_state = 'pending'")
                .fetch_one(&self.pool)
                .await?
                .try_get("due")?,
        )
    }

    /// When the next queued email is due (ms), to sleep until then.
    pub async fn next_outbox_due(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query("SELECT MIN(next_attempt_at) AS due FROM outbox WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await?
                .try_get("due")?,
        )
    }
}
