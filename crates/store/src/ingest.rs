//! Raw emails and turning them into conversations.
//!
//! The IMAP reader stores each fetched email's bytes and advances the mailbox watermark in one
//! transaction ([`Store::store_fetched`]); nothing is parsed yet, so nothing can be lost to a
//! parse failure or a crash. Processing then reads the pending raw emails and, a batch at a
//! time in one transaction ([`Store::ingest_batch`], in `batch.rs`): skips duplicates (same
//! Message-ID and content), threads, upserts the contacts, creates or reopens conversations,
//! adds the messages and their attachments, and marks the raw emails processed. A raw email
//! that cannot be processed is quarantined with its reason ([`Store::quarantine_raw`]) and the
//! next one goes on.

use postdesk_core::ids::{ConversationId, InboxId, MessageId, RawEmailId};
use postdesk_core::model::{DeliveryStatus, SenderAuth};
use sqlx::Row as _;

use crate::records::{Addr, QuarantinedEmail, RawEmail};
use crate::{Result, Store, StoreError, now_ms, sha256_hex};

/// One fetched email to store.
#[derive(Debug, Clone)]
pub struct StoreFetched {
    /// Its IMAP UID.
    pub uid: u32,
    /// Its bytes exactly as fetched.
    pub bytes: Vec<u8>,
}

/// A file to store with a message.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// Safe file name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Content-ID without <>.
    pub content_id: Option<String>,
    /// Shown inline.
    pub inline: bool,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A parsed inbound email, ready to be stored.
#[derive(Debug, Clone)]
pub struct IncomingEmail {
    /// Message-ID without <> (synthesised when the email had none).
    pub message_id: String,
    /// In-Reply-To without <>.
    pub in_reply_to: Option<String>,
    /// References without <>.
    pub references: Vec<String>,
    /// The contact: Reply-To if given, else From.
    pub contact: Addr,
    /// From as written.
    pub from: Option<Addr>,
    /// To.
    pub to: Vec<Addr>,
    /// Cc.
    pub cc: Vec<Addr>,
    /// Subject.
    pub subject: String,
    /// Date header (ms).
    pub date: Option<i64>,
    /// Text body.
    pub text: String,
    /// Sanitised HTML body.
    pub html: Option<String>,
    /// Files.
    pub attachments: Vec<NewAttachment>,
    /// An automatic reply (vacation notice, auto-responder): it joins its conversation but
    /// never re-queues or reopens it.
    pub auto_reply: bool,
    /// Attach the raw email itself as `original.eml` (for an email too large to parse; the
    /// bytes are shared with the raw copy, not duplicated).
    pub attach_original: bool,
    /// DKIM, SPF and DMARC verdicts (none: not checked).
    pub auth: Option<SenderAuth>,
}

impl IncomingEmail {
    /// What tells two emails with the same Message-ID apart: a SHA-256 of the text, the HTML
    /// and each attachment (name and bytes). Headers are left out because they change on
    /// the way (Received, Delivered-To), so the same email fetched over IMAP and received over
    /// SMTP has the same hash.
    #[must_use]
    pub fn content_hash(&self) -> String {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        for part in [
            self.text.as_bytes(),
            self.html.as_deref().unwrap_or("").as_bytes(),
        ] {
            hash.update(part.len().to_le_bytes());
            hash.update(part);
        }
        for a in &self.attachments {
            for part in [a.filename.as_bytes(), &a.bytes] {
                hash.update(part.len().to_le_bytes());
                hash.update(part);
            }
        }
        hex::encode(hash.finalize())
    }
}

/// What processing one raw email did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new message in a conversation.
    Added {
        /// The conversation.
        conversation_id: ConversationId,
        /// The new message.
        message_id: MessageId,
        /// The conversation is new (and queued).
        new_conversation: bool,
        /// A closed conversation was reopened into the queue.
        reopened: bool,
        /// The contact's email ended the conversation's hold or snooze (it is `open` again).
        resumed: bool,
    },
    /// The inbox already had this Message-ID with the same content; nothing was added.
    Duplicate,
    /// Another processor handled this raw email first; nothing was done.
    AlreadyHandled,
}

