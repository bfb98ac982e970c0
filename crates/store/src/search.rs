//! Tags on conversations and full-text search over subjects, contacts and message text.
//!
//! The indexes are kept in step by triggers (migration 0013) in the very transactions that
//! write conversations, contacts and messages, so nothing here writes to them. SQLite: FTS5,
//! ranked by BM25; PostgreSQL: `tsvector` documents with GIN indexes, ranked by `ts_rank`,
//! snippets by `ts_headline`. A search answers one hit per conversation, the best place it
//! matched: its subject and contact first (one document), else its best matching message.

use postdesk_core::access::ListScope;
use postdesk_core::ids::{ConversationId, InboxId, MessageId};
use postdesk_core::model::ConversationStatus;
use postdesk_core::search::{SearchTerms, Tags, tag_key};
use sqlx::Row as _;

use crate::conversations::{CONVERSATION_SELECT, conversation_from_row, scope_params, visible_sql};
use crate::records::Conversation;
use crate::{Backend, Result, Store, StoreError, now_ms, to_json};

/// What a search looks for.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// The words and phrases (all must match, in one place).
    pub terms: SearchTerms,
    /// Only conversations in this status.
    pub status: Option<ConversationStatus>,
    /// Only conversations of this inbox.
    pub inbox: Option<InboxId>,
    /// Only what the asker may see (the policy's [`ListScope`]); `None`: everything.
    pub visible: Option<ListScope>,
    /// At most this many hits.
    pub limit: i64,
}

/// One conversation a search found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The conversation.
    pub conversation: Conversation,
    /// The message that matched; `None` when the subject or the contact did.
    pub message_id: Option<MessageId>,
    /// Where it matched, as HTML: the text escaped, each match in `<mark>…</mark>`, nothing
    /// else. Safe to put into a page as it is.
    pub snippet: String,
}

/// A tag in use, and on how many conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCount {
    /// The tag (its first spelling, when it is written in several).
    pub tag: String,
    /// How many conversations have it.
    pub conversations: i64,
}

/// Where a match starts and ends in the snippets the databases make: private-use
/// characters, turned into `<mark>` once the rest is escaped.
const MARK_START: char = '\u{E000}';
const MARK_END: char = '\u{E001}';

/// `<` and `>` as given to PostgreSQL's `ts_headline`, which would otherwise take them for
/// markup and drop them (and skip the text of a `<script>` in a plain-text email).
const LESS_THAN: char = '\u{E002}';
const GREATER_THAN: char = '\u{E003}';

/// A database's snippet as HTML: every character escaped, the match markers as `<mark>`,
/// runs of white space as one space.
fn snippet_html(raw: &str) -> String {
    let mut html = String::with_capacity(raw.len() + 16);
    let mut space = false;
    for c in raw.trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space {
            html.push(' ');
            space = false;
        }
        match c {
            MARK_START => html.push_str("<mark>"),
            MARK_END => html.push_str("</mark>"),
            '&' => html.push_str("&amp;"),
            '<' | LESS_THAN => html.push_str("&lt;"),
            '>' | GREATER_THAN => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c => html.push(c),
        }
    }
    html
}

