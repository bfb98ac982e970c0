//! Tags on conversations and full-text search. Replacing a conversation's tags is writing to
//! it (the policy's `Write`: members and supervisors, never while queued or closed); a search
//! and the list of tags in use answer only within what the caller may see (the policy's
//! `list_scope`, as the conversation lists).

use axum::Json;
use axum::extract::{Query, State};
use postdesk_core::access::{Action, Rule, list_scope};
use postdesk_core::ids::InboxId;
use postdesk_core::search::{MAX_QUERY_CHARS, SearchTerms, Tags};
use postdesk_store::SearchQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use super::conversations::{conversation_json, status_param};
use super::error::ApiJson;
use super::policy::{Allowed, Route};
use super::{ApiError, AppState, AuthUser};

/// Most hits a search answers (`limit`); 20 unless asked.
pub const MAX_HITS: i64 = 100;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::put(
            "/conversations/{id}/tags",
            Rule::Conversation(Action::Write),
            set_tags,
        ),
        Route::get("/tags", Rule::SignedIn, tags_in_use),
        Route::get("/search", Rule::SignedIn, search),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsForm {
    tags: Vec<String>,
}

/// Replaces the conversation's tags; answers the conversation. Quiet: no line in the
/// conversation, no event (the tags are in every conversation answer).
async fn set_tags(
    State(state): State<AppState>,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<TagsForm>,
) -> Result<Json<Value>, ApiError> {
    let tags = Tags::parse(&form.tags).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let tagged = state.store.set_tags(c.id, &tags).await?;
    Ok(Json(conversation_json(&tagged)))
}

/// The tags on the conversations the caller may see, most used first.
async fn tags_in_use(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let scope = list_scope(&auth.actor());
    let tags: Vec<Value> = state
        .store
        .tags_in_use(Some(&scope), 200)
        .await?
        .into_iter()
        .map(|t| json!({ "tag": t.tag, "conversations": t.conversations }))
        .collect();
    Ok(Json(json!({ "tags": tags })))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    status: Option<String>,
    inbox_id: Option<i64>,
    limit: Option<i64>,
}

/// Full-text search over subjects, contacts and message text.
async fn search(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q = params.q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "Type what to search for (the q parameter is empty)".into(),
        ));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "A search is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let limit = params.limit.unwrap_or(20);
    if !(1..=MAX_HITS).contains(&limit) {
        return Err(ApiError::Unprocessable(format!(
            "limit must be between 1 and {MAX_HITS}"
        )));
    }
    let query = SearchQuery {
        terms: SearchTerms::parse(&q),
        status: status_param(params.status.as_deref())?,
        inbox: params.inbox_id.map(InboxId),
        visible: Some(list_scope(&auth.actor())),
        limit,
    };
    let hits: Vec<Value> = state
        .store
        .search(&query)
        .await?
        .iter()
        .map(|hit| {
            json!({
                "conversation": conversation_json(&hit.conversation),
                "message_id": hit.message_id,
                "snippet": hit.snippet,
            })
        })
        .collect();
    Ok(Json(json!({ "hits": hits })))
}