fn raw_from_row(row: &sqlx::any::AnyRow) -> Result<RawEmail> {
    Ok(RawEmail {
        id: RawEmailId(row.try_get("id")?),
        inbox_id: InboxId(row.try_get("inbox_id")?),
        bytes: row.try_get("bytes")?,
        via_smtp: row.try_get::<String, _>("mailbox")? == crate::received::SMTP_MAILBOX,
        fetched_at: row.try_get("fetched_at")?,
    })
}

/// Marks a new raw email as being processed in this transaction; false when it is no longer
/// new (another processor handled it).
async fn claim_raw(tx: &mut sqlx::AnyConnection, raw: RawEmailId, now: i64) -> Result<bool> {
    let claimed =
        sqlx::query("UPDATE raw_emails SET processed_at = $1 WHERE id = $2 AND state = 'new'")
            .bind(now)
            .bind(raw.0)
            .execute(&mut *tx)
            .await?;
    Ok(claimed.rows_affected() > 0)
}

/// Where a bounce of one of our emails was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceRecorded {
    /// The conversation of the bounced email.
    pub conversation_id: ConversationId,
    /// The email_out message now marked failed.
    pub message_id: MessageId,
    /// The system line that tells the agents.
    pub notice_id: MessageId,
}

pub(crate) async fn insert_system_message(
    tx: &mut sqlx::AnyConnection,
    conversation: ConversationId,
    text: &str,
) -> Result<MessageId> {
    let row = sqlx::query(
        "INSERT INTO messages (conversation_id, inbox_id, kind, text, created_at)
         SELECT id, inbox_id, 'system', $1, $2 FROM conversations WHERE id = $3
         RETURNING id",
    )
    .bind(text)
    .bind(now_ms())
    .bind(conversation.0)
    .fetch_one(&mut *tx)
    .await?;
    Ok(MessageId(row.try_get("id")?))
}

/// Raw emails larger than this are read back from PostgreSQL in pieces of this size. (Not from
/// SQLite: its `substr` of a blob reads the whole blob each time.)
const LOAD_PIECE: u64 = 4 * 1024 * 1024;

impl Store {
    /// Stores fetched emails and advances the mailbox watermark to `next_uid`, in one
    /// transaction. Emails stored before (same inbox, mailbox, UIDVALIDITY, UID) are skipped.
    /// The bytes are moved in, so each email is not held twice while it is written.
    pub async fn store_fetched(
        &self,
        inbox: InboxId,
        mailbox: &str,
        uidvalidity: u32,
        emails: Vec<StoreFetched>,
        next_uid: u32,
    ) -> Result<usize> {
        self.store_fetched_fenced(None, inbox, mailbox, uidvalidity, emails, next_uid)
            .await
    }

