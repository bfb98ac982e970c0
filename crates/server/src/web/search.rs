//! Tags on conversations and full-text search. Replacing a conversation's tags is writing to
//! it (the policy's `Write`: members and supervisors, never while queued or closed); a search
//! and the list of tags in use answer only within what the caller may see (the policy's
//! `list_scope`, as the conversation lists).

use axum::Json;
use axum::extract::State;
use postdesk_core::access::{Action, Rule, list_scope};
use postdesk_core::ids::{InboxId, MessageId};
use postdesk_core::model::ConversationStatus;
use postdesk_core::search::{MAX_QUERY_CHARS, SearchTerms, Tags};
use postdesk_store::SearchQuery;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::conversations::{ConversationOut, status_param};
use super::error::{ApiJson, ErrorBody, Query};
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

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(set_tags, tags_in_use, search))]
pub(super) struct Api;

/// A conversation's tags, replacing the ones it has.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TagsForm {
    /// At most 20, each 1 to 40 characters on one line; unique whatever their case.
    #[schema(example = json!(["Billing", "VIP"]))]
    tags: Vec<String>,
}

/// Replaces the conversation's tags; answers the conversation. Quiet: no line in the
/// conversation, no event (the tags are in every conversation answer).
#[utoipa::path(put, path = "/conversations/{id}/tags", params(("id" = i64, Path, description = "The conversation")),
    request_body = TagsForm,
    responses(
        (status = 200, description = "The conversation with its new tags", body = ConversationOut),
        (status = 422, description = "An empty tag, one over 40 characters or with a line break, more than 20", body = ErrorBody),
    ))]
async fn set_tags(
    State(state): State<AppState>,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<TagsForm>,
) -> Result<Json<ConversationOut>, ApiError> {
    let tags = Tags::parse(&form.tags).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let tagged = state.store.set_tags(c.id, &tags).await?;
    Ok(Json(ConversationOut::from(&tagged)))
}

/// A tag in use.
#[derive(Debug, Serialize, ToSchema)]
struct TagUse {
    tag: String,
    /// On how many conversations the caller may see.
    conversations: i64,
}

/// The tags in use.
#[derive(Debug, Serialize, ToSchema)]
struct TagList {
    /// Most used first, at most 200.
    tags: Vec<TagUse>,
}

/// The tags on the conversations the caller may see, most used first.
#[utoipa::path(get, path = "/tags", responses((status = 200, description = "The tags in use", body = TagList)))]
async fn tags_in_use(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<TagList>, ApiError> {
    let scope = list_scope(&auth.actor());
    let tags = state
        .store
        .tags_in_use(Some(&scope), 200)
        .await?
        .into_iter()
        .map(|t| TagUse {
            tag: t.tag,
            conversations: t.conversations,
        })
        .collect();
    Ok(Json(TagList { tags }))
}

/// What to search for.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// The words (required, at most 500 characters).
    #[param(required = true, min_length = 1, max_length = 500)]
    q: Option<String>,
    #[param(value_type = Option<ConversationStatus>)]
    status: Option<String>,
    inbox_id: Option<i64>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// A conversation found.
#[derive(Debug, Serialize, ToSchema)]
struct SearchHit {
    conversation: ConversationOut,
    /// The message that matched; null when the subject or contact did.
    message_id: Option<MessageId>,
    /// The matching part as HTML: the text escaped, each match in `<mark>`.
    snippet: String,
}

/// What a search found.
#[derive(Debug, Serialize, ToSchema)]
struct SearchHits {
    /// Best first, one per conversation.
    hits: Vec<SearchHit>,
}

/// Full-text search over subjects, contacts and message text.
#[utoipa::path(get, path = "/search", params(SearchParams),
    responses(
        (status = 200, description = "The hits", body = SearchHits),
        (status = 422, description = "An empty `q`, one too long, or a `limit` out of range", body = ErrorBody),
    ))]
async fn search(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchHits>, ApiError> {
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
    let hits = state
        .store
        .search(&query)
        .await?
        .iter()
        .map(|hit| SearchHit {
            conversation: ConversationOut::from(&hit.conversation),
            message_id: hit.message_id,
            snippet: hit.snippet.clone(),
        })
        .collect();
    Ok(Json(SearchHits { hits }))
}
