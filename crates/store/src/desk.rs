//! The team desk's actions on a conversation: Transfer (to an agent or to a department's
//! queue), On Hold and Resume, Snooze (and the wake-ups when a snooze ends), and Merge.
//!
//! Each action is one transaction whose `UPDATE` names the statuses it starts from, so of two
//! people acting at once the second finds the conversation changed and gets a
//! [`DeskError::Conflict`] in words, never a half-done action. Each records what happened as a
//! system line in the product's words ("Transferred by @ann to @bob: …").

use postdesk_core::access::Actor;
use postdesk_core::ids::{ConversationId, DepartmentId, MessageId, UserId};
use postdesk_core::model::{ConversationStatus, Role};
use sqlx::Row as _;

use crate::ingest::insert_system_message;
use crate::records::{Conversation, User};
use crate::{Result, Store, StoreError, from_json, now_ms, to_json};

/// The furthest ahead a snooze may end: a year.
pub const MAX_SNOOZE_MS: i64 = 365 * 24 * 3_600_000;

/// How deep a chain of merges is followed (a merged conversation cannot be merged into, so
/// a chain only grows when a survivor is merged in turn; this bounds a corrupt cycle).
const MAX_MERGE_CHAIN: usize = 64;

/// Why a desk action was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The request cannot be done as asked (unknown or unsuitable target, bad time): 422.
    #[error("{0}")]
    Invalid(String),
    /// The conversation's status does not allow it (any more): 409.
    #[error("{0}")]
    Conflict(String),
    /// A store failure (including the conversation not found).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DeskError {
    fn from(e: sqlx::Error) -> Self {
        DeskError::Store(e.into())
    }
}

/// Where a transfer hands a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferTarget {
    /// To an agent, who becomes its assignee (status `open`).
    Agent(UserId),
    /// To a department's queue (status `queued`, no assignee).
    Department(DepartmentId),
}

/// What a transfer did.
#[derive(Debug, Clone)]
pub struct Transferred {
    /// The conversation as it is now.
    pub conversation: Conversation,
    /// Who had it before (no longer a member unless invited).
    pub previous_assignee: Option<UserId>,
    /// Where it went.
    pub to: TransferTarget,
}

/// A change of whether a conversation waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// On Hold: an `open` conversation waits, out of Chats in Progress, with its assignee.
    Hold,
    /// Resume: a conversation on hold (or snoozed) is `open` again with the same assignee.
    Resume,
    /// Snooze until `until` (ms) or until the contact writes, whichever comes first; then it
    /// is `open` again with the same assignee. From `open` or on hold; a snoozed
    /// conversation may be snoozed again to another time.
    Snooze {
        /// When the snooze ends (ms).
        until: i64,
    },
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged conversation, now closed with `merged_into_id` set.
    pub merged: Conversation,
    /// The survivor, holding both conversations' messages.
    pub into: Conversation,
}

/// A conversation whose snooze ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Woken {
    /// The conversation, `open` again with its assignee.
    pub conversation_id: ConversationId,
    /// The "Snooze ended" line.
    pub message_id: MessageId,
}

/// A status as the words of a refusal ("it is on hold").
fn status_words(status: ConversationStatus) -> &'static str {
    match status {
        ConversationStatus::Queued => "still in Queued Chats",
        ConversationStatus::Open => "in Chats in Progress",
        ConversationStatus::OnHold => "on hold",
        ConversationStatus::Snoozed => "snoozed",
        ConversationStatus::Closed => "closed",
    }
}

