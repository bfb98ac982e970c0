//! The conversation lists: Queued Chats, Chats in Progress, On Hold, snoozed, memberships,
//! closed, by tag, contact or inbox. Each list is one query composed of only the conditions
//! its filter has (no catch-all `($1 IS NULL OR …)`, which keeps the planner from using an
//! index), walking one index of migration 0015 in the list's order from the page's cursor on.
//! Its total is an indexed `COUNT` of the same conditions.
//!
//! Queued Chats come oldest first (who waited longest is served first: `queued_at`, then id);
//! every other list newest activity first (`last_message_at`, then id, both descending). A
//! page ends with a [`ListCursor`] naming its last conversation; the next page starts just
//! after it, so conversations arriving or leaving between two pages neither repeat nor hide
//! the ones not yet shown.

use base64::Engine as _;
use postdesk_core::access::ListScope;
use postdesk_core::ids::{ContactId, ConversationId, InboxId, UserId};
use postdesk_core::model::ConversationStatus;
use sqlx::Row as _;

use crate::conversations::{CONVERSATION_SELECT, conversation_from_row};
use crate::records::Conversation;
use crate::{Backend, Result, Store};

/// How many conversations a page has when the filter does not say.
pub const DEFAULT_PAGE: i64 = 200;

/// Which conversations to list, and from where.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Only this status. `queued` is Queued Chats, served oldest first.
    pub status: Option<ConversationStatus>,
    /// Only those assigned to this user.
    pub assignee: Option<UserId>,
    /// Only those this user is a member of (assignee or invited).
    pub member: Option<UserId>,
    /// Only those the asking user may see (the access policy's [`ListScope`]); `None` is
    /// every conversation (for tools and tests).
    pub visible: Option<ListScope>,
    /// Only those whose contact's address or name contains this text.
    pub contact: Option<String>,
    /// Only those of this contact.
    pub contact_id: Option<ContactId>,
    /// Only those of this inbox.
    pub inbox: Option<InboxId>,
    /// Only those with this tag (compared by [`postdesk_core::search::tag_key`]).
    pub tag: Option<String>,
    /// At most this many ([`DEFAULT_PAGE`] when not given).
    pub limit: Option<i64>,
    /// Start just after this conversation (from the previous page's
    /// [`ConversationPage::next_cursor`]); it must be of this list's [`ListOrder`].
    pub after: Option<ListCursor>,
}

impl ConversationFilter {
    /// The order of this list: Queued Chats oldest first, any other newest activity first.
    #[must_use]
    pub fn order(&self) -> ListOrder {
        if self.status == Some(ConversationStatus::Queued) {
            ListOrder::OldestQueuedFirst
        } else {
            ListOrder::NewestActivityFirst
        }
    }
}

/// The order a list comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    /// Queued Chats: who entered the queue first comes first (`queued_at`, then id).
    OldestQueuedFirst,
    /// Every other list: the newest activity first (`last_message_at`, then id, descending).
    NewestActivityFirst,
}

impl ListOrder {
    fn tag(self) -> &'static str {
        match self {
            ListOrder::OldestQueuedFirst => "q",
            ListOrder::NewestActivityFirst => "a",
        }
    }

    /// The sort key of `c` in this order.
    fn key(self, c: &Conversation) -> i64 {
        match self {
            ListOrder::OldestQueuedFirst => c.queued_at.unwrap_or(c.last_message_at),
            ListOrder::NewestActivityFirst => c.last_message_at,
        }
    }
}

/// Where the next page of a list starts: just after the conversation with this sort key and
/// id, in the list's order. Clients see it only as the opaque text of [`ListCursor::encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// The order of the list it came from.
    pub order: ListOrder,
    /// The sort key of the last conversation shown (`queued_at` or `last_message_at`, ms).
    pub key: i64,
    /// The last conversation shown.
    pub id: ConversationId,
}

/// A cursor text that no list gave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the cursor {0:?} is not one a list gave (copy next_cursor exactly, or start again without a cursor)"
)]
pub struct BadCursor(pub String);