impl Store {
    /// Replaces a conversation's tags (the `updated_at` moves; nothing is posted in it).
    pub async fn set_tags(&self, id: ConversationId, tags: &Tags) -> Result<Conversation> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE conversations SET tags = $1, updated_at = $2 WHERE id = $3")
            .bind(to_json(&tags.as_slice()))
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("conversation"));
        }
        sqlx::query("DELETE FROM conversation_tags WHERE conversation_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        for tag in tags.as_slice() {
            sqlx::query(
                "INSERT INTO conversation_tags (conversation_id, tag, tag_key) VALUES ($1, $2, $3)",
            )
            .bind(id.0)
            .bind(tag.as_str())
            .bind(tag_key(tag))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.require_conversation(id).await
    }

    /// The tags on the conversations the asker may see, most used first (for suggestions).
    pub async fn tags_in_use(
        &self,
        visible: Option<&ListScope>,
        limit: i64,
    ) -> Result<Vec<TagCount>> {
        let sql = format!(
            "SELECT MIN(t.tag) AS tag, COUNT(*) AS conversations
             FROM conversation_tags t
             JOIN conversations c ON c.id = t.conversation_id
             WHERE {}
             GROUP BY t.tag_key
             ORDER BY COUNT(*) DESC, t.tag_key
             LIMIT $3",
            visible_sql(1, 2)
        );
        let (scope, asker) = scope_params(visible);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope)
            .bind(asker)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(TagCount {
                    tag: row.try_get("tag")?,
                    conversations: row.try_get("conversations")?,
                })
            })
            .collect()
    }

    /// Full-text search: the conversations matching every term, best first, each with where
    /// it matched. Conversations whose subject or contact match come before those matching
    /// in a message; within each, by relevance, then the most recent. Ranked among the newest
    /// [`SEARCH_WINDOW`] matches of each index that the asker may see. Only what
    /// `query.visible` lets the asker see; nothing at all for terms of nothing.
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        if query.terms.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, expression) = match self.backend {
            Backend::Sqlite => (sqlite_search_sql(), query.terms.to_fts5()),
            Backend::Postgres => (postgres_search_sql(), query.terms.to_tsquery()),
        };
        let (scope, asker) = scope_params(query.visible.as_ref());
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(expression)
            .bind(query.status.map(|s| s.as_str()))
            .bind(query.inbox.map(|i| i.0))
            .bind(scope)
            .bind(asker)
            .bind(query.limit)
            .bind(SEARCH_WINDOW)
            .fetch_all(&self.pool)
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            found.push((
                ConversationId(row.try_get("cid")?),
                row.try_get::<Option<i64>, _>("mid")?.map(MessageId),
                snippet_html(
                    &row.try_get::<Option<String>, _>("snippet")?
                        .unwrap_or_default(),
                ),
            ));
        }
        let conversations = self
            .conversations_by_id(found.iter().map(|(id, _, _)| *id))
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, message_id, snippet)| {
                let conversation = conversations.iter().find(|c| c.id == id)?.clone();
                Some(SearchHit {
                    conversation,
                    message_id,
                    snippet,
                })
            })
            .collect())
    }

    /// The conversations of `ids` (those that exist), in no order.
    async fn conversations_by_id(
        &self,
        ids: impl Iterator<Item = ConversationId>,
    ) -> Result<Vec<Conversation>> {
        let ids: Vec<String> = ids.map(|id| id.0.to_string()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Integers only: formatted from ids, never from input.
        let sql = format!("{CONVERSATION_SELECT} WHERE c.id IN ({})", ids.join(", "));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(conversation_from_row)
            .collect()
    }
}

/// How many matches of each index a search ranks at most: the newest that the asker may see.
/// Ranking every match of a common word costs time in proportion to the whole desk (at a
/// million conversations, seconds: docs/benchmarks.md), and so does walking the matches until
/// enough of them are ones an agent may open (an agent may open a few percent of a large
/// desk); within the newest 500 they may open, the best come first, and a rarer word or a
/// phrase reaches further back.
pub const SEARCH_WINDOW: i64 = 500;

/// The conditions on a matching conversation `c`: `$2` status, `$3` inbox, `$4` and `$5` who
/// asks.
fn filters_sql() -> String {
    format!(
        "($2 IS NULL OR c.status = $2) AND ($3 IS NULL OR c.inbox_id = $3) AND {}",
        visible_sql(4, 5)
    )
}

/// What both databases' searches share, over `hits` (`cid`, `mid`, `tier`, `score`; lower
/// is better, already filtered): the best hit of each conversation, cut to the first `$6`.
fn top_sql() -> String {
    "best AS (
            SELECT cid, mid, tier, score,
                   ROW_NUMBER() OVER (PARTITION BY cid ORDER BY tier, score, mid DESC) AS n
            FROM hits
        ),
        top AS (
            SELECT b.cid, b.mid, b.tier, b.score, c.last_message_at
            FROM best b JOIN conversations c ON c.id = b.cid
            WHERE b.n = 1
            ORDER BY b.tier, b.score, c.last_message_at DESC, c.id DESC
            LIMIT $6
        )"
    .to_owned()
}