/// A stored time (ms) as the minute it is in, UTC, for system lines.
fn minute_utc(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// `line` with `: comment` appended when there is a comment.
fn with_comment(line: String, comment: Option<&str>) -> String {
    match comment.map(str::trim).filter(|c| !c.is_empty()) {
        Some(comment) => format!("{line}: {comment}"),
        None => line,
    }
}

impl Store {
    /// Transfer: hands a conversation to an agent (they become the assignee, status `open`)
    /// or to a department's queue (status `queued`, no assignee, that department, queued
    /// now). The previous assignee stops being a member unless they were invited. A system
    /// line records who, to whom and why.
    ///
    /// # Errors
    /// [`DeskError::Invalid`] for an unknown, deactivated or unsuitable agent (one who may
    /// not see the conversation's department), an unknown department, or a transfer to where
    /// it already is; [`DeskError::Conflict`] when it is closed (or was closed meanwhile).
    pub async fn transfer_conversation(
        &self,
        id: ConversationId,
        by: &User,
        to: TransferTarget,
        comment: Option<&str>,
    ) -> Result<Transferred, DeskError> {
        let current = self.require_conversation(id).await?;
        let now = now_ms();
        let (line, sql, target) = match to {
            TransferTarget::Agent(user) => {
                let agent = self.transfer_agent(&current, user).await?;
                (
                    format!("Transferred by @{} to @{}", by.username, agent.username),
                    "UPDATE conversations SET status = 'open', assignee_id = $1, snoozed_until = NULL,
                        updated_at = $2
                     WHERE id = $3 AND status <> 'closed' AND merged_into_id IS NULL",
                    user.0,
                )
            }
            TransferTarget::Department(department) => {
                let name = self.transfer_department(&current, department).await?;
                (
                    format!("Transferred by @{} to the {name} queue", by.username),
                    "UPDATE conversations SET status = 'queued', assignee_id = NULL, snoozed_until = NULL,
                        department_id = $1, queued_at = $2, updated_at = $2
                     WHERE id = $3 AND status <> 'closed' AND merged_into_id IS NULL",
                    department.0,
                )
            }
        };
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(sql)
            .bind(target)
            .bind(now)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DeskError::Conflict(
                "This conversation was closed meanwhile: Reopen it to transfer it".into(),
            ));
        }
        insert_system_message(&mut tx, id, &with_comment(line, comment)).await?;
        tx.commit().await?;
        Ok(Transferred {
            conversation: self.require_conversation(id).await?,
            previous_assignee: current.assignee_id,
            to,
        })
    }

    /// The agent a conversation may be transferred to: active, allowed to see its
    /// department, and not already its assignee.
    async fn transfer_agent(&self, c: &Conversation, user: UserId) -> Result<User, DeskError> {
        let agent = self
            .find_user(user)
            .await?
            .ok_or_else(|| DeskError::Invalid(format!("There is no user #{user}")))?;
        if !agent.active {
            return Err(DeskError::Invalid(format!(
                "@{} is deactivated: choose an active agent",
                agent.username
            )));
        }
        if c.assignee_id == Some(user) && c.status != ConversationStatus::Queued {
            return Err(DeskError::Invalid(format!(
                "This conversation is already with @{}",
                agent.username
            )));
        }
        let actor = Actor {
            id: agent.id,
            roles: agent.roles.clone(),
            departments: self.departments_of(agent.id).await?,
        };
        if !(actor.is(Role::Admin) || actor.covers(c.department_id)) {
            let department = match c.department_id {
                Some(d) => self.department_name(d).await?,
                None => String::new(),
            };
            return Err(DeskError::Invalid(format!(
                "@{} is not in the {department} department, so cannot see this conversation: add them to it, or transfer it to a queue they are in",
                agent.username
            )));
        }
        Ok(agent)
    }

    /// The name of the department a conversation may be transferred to; refused when it is
    /// already waiting in that queue.
    async fn transfer_department(
        &self,
        c: &Conversation,
        department: DepartmentId,
    ) -> Result<String, DeskError> {
        let name = self.department_name(department).await?;
        if c.status == ConversationStatus::Queued && c.department_id == Some(department) {
            return Err(DeskError::Invalid(format!(
                "This conversation is already in the {name} queue"
            )));
        }
        Ok(name)
    }

    async fn department_name(&self, id: DepartmentId) -> Result<String, DeskError> {
        sqlx::query("SELECT name FROM departments WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get::<String, _>("name"))
            .transpose()?
            .ok_or_else(|| DeskError::Invalid(format!("There is no department #{id}")))
    }

    /// On Hold, Resume or Snooze (see [`Waiting`]), with its system line ("Put on hold by
    /// @ann", "Resumed by @ann", "Snoozed by @ann until …").
    ///
    /// # Errors
    /// [`DeskError::Conflict`] when the conversation's status does not allow the change;
    /// [`DeskError::Invalid`] for a snooze that does not end in the future or ends more than
    /// [`MAX_SNOOZE_MS`] ahead.
    pub async fn set_waiting(
        &self,
        id: ConversationId,
        by: &User,
        change: Waiting,
    ) -> Result<Conversation, DeskError> {
        use ConversationStatus::{OnHold, Open, Snoozed};
        let who = &by.username;
        match change {
            Waiting::Hold => {
                self.change_status(
                    id,
                    "status = 'on_hold'",
                    &[Open],
                    &format!("Put on hold by @{who}"),
                    "Only a conversation in Chats in Progress can be put on hold",
                )
                .await
            }
            Waiting::Resume => {
                self.change_status(
                    id,
                    "status = 'open', snoozed_until = NULL",
                    &[OnHold, Snoozed],
                    &format!("Resumed by @{who}"),
                    "Only a conversation on hold or snoozed can be resumed",
                )
                .await
            }
            Waiting::Snooze { until } => {
                let now = now_ms();
                if until <= now {
                    return Err(DeskError::Invalid(
                        "The snooze must end in the future".into(),
                    ));
                }
                if until - now > MAX_SNOOZE_MS {
                    return Err(DeskError::Invalid(
                        "A conversation can be snoozed for at most a year".into(),
                    ));
                }
                // `until` is a number, formatted into the statement, never text from input.
                self.change_status(
                    id,
                    &format!("status = 'snoozed', snoozed_until = {until}"),
                    &[Open, OnHold, Snoozed],
                    &format!("Snoozed by @{who} until {}", minute_utc(until)),
                    "Only a conversation in Chats in Progress or on hold can be snoozed",
                )
                .await
            }
        }
    }

    /// Sets `set` on a conversation whose status is one of `from`, with the system line
    /// `line`; otherwise a conflict in the words `refusal` plus what it is now.
    async fn change_status(
        &self,
        id: ConversationId,
        set: &str,
        from: &[ConversationStatus],
        line: &str,
        refusal: &str,
    ) -> Result<Conversation, DeskError> {
        let statuses: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let sql = format!(
            "UPDATE conversations SET {set}, updated_at = $1 WHERE id = $2 AND status IN ({})",
            statuses.join(", ")
        );
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            let now = self.require_conversation(id).await?;
            return Err(DeskError::Conflict(format!(
                "{refusal}; this one is {}",
                status_words(now.status)
            )));
        }
        insert_system_message(&mut tx, id, line).await?;
        tx.commit().await?;
        Ok(self.require_conversation(id).await?)
    }

    /// Wakes every conversation whose snooze has ended by `now` (ms): `open` again with its
    /// assignee, with the line "Snooze ended". One conditional `UPDATE` claims them, so with
    /// several processes waking at once each conversation is woken by exactly one.
    pub async fn wake_snoozed(&self, now: i64) -> Result<Vec<Woken>> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = $1
             WHERE status = 'snoozed' AND snoozed_until <= $1
             RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        ids.sort_unstable();
        let mut woken = Vec::with_capacity(ids.len());
        for id in ids {
            let conversation_id = ConversationId(id);
            let message_id =
                insert_system_message(&mut tx, conversation_id, "Snooze ended").await?;
            woken.push(Woken {
                conversation_id,
                message_id,
            });
        }
        tx.commit().await?;
        Ok(woken)
    }

    /// When the next snooze ends (ms), if any conversation is snoozed.
    pub async fn next_snooze_end(&self) -> Result<Option<i64>> {
        Ok(sqlx::query(
            "SELECT MIN(snoozed_until) AS next FROM conversations WHERE status = 'snoozed'",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("next")?)
    }

    /// Merge: the messages of `id` move into `into` (the timeline orders them by time), the
    /// tags are united, `id`'s members become members of `into` (nobody loses sight of a
    /// message they could read), `id` is closed with `merged_into_id`, and a system line in
    /// each records it. Later emails threading to either land in `into`.
    ///
    /// # Errors
    /// [`DeskError::Invalid`] when merging a conversation into itself or into a merged one;
    /// [`DeskError::Conflict`] when either is closed or queued (or became so meanwhile).
    pub async fn merge_conversations(
        &self,
        id: ConversationId,
        into: ConversationId,
        by: &User,
    ) -> Result<Merged, DeskError> {
        if id == into {
            return Err(DeskError::Invalid(
                "A conversation cannot be merged into itself".into(),
            ));
        }
        let survivor = self.require_conversation(into).await?;
        if let Some(next) = survivor.merged_into_id {
            return Err(DeskError::Invalid(format!(
                "#{into} was merged into #{next}: merge into #{next} instead"
            )));
        }
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        // Both rows in id order (on PostgreSQL the first UPDATE of each locks it), so two
        // merges of the same pair cannot deadlock; each UPDATE re-checks the status.
        let mut pair = [id, into];
        pair.sort_unstable();
        for one in pair {
            let done = sqlx::query(
                "UPDATE conversations SET updated_at = $1
                 WHERE id = $2 AND status IN ('open', 'on_hold', 'snoozed') AND merged_into_id IS NULL",
            )
            .bind(now)
            .bind(one.0)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                drop(tx);
                let c = self.require_conversation(one).await?;
                return Err(DeskError::Conflict(format!(
                    "#{one} cannot be merged now: it is {}",
                    status_words(c.status)
                )));
            }
        }
        let merged = self.require_conversation_in(&mut tx, id).await?;
        sqlx::query("UPDATE messages SET conversation_id = $1 WHERE conversation_id = $2")
            .bind(into.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO conversation_members (conversation_id, user_id, added_by, added_at)
             SELECT $1, u.user_id, $2, $3 FROM (
                 SELECT user_id FROM conversation_members WHERE conversation_id = $4
                 UNION SELECT assignee_id FROM conversations WHERE id = $4 AND assignee_id IS NOT NULL
             ) u
             WHERE u.user_id <> COALESCE((SELECT assignee_id FROM conversations WHERE id = $1), 0)
             ON CONFLICT (conversation_id, user_id) DO NOTHING",
        )
        .bind(into.0)
        .bind(by.id.0)
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        unite_tags(&mut tx, into, &merged.tags).await?;
        sqlx::query(
            "UPDATE conversations SET status = 'closed', closed_at = $1, updated_at = $1,
                snoozed_until = NULL, merged_into_id = $2
             WHERE id = $3",
        )
        .bind(now)
        .bind(into.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE conversations SET last_message_at = CASE WHEN last_message_at < $1 THEN $1 ELSE last_message_at END
             WHERE id = $2",
        )
        .bind(merged.last_message_at)
        .bind(into.0)
        .execute(&mut *tx)
        .await?;
        let who = &by.username;
        insert_system_message(&mut tx, id, &format!("Merged into #{into} by @{who}")).await?;
        insert_system_message(&mut tx, into, &format!("@{who} merged #{id} into #{into}")).await?;
        tx.commit().await?;
        Ok(Merged {
            merged: self.require_conversation(id).await?,
            into: self.require_conversation(into).await?,
        })
    }

    /// A conversation read within a transaction (what it holds before the transaction's own
    /// changes to it, unless made already).
    async fn require_conversation_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        id: ConversationId,
    ) -> Result<Conversation> {
        let sql = format!(
            "{} WHERE c.id = $1",
            crate::conversations::CONVERSATION_SELECT
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        crate::conversations::conversation_from_row(&row)
    }
}

