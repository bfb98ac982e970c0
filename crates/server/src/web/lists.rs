//! The conversation lists: `GET /conversations` (Queued Chats, Chats in Progress, On Hold,
//! snoozed, memberships, closed, by tag, contact or inbox), one page at a time with its
//! `next_cursor` and the `total` that match, and `GET /conversations/counts`, the sidebar's
//! badges. Each list holds only what the access policy lets the caller see
//! ([`postdesk_core::access::list_scope`]), filtered in the database.

use axum::Json;
use axum::extract::State;
use postdesk_core::access::{Rule, list_scope};
use postdesk_core::ids::{ContactId, InboxId, UserId};
use postdesk_core::model::ConversationStatus;
use postdesk_store::{ConversationFilter, ListCounts, ListCursor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::conversations::{ConversationOut, status_param};
use super::error::Query;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};

/// Conversations a page has unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: i64 = 200;
/// The most conversations one page answers.
pub const MAX_LIMIT: i64 = 1000;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/conversations", Rule::SignedIn, list),
        Route::get("/conversations/counts", Rule::SignedIn, counts),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, counts))]
pub(super) struct Api;

/// The filters of the conversation lists, which combine.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `queued` is Queued Chats (oldest first); none: every status.
    #[param(value_type = Option<ConversationStatus>)]
    status: Option<String>,
    /// `me` or a user id.
    assignee: Option<String>,
    /// `me` or a user id: conversations the user is a member of.
    member: Option<String>,
    /// Text in the contact's address or name.
    contact: Option<String>,
    /// One contact's conversations.
    #[param(value_type = Option<i64>)]
    contact_id: Option<String>,
    /// One inbox's conversations.
    #[param(value_type = Option<i64>)]
    inbox_id: Option<String>,
    /// A tag (whatever its case).
    tag: Option<String>,
    /// 1 to 1000 (default 200).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Where the page starts: the previous page's `next_cursor`.
    cursor: Option<String>,
}

fn user_param(value: Option<&str>, auth: &AuthUser) -> Result<Option<UserId>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some("me") => Ok(Some(auth.user.id)),
        Some(id) => id
            .parse()
            .map(|id| Some(UserId(id)))
            .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a user id or \"me\""))),
    }
}

/// An id parameter (empty: none).
fn id_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(id) => id
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("{name} must be a number, not {id:?}"))),
    }
}

/// `limit`: 1 to `max`, `default` when not given.
pub(super) fn limit_param(value: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(n) => match n.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "limit must be a number from 1 to {max}, not {n:?}"
            ))),
        },
    }
}

/// Text filters: blank is no filter.
fn text_param(value: Option<String>) -> Option<String> {
    value.filter(|t| !t.trim().is_empty())
}

/// The filter a list query asks for, within what the caller may see.
fn filter_of(q: ListQuery, auth: &AuthUser) -> Result<ConversationFilter, ApiError> {
    // Whatever is asked, the list holds only what the policy lets this user see: an agent
    // asking for another agent's conversations gets none of theirs.
    let mut filter = ConversationFilter {
        status: status_param(q.status.as_deref())?,
        assignee: user_param(q.assignee.as_deref(), auth)?,
        member: user_param(q.member.as_deref(), auth)?,
        visible: Some(list_scope(&auth.actor())),
        contact: text_param(q.contact),
        contact_id: id_param("contact_id", q.contact_id.as_deref())?.map(ContactId),
        inbox: id_param("inbox_id", q.inbox_id.as_deref())?.map(InboxId),
        tag: text_param(q.tag),
        limit: Some(limit_param(q.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?),
        after: None,
    };
    if let Some(text) = q.cursor.as_deref().filter(|c| !c.trim().is_empty()) {
        let cursor = ListCursor::parse(text).map_err(|e| ApiError::BadRequest(capitalised(&e)))?;
        if cursor.order != filter.order() {
            return Err(ApiError::BadRequest(
                "This cursor is from another list (Queued Chats and the other lists are in \
                 different orders): start this list again without a cursor"
                    .into(),
            ));
        }
        filter.after = Some(cursor);
    }
    Ok(filter)
}

/// An error's words as a sentence.
pub(super) fn capitalised(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// One page of a conversation list.
#[derive(Debug, Serialize, ToSchema)]
struct ConversationPage {
    conversations: Vec<ConversationOut>,
    /// Send it back as `?cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
    /// How many match the filters now, all pages together.
    total: i64,
}

/// One page of a list: `{conversations, next_cursor, total}`.
#[utoipa::path(get, path = "/conversations", params(ListQuery),
    responses((status = 200, description = "A page of the list", body = ConversationPage)))]
async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<ConversationPage>, ApiError> {
    let filter = filter_of(q, &auth)?;
    let (page, total) = tokio::try_join!(
        state.store.conversation_page(&filter),
        state.store.count_conversations(&filter)
    )?;
    Ok(Json(ConversationPage {
        conversations: ConversationOut::all(&page.conversations),
        next_cursor: page.next_cursor.map(|c| c.encode()),
        total,
    }))
}

/// The caller's badges: `{queued, open, on_hold, snoozed}`.
#[utoipa::path(get, path = "/conversations/counts", responses((status = 200, description = "The badges", body = ListCounts)))]
async fn counts(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<ListCounts>, ApiError> {
    let counts = state
        .store
        .conversation_counts(auth.user.id, Some(list_scope(&auth.actor())))
        .await?;
    Ok(Json(counts))
}