/// SQLite: `$1` is an FTS5 expression. BM25 is lower for better matches; the subject weighs
/// twice the contact. Each index is read newest first (FTS5 walks its rowids in that order)
/// and only the first `$7` matches the asker may see are ranked (see [`SEARCH_WINDOW`]).
fn sqlite_search_sql() -> String {
    let (s, e) = (MARK_START, MARK_END);
    format!(
        "WITH hits AS (
            SELECT * FROM (
                SELECT conversations_fts.rowid AS cid, NULL AS mid, 0 AS tier,
                       bm25(conversations_fts, 2.0, 1.0) AS score
                FROM conversations_fts JOIN conversations c ON c.id = conversations_fts.rowid
                WHERE conversations_fts MATCH $1 AND {filters}
                ORDER BY conversations_fts.rowid DESC LIMIT $7)
            UNION ALL
            SELECT * FROM (
                SELECT m.conversation_id AS cid, m.id AS mid, 1 AS tier, bm25(messages_fts) AS score
                FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
                     JOIN conversations c ON c.id = m.conversation_id
                WHERE messages_fts MATCH $1 AND {filters}
                ORDER BY messages_fts.rowid DESC LIMIT $7)
        ),
        {top}
        SELECT t.cid, t.mid,
            CASE WHEN t.mid IS NULL THEN
                (SELECT highlight(conversations_fts, 0, '{s}', '{e}') || ' · '
                        || highlight(conversations_fts, 1, '{s}', '{e}')
                 FROM conversations_fts WHERE conversations_fts MATCH $1 AND rowid = t.cid)
            ELSE
                (SELECT snippet(messages_fts, 0, '{s}', '{e}', '…', 24)
                 FROM messages_fts WHERE messages_fts MATCH $1 AND rowid = t.mid)
            END AS snippet
        FROM top t
        ORDER BY t.tier, t.score, t.last_message_at DESC, t.cid DESC",
        top = top_sql(),
        filters = filters_sql(),
    )
}

/// PostgreSQL: `$1` is a `to_tsquery` text. `ts_rank` is higher for better matches, so the
/// score is its negative; normalised by the document's length (short subjects weigh more).
/// Only the newest `$7` matches the asker may see are ranked (see [`SEARCH_WINDOW`]): for a
/// common word the planner walks the documents newest first and stops there, for a rare one
/// it takes the few matches from the GIN index.
fn postgres_search_sql() -> String {
    let (s, e, lt, gt) = (MARK_START, MARK_END, LESS_THAN, GREATER_THAN);
    format!(
        "WITH hits AS (
            (SELECT s.conversation_id AS cid, CAST(NULL AS BIGINT) AS mid, 0 AS tier,
                    -ts_rank(s.document, to_tsquery('simple', $1), 1) AS score
             FROM conversation_search s JOIN conversations c ON c.id = s.conversation_id
             WHERE s.document @@ to_tsquery('simple', $1) AND {filters}
             ORDER BY s.conversation_id DESC LIMIT $7)
            UNION ALL
            (SELECT m.conversation_id, m.id, 1, -ts_rank(s.document, to_tsquery('simple', $1), 1)
             FROM message_search s JOIN messages m ON m.id = s.message_id
                  JOIN conversations c ON c.id = m.conversation_id
             WHERE s.document @@ to_tsquery('simple', $1) AND {filters}
             ORDER BY s.message_id DESC LIMIT $7)
        ),
        {top},
        q AS (SELECT to_tsquery('simple', $1) AS q)
        SELECT t.cid, t.mid,
            CASE WHEN t.mid IS NULL THEN
                ts_headline('simple', translate(c.subject || ' · ' || k.name || ' ' || k.email, '<>', '{lt}{gt}'), q.q,
                    'HighlightAll=true, StartSel={s}, StopSel={e}')
            ELSE
                ts_headline('simple', translate(left(m.text, 100000), '<>', '{lt}{gt}'), q.q,
                    'StartSel={s}, StopSel={e}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \"')
            END AS snippet
        FROM top t JOIN conversations c ON c.id = t.cid JOIN contacts k ON k.id = c.contact_id
        LEFT JOIN messages m ON m.id = t.mid CROSS JOIN q
        ORDER BY t.tier, t.score, t.last_message_at DESC, t.cid DESC",
        top = top_sql(),
        filters = filters_sql(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_is_escaped_but_for_its_marks() {
        let raw = format!(
            "<script>alert('x')</script>\n\n  Your {MARK_START}invoice{MARK_END} & \"more\" {LESS_THAN}b{GREATER_THAN}"
        );
        assert_eq!(
            snippet_html(&raw),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Your <mark>invoice</mark> &amp; &quot;more&quot; &lt;b&gt;"
        );
    }
}
