//! Contacts: the contact center's list and search, a contact's page and name
//! ([`Store::list_contacts`], [`Store::find_contact`], [`Store::rename_contact`]), and their
//! data: everything stored about one contact, exported for them
//! ([`Store::export_contact`]) or deleted at their request ([`Store::delete_contact`]), and the
//! inboxes' retention periods ([`Store::delete_expired_conversations`]), which delete closed
//! conversations the same way.
//!
//! A contact's data is their conversations, each with its messages, files, members, outgoing
//! emails and the raw emails behind its messages, plus the messages they wrote in other
//! contacts' conversations (a colleague in Cc who replied). Bytes are stored once per content
//! (`blobs`) and shared by every file and raw email with that content, so a deletion removes
//! only the blobs that nothing refers to any more.

use std::collections::BTreeSet;

use postdesk_core::access::ListScope;
use postdesk_core::ids::{ContactId, InboxId, RawEmailId};
use sqlx::Row as _;

use crate::batch::Placeholders;
use crate::conversations::{CONVERSATION_SELECT, conversation_from_row};
use crate::lists::{
    BadCursor, Bind, Conditions, ConversationFilter, conditions, contains_pattern, decode_cursor,
    encode_cursor,
};
use crate::records::{
    Contact, ContactExport, ConversationExport, DeletionReport, ExportedRawEmail, InboxDeletion,
    RetentionReport,
};
use crate::{Result, Store};

/// A day in the stored unit of time (ms).
const MS_PER_DAY: i64 = 86_400_000;

/// Ids bound into one statement (well under both databases' bound on parameters).
const IDS_PER_STATEMENT: usize = 400;

/// Expired conversations deleted per transaction: a retention pass over years of mail takes
/// many short turns at the database rather than one that keeps every other writer waiting.
const EXPIRED_PER_TRANSACTION: i64 = 100;

/// The ids `sql` returns (its first column), run once per chunk of `ids` bound where `{ids}`
/// stands.
async fn ids_in(
    conn: &mut sqlx::AnyConnection,
    p: Placeholders,
    sql: &str,
    ids: &BTreeSet<i64>,
) -> Result<BTreeSet<i64>> {
    let mut found = BTreeSet::new();
    let ids: Vec<i64> = ids.iter().copied().collect();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let sql = sql.replace("{ids}", &p.list(1, chunk.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            if let Some(id) = row.try_get::<Option<i64>, _>(0)? {
                found.insert(id);
            }
        }
    }
    Ok(found)
}

