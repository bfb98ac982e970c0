//! Conversations: Queued Chats, Take it!, members, messages, uploads and close.

use std::collections::HashMap;

use postdesk_core::access::{ConversationScope, ListScope};
use postdesk_core::ids::{
    AttachmentId, ContactId, ConversationId, DepartmentId, InboxId, MessageId, UserId,
};
use postdesk_core::model::{
    AuthResult, ConversationStatus, DeliveryStatus, MessageKind, SenderAuth,
};
use sqlx::Row as _;

use crate::batch::{Placeholders, insert_attachments};
use crate::ingest::{NewAttachment, insert_system_message};
use crate::records::{
    Attachment, Author, Contact, Conversation, Delivery, EmailMeta, Message, User,
};
use crate::{Result, Store, StoreError, from_json, now_ms};

/// Why Take it! did not give the conversation to the caller.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    /// Somebody else was faster, or it is not in the queue.
    #[error("this conversation is already taken by {by}")]
    AlreadyTaken {
        /// Who has it (username), or its status when nobody does.
        by: String,
    },
    /// A store failure (including not found).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for TakeError {
    fn from(e: sqlx::Error) -> Self {
        TakeError::Store(e.into())
    }
}

pub(crate) const CONVERSATION_SELECT: &str = "SELECT c.id, c.inbox_id, c.subject, c.status, c.assignee_id, c.created_at,
        c.updated_at, c.last_message_at, c.closed_at, c.follows_id, c.tags, c.department_id, c.queued_at, c.snoozed_until, c.merged_into_id, k.id AS contact_id, k.email AS contact_email, k.name AS contact_name,
        CAST(CASE WHEN EXISTS (SELECT 1 FROM messages d WHERE d.conversation_id = c.id AND d.auth_dmarc = 'fail')
            THEN 1 ELSE 0 END AS BIGINT) AS dmarc_failed
    FROM conversations c JOIN contacts k ON k.id = c.contact_id";