impl ListCursor {
    /// The cursor after `c` in `order`.
    #[must_use]
    pub fn after(order: ListOrder, c: &Conversation) -> Self {
        Self {
            order,
            key: order.key(c),
            id: c.id,
        }
    }

    /// The opaque text given to clients.
    #[must_use]
    pub fn encode(&self) -> String {
        encode_cursor(self.order.tag(), &[self.key, self.id.0])
    }

    /// Reads what [`ListCursor::encode`] wrote.
    ///
    /// # Errors
    /// [`BadCursor`] for any other text.
    pub fn parse(text: &str) -> Result<Self, BadCursor> {
        let (tag, numbers) = decode_cursor(text)?;
        let order = match tag.as_str() {
            "q" => ListOrder::OldestQueuedFirst,
            "a" => ListOrder::NewestActivityFirst,
            _ => return Err(bad_cursor(text)),
        };
        match numbers[..] {
            [key, id] => Ok(Self {
                order,
                key,
                id: ConversationId(id),
            }),
            _ => Err(bad_cursor(text)),
        }
    }
}

fn bad_cursor(text: &str) -> BadCursor {
    BadCursor(text.chars().take(100).collect())
}

/// A cursor's text: `tag:n1:n2…` in URL-safe base64 (opaque to clients, safe in a URL).
pub(crate) fn encode_cursor(tag: &str, numbers: &[i64]) -> String {
    let mut text = tag.to_owned();
    for n in numbers {
        text.push_str(&format!(":{n}"));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// The tag and numbers of a cursor's text.
pub(crate) fn decode_cursor(text: &str) -> Result<(String, Vec<i64>), BadCursor> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad_cursor(text))?;
    let decoded = String::from_utf8(bytes).map_err(|_| bad_cursor(text))?;
    let mut parts = decoded.split(':');
    let tag = parts.next().unwrap_or_default().to_owned();
    let numbers = parts
        .map(|n| n.parse().map_err(|_| bad_cursor(text)))
        .collect::<Result<Vec<i64>, _>>()?;
    Ok((tag, numbers))
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationPage {
    /// The conversations, in the list's order.
    pub conversations: Vec<Conversation>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<ListCursor>,
}

/// The caller's sidebar badges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ListCounts {
    /// Queued Chats the caller may see.
    pub queued: i64,
    /// Their Chats in Progress.
    pub open: i64,
    /// Their conversations On Hold.
    pub on_hold: i64,
    /// Their snoozed conversations.
    pub snoozed: i64,
}

/// A value bound into a composed query.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

/// The `WHERE` of a list: only the conditions its filter has, with their binds (`$1`, …).
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    parts: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    /// Binds `value`; its placeholder.
    pub(crate) fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    pub(crate) fn push(&mut self, condition: String) {
        self.parts.push(condition);
    }

    /// Whether any condition was added.
    pub(crate) fn has_conditions(&self) -> bool {
        !self.parts.is_empty()
    }

    pub(crate) fn sql(&self) -> String {
        if self.parts.is_empty() {
            "1 = 1".to_owned()
        } else {
            self.parts.join("\n  AND ")
        }
    }

    pub(crate) fn query<'q>(
        &'q self,
        sql: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for bind in &self.binds {
            query = match bind {
                Bind::Int(v) => query.bind(*v),
                Bind::Text(v) => query.bind(v.as_str()),
            };
        }
        query
    }
}

/// A `LIKE` pattern for lowercase text containing `text` (its own wildcards dropped).
pub(crate) fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "")
        .replace(['%', '_'], "");
    format!("%{escaped}%")
}

/// `c.id IN` the conversations `user` was invited into.
fn invited(user: &str) -> String {
    format!(
        "c.id IN (SELECT m.conversation_id FROM conversation_members m WHERE m.user_id = {user})"
    )
}

/// Whether the conversation is of `user`'s departments or of an inbox without one.
fn covered(user: &str) -> String {
    format!(
        "(c.department_id IS NULL
          OR c.department_id IN (SELECT d.department_id FROM department_members d WHERE d.user_id = {user}))"
    )
}

