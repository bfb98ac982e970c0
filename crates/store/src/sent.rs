//! Emails a colleague sent from their own mail client into a conversation: found in the
//! mailbox's Sent folder, they join the conversation they answer as outgoing emails
//! (`email_out`, delivery `sent`), so the team sees every answer the contact got.
//!
//! Only an email that answers a conversation of the inbox (its In-Reply-To or References name
//! one of the conversation's emails) is taken, and only once: an email whose Message-ID the
//! inbox already has (postdesk's own copy in the Sent folder, or one taken before) is not.
//! Nothing else in the Sent folder is read or stored.

use postdesk_core::ids::{ConversationId, InboxId, MessageId};
use postdesk_core::model::MessageKind;
use sqlx::Row as _;

use crate::batch::{Blob, Placeholders, insert_attachments, put_blobs};
use crate::conversations::touch_conversation;
use crate::ingest::IncomingEmail;
use crate::records::Message;
use crate::{Result, Store, StoreError, now_ms, sha256_hex, to_json};

/// Where an email of the Sent folder came from: the folder and its UIDs.
#[derive(Debug, Clone, Copy)]
pub struct SentOrigin<'a> {
    /// The Sent folder's name.
    pub mailbox: &'a str,
    /// Its UIDVALIDITY.
    pub uidvalidity: u32,
    /// The email's UID.
    pub uid: u32,
}

/// Whether the inbox (`$1`) has an email with the Message-ID `$2`.
const KNOWN: &str = "SELECT 1 AS one FROM messages WHERE inbox_id = $1 AND message_id = $2 LIMIT 1";

/// The most Message-IDs of a References header looked up (the root and the newest ones).
const REFERENCES_LOOKED_UP: usize = 50;

impl Store {
    /// The conversation of `inbox` that an email of the Sent folder answers: the one holding
    /// the newest of the emails its In-Reply-To and References name. `None` when it answers
    /// none, or when the inbox already has an email with its Message-ID.
    pub async fn sent_thread(
        &self,
        inbox: InboxId,
        message_id: &str,
        in_reply_to: Option<&str>,
        references: &[String],
    ) -> Result<Option<ConversationId>> {
        let known = sqlx::query(KNOWN)
            .bind(inbox.0)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        if known.is_some() {
            return Ok(None);
        }
        let mut ids: Vec<&str> = in_reply_to.into_iter().collect();
        let skip = references.len().saturating_sub(REFERENCES_LOOKED_UP - 1);
        ids.extend(references.first().map(String::as_str));
        ids.extend(references.iter().skip(skip.max(1)).map(String::as_str));
        ids.retain(|id| !id.is_empty() && *id != message_id);
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(None);
        }
        let p = Placeholders(self.backend);
        let sql = format!(
            "SELECT conversation_id FROM messages WHERE inbox_id = {} AND message_id IN ({})
             ORDER BY id DESC LIMIT 1",
            p.one(1),
            p.list(2, ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(inbox.0);
        for id in &ids {
            query = query.bind(*id);
        }
        let row = query.fetch_optional(&self.pool).await?;
        row.map(|row| Ok(ConversationId(row.try_get("conversation_id")?)))
            .transpose()
    }

    /// Adds `email`, found in the Sent folder, to `conversation` as an outgoing email that was
    /// sent, with its raw bytes (kept as a processed raw email, so exporting or deleting the
    /// contact's data takes it along) and its files. Its author is the postdesk user with the
    /// From address, if any. `None` when the inbox has the email already (taken meanwhile).
    pub async fn record_sent_elsewhere(
        &self,
        inbox: InboxId,
        conversation: ConversationId,
        origin: SentOrigin<'_>,
        raw: &[u8],
        email: &IncomingEmail,
    ) -> Result<Option<Message>> {
        let p = Placeholders(self.backend);
        let now = now_ms();
        let sha = sha256_hex(raw);
        let content_hash = email.content_hash();
        let mut tx = self.write_tx().await?;
        let known = sqlx::query(KNOWN)
            .bind(inbox.0)
            .bind(&email.message_id)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_some() {
            return Ok(None);
        }
        put_blobs(&mut tx, p, vec![(sha.as_str(), Blob::Borrowed(raw))]).await?;
        let raw_id: i64 = sqlx::query(
            "INSERT INTO raw_emails (inbox_id, mailbox, uidvalidity, uid, sha256, size, fetched_at, state, processed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'processed', $7)
             ON CONFLICT (inbox_id, mailbox, uidvalidity, uid) DO UPDATE SET state = 'processed', processed_at = $7
             RETURNING id",
        )
        .bind(inbox.0)
        .bind(origin.mailbox)
        .bind(i64::from(origin.uidvalidity))
        .bind(i64::from(origin.uid))
        .bind(&sha)
        .bind(i64::try_from(raw.len()).unwrap_or(i64::MAX))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let from = email.from.as_ref().map_or("", |a| a.email.as_str());
        let row = sqlx::query(
            "INSERT INTO messages (conversation_id, inbox_id, kind, author_user_id, text, html, message_id,
                in_reply_to, refs, from_json, to_json, cc_json, subject, email_date, delivery_status, raw_email_id,
                created_at, content_hash)
             SELECT c.id, c.inbox_id, $1,
                 (SELECT u.id FROM users u WHERE u.email <> '' AND LOWER(u.email) = LOWER($2)
                  ORDER BY u.active DESC, u.id LIMIT 1),
                 $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'sent', $13, $14, $15
             FROM conversations c WHERE c.id = $16 AND c.inbox_id = $17
             RETURNING id",
        )
        .bind(MessageKind::EmailOut.as_str())
        .bind(from)
        .bind(&email.text)
        .bind(email.html.as_deref())
        .bind(&email.message_id)
        .bind(email.in_reply_to.as_deref())
        .bind(to_json(&email.references))
        .bind(email.from.as_ref().map(to_json))
        .bind(to_json(&email.to))
        .bind(to_json(&email.cc))
        .bind(&email.subject)
        .bind(email.date)
        .bind(raw_id)
        .bind(now)
        .bind(&content_hash)
        .bind(conversation.0)
        .bind(inbox.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
        let message = MessageId(row.try_get("id")?);
        sqlx::query("UPDATE raw_emails SET message_id = $1 WHERE id = $2")
            .bind(message.0)
            .bind(raw_id)
            .execute(&mut *tx)
            .await?;
        let files: Vec<_> = email.attachments.iter().map(|a| (message, a)).collect();
        insert_attachments(&mut tx, p, &files, now).await?;
        touch_conversation(&mut tx, conversation, now).await?;
        tx.commit().await?;
        self.find_message(message).await
    }
}
