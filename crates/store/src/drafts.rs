//! Drafts: the reply an agent is writing in a conversation, kept per agent and conversation
//! (migration 0016) so that it survives a reload or another device. Never shown to anyone
//! else, never sent by itself; deleted with its conversation (the foreign key cascades).

use postdesk_core::ids::{ConversationId, MessageId, UserId};
use sqlx::Row as _;

use crate::{Result, Store, from_json, now_ms, to_json};

/// What a draft holds, as the composer had it. Nothing here is checked beyond the caller's
/// length limits: it is not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftContent {
    /// The text written so far.
    pub text: String,
    /// How it would be sent: `email` or `internal`.
    pub via: String,
    /// The To addresses as typed; `None`: the default recipients.
    pub to: Option<Vec<String>>,
    /// The Cc addresses as typed; `None`: the default.
    pub cc: Option<Vec<String>>,
    /// The Bcc addresses as typed; `None`: the default (none).
    pub bcc: Option<Vec<String>>,
    /// The email of the conversation it answers, when chosen.
    pub in_reply_to_message_id: Option<MessageId>,
    /// `text` or `markdown`.
    pub format: String,
}

/// A stored draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// What it holds.
    pub content: DraftContent,
    /// Last saved (ms).
    pub updated_at: i64,
}

fn addresses_json(list: Option<&Vec<String>>) -> Option<String> {
    list.map(to_json)
}

fn addresses_of(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<Vec<String>>> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| from_json(&text))
        .transpose()
}

impl Store {
    /// Saves `user`'s draft in `conversation`, replacing the one before.
    pub async fn save_draft(
        &self,
        user: UserId,
        conversation: ConversationId,
        content: &DraftContent,
    ) -> Result<Draft> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO drafts (user_id, conversation_id, text, via, to_json, cc_json, bcc_json,
                 in_reply_to_message_id, format, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (user_id, conversation_id) DO UPDATE SET
                 text = excluded.text, via = excluded.via, to_json = excluded.to_json,
                 cc_json = excluded.cc_json, bcc_json = excluded.bcc_json,
                 in_reply_to_message_id = excluded.in_reply_to_message_id,
                 format = excluded.format, updated_at = excluded.updated_at",
        )
        .bind(user.0)
        .bind(conversation.0)
        .bind(&content.text)
        .bind(&content.via)
        .bind(addresses_json(content.to.as_ref()))
        .bind(addresses_json(content.cc.as_ref()))
        .bind(addresses_json(content.bcc.as_ref()))
        .bind(content.in_reply_to_message_id.map(|m| m.0))
        .bind(&content.format)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Draft {
            content: content.clone(),
            updated_at: now,
        })
    }

    /// `user`'s draft in `conversation`, if they have one.
    pub async fn find_draft(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<Option<Draft>> {
        let row = sqlx::query(
            "SELECT text, via, to_json, cc_json, bcc_json, in_reply_to_message_id, format,
                 updated_at
             FROM drafts WHERE user_id = $1 AND conversation_id = $2",
        )
        .bind(user.0)
        .bind(conversation.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Draft {
            content: DraftContent {
                text: row.try_get("text")?,
                via: row.try_get("via")?,
                to: addresses_of(&row, "to_json")?,
                cc: addresses_of(&row, "cc_json")?,
                bcc: addresses_of(&row, "bcc_json")?,
                in_reply_to_message_id: row
                    .try_get::<Option<i64>, _>("in_reply_to_message_id")?
                    .map(MessageId),
                format: row.try_get("format")?,
            },
            updated_at: row.try_get("updated_at")?,
        }))
    }

    /// Deletes `user`'s draft in `conversation` (one statement on the primary key: cheap
    /// enough to call after every message posted); false when there was none.
    pub async fn delete_draft(&self, user: UserId, conversation: ConversationId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM drafts WHERE user_id = $1 AND conversation_id = $2")
            .bind(user.0)
            .bind(conversation.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