/// The conditions of `filter`, with the cursor when `paged`.
pub(crate) fn conditions(filter: &ConversationFilter, paged: bool) -> Conditions {
    let mut w = Conditions::default();
    // A status is one of a few fixed words: written into the query, so that the planner
    // can use the partial index of the queue.
    if let Some(status) = filter.status {
        w.push(format!("c.status = '{}'", status.as_str()));
    }
    if let Some(user) = filter.assignee {
        let p = w.bind(Bind::Int(user.0));
        w.push(format!("c.assignee_id = {p}"));
    }
    if let Some(user) = filter.member {
        let p = w.bind(Bind::Int(user.0));
        w.push(format!("(c.assignee_id = {p} OR {})", invited(&p)));
    }
    if let Some(contact) = filter.contact_id {
        let p = w.bind(Bind::Int(contact.0));
        w.push(format!("c.contact_id = {p}"));
    }
    if let Some(inbox) = filter.inbox {
        let p = w.bind(Bind::Int(inbox.0));
        w.push(format!("c.inbox_id = {p}"));
    }
    if let Some(text) = &filter.contact {
        let p = w.bind(Bind::Text(contains_pattern(text)));
        w.push(format!(
            "c.contact_id IN (SELECT k2.id FROM contacts k2 WHERE LOWER(k2.email) LIKE {p} OR LOWER(k2.name) LIKE {p})"
        ));
    }
    if let Some(tag) = &filter.tag {
        let p = w.bind(Bind::Text(postdesk_core::search::tag_key(tag)));
        w.push(format!(
            "c.id IN (SELECT t.conversation_id FROM conversation_tags t WHERE t.tag_key = {p})"
        ));
    }
    visibility(filter, &mut w);
    if paged && let Some(cursor) = filter.after {
        let key = w.bind(Bind::Int(cursor.key));
        let id = w.bind(Bind::Int(cursor.id.0));
        w.push(match cursor.order {
            ListOrder::OldestQueuedFirst => format!("(c.queued_at, c.id) > ({key}, {id})"),
            ListOrder::NewestActivityFirst => {
                format!("(c.last_message_at, c.id) < ({key}, {id})")
            }
        });
    }
    w
}

/// Who may see what ([`ListScope`], the meaning of `visible_sql`), with only the branches
/// that can match this list: none when the list is already the asker's own (their
/// assignments or memberships, always theirs to see), and for an agent the queue's branch
/// only where queued conversations can be listed.
fn visibility(filter: &ConversationFilter, w: &mut Conditions) {
    let (user, whole_departments) = match &filter.visible {
        None | Some(ListScope::All) => return,
        Some(ListScope::Departments(user)) => (*user, true),
        Some(ListScope::QueueAndMine(user)) => (*user, false),
    };
    if filter.assignee == Some(user) || filter.member == Some(user) {
        return;
    }
    let p = w.bind(Bind::Int(user.0));
    let mine = format!("c.assignee_id = {p} OR {}", invited(&p));
    let condition = if whole_departments {
        format!("({mine} OR {})", covered(&p))
    } else {
        match filter.status {
            Some(ConversationStatus::Queued) => format!("({mine} OR {})", covered(&p)),
            Some(_) => format!("({mine})"),
            None => format!("({mine} OR (c.status = 'queued' AND {}))", covered(&p)),
        }
    };
    w.push(condition);
}

fn order_by(order: ListOrder) -> &'static str {
    match order {
        ListOrder::OldestQueuedFirst => "c.queued_at, c.id",
        ListOrder::NewestActivityFirst => "c.last_message_at DESC, c.id DESC",
    }
}

/// The query of one page of `filter` (`limit` rows), and its conditions.
fn page_sql(backend: Backend, filter: &ConversationFilter, limit: i64) -> (String, Conditions) {
    let mut w = conditions(filter, true);
    let order = order_by(filter.order());
    let where_sql = w.sql();
    let limit = w.bind(Bind::Int(limit));
    let select = if backend == Backend::Sqlite && filter.order() == ListOrder::OldestQueuedFirst {
        // SQLite's planner, counting on a short queue, would rather take the status index
        // and sort the whole queue; walking the queue's own index in order stops after the
        // page, however long the queue.
        CONVERSATION_SELECT.replacen(
            "FROM conversations c ",
            "FROM conversations c INDEXED BY conversations_queue ",
            1,
        )
    } else {
        CONVERSATION_SELECT.to_owned()
    };
    (
        format!("{select}\nWHERE {where_sql}\nORDER BY {order}\nLIMIT {limit}"),
        w,
    )
}