pub(crate) fn conversation_from_row(row: &sqlx::any::AnyRow) -> Result<Conversation> {
    let status: String = row.try_get("status")?;
    Ok(Conversation {
        id: ConversationId(row.try_get("id")?),
        inbox_id: InboxId(row.try_get("inbox_id")?),
        subject: row.try_get("subject")?,
        status: ConversationStatus::parse(&status)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        assignee_id: row.try_get::<Option<i64>, _>("assignee_id")?.map(UserId),
        department_id: row
            .try_get::<Option<i64>, _>("department_id")?
            .map(DepartmentId),
        contact: Contact {
            id: ContactId(row.try_get("contact_id")?),
            email: row.try_get("contact_email")?,
            name: row.try_get("contact_name")?,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_message_at: row.try_get("last_message_at")?,
        closed_at: row.try_get("closed_at")?,
        follows_id: row
            .try_get::<Option<i64>, _>("follows_id")?
            .map(ConversationId),
        dmarc_failed: row.try_get::<i64, _>("dmarc_failed")? != 0,
        tags: from_json(&row.try_get::<String, _>("tags")?)?,
        queued_at: row.try_get("queued_at")?,
        snoozed_until: row.try_get("snoozed_until")?,
        merged_into_id: row
            .try_get::<Option<i64>, _>("merged_into_id")?
            .map(ConversationId),
    })
}

/// The sender-authentication verdicts stored with an inbound email, if it was checked.
fn sender_auth_from_row(row: &sqlx::any::AnyRow) -> Result<Option<SenderAuth>> {
    let result = |column: &str| -> Result<Option<AuthResult>> {
        row.try_get::<Option<String>, _>(column)?
            .map(|text| AuthResult::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    };
    let (Some(dkim), Some(spf), Some(dmarc)) = (
        result("auth_dkim")?,
        result("auth_spf")?,
        result("auth_dmarc")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(SenderAuth {
        dkim,
        spf,
        dmarc,
        from_domain: row
            .try_get::<Option<String>, _>("auth_from_domain")?
            .unwrap_or_default(),
        aligned: row.try_get::<Option<i64>, _>("auth_aligned")?.unwrap_or(0) != 0,
    }))
}

fn attachment_from_row(row: &sqlx::any::AnyRow) -> Result<Attachment> {
    Ok(Attachment {
        id: AttachmentId(row.try_get("id")?),
        message_id: MessageId(row.try_get("message_id")?),
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        content_id: row.try_get("content_id")?,
        inline: row.try_get::<i64, _>("inline")? != 0,
    })
}

fn message_from_row(row: &sqlx::any::AnyRow) -> Result<Message> {
    let kind: String = row.try_get("kind")?;
    let kind = MessageKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let author = if let Some(id) = row.try_get::<Option<i64>, _>("author_user_id")? {
        Author::User {
            id: UserId(id),
            username: row
                .try_get::<Option<String>, _>("user_username")?
                .unwrap_or_default(),
            name: row
                .try_get::<Option<String>, _>("user_name")?
                .unwrap_or_default(),
        }
    } else if let Some(id) = row.try_get::<Option<i64>, _>("author_contact_id")? {
        Author::Contact {
            id: ContactId(id),
            email: row
                .try_get::<Option<String>, _>("contact_email")?
                .unwrap_or_default(),
            name: row
                .try_get::<Option<String>, _>("contact_name")?
                .unwrap_or_default(),
        }
    } else {
        Author::System
    };
    let email = match row.try_get::<Option<String>, _>("message_id")? {
        Some(message_id) if matches!(kind, MessageKind::EmailIn | MessageKind::EmailOut) => {
            let delivery = row
                .try_get::<Option<String>, _>("delivery_status")?
                .map(|s| {
                    Ok::<_, StoreError>(Delivery {
                        status: DeliveryStatus::parse(&s)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        error: row.try_get("delivery_error")?,
                    })
                })
                .transpose()?;
            let from: Option<String> = row.try_get("from_json")?;
            Some(EmailMeta {
                message_id,
                subject: row
                    .try_get::<Option<String>, _>("subject")?
                    .unwrap_or_default(),
                from: from.as_deref().map(from_json).transpose()?,
                to: from_json(&row.try_get::<String, _>("to_json")?)?,
                cc: from_json(&row.try_get::<String, _>("cc_json")?)?,
                bcc: from_json(&row.try_get::<String, _>("bcc_json")?)?,
                in_reply_to: row.try_get("in_reply_to")?,
                references: from_json(&row.try_get::<String, _>("refs")?)?,
                date: row.try_get("email_date")?,
                thread_reason: row.try_get("thread_reason")?,
                delivery,
                auth: sender_auth_from_row(row)?,
            })
        }
        _ => None,
    };
    Ok(Message {
        id: MessageId(row.try_get("id")?),
        conversation_id: ConversationId(row.try_get("conversation_id")?),
        kind,
        author,
        text: row.try_get("text")?,
        html: row.try_get("html")?,
        email,
        attachments: Vec::new(),
        source_message_id: row
            .try_get::<Option<i64>, _>("source_message_id")?
            .map(MessageId),
        created_at: row.try_get("created_at")?,
    })
}

/// The condition that a conversation `c` (of inbox `i`) is one the asker may see: the
/// policy's [`ListScope`] as SQL. `$scope` is 0 for every conversation, 1 for a manager's
/// departments, 2 for an agent's queue; `$asker` is who asks (see [`scope_params`]).
pub(crate) fn visible_sql(scope: usize, asker: usize) -> String {
    format!(
        "(${scope} = 0
          OR c.assignee_id = ${asker}
          OR EXISTS (SELECT 1 FROM conversation_members m WHERE m.conversation_id = c.id AND m.user_id = ${asker})
          OR ((c.department_id IS NULL
               OR c.department_id IN (SELECT d.department_id FROM department_members d WHERE d.user_id = ${asker}))
              AND (${scope} = 1 OR c.status = 'queued')))"
    )
}

/// The parameters of [`visible_sql`] for a scope (`None`: every conversation).
pub(crate) fn scope_params(visible: Option<&ListScope>) -> (i64, i64) {
    match visible {
        None | Some(ListScope::All) => (0, 0),
        Some(ListScope::Departments(user)) => (1, user.0),
        Some(ListScope::QueueAndMine(user)) => (2, user.0),
    }
}

const MESSAGE_SELECT: &str = "SELECT m.*, u.username AS user_username, u.name AS user_name,
        k.email AS contact_email, k.name AS contact_name
    FROM messages m
    LEFT JOIN users u ON u.id = m.author_user_id
    LEFT JOIN contacts k ON k.id = m.author_contact_id";

impl Store {
    /// What access to a conversation depends on: status, department, assignee, invited.
    pub async fn conversation_scope(
        &self,
        id: ConversationId,
    ) -> Result<Option<ConversationScope>> {
        let Some(row) = sqlx::query(
            "SELECT c.status, c.assignee_id, c.department_id FROM conversations c WHERE c.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let status: String = row.try_get("status")?;
        let invited = sqlx::query(
            "SELECT user_id FROM conversation_members WHERE conversation_id = $1 ORDER BY user_id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok(UserId(r.try_get("user_id")?)))
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(ConversationScope {
            status: ConversationStatus::parse(&status)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            department: row
                .try_get::<Option<i64>, _>("department_id")?
                .map(DepartmentId),
            assignee: row.try_get::<Option<i64>, _>("assignee_id")?.map(UserId),
            invited,
        }))
    }

    /// The conversation a message is in.
    pub async fn conversation_of_message(&self, id: MessageId) -> Result<Option<ConversationId>> {
        sqlx::query("SELECT conversation_id FROM messages WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Ok(ConversationId(r.try_get("conversation_id")?)))
            .transpose()
    }

    /// The conversation an attachment is in.
    pub async fn conversation_of_attachment(
        &self,
        id: AttachmentId,
    ) -> Result<Option<ConversationId>> {
        sqlx::query(
            "SELECT m.conversation_id FROM attachments a JOIN messages m ON m.id = a.message_id
             WHERE a.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| Ok(ConversationId(r.try_get("conversation_id")?)))
        .transpose()
    }

    /// A conversation by id.
    pub async fn find_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let sql = format!("{CONVERSATION_SELECT} WHERE c.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    pub(crate) async fn require_conversation(&self, id: ConversationId) -> Result<Conversation> {
        self.find_conversation(id)
            .await?
            .ok_or(StoreError::NotFound("conversation"))
    }

    /// Take it!: gives a queued conversation to `user`. Exactly one of many concurrent callers
    /// wins: the update only matches while the conversation is still queued.
    pub async fn take_conversation(
        &self,
        id: ConversationId,
        user: &User,
    ) -> Result<Conversation, TakeError> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        if !assign_if_queued(&mut tx, id, user.id, now).await? {
            drop(tx);
            let current = self.require_conversation(id).await?;
            let by = match current.assignee_id {
                Some(assignee) => self.find_user(assignee).await?.map_or_else(
                    || format!("user {assignee}"),
                    |u| format!("@{}", u.username),
                ),
                None => format!("nobody (it is {})", current.status),
            };
            return Err(TakeError::AlreadyTaken { by });
        }
        // The assignee is a member by being the assignee (see `is_member`).
        insert_system_message(&mut tx, id, &format!("Taken by @{}", user.username)).await?;
        tx.commit().await?;
        Ok(self.require_conversation(id).await?)
    }

    /// Whether `user` is the assignee or an invited member.
    pub async fn is_member(&self, id: ConversationId, user: UserId) -> Result<bool> {
        Ok(self
            .conversation_scope(id)
            .await?
            .is_some_and(|scope| scope.is_member(user)))
    }

    /// Adds `user` to a conversation on behalf of `by` (/invite). Returns the system message,
    /// or `None` when the user was already a member.
    pub async fn add_member(
        &self,
        id: ConversationId,
        user: &User,
        by: &User,
    ) -> Result<Option<MessageId>> {
        if self.is_member(id, user.id).await? {
            return Ok(None);
        }
        let mut tx = self.write_tx().await?;
        if !add_member_tx(&mut tx, id, user.id, by.id).await? {
            return Ok(None);
        }
        let line = format!("@{} invited @{}", by.username, user.username);
        let message = insert_system_message(&mut tx, id, &line).await?;
        tx.commit().await?;
        Ok(Some(message))
    }

    /// Adds an internal message (the contact never sees it).
    pub async fn add_internal_message(
        &self,
        id: ConversationId,
        author: UserId,
        text: &str,
    ) -> Result<Message> {
        self.add_agent_message(id, author, text, None).await
    }

    /// Adds an internal message carrying an uploaded file.
    pub async fn add_upload(
        &self,
        id: ConversationId,
        author: UserId,
        file: &NewAttachment,
    ) -> Result<Message> {
        self.add_agent_message(id, author, "", Some(file)).await
    }

    async fn add_agent_message(
        &self,
        id: ConversationId,
        author: UserId,
        text: &str,
        file: Option<&NewAttachment>,
    ) -> Result<Message> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO messages (conversation_id, inbox_id, kind, author_user_id, text, created_at)
             SELECT id, inbox_id, 'internal', $1, $2, $3 FROM conversations WHERE id = $4
             RETURNING id",
        )
        .bind(author.0)
        .bind(text)
        .bind(now)
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("conversation"))?;
        let message = MessageId(row.try_get("id")?);
        if let Some(file) = file {
            insert_attachments(&mut tx, Placeholders(self.backend), &[(message, file)], now)
                .await?;
        }
        touch_conversation(&mut tx, id, now).await?;
        tx.commit().await?;
        self.find_message(message)
            .await?
            .ok_or(StoreError::NotFound("message"))
    }

    /// Adds a system line ("Closed by …").
    pub async fn add_system_message(&self, id: ConversationId, text: &str) -> Result<MessageId> {
        let mut tx = self.write_tx().await?;
        let message = insert_system_message(&mut tx, id, text).await?;
        tx.commit().await?;
        Ok(message)
    }

    /// Every message of a conversation with its attachments, oldest first. Message ids are
    /// one sequence across all conversations, given as messages are stored, so id order is
    /// the order they came in, also after a merge brought another conversation's messages in.
    pub async fn list_messages(&self, id: ConversationId) -> Result<Vec<Message>> {
        let sql = format!("{MESSAGE_SELECT} WHERE m.conversation_id = $1 ORDER BY m.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        let mut messages = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT a.* FROM attachments a JOIN messages m ON m.id = a.message_id
             WHERE m.conversation_id = $1 ORDER BY a.id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        let mut by_message: HashMap<MessageId, Vec<Attachment>> = HashMap::new();
        for row in &rows {
            let a = attachment_from_row(row)?;
            by_message.entry(a.message_id).or_default().push(a);
        }
        for m in &mut messages {
            m.attachments = by_message.remove(&m.id).unwrap_or_default();
        }
        Ok(messages)
    }

    /// One message with its attachments.
    pub async fn find_message(&self, id: MessageId) -> Result<Option<Message>> {
        let sql = format!("{MESSAGE_SELECT} WHERE m.id = $1");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut message = message_from_row(&row)?;
        let rows = sqlx::query("SELECT * FROM attachments WHERE message_id = $1 ORDER BY id")
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        message.attachments = rows
            .iter()
            .map(attachment_from_row)
            .collect::<Result<_>>()?;
        Ok(Some(message))
    }

    /// An attachment, the conversation it is in, and its bytes.
    pub async fn find_attachment(
        &self,
        id: AttachmentId,
    ) -> Result<Option<(Attachment, ConversationId, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT a.*, m.conversation_id, b.bytes FROM attachments a
             JOIN messages m ON m.id = a.message_id JOIN blobs b ON b.sha256 = a.sha256
             WHERE a.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok((
                attachment_from_row(&row)?,
                ConversationId(row.try_get("conversation_id")?),
                row.try_get("bytes")?,
            ))
        })
        .transpose()
    }

    /// Closes a conversation, with an optional comment in the system line.
    pub async fn close_conversation(
        &self,
        id: ConversationId,
        by: &User,
        comment: Option<&str>,
    ) -> Result<Conversation> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE conversations SET status = 'closed', closed_at = $1, updated_at = $1 WHERE id = $2 AND status <> 'closed'",
        )
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            let line = match comment.map(str::trim).filter(|c| !c.is_empty()) {
                Some(comment) => format!("Closed by @{}: {comment}", by.username),
                None => format!("Closed by @{}", by.username),
            };
            insert_system_message(&mut tx, id, &line).await?;
        }
        tx.commit().await?;
        self.require_conversation(id).await
    }

    /// Reopen: a closed conversation goes back to Chats in Progress of `by`, who becomes its
    /// assignee. `None` when it was not closed (someone else reopened it first) or was
    /// merged into another (which holds its messages).
    pub async fn reopen_conversation(
        &self,
        id: ConversationId,
        by: &User,
    ) -> Result<Option<Conversation>> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE conversations SET status = 'open', assignee_id = $1, closed_at = NULL, updated_at = $2
             WHERE id = $3 AND status = 'closed' AND merged_into_id IS NULL",
        )
        .bind(by.id.0)
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        insert_system_message(&mut tx, id, &format!("Reopened by @{}", by.username)).await?;
        tx.commit().await?;
        Ok(Some(self.require_conversation(id).await?))
    }
}

/// Gives a conversation to `user` (status open) if it is still queued: the one rule that
/// makes Take it! and routing each win a conversation at most once. False when it was not.
pub(crate) async fn assign_if_queued(
    tx: &mut sqlx::AnyConnection,
    id: ConversationId,
    user: UserId,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE conversations SET status = 'open', assignee_id = $1, updated_at = $2
         WHERE id = $3 AND status = 'queued'",
    )
    .bind(user.0)
    .bind(now)
    .bind(id.0)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn touch_conversation(
    tx: &mut sqlx::AnyConnection,
    id: ConversationId,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE conversations SET updated_at = $1, last_message_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Adds a member; false when already one.
async fn add_member_tx(
    tx: &mut sqlx::AnyConnection,
    id: ConversationId,
    user: UserId,
    by: UserId,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO conversation_members (conversation_id, user_id, added_by, added_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (conversation_id, user_id) DO NOTHING",
    )
    .bind(id.0)
    .bind(user.0)
    .bind(by.0)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() > 0)
}