    /// [`Store::store_fetched`], made only while `fence` (when given) holds the inbox's reader
    /// lease (see `cluster`): a reader that lost its lease without noticing stores nothing.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the lease is held by another node, or with another
    /// epoch, or expired: nothing was written.
    pub async fn store_fetched_fenced(
        &self,
        fence: Option<&crate::Fence>,
        inbox: InboxId,
        mailbox: &str,
        uidvalidity: u32,
        emails: Vec<StoreFetched>,
        next_uid: u32,
    ) -> Result<usize> {
        let now = now_ms();
        let p = crate::batch::Placeholders(self.backend);
        // (uid, sha256, size) of each email, then its bytes go to the blob insert. Hashed
        // before the transaction, so SQLite's write lock is not held for it.
        let rows: Vec<(u32, String, i64)> = emails
            .iter()
            .map(|e| {
                (
                    e.uid,
                    sha256_hex(&e.bytes),
                    i64::try_from(e.bytes.len()).unwrap_or(i64::MAX),
                )
            })
            .collect();
        let blobs: Vec<(&str, crate::batch::Blob<'_>)> = rows
            .iter()
            .zip(emails)
            .map(|((_, sha, _), e)| (sha.as_str(), crate::batch::Blob::Owned(e.bytes)))
            .collect();
        let mut tx = self.write_tx().await?;
        crate::batch::put_blobs(&mut tx, p, blobs).await?;
        let mut stored = 0;
        for chunk in rows.chunks(200) {
            let sql = format!(
                "INSERT INTO raw_emails (inbox_id, mailbox, uidvalidity, uid, sha256, size, fetched_at, state)
                 VALUES {}
                 ON CONFLICT (inbox_id, mailbox, uidvalidity, uid) DO NOTHING",
                p.values(1, chunk.len(), 8)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (uid, sha, size) in chunk {
                query = query
                    .bind(inbox.0)
                    .bind(mailbox)
                    .bind(i64::from(uidvalidity))
                    .bind(i64::from(*uid))
                    .bind(sha.as_str())
                    .bind(*size)
                    .bind(now)
                    .bind("new");
            }
            stored += usize::try_from(query.execute(&mut *tx).await?.rows_affected()).unwrap_or(0);
        }
        sqlx::query(
            "INSERT INTO mailbox_sync (inbox_id, mailbox, uidvalidity, next_uid) VALUES ($1, $2, $3, $4)
             ON CONFLICT (inbox_id, mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity,
                next_uid = CASE WHEN excluded.next_uid > mailbox_sync.next_uid
                                THEN excluded.next_uid ELSE mailbox_sync.next_uid END",
        )
        .bind(inbox.0)
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(i64::from(next_uid))
        .execute(&mut *tx)
        .await?;
        // Last, so that the lease row is locked only for the moment until the commit.
        if let Some(fence) = fence
            && !self.holds_lease(&mut tx, inbox, fence).await?
        {
            tx.rollback().await?;
            return Err(StoreError::LeaseLost(inbox));
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Raw emails waiting to be processed, oldest first.
    pub async fn pending_raw(&self, inbox: Option<InboxId>, limit: i64) -> Result<Vec<RawEmail>> {
        self.pending_raw_within(inbox, None, limit, u64::MAX).await
    }

    /// Raw emails waiting to be processed, oldest first, after `after` when given: at most
    /// `limit`, and no more than `max_bytes` together, except that the oldest one is always
    /// included however large, so processing holds a bounded amount of email in memory and
    /// still makes progress.
    pub async fn pending_raw_within(
        &self,
        inbox: Option<InboxId>,
        after: Option<RawEmailId>,
        limit: i64,
        max_bytes: u64,
    ) -> Result<Vec<RawEmail>> {
        let rows = sqlx::query(
            "SELECT id, size FROM raw_emails WHERE state = 'new' AND ($1 IS NULL OR inbox_id = $1)
                AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(inbox.map(|i| i.0))
        .bind(after.map_or(0, |a| a.0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
        let mut large: Vec<i64> = Vec::new();
        let mut total: u64 = 0;
        for row in &rows {
            let size = u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0);
            if !(ids.is_empty() && large.is_empty()) && total.saturating_add(size) > max_bytes {
                break;
            }
            total = total.saturating_add(size);
            if size > LOAD_PIECE && self.backend == crate::Backend::Postgres {
                large.push(row.try_get("id")?);
            } else {
                ids.push(row.try_get("id")?);
            }
        }
        let mut raws = Vec::with_capacity(ids.len() + large.len());
        if !ids.is_empty() {
            let sql = format!(
                "SELECT r.id, r.inbox_id, r.mailbox, r.fetched_at, b.bytes FROM raw_emails r JOIN blobs b ON b.sha256 = r.sha256
                 WHERE r.id IN ({}) ORDER BY r.id",
                crate::batch::Placeholders(self.backend).list(1, ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.pool).await? {
                raws.push(raw_from_row(&row)?);
            }
        }
        for id in large {
            if let Some(raw) = self.raw_in_pieces(RawEmailId(id)).await? {
                raws.push(raw);
            }
        }
        raws.sort_by_key(|raw| raw.id.0);
        Ok(raws)
    }

    /// A raw email read [`LOAD_PIECE`] bytes at a time into one buffer: the PostgreSQL driver
    /// holds a row it receives in its read buffer (which the pooled connection keeps), and
    /// sqlx's `Any` copies it twice more, so reading a large email in one row would hold it
    /// three or four times over.
    async fn raw_in_pieces(&self, id: RawEmailId) -> Result<Option<RawEmail>> {
        let Some(row) = sqlx::query(
            "SELECT r.inbox_id, r.mailbox, r.fetched_at, r.sha256, b.size FROM raw_emails r JOIN blobs b ON b.sha256 = r.sha256 WHERE r.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let inbox_id = InboxId(row.try_get("inbox_id")?);
        let via_smtp = row.try_get::<String, _>("mailbox")? == crate::received::SMTP_MAILBOX;
        let fetched_at: i64 = row.try_get("fetched_at")?;
        let sha: String = row.try_get("sha256")?;
        let size: i64 = row.try_get("size")?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut start: i64 = 1;
        while start <= size {
            let piece: Vec<u8> = sqlx::query(
                "SELECT substr(bytes, CAST($1 AS INTEGER), CAST($2 AS INTEGER)) AS piece FROM blobs WHERE sha256 = $3",
            )
            .bind(start)
            .bind(i64::try_from(LOAD_PIECE).unwrap_or(i64::MAX))
            .bind(sha.as_str())
            .fetch_one(&self.pool)
            .await?
            .try_get("piece")?;
            if piece.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "blob {sha} is shorter than its recorded size {size}"
                )));
            }
            start += i64::try_from(piece.len()).unwrap_or(i64::MAX);
            bytes.extend_from_slice(&piece);
        }
        Ok(Some(RawEmail {
            id,
            inbox_id,
            bytes,
            via_smtp,
            fetched_at,
        }))
    }

    /// The bytes of a raw email.
    pub async fn find_raw(&self, id: RawEmailId) -> Result<Option<RawEmail>> {
        let row = sqlx::query(
            "SELECT r.id, r.inbox_id, r.mailbox, r.fetched_at, b.bytes FROM raw_emails r JOIN blobs b ON b.sha256 = r.sha256 WHERE r.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(raw_from_row).transpose()
    }

    /// Records a bounce of one of our emails: when the inbox sent an email with Message-ID
    /// `original`, that email is marked failed with `reason`, a system line says so in its
    /// conversation, and the raw bounce is marked processed. `None` (and nothing changed) when
    /// the bounced email is not one of ours.
    pub async fn record_bounce(
        &self,
        raw: RawEmailId,
        inbox: InboxId,
        original: &str,
        reason: &str,
    ) -> Result<Option<BounceRecorded>> {
        self.record_delivery_report(raw, inbox, original, DeliveryStatus::Failed, reason)
            .await
    }

    /// [`Store::record_bounce`] for any delivery report: `Failed` (a bounce) or `Delayed` (a
    /// receiving server is still retrying: the email is marked delayed, unless it already
    /// failed, and the system line says it is delayed). Other statuses are recorded as given.
    pub async fn record_delivery_report(
        &self,
        raw: RawEmailId,
        inbox: InboxId,
        original: &str,
        status: DeliveryStatus,
        reason: &str,
    ) -> Result<Option<BounceRecorded>> {
        let mut tx = self.write_tx().await?;
        let Some(row) = sqlx::query(
            "SELECT id, conversation_id FROM messages WHERE inbox_id = $1 AND message_id = $2 AND kind = 'email_out'",
        )
        .bind(inbox.0)
        .bind(original)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let message = MessageId(row.try_get("id")?);
        let conversation = ConversationId(row.try_get("conversation_id")?);
        let now = now_ms();
        if !claim_raw(&mut tx, raw, now).await? {
            return Ok(None);
        }
        // A late delay warning never hides a failure already recorded.
        sqlx::query(
            "UPDATE messages SET delivery_status = $1, delivery_error = $2 WHERE id = $3 AND NOT (delivery_status = 'failed' AND $1 = 'delayed')",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(message.0)
        .execute(&mut *tx)
        .await?;
        let line = if status == DeliveryStatus::Delayed {
            format!(
                "An email to the contact is delayed, the receiving server is still trying: {reason}"
            )
        } else {
            format!("An email to the contact bounced: {reason}")
        };
        let notice = insert_system_message(&mut tx, conversation, &line).await?;
        sqlx::query(
            "UPDATE raw_emails SET state = 'processed', reason = $1, message_id = $2, processed_at = $3 WHERE id = $4",
        )
        .bind(if status == DeliveryStatus::Delayed {
            format!("delay report of <{original}>")
        } else {
            format!("bounce of <{original}>")
        })
        .bind(notice.0)
        .bind(now)
        .bind(raw.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(BounceRecorded {
            conversation_id: conversation,
            message_id: message,
            notice_id: notice,
        }))
    }

    /// Sets a raw email aside with the reason it could not be processed. Its bytes stay.
    pub async fn quarantine_raw(&self, id: RawEmailId, reason: &str) -> Result<()> {
        sqlx::query("UPDATE raw_emails SET state = 'quarantined', reason = $1, processed_at = $2 WHERE id = $3 AND state = 'new'")
            .bind(reason)
            .bind(now_ms())
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts a quarantined raw email back in line for processing.
    pub async fn requeue_raw(&self, id: RawEmailId) -> Result<()> {
        let done = sqlx::query("UPDATE raw_emails SET state = 'new', reason = NULL WHERE id = $1 AND state = 'quarantined'")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("quarantined email"));
        }
        Ok(())
    }

    /// Quarantined raw emails, newest first.
    pub async fn list_quarantined(&self) -> Result<Vec<QuarantinedEmail>> {
        let rows = sqlx::query(
            "SELECT id, inbox_id, uid, size, reason, fetched_at FROM raw_emails
             WHERE state = 'quarantined' ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QuarantinedEmail {
                    id: RawEmailId(row.try_get("id")?),
                    inbox_id: InboxId(row.try_get("inbox_id")?),
                    uid: row.try_get("uid")?,
                    size: row.try_get("size")?,
                    reason: row
                        .try_get::<Option<String>, _>("reason")?
                        .unwrap_or_default(),
                    fetched_at: row.try_get("fetched_at")?,
                })
            })
            .collect()
    }

    /// How many raw emails per state, for an inbox's health (new = backlog).
    pub async fn count_raw(&self, inbox: InboxId, state: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM raw_emails WHERE inbox_id = $1 AND state = $2")
                .bind(inbox.0)
                .bind(state)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// Turns a parsed raw email into a message in its conversation, in one transaction:
    /// dedup by Message-ID and content, thread, upsert the contact, create or reopen the conversation, add
    /// the message and attachments, mark the raw email processed. [`Store::ingest_batch`] does
    /// the same for many emails at once.
    pub async fn ingest_email(
        &self,
        raw: RawEmailId,
        inbox: InboxId,
        email: &IncomingEmail,
    ) -> Result<IngestOutcome> {
        self.ingest_batch(inbox, &[(raw, email.clone())])
            .await?
            .pop()
            .unwrap_or(Err(StoreError::NotFound("raw email")))
    }
}