/// Runs `sql` once per chunk of `ids` bound where `{ids}` stands; the rows it changed.
async fn execute_in(
    conn: &mut sqlx::AnyConnection,
    p: Placeholders,
    sql: &str,
    ids: &BTreeSet<i64>,
) -> Result<u64> {
    let mut changed = 0;
    let ids: Vec<i64> = ids.iter().copied().collect();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let sql = sql.replace("{ids}", &p.list(1, chunk.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        changed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}

/// The contact's conversations and every message of theirs: those of their conversations
/// and those they wrote in others'.
async fn contact_scope(
    conn: &mut sqlx::AnyConnection,
    contact: ContactId,
) -> Result<(BTreeSet<i64>, BTreeSet<i64>)> {
    let mut conversations = BTreeSet::new();
    for row in sqlx::query("SELECT id FROM conversations WHERE contact_id = $1")
        .bind(contact.0)
        .fetch_all(&mut *conn)
        .await?
    {
        conversations.insert(row.try_get::<i64, _>("id")?);
    }
    let mut elsewhere = BTreeSet::new();
    for row in sqlx::query("SELECT id FROM messages WHERE author_contact_id = $1")
        .bind(contact.0)
        .fetch_all(&mut *conn)
        .await?
    {
        elsewhere.insert(row.try_get::<i64, _>("id")?);
    }
    Ok((conversations, elsewhere))
}

/// The messages of `conversations`, and `also`.
async fn messages_of(
    conn: &mut sqlx::AnyConnection,
    p: Placeholders,
    conversations: &BTreeSet<i64>,
    also: &BTreeSet<i64>,
) -> Result<BTreeSet<i64>> {
    let mut messages = ids_in(
        conn,
        p,
        "SELECT id FROM messages WHERE conversation_id IN ({ids})",
        conversations,
    )
    .await?;
    messages.extend(also);
    Ok(messages)
}

/// The raw emails behind `messages`: those that became them (or were recognised as their
/// duplicates, or were a bounce recorded as one of them), and those they name.
async fn raw_emails_of(
    conn: &mut sqlx::AnyConnection,
    p: Placeholders,
    messages: &BTreeSet<i64>,
) -> Result<BTreeSet<i64>> {
    let mut raws = ids_in(
        conn,
        p,
        "SELECT id FROM raw_emails WHERE message_id IN ({ids})",
        messages,
    )
    .await?;
    raws.extend(
        ids_in(
            conn,
            p,
            "SELECT raw_email_id FROM messages WHERE id IN ({ids}) AND raw_email_id IS NOT NULL",
            messages,
        )
        .await?,
    );
    Ok(raws)
}

/// The sha256 of the blobs `sql` names (its first column) for chunks of `ids`.
async fn blobs_in(
    conn: &mut sqlx::AnyConnection,
    p: Placeholders,
    sql: &str,
    ids: &BTreeSet<i64>,
    into: &mut BTreeSet<String>,
) -> Result<()> {
    let ids: Vec<i64> = ids.iter().copied().collect();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let sql = sql.replace("{ids}", &p.list(1, chunk.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            into.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(())
}

/// Deletes `conversations` with everything in them, and the messages `also` (of other
/// conversations), in the caller's transaction: members, outgoing emails, files, messages,
/// the raw emails behind the messages, then every blob of theirs that nothing else refers to.
/// What still points at a deleted row elsewhere (a follow-up's `follows_id`, a merged
/// conversation's `merged_into_id`, an email sent from a deleted file message) is cleared
/// first, so every foreign key holds on both databases.
async fn delete_all(
    conn: &mut sqlx::AnyConnection,
    p: Placeholders,
    conversations: &BTreeSet<i64>,
    also: &BTreeSet<i64>,
) -> Result<DeletionReport> {
    let messages = messages_of(conn, p, conversations, also).await?;
    let raws = raw_emails_of(conn, p, &messages).await?;
    let mut blobs = BTreeSet::new();
    blobs_in(
        conn,
        p,
        "SELECT DISTINCT sha256 FROM attachments WHERE message_id IN ({ids})",
        &messages,
        &mut blobs,
    )
    .await?;
    blobs_in(
        conn,
        p,
        "SELECT DISTINCT sha256 FROM raw_emails WHERE id IN ({ids})",
        &raws,
        &mut blobs,
    )
    .await?;

    // What refers to the rows to delete, from rows that may stay.
    for (sql, ids) in [
        (
            "UPDATE conversations SET follows_id = NULL WHERE follows_id IN ({ids})",
            conversations,
        ),
        (
            "UPDATE conversations SET merged_into_id = NULL WHERE merged_into_id IN ({ids})",
            conversations,
        ),
        (
            "UPDATE conversations SET origin_raw_email_id = NULL WHERE origin_raw_email_id IN ({ids})",
            &raws,
        ),
        (
            "UPDATE messages SET source_message_id = NULL WHERE source_message_id IN ({ids})",
            &messages,
        ),
        (
            "UPDATE messages SET raw_email_id = NULL WHERE raw_email_id IN ({ids})",
            &raws,
        ),
    ] {
        execute_in(conn, p, sql, ids).await?;
    }

    // Children before parents.
    execute_in(
        conn,
        p,
        "DELETE FROM outbox WHERE message_id IN ({ids})",
        &messages,
    )
    .await?;
    let attachments = execute_in(
        conn,
        p,
        "DELETE FROM attachments WHERE message_id IN ({ids})",
        &messages,
    )
    .await?;
    let deleted_messages = execute_in(
        conn,
        p,
        "DELETE FROM messages WHERE id IN ({ids})",
        &messages,
    )
    .await?;
    let raw_emails =
        execute_in(conn, p, "DELETE FROM raw_emails WHERE id IN ({ids})", &raws).await?;
    execute_in(
        conn,
        p,
        "DELETE FROM conversation_members WHERE conversation_id IN ({ids})",
        conversations,
    )
    .await?;
    let deleted_conversations = execute_in(
        conn,
        p,
        "DELETE FROM conversations WHERE id IN ({ids})",
        conversations,
    )
    .await?;

    // The bytes nothing refers to any more; bytes another file or email shares stay.
    let mut deleted_blobs = 0;
    let blobs: Vec<String> = blobs.into_iter().collect();
    for chunk in blobs.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "DELETE FROM blobs WHERE sha256 IN ({})
               AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.sha256 = blobs.sha256)
               AND NOT EXISTS (SELECT 1 FROM raw_emails r WHERE r.sha256 = blobs.sha256)",
            p.list(1, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for sha in chunk {
            query = query.bind(sha.as_str());
        }
        deleted_blobs += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(DeletionReport {
        conversations: deleted_conversations,
        messages: deleted_messages,
        attachments,
        raw_emails,
        blobs: deleted_blobs,
    })
}

impl Store {
    /// Everything stored about a contact: the contact, each of their conversations with every
    /// message (text, HTML, kind, author, email headers, delivery, files' metadata), the
    /// messages they wrote in other conversations, and the raw emails behind all those
    /// messages, byte for byte. `None` for an unknown contact.
    pub async fn export_contact(&self, id: ContactId) -> Result<Option<ContactExport>> {
        let Some(row) =
            sqlx::query("SELECT id, email, name, created_at FROM contacts WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let contact = Contact {
            id,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
        };
        let created_at: i64 = row.try_get("created_at")?;

        let sql = format!("{CONVERSATION_SELECT} WHERE c.contact_id = $1 ORDER BY c.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        let mut conversations = Vec::with_capacity(rows.len());
        for row in &rows {
            let conversation = conversation_from_row(row)?;
            let messages = self.list_messages(conversation.id).await?;
            conversations.push(ConversationExport {
                conversation,
                messages,
            });
        }

        let p = Placeholders(self.backend);
        let mut conn = self.pool.acquire().await?;
        let (theirs, authored) = contact_scope(&mut conn, id).await?;
        let messages = messages_of(&mut conn, p, &theirs, &authored).await?;
        let raws = raw_emails_of(&mut conn, p, &messages).await?;
        drop(conn);

        let mut messages_elsewhere = Vec::new();
        let in_theirs: BTreeSet<_> = conversations
            .iter()
            .flat_map(|c| c.messages.iter().map(|m| m.id.0))
            .collect();
        for message in authored.difference(&in_theirs) {
            if let Some(m) = self
                .find_message(postdesk_core::ids::MessageId(*message))
                .await?
            {
                messages_elsewhere.push(m);
            }
        }

        let mut raw_emails = Vec::with_capacity(raws.len());
        for raw in raws {
            let Some(row) = sqlx::query(
                "SELECT r.id, r.inbox_id, r.fetched_at, r.sha256, r.size, b.bytes
                 FROM raw_emails r JOIN blobs b ON b.sha256 = r.sha256 WHERE r.id = $1",
            )
            .bind(raw)
            .fetch_optional(&self.pool)
            .await?
            else {
                continue;
            };
            raw_emails.push(ExportedRawEmail {
                id: RawEmailId(row.try_get("id")?),
                inbox_id: InboxId(row.try_get("inbox_id")?),
                fetched_at: row.try_get("fetched_at")?,
                sha256: row.try_get("sha256")?,
                size: row.try_get("size")?,
                bytes: row.try_get("bytes")?,
            });
        }
        Ok(Some(ContactExport {
            contact,
            created_at,
            conversations,
            messages_elsewhere,
            raw_emails,
        }))
    }

    /// Deletes a contact and everything stored about them, in one transaction: their
    /// conversations with every message, file, member and outgoing email, the messages they
    /// wrote in other conversations, the raw emails behind all those messages, the contact,
    /// and the stored bytes nothing else refers to. `None` (and nothing deleted) for an
    /// unknown contact.
    pub async fn delete_contact(&self, id: ContactId) -> Result<Option<DeletionReport>> {
        let p = Placeholders(self.backend);
        let mut tx = self.write_tx().await?;
        if sqlx::query("SELECT id FROM contacts WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let (conversations, authored) = contact_scope(&mut tx, id).await?;
        let report = delete_all(&mut tx, p, &conversations, &authored).await?;
        sqlx::query("DELETE FROM contacts WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(report))
    }

    /// Applies the inboxes' retention periods at `now_ms`: each closed conversation of an
    /// inbox with a period, closed longer ago than that many days, is deleted with its
    /// messages, files, members, outgoing emails, raw emails and the stored bytes nothing else
    /// refers to (as [`Store::delete_contact`] deletes a contact's). Open, queued and
    /// recently closed conversations stay, and so do their contacts (a contact without
    /// conversations is kept). Works a hundred conversations per transaction.
    pub async fn delete_expired_conversations(&self, now_ms: i64) -> Result<RetentionReport> {
        let p = Placeholders(self.backend);
        let inboxes = sqlx::query(
            "SELECT id, retention_days FROM inboxes WHERE retention_days IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut report = RetentionReport::default();
        for row in &inboxes {
            let inbox = InboxId(row.try_get("id")?);
            let days: i64 = row.try_get("retention_days")?;
            let cutoff = now_ms.saturating_sub(days.saturating_mul(MS_PER_DAY));
            let mut deleted = DeletionReport::default();
            loop {
                let mut tx = self.write_tx().await?;
                let mut expired = BTreeSet::new();
                for row in sqlx::query(
                    "SELECT id FROM conversations
                     WHERE inbox_id = $1 AND status = 'closed' AND closed_at IS NOT NULL AND closed_at < $2
                     ORDER BY closed_at, id LIMIT $3",
                )
                .bind(inbox.0)
                .bind(cutoff)
                .bind(EXPIRED_PER_TRANSACTION)
                .fetch_all(&mut *tx)
                .await?
                {
                    expired.insert(row.try_get::<i64, _>("id")?);
                }
                if expired.is_empty() {
                    tx.rollback().await?;
                    break;
                }
                let batch = delete_all(&mut tx, p, &expired, &BTreeSet::new()).await?;
                tx.commit().await?;
                deleted.add(&batch);
                if expired.len() < usize::try_from(EXPIRED_PER_TRANSACTION).unwrap_or(usize::MAX) {
                    break;
                }
            }
            if !deleted.is_empty() {
                report.inboxes.push(InboxDeletion {
                    inbox_id: inbox,
                    retention_days: days,
                    deleted,
                });
            }
        }
        Ok(report)
    }
}

/// Which contacts to list: the contact center's page and search.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Only those whose address or name contains this text (any case).
    pub text: Option<String>,
    /// Only contacts with a conversation the asker may see (the policy's [`ListScope`]), and
    /// only those conversations counted; `None` is every contact.
    pub visible: Option<ListScope>,
    /// At most this many ([`crate::DEFAULT_PAGE`] when not given).
    pub limit: Option<i64>,
    /// Start after this contact (the previous page's [`ContactPage::next_cursor`]).
    pub after: Option<ContactCursor>,
}

/// Where the next page of contacts starts (newest contacts first: just before this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactCursor(pub ContactId);

impl ContactCursor {
    /// The opaque text given to clients.
    #[must_use]
    pub fn encode(&self) -> String {
        encode_cursor("k", &[self.0.0])
    }

    /// Reads what [`ContactCursor::encode`] wrote.
    ///
    /// # Errors
    /// [`BadCursor`] for any other text (a conversation list's cursor included).
    pub fn parse(text: &str) -> Result<Self, BadCursor> {
        match decode_cursor(text)? {
            (tag, numbers) if tag == "k" && numbers.len() == 1 => Ok(Self(ContactId(numbers[0]))),
            _ => Err(BadCursor(text.chars().take(100).collect())),
        }
    }
}

/// A contact as the contact center lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSummary {
    /// The contact.
    pub contact: Contact,
    /// When they first wrote (ms).
    pub created_at: i64,
    /// How many of their conversations the asker may see.
    pub conversations: i64,
}

/// One page of contacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPage {
    /// Newest contacts first.
    pub contacts: Vec<ContactSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<ContactCursor>,
}

/// The longest name a contact may be given (characters).
pub const MAX_CONTACT_NAME_CHARS: usize = 200;

/// The asker's visibility of conversations `c` (none for everyone), with room for more binds.
fn visibility_of(visible: Option<&ListScope>) -> Conditions {
    conditions(
        &ConversationFilter {
            visible: visible.cloned(),
            ..ConversationFilter::default()
        },
        false,
    )
}

const CONTACT_SUMMARY_SELECT: &str = "SELECT k.id, k.email, k.name, k.created_at,
    (SELECT COUNT(*) FROM conversations c WHERE c.contact_id = k.id AND {visible}) AS conversations
    FROM contacts k";

/// A contact from a row of `contacts` (`id`, `email`, `name`).
fn contact_from_row(row: &sqlx::any::AnyRow) -> Result<Contact> {
    Ok(Contact {
        id: ContactId(row.try_get("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
    })
}

fn contact_summary_from_row(row: &sqlx::any::AnyRow) -> Result<ContactSummary> {
    Ok(ContactSummary {
        contact: contact_from_row(row)?,
        created_at: row.try_get("created_at")?,
        conversations: row.try_get("conversations")?,
    })
}

impl Store {
    /// One page of contacts matching `filter`, newest first, each with how many of their
    /// conversations the asker may see.
    pub async fn list_contacts(&self, filter: &ContactFilter) -> Result<ContactPage> {
        // The binds of the visibility, then those of the contact's own conditions.
        let mut w = visibility_of(filter.visible.as_ref());
        let visible = w.sql();
        let mut conditions = Vec::new();
        if w.has_conditions() {
            conditions.push(format!(
                "k.id IN (SELECT c.contact_id FROM conversations c WHERE {visible})"
            ));
        }
        if let Some(text) = &filter.text {
            let p = w.bind(Bind::Text(contains_pattern(text)));
            conditions.push(format!(
                "(LOWER(k.email) LIKE {p} OR LOWER(k.name) LIKE {p})"
            ));
        }
        if let Some(ContactCursor(after)) = filter.after {
            let p = w.bind(Bind::Int(after.0));
            conditions.push(format!("k.id < {p}"));
        }
        conditions.push("1 = 1".to_owned());
        let limit = filter.limit.unwrap_or(crate::DEFAULT_PAGE).max(1);
        let p = w.bind(Bind::Int(limit + 1));
        let sql = format!(
            "{} WHERE {} ORDER BY k.id DESC LIMIT {p}",
            CONTACT_SUMMARY_SELECT.replace("{visible}", &visible),
            conditions.join(" AND "),
        );
        let rows = w.query(&sql).fetch_all(&self.pool).await?;
        let mut contacts = rows
            .iter()
            .map(contact_summary_from_row)
            .collect::<Result<Vec<_>>>()?;
        let page = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = (contacts.len() > page)
            .then(|| contacts.get(page - 1).map(|c| ContactCursor(c.contact.id)))
            .flatten();
        contacts.truncate(page);
        Ok(ContactPage {
            contacts,
            next_cursor,
        })
    }

    /// A contact with how many of their conversations the asker may see (`visible`; `None`:
    /// every one). `None` when there is no such contact, or when the asker may see none of
    /// their conversations (a contact is known to an agent only through a conversation).
    pub async fn find_contact(
        &self,
        id: ContactId,
        visible: Option<&ListScope>,
    ) -> Result<Option<ContactSummary>> {
        let mut w = visibility_of(visible);
        let visible_sql = w.sql();
        let restricted = w.has_conditions();
        let p = w.bind(Bind::Int(id.0));
        let sql = format!(
            "{} WHERE k.id = {p}",
            CONTACT_SUMMARY_SELECT.replace("{visible}", &visible_sql)
        );
        let Some(row) = w.query(&sql).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let found = contact_summary_from_row(&row)?;
        Ok((!restricted || found.conversations > 0).then_some(found))
    }

    /// Gives a contact a name, which their later emails' display names no longer replace.
    /// `None` for an unknown contact.
    pub async fn rename_contact(&self, id: ContactId, name: &str) -> Result<Option<Contact>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE contacts SET name = $1, name_edited = 1 WHERE id = $2 RETURNING id, email, name",
        )
        .bind(name)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(contact_from_row).transpose()
    }
}
