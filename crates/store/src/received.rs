//! Emails received directly over SMTP (the server's SMTP ingress), stored raw like fetched ones.
//!
//! They go into `raw_emails` next to IMAP-fetched emails, so the same processing turns them
//! into conversations. Their mailbox is [`SMTP_MAILBOX`] with UIDVALIDITY 0, which no IMAP
//! mailbox can have (RFC 9051 §2.3.1.1: UIDVALIDITY is non-zero), and their "UID" is simply the
//! next number for the inbox, so the table's UNIQUE (inbox, mailbox, uidvalidity, uid) keeps
//! holding.

use postdesk_core::ids::{InboxId, RawEmailId};
use sqlx::Row as _;

use crate::batch::{Blob, Placeholders, put_blobs};
use crate::{Result, Store, StoreError, now_ms, sha256_hex};

/// The `mailbox` of raw emails received over SMTP.
pub(crate) const SMTP_MAILBOX: &str = "@smtp";

/// How many times a numbering clash with a concurrent writer is retried. Only PostgreSQL can
/// clash (two transactions reading the same highest number); SQLite's `BEGIN IMMEDIATE`
/// serialises writers.
const ATTEMPTS: usize = 32;

impl Store {
    /// Stores an email received over SMTP, its bytes exactly as given, waiting to be processed
    /// (state `new`). Every call stores a new row, even for the same bytes: duplicates are
    /// recognised later, by Message-ID, when the email is processed. When this returns, the
    /// email is committed.
    pub async fn store_received(&self, inbox: InboxId, bytes: &[u8]) -> Result<RawEmailId> {
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        for _ in 0..ATTEMPTS {
            let mut tx = self.write_tx().await?;
            let next: i64 = sqlx::query(
                "SELECT COALESCE(MAX(uid), 0) + 1 AS next FROM raw_emails
                 WHERE inbox_id = $1 AND mailbox = $2 AND uidvalidity = 0",
            )
            .bind(inbox.0)
            .bind(SMTP_MAILBOX)
            .fetch_one(&mut *tx)
            .await?
            .try_get("next")?;
            let sha = sha256_hex(bytes);
            put_blobs(
                &mut tx,
                Placeholders(self.backend),
                vec![(sha.as_str(), Blob::Borrowed(bytes))],
            )
            .await?;
            let row = sqlx::query(
                "INSERT INTO raw_emails (inbox_id, mailbox, uidvalidity, uid, sha256, size, state, fetched_at)
                 VALUES ($1, $2, 0, $3, $4, $5, 'new', $6)
                 ON CONFLICT (inbox_id, mailbox, uidvalidity, uid) DO NOTHING
                 RETURNING id",
            )
            .bind(inbox.0)
            .bind(SMTP_MAILBOX)
            .bind(next)
            .bind(sha)
            .bind(size)
            .bind(now_ms())
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(row) => {
                    let id = RawEmailId(row.try_get("id")?);
                    tx.commit().await?;
                    return Ok(id);
                }
                // A concurrent transaction took this number and committed: count again.
                None => tx.rollback().await?,
            }
        }
        Err(StoreError::Conflict(
            "Too many concurrent emails for one inbox; try again".to_owned(),
        ))
    }
}
