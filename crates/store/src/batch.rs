//! Many parsed emails of one inbox into conversations, in one transaction.
//!
//! Processing one email at a time costs a dozen statements and a commit per email; on SQLite
//! each statement is a hand-off to the database thread, and on PostgreSQL a network round
//! trip. Here the statements work on the whole batch instead: one claim, one lookup of every
//! Message-ID the batch mentions, one contact upsert, one insert of the new conversations, one
//! of the messages, one of the attachments, one state update of the raw emails. Threading is
//! decided in memory, in the batch's order, so a reply threads onto an email earlier in the
//! same batch exactly as if they had been processed one by one.
//!
//! When the batch fails for a reason of the data rather than of the database, it is rolled
//! back and the emails are stored again one per transaction, so the one bad email is found and
//! reported while the others go in.

use std::collections::{HashMap, HashSet};

use postdesk_core::ids::{ConversationId, InboxId, MessageId, RawEmailId};
use postdesk_core::model::{ConversationStatus, MessageKind};
use postdesk_core::thread::{self, ThreadReason};
use sqlx::Row as _;

use crate::ingest::{IncomingEmail, IngestOutcome, NewAttachment, insert_system_message};
use crate::{Backend, Result, Store, StoreError, now_ms, sha256_hex, to_json};

/// Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535 bound
/// parameters for the widest row (18 columns).
const ROWS_PER_STATEMENT: usize = 100;

/// Bytes of blobs bound into one statement (one larger file still goes alone).
const BYTES_PER_STATEMENT: usize = 8 * 1024 * 1024;

/// A statement that carried more blob bytes than this gives its connection's grown buffers
/// back.
const SHRINK_AFTER: usize = 4 * 1024 * 1024;

/// How generated statements write their placeholders. PostgreSQL needs numbered ones (`$1`).
/// SQLite gets anonymous ones (`?`): sqlx looks up the name of every parameter of a
/// statement, and SQLite finds a name by walking the list of all of them, so numbered
/// placeholders cost time in the square of their number, which a statement of a few thousand
/// makes the bulk of the work. Statements built here bind their values in the order their
/// placeholders appear.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placeholders(pub(crate) Backend);

impl Placeholders {
    /// Placeholder number `n`.
    pub(crate) fn one(self, n: usize) -> String {
        match self.0 {
            Backend::Postgres => format!("${n}"),
            Backend::Sqlite => "?".to_owned(),
        }
    }