impl Store {
    /// One page of the conversations matching `filter`, in the list's order (see
    /// [`ConversationFilter::order`]), starting after `filter.after`.
    pub async fn list_conversations(
        &self,
        filter: &ConversationFilter,
    ) -> Result<Vec<Conversation>> {
        Ok(self.conversation_page(filter).await?.conversations)
    }

    /// One page of the conversations matching `filter`, and where the next page starts.
    pub async fn conversation_page(&self, filter: &ConversationFilter) -> Result<ConversationPage> {
        let limit = filter.limit.unwrap_or(DEFAULT_PAGE).max(1);
        // One more than the page: whether there is a next page, without counting.
        let (sql, w) = page_sql(self.backend, filter, limit + 1);
        let rows = w.query(&sql).fetch_all(&self.pool).await?;
        let mut conversations = rows
            .iter()
            .map(conversation_from_row)
            .collect::<Result<Vec<_>>>()?;
        let more = conversations.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        conversations.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = more
            .then(|| conversations.last())
            .flatten()
            .map(|c| ListCursor::after(filter.order(), c));
        Ok(ConversationPage {
            conversations,
            next_cursor,
        })
    }

    /// How many conversations match `filter` (all pages; its cursor and limit are ignored).
    pub async fn count_conversations(&self, filter: &ConversationFilter) -> Result<i64> {
        let w = conditions(filter, false);
        let sql = format!(
            "SELECT COUNT(*) AS n FROM conversations c WHERE {}",
            w.sql()
        );
        let row = w.query(&sql).fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// The sidebar's badges for `user`: the Queued Chats `visible` to them, and their own
    /// Chats in Progress, On Hold and snoozed conversations.
    pub async fn conversation_counts(
        &self,
        user: UserId,
        visible: Option<ListScope>,
    ) -> Result<ListCounts> {
        let queued = self
            .count_conversations(&ConversationFilter {
                status: Some(ConversationStatus::Queued),
                visible,
                ..ConversationFilter::default()
            })
            .await?;
        let rows = sqlx::query(
            "SELECT c.status, COUNT(*) AS n FROM conversations c
             WHERE c.assignee_id = $1 AND c.status IN ('open', 'on_hold', 'snoozed')
             GROUP BY c.status",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = ListCounts {
            queued,
            ..ListCounts::default()
        };
        for row in &rows {
            let n: i64 = row.try_get("n")?;
            match row.try_get::<String, _>("status")?.as_str() {
                "open" => counts.open = n,
                "on_hold" => counts.on_hold = n,
                "snoozed" => counts.snoozed = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// The database's plan for one page of `filter` (`EXPLAIN QUERY PLAN` on SQLite,
    /// `EXPLAIN` on PostgreSQL), one line per step: to check that a list walks an index.
    pub async fn explain_conversation_list(&self, filter: &ConversationFilter) -> Result<String> {
        let limit = filter.limit.unwrap_or(DEFAULT_PAGE).max(1);
        let (sql, w) = page_sql(self.backend, filter, limit + 1);
        let (sql, column) = match self.backend {
            Backend::Sqlite => (format!("EXPLAIN QUERY PLAN {sql}"), "detail"),
            Backend::Postgres => (format!("EXPLAIN {sql}"), "QUERY PLAN"),
        };
        let rows = w.query(&sql).fetch_all(&self.pool).await?;
        let lines = rows
            .iter()
            .map(|row| row.try_get::<String, _>(column))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_refuses_anything_else() {
        let cursor = ListCursor {
            order: ListOrder::OldestQueuedFirst,
            key: 1_700_000_000_123,
            id: ConversationId(42),
        };
        assert_eq!(ListCursor::parse(&cursor.encode()), Ok(cursor));
        for bad in [
            "",
            "abc",
            "eDox",
            "!!",
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("q:1:2:3"),
        ] {
            assert!(ListCursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