/// Adds `tags` to a conversation's own (by [`postdesk_core::search::tag_key`]; the
/// survivor's spelling and order first), at most [`postdesk_core::search::MAX_TAGS`].
async fn unite_tags(
    tx: &mut sqlx::AnyConnection,
    id: ConversationId,
    tags: &[String],
) -> Result<()> {
    use postdesk_core::search::{MAX_TAGS, tag_key};
    let row = sqlx::query("SELECT tags FROM conversations WHERE id = $1")
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await?;
    let mut united: Vec<String> = from_json(&row.try_get::<String, _>("tags")?)?;
    let mut keys: Vec<String> = united.iter().map(|t| tag_key(t)).collect();
    for tag in tags {
        let key = tag_key(tag);
        if united.len() < MAX_TAGS && !keys.contains(&key) {
            sqlx::query(
                "INSERT INTO conversation_tags (conversation_id, tag, tag_key) VALUES ($1, $2, $3)",
            )
            .bind(id.0)
            .bind(tag.as_str())
            .bind(key.as_str())
            .execute(&mut *tx)
            .await?;
            united.push(tag.clone());
            keys.push(key);
        }
    }
    sqlx::query("UPDATE conversations SET tags = $1 WHERE id = $2")
        .bind(to_json(&united))
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The conversation that holds `id`'s messages: `id` itself, or the end of its chain of
/// merges. Used by ingest, so a reply to a merged conversation lands in its survivor.
pub(crate) async fn survivor_of(
    tx: &mut sqlx::AnyConnection,
    id: ConversationId,
) -> Result<ConversationId> {
    let mut current = id;
    for _ in 0..MAX_MERGE_CHAIN {
        let next: Option<i64> =
            sqlx::query("SELECT merged_into_id FROM conversations WHERE id = $1")
                .bind(current.0)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("merged_into_id"))
                .transpose()?
                .flatten();
        match next {
            Some(next) => current = ConversationId(next),
            None => return Ok(current),
        }
    }
    Err(StoreError::Corrupt(format!(
        "conversation {id} is merged along a chain of more than {MAX_MERGE_CHAIN}"
    )))
}