    /// `($1, $2), ($3, $4)`: `rows` groups of `columns` placeholders numbered from `first`.
    pub(crate) fn values(self, first: usize, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|row| format!("({})", self.list(first + row * columns, columns)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `$first, …` for an `IN (…)` of `n` values.
    pub(crate) fn list(self, first: usize, n: usize) -> String {
        (first..first + n)
            .map(|i| self.one(i))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where an email's conversation is: already stored, or one this batch opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversation {
    Stored(i64),
    Opened(usize),
}

/// A conversation the batch opens.
struct Opening {
    raw: i64,
    contact: i64,
    subject: String,
    follows: Option<i64>,
}

/// What the batch does with one email.
enum Plan {
    AlreadyHandled,
    /// Same Message-ID as a stored message, or as an earlier email of the batch (by index).
    Duplicate(Result<i64, usize>),
    Add {
        conversation: Conversation,
        reason: ThreadReason,
        contact: i64,
        /// This email opens the conversation.
        opens: bool,
        reopened: bool,
        /// The email ends the conversation's hold or snooze.
        resumed: bool,
    },
}

/// What the batch knows of a stored conversation it threads onto.
struct Stored {
    status: String,
    assignee: Option<i64>,
    closed_at: Option<i64>,
    /// Merged into another conversation: its emails thread into the survivor.
    merged: bool,
}

impl Store {
    /// Turns parsed raw emails of `inbox` into messages in their conversations, as
    /// [`Store::ingest_email`] does for one, but with a few statements for the whole batch.
    /// Returns one result per email, in order. An email's own error (say a value the database
    /// refuses) is its result, and the others are still stored.
    ///
    /// # Errors
    /// Only a failure of the database itself ([`StoreError::is_transient`]): then nothing of
    /// the batch is stored, and every email stays pending.
    pub async fn ingest_batch(
        &self,
        inbox: InboxId,
        emails: &[(RawEmailId, IncomingEmail)],
    ) -> Result<Vec<Result<IngestOutcome>>> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        match self.ingest_together(inbox, emails).await {
            Ok(outcomes) => return Ok(outcomes.into_iter().map(Ok).collect()),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) if emails.len() == 1 => return Ok(vec![Err(e)]),
            Err(e) => {
                tracing::info!(%inbox, emails = emails.len(), error = %e, "A batch of emails failed; storing them one at a time");
            }
        }
        let mut out = Vec::with_capacity(emails.len());
        for email in emails {
            match self
                .ingest_together(inbox, std::slice::from_ref(email))
                .await
            {
                Ok(mut outcome) => out.push(Ok(outcome.remove(0))),
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => out.push(Err(e)),
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_lines)]
    async fn ingest_together(
        &self,
        inbox: InboxId,
        emails: &[(RawEmailId, IncomingEmail)],
    ) -> Result<Vec<IngestOutcome>> {
        // Hashed before the transaction, so SQLite's write lock is not held for it.
        let hashes: Vec<String> = emails.iter().map(|(_, e)| e.content_hash()).collect();
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let p = Placeholders(self.backend);

        // Claim: of two processors racing for an email (an IMAP reader and the SMTP ingress,
        // or two PostgreSQL nodes), the second waits on its row and then finds it no longer new.
        let mut claimed: HashSet<i64> = HashSet::with_capacity(emails.len());
        for chunk in emails.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "UPDATE raw_emails SET processed_at = {} WHERE state = 'new' AND id IN ({}) RETURNING id",
                p.one(1),
                p.list(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for (raw, _) in chunk {
                query = query.bind(raw.0);
            }
            for row in query.fetch_all(&mut *tx).await? {
                claimed.insert(row.try_get("id")?);
            }
        }

        // Every Message-ID the batch mentions: its own (duplicates) and those it replies to.
        let mut wanted: Vec<&str> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for (raw, email) in emails {
            if !claimed.contains(&raw.0) {
                continue;
            }
            let referenced = email
                .references
                .iter()
                .map(String::as_str)
                .chain(email.in_reply_to.as_deref());
            for id in std::iter::once(email.message_id.as_str()).chain(referenced) {
                let id = id.trim();
                if !id.is_empty() && seen.insert(id) {
                    wanted.push(id);
                }
            }
        }
        // Message-ID → (message, conversation), for threading; and every stored message with
        // that Message-ID with its content hash, for duplicates.
        let mut known: HashMap<String, (i64, i64)> = HashMap::new();
        let mut stored_copies: HashMap<String, Vec<(i64, Option<String>)>> = HashMap::new();
        for chunk in wanted.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "SELECT message_id, id, conversation_id, content_hash FROM messages
                 WHERE inbox_id = {} AND message_id IN ({}) ORDER BY id",
                p.one(1),
                p.list(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(inbox.0);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *tx).await? {
                let message_id: String = row.try_get("message_id")?;
                let id: i64 = row.try_get("id")?;
                known
                    .entry(message_id.clone())
                    .or_insert((id, row.try_get("conversation_id")?));
                stored_copies
                    .entry(message_id)
                    .or_default()
                    .push((id, row.try_get("content_hash")?));
            }
        }

        let reopen_days: i64 = sqlx::query("SELECT reopen_days FROM inboxes WHERE id = $1")
            .bind(inbox.0)
            .fetch_one(&mut *tx)
            .await?
            .try_get("reopen_days")?;

        // The stored conversations the batch may thread onto.
        let conversation_ids: Vec<i64> = known
            .values()
            .map(|(_, c)| *c)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut stored = stored_conversations(&mut tx, p, &conversation_ids).await?;
        // A merged conversation's emails moved into its survivor, and so do replies to them
        // (through a chain of merges, when the survivor was merged in turn).
        let mut survivors: HashMap<i64, i64> = HashMap::new();
        for (id, _) in stored.iter().filter(|(_, s)| s.merged) {
            let survivor = crate::desk::survivor_of(&mut tx, ConversationId(*id)).await?;
            survivors.insert(*id, survivor.0);
        }
        if !survivors.is_empty() {
            for (_, conversation) in known.values_mut() {
                if let Some(survivor) = survivors.get(conversation) {
                    *conversation = *survivor;
                }
            }
            let missing: Vec<i64> = survivors
                .values()
                .filter(|id| !stored.contains_key(id))
                .copied()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            stored.extend(stored_conversations(&mut tx, p, &missing).await?);
        }

        // Duplicates: the same Message-ID with the same content, stored (a stored message
        // without a content hash, such as one of our own emails, matches any content) or earlier
        // in the batch (by index). The emails that are new, claimed and not duplicates, are the
        // only ones that touch contacts and conversations.
        let mut duplicate_of: Vec<Option<Result<i64, usize>>> = Vec::with_capacity(emails.len());
        let mut fresh: HashSet<i64> = HashSet::with_capacity(emails.len());
        let mut first_copy: HashMap<(&str, &str), usize> = HashMap::with_capacity(emails.len());
        for (index, ((raw, email), hash)) in emails.iter().zip(&hashes).enumerate() {
            let stored_copy = stored_copies.get(&email.message_id).and_then(|copies| {
                copies
                    .iter()
                    .find(|(_, h)| h.as_deref().is_none_or(|h| h == hash))
                    .map(|(id, _)| *id)
            });
            let duplicate = match stored_copy {
                Some(id) => Some(Ok(id)),
                None => first_copy
                    .get(&(email.message_id.as_str(), hash.as_str()))
                    .map(|earlier| Err(*earlier)),
            };
            if claimed.contains(&raw.0) && duplicate.is_none() {
                fresh.insert(raw.0);
                first_copy.insert((email.message_id.as_str(), hash.as_str()), index);
            }
            duplicate_of.push(duplicate);
        }
        let contacts = upsert_contacts(&mut tx, p, emails, &fresh, now).await?;

        // Decide, in order, what each email does.
        let mut plans: Vec<Plan> = Vec::with_capacity(emails.len());
        let mut openings: Vec<Opening> = Vec::new();
        // Message-ID → the first email of the batch with it, and its conversation.
        let mut in_batch: HashMap<&str, (usize, Conversation)> = HashMap::new();
        let mut joined: Vec<i64> = Vec::new();
        let mut reopen: Vec<(i64, Option<i64>)> = Vec::new();
        let mut resume: Vec<(i64, String)> = Vec::new();
        for (index, (raw, email)) in emails.iter().enumerate() {
            if !claimed.contains(&raw.0) {
                plans.push(Plan::AlreadyHandled);
                continue;
            }
            if let Some(of) = duplicate_of[index] {
                plans.push(Plan::Duplicate(of));
                continue;
            }
            let contact = *contacts
                .get(&email.contact.email.to_lowercase())
                .ok_or(StoreError::NotFound("contact"))?;
            let mut found: Option<(Conversation, ThreadReason)> = None;
            for reason in thread::candidates(email.in_reply_to.as_deref(), &email.references) {
                let (ThreadReason::InReplyTo(id) | ThreadReason::References(id)) = &reason else {
                    continue;
                };
                let hit = known
                    .get(id.as_str())
                    .map(|(_, c)| Conversation::Stored(*c))
                    .or_else(|| in_batch.get(id.as_str()).map(|(_, c)| *c));
                if let Some(conversation) = hit {
                    found = Some((conversation, reason));
                    break;
                }
            }
            let mut reopened = false;
            let mut resumed = false;
            let mut follows = None;
            let mut join = None;
            match found {
                Some((Conversation::Stored(id), reason)) => {
                    let state = stored
                        .get_mut(&id)
                        .ok_or(StoreError::NotFound("conversation"))?;
                    let closed = state.status == ConversationStatus::Closed.as_str();
                    let within_window = state
                        .closed_at
                        .is_none_or(|at| now - at <= reopen_days.saturating_mul(86_400_000));
                    if !closed || email.auto_reply {
                        // Open, queued, on hold or snoozed: the email joins. An auto-reply
                        // joins even a closed conversation, and never re-queues, reopens or
                        // resumes it. The contact's own email ends a hold or a snooze.
                        let waiting = [ConversationStatus::OnHold, ConversationStatus::Snoozed]
                            .iter()
                            .any(|s| state.status == s.as_str());
                        if waiting && !email.auto_reply {
                            resumed = true;
                            resume.push((id, state.status.clone()));
                            state.status = ConversationStatus::Open.as_str().to_owned();
                        }
                        joined.push(id);
                        join = Some((Conversation::Stored(id), reason));
                    } else if within_window {
                        reopened = true;
                        reopen.push((id, state.assignee));
                        state.status = ConversationStatus::Queued.as_str().to_owned();
                        state.assignee = None;
                        state.closed_at = None;
                        join = Some((Conversation::Stored(id), reason));
                    } else {
                        // Closed longer ago than the reopen window: a new conversation that
                        // points back.
                        follows = Some(id);
                    }
                }
                // Opened by this batch, so queued: the email joins.
                Some((opened @ Conversation::Opened(_), reason)) => join = Some((opened, reason)),
                None => {}
            }
            let opens = join.is_none();
            let (conversation, reason) = join.unwrap_or_else(|| {
                openings.push(Opening {
                    raw: raw.0,
                    contact,
                    subject: email.subject.clone(),
                    follows,
                });
                (Conversation::Opened(openings.len() - 1), ThreadReason::New)
            });
            in_batch
                .entry(email.message_id.as_str())
                .or_insert((index, conversation));
            plans.push(Plan::Add {
                conversation,
                reason,
                contact,
                opens,
                reopened,
                resumed,
            });
        }

        for (conversation, assignee) in &reopen {
            reopen_conversation(&mut tx, ConversationId(*conversation), *assignee, now).await?;
        }
        for (conversation, status) in &resume {
            resume_conversation(&mut tx, ConversationId(*conversation), status, now).await?;
        }
        let opened = open_conversations(&mut tx, p, inbox, &openings, now).await?;
        for (opening, id) in openings.iter().zip(&opened) {
            if let Some(old) = opening.follows {
                insert_system_message(
                    &mut tx,
                    *id,
                    &format!(
                        "Follows up on conversation #{old}, closed more than {reopen_days} days ago"
                    ),
                )
                .await?;
            }
        }
        joined.sort_unstable();
        joined.dedup();
        for chunk in joined.chunks(ROWS_PER_STATEMENT * 4) {
            let sql = format!(
                "UPDATE conversations SET updated_at = {}, last_message_at = {} WHERE id IN ({})",
                p.one(1),
                p.one(2),
                p.list(3, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *tx).await?;
        }

        let conversation_of = |c: Conversation| match c {
            Conversation::Stored(id) => ConversationId(id),
            Conversation::Opened(i) => opened[i],
        };
        let rows: Vec<MessageRow<'_>> = emails
            .iter()
            .zip(&plans)
            .zip(&hashes)
            .filter_map(|(((raw, email), plan), content_hash)| match plan {
                Plan::Add {
                    conversation,
                    reason,
                    contact,
                    ..
                } => Some(MessageRow {
                    raw: *raw,
                    conversation: conversation_of(*conversation),
                    contact: *contact,
                    reason: reason.describe(),
                    content_hash,
                    email,
                }),
                _ => None,
            })
            .collect();
        let message_of = insert_messages(&mut tx, p, inbox, &rows, now).await?;
        let message = |raw: RawEmailId| {
            message_of
                .get(&raw.0)
                .copied()
                .ok_or(StoreError::NotFound("message"))
        };

        let mut files: Vec<(MessageId, &NewAttachment)> = Vec::new();
        for row in &rows {
            let id = message(row.raw)?;
            files.extend(row.email.attachments.iter().map(|a| (id, a)));
        }
        insert_attachments(&mut tx, p, &files, now).await?;
        for row in rows.iter().filter(|r| r.email.attach_original) {
            sqlx::query(
                "INSERT INTO attachments (message_id, filename, content_type, size, sha256, content_id, inline, created_at)
                 SELECT $1, 'original.eml', 'message/rfc822', size, sha256, NULL, 0, $2 FROM raw_emails WHERE id = $3",
            )
            .bind(message(row.raw)?.0)
            .bind(now)
            .bind(row.raw.0)
            .execute(&mut *tx)
            .await?;
        }

        for chunk in rows.chunks(ROWS_PER_STATEMENT * 2) {
            let mut cases = String::new();
            for i in 0..chunk.len() {
                cases.push_str(&format!(
                    " WHEN {} THEN CAST({} AS BIGINT)",
                    p.one(2 + 2 * i),
                    p.one(3 + 2 * i)
                ));
            }
            let sql = format!(
                "UPDATE raw_emails SET state = 'processed', reason = NULL, processed_at = {},
                    message_id = CASE id{cases} END
                 WHERE id IN ({})",
                p.one(1),
                p.list(2 + 2 * chunk.len(), chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for row in chunk {
                query = query.bind(row.raw.0).bind(message(row.raw)?.0);
            }
            for row in chunk {
                query = query.bind(row.raw.0);
            }
            query.execute(&mut *tx).await?;
        }

        let mut outcomes = Vec::with_capacity(emails.len());
        for ((raw, email), plan) in emails.iter().zip(&plans) {
            outcomes.push(match plan {
                Plan::AlreadyHandled => IngestOutcome::AlreadyHandled,
                Plan::Duplicate(of) => {
                    let existing = match of {
                        Ok(id) => *id,
                        Err(index) => message(emails[*index].0)?.0,
                    };
                    sqlx::query(
                        "UPDATE raw_emails SET state = 'duplicate', reason = $1, message_id = $2, processed_at = $3 WHERE id = $4",
                    )
                    .bind(format!("Message-ID <{}> already stored", email.message_id))
                    .bind(existing)
                    .bind(now)
                    .bind(raw.0)
                    .execute(&mut *tx)
                    .await?;
                    IngestOutcome::Duplicate
                }
                Plan::Add {
                    conversation,
                    opens,
                    reopened,
                    resumed,
                    ..
                } => IngestOutcome::Added {
                    conversation_id: conversation_of(*conversation),
                    message_id: message(*raw)?,
                    new_conversation: *opens,
                    reopened: *reopened,
                    resumed: *resumed,
                },
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Upserts the contacts of the `fresh` emails (one row per address, keeping the last
/// non-empty name, as one email after another would) and returns address → id.
async fn upsert_contacts(
    tx: &mut sqlx::AnyConnection,
    p: Placeholders,
    emails: &[(RawEmailId, IncomingEmail)],
    fresh: &HashSet<i64>,
    now: i64,
) -> Result<HashMap<String, i64>> {
    let mut order: Vec<String> = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for (raw, email) in emails {
        if !fresh.contains(&raw.0) {
            continue;
        }
        let address = email.contact.email.to_lowercase();
        let name = email.contact.name.clone().unwrap_or_default();
        match names.get_mut(&address) {
            Some(kept) => {
                if !name.is_empty() {
                    *kept = name;
                }
            }
            None => {
                order.push(address.clone());
                names.insert(address, name);
            }
        }
    }
    // In address order, so two processors upserting the same contacts on PostgreSQL take
    // their row locks in the same order and cannot deadlock.
    order.sort_unstable();
    let mut ids = HashMap::with_capacity(order.len());
    for chunk in order.chunks(ROWS_PER_STATEMENT * 2) {
        let sql = format!(
            "INSERT INTO contacts (email, name, created_at) VALUES {}
             ON CONFLICT (email) DO UPDATE SET name = CASE WHEN excluded.name <> '' AND contacts.name_edited = 0 THEN excluded.name ELSE contacts.name END
             RETURNING id, email",
            p.values(1, chunk.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for address in chunk {
            query = query
                .bind(address.as_str())
                .bind(names[address].as_str())
                .bind(now);
        }
        for row in query.fetch_all(&mut *tx).await? {
            ids.insert(
                row.try_get::<String, _>("email")?,
                row.try_get::<i64, _>("id")?,
            );
        }
    }
    Ok(ids)
}

/// The stored conversations of `ids`, by id: what threading onto them depends on.
async fn stored_conversations(
    tx: &mut sqlx::AnyConnection,
    p: Placeholders,
    ids: &[i64],
) -> Result<HashMap<i64, Stored>> {
    let mut stored = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT * 4) {
        let sql = format!(
            "SELECT id, status, assignee_id, closed_at, merged_into_id FROM conversations WHERE id IN ({})",
            p.list(1, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *tx).await? {
            stored.insert(
                row.try_get("id")?,
                Stored {
                    status: row.try_get("status")?,
                    assignee: row.try_get("assignee_id")?,
                    closed_at: row.try_get("closed_at")?,
                    merged: row.try_get::<Option<i64>, _>("merged_into_id")?.is_some(),
                },
            );
        }
    }
    Ok(stored)
}

/// Ends a hold or a snooze because the contact wrote: `open` again with its assignee, with a
/// system line saying why.
async fn resume_conversation(
    tx: &mut sqlx::AnyConnection,
    conversation: ConversationId,
    status: &str,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = $1
         WHERE id = $2 AND status IN ('on_hold', 'snoozed')",
    )
    .bind(now)
    .bind(conversation.0)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        // Its snooze ended (on another node) since the batch read it: already open.
        return Ok(());
    }
    let line = if status == ConversationStatus::Snoozed.as_str() {
        "Snooze ended by a new email from the contact"
    } else {
        "Resumed by a new email from the contact"
    };
    insert_system_message(tx, conversation, line).await?;
    Ok(())
}

/// Puts a closed conversation back in the queue, with a system line naming whom it was with.
async fn reopen_conversation(
    tx: &mut sqlx::AnyConnection,
    conversation: ConversationId,
    assignee: Option<i64>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE conversations SET status = 'queued', assignee_id = NULL, closed_at = NULL,
            updated_at = $1, last_message_at = $1, queued_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(conversation.0)
    .execute(&mut *tx)
    .await?;
    let previous = match assignee {
        Some(user) => sqlx::query("SELECT username FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<String, _>("username"))
            .transpose()?
            .map(|u| format!(" (previously with @{u})"))
            .unwrap_or_default(),
        None => String::new(),
    };
    insert_system_message(
        tx,
        conversation,
        &format!("Reopened by a new email from the contact{previous}"),
    )
    .await?;
    Ok(())
}

/// Inserts the conversations the batch opens, queued; their ids in the same order.
async fn open_conversations(
    tx: &mut sqlx::AnyConnection,
    p: Placeholders,
    inbox: InboxId,
    openings: &[Opening],
    now: i64,
) -> Result<Vec<ConversationId>> {
    let mut by_raw: HashMap<i64, i64> = HashMap::with_capacity(openings.len());
    let department: Option<i64> = sqlx::query("SELECT department_id FROM inboxes WHERE id = $1")
        .bind(inbox.0)
        .fetch_one(&mut *tx)
        .await?
        .try_get("department_id")?;
    for chunk in openings.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO conversations (inbox_id, contact_id, subject, follows_id, origin_raw_email_id,
                status, created_at, updated_at, last_message_at, queued_at, department_id)
             VALUES {} RETURNING id, origin_raw_email_id",
            p.values(1, chunk.len(), 11)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for o in chunk {
            query = query
                .bind(inbox.0)
                .bind(o.contact)
                .bind(o.subject.as_str())
                .bind(o.follows)
                .bind(o.raw)
                .bind(ConversationStatus::Queued.as_str())
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(department);
        }
        for row in query.fetch_all(&mut *tx).await? {
            by_raw.insert(row.try_get("origin_raw_email_id")?, row.try_get("id")?);
        }
    }
    openings
        .iter()
        .map(|o| {
            by_raw
                .get(&o.raw)
                .map(|id| ConversationId(*id))
                .ok_or(StoreError::NotFound("conversation"))
        })
        .collect()
}

/// One inbound message to insert.
struct MessageRow<'a> {
    raw: RawEmailId,
    conversation: ConversationId,
    contact: i64,
    reason: String,
    content_hash: &'a str,
    email: &'a IncomingEmail,
}

/// Inserts the inbound messages; raw email id → message id.
async fn insert_messages(
    tx: &mut sqlx::AnyConnection,
    p: Placeholders,
    inbox: InboxId,
    rows: &[MessageRow<'_>],
    now: i64,
) -> Result<HashMap<i64, MessageId>> {
    let mut ids = HashMap::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO messages (conversation_id, inbox_id, kind, author_contact_id, text, html, message_id,
                in_reply_to, refs, from_json, to_json, cc_json, subject, email_date, thread_reason, raw_email_id, created_at,
                content_hash, auth_dkim, auth_spf, auth_dmarc, auth_from_domain, auth_aligned)
             VALUES {} RETURNING id, raw_email_id",
            p.values(1, chunk.len(), 23)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            let e = row.email;
            query = query
                .bind(row.conversation.0)
                .bind(inbox.0)
                .bind(MessageKind::EmailIn.as_str())
                .bind(row.contact)
                .bind(e.text.as_str())
                .bind(e.html.as_deref())
                .bind(e.message_id.as_str())
                .bind(e.in_reply_to.as_deref())
                .bind(to_json(&e.references))
                .bind(e.from.as_ref().map(to_json))
                .bind(to_json(&e.to))
                .bind(to_json(&e.cc))
                .bind(e.subject.as_str())
                .bind(e.date)
                .bind(row.reason.as_str())
                .bind(row.raw.0)
                .bind(now)
                .bind(row.content_hash)
                .bind(e.auth.as_ref().map(|a| a.dkim.as_str()))
                .bind(e.auth.as_ref().map(|a| a.spf.as_str()))
                .bind(e.auth.as_ref().map(|a| a.dmarc.as_str()))
                .bind(e.auth.as_ref().map(|a| a.from_domain.as_str()))
                .bind(e.auth.as_ref().map(|a| i64::from(a.aligned)));
        }
        for row in query.fetch_all(&mut *tx).await? {
            ids.insert(
                row.try_get::<i64, _>("raw_email_id")?,
                MessageId(row.try_get("id")?),
            );
        }
    }
    Ok(ids)
}

/// Stores attachments: each distinct content once in `blobs`, then one row per file.
pub(crate) async fn insert_attachments(
    tx: &mut sqlx::AnyConnection,
    p: Placeholders,
    files: &[(MessageId, &NewAttachment)],
    now: i64,
) -> Result<()> {
    let hashes: Vec<String> = files.iter().map(|(_, a)| sha256_hex(&a.bytes)).collect();
    let mut distinct: Vec<(&str, Blob<'_>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (sha, (_, a)) in hashes.iter().zip(files) {
        if seen.insert(sha) {
            distinct.push((sha, Blob::Borrowed(&a.bytes)));
        }
    }
    put_blobs(tx, p, distinct).await?;
    let rows: Vec<(&(MessageId, &NewAttachment), &String)> = files.iter().zip(&hashes).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO attachments (message_id, filename, content_type, size, sha256, content_id, inline, created_at)
             VALUES {}",
            p.values(1, chunk.len(), 8)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for ((message, a), sha) in chunk {
            query = query
                .bind(message.0)
                .bind(a.filename.as_str())
                .bind(a.content_type.as_str())
                .bind(i64::try_from(a.bytes.len()).unwrap_or(i64::MAX))
                .bind(sha.as_str())
                .bind(a.content_id.as_deref())
                .bind(i64::from(a.inline))
                .bind(now);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Bytes to store as a blob: borrowed, or owned and then moved into the statement, so that the
/// caller's copy is gone while the database driver makes its own (for a large email, one copy
/// fewer held at the peak).
pub(crate) enum Blob<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Blob<'_> {
    fn len(&self) -> usize {
        match self {
            Blob::Borrowed(bytes) => bytes.len(),
            Blob::Owned(bytes) => bytes.len(),
        }
    }
}

/// Stores `(sha256, bytes)` blobs not stored yet, many per statement but at most
/// [`BYTES_PER_STATEMENT`] bytes in one (a larger blob goes alone).
pub(crate) async fn put_blobs(
    tx: &mut sqlx::AnyConnection,
    p: Placeholders,
    blobs: Vec<(&str, Blob<'_>)>,
) -> Result<()> {
    let mut blobs = blobs.into_iter().peekable();
    while let Some(first) = blobs.next() {
        let mut bytes = first.1.len();
        let mut chunk = vec![first];
        while let Some(next) = blobs.next_if(|(_, data)| {
            chunk.len() < ROWS_PER_STATEMENT && bytes + data.len() <= BYTES_PER_STATEMENT
        }) {
            bytes += next.1.len();
            chunk.push(next);
        }
        let sql = format!(
            "INSERT INTO blobs (sha256, size, bytes) VALUES {} ON CONFLICT (sha256) DO NOTHING",
            p.values(1, chunk.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (sha, data) in chunk {
            query = query
                .bind(sha)
                .bind(i64::try_from(data.len()).unwrap_or(i64::MAX));
            query = match data {
                Blob::Borrowed(data) => query.bind(data),
                Blob::Owned(data) => query.bind(data),
            };
        }
        query.execute(&mut *tx).await?;
        if bytes > SHRINK_AFTER {
            // A PostgreSQL connection keeps its send buffer at the largest message it sent,
            // for as long as the pool keeps the connection: give a large email's back.
            sqlx::Connection::shrink_buffers(&mut *tx);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        let pg = Placeholders(Backend::Postgres);
        assert_eq!(pg.values(1, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(pg.values(4, 1, 2), "($4, $5)");
        assert_eq!(pg.list(2, 3), "$2, $3, $4");
        let sqlite = Placeholders(Backend::Sqlite);
        assert_eq!(sqlite.values(4, 2, 2), "(?, ?), (?, ?)");
    }
}
