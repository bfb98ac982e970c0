//! The team desk's actions on a conversation: Transfer, On Hold and Resume, Snooze, Merge.
//! Their routes are declared with the other conversation routes (`conversations::routes`),
//! each naming its policy rule; the store does the work (`postdesk_store::DeskError` says
//! why it refused), and the events go out after the commit.

use axum::Json;
use axum::extract::State;
use postdesk_core::access::{self, Action};
use postdesk_core::event::Event;
use postdesk_core::ids::{ConversationId, DepartmentId, UserId};
use postdesk_store::{Conversation, DeskError, TransferTarget, Waiting};
use serde::Deserialize;
use utoipa::ToSchema;

use super::conversations::ConversationOut;
use super::error::{ApiJson, ErrorBody};
use super::policy::Allowed;
use super::{ApiError, AppState, AuthUser};

/// Longest transfer comment (characters): a reason, not a message.
const MAX_COMMENT_CHARS: usize = 1000;

fn desk_error(e: DeskError) -> ApiError {
    match e {
        DeskError::Invalid(words) => ApiError::Unprocessable(words),
        DeskError::Conflict(words) => ApiError::Conflict(words),
        DeskError::Store(e) => e.into(),
    }
}

/// A body that may be left out; when given, it must be a JSON object of `T`'s fields only.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("Invalid JSON: {e}")))
}

/// Where to transfer a conversation: `user_id` or `department_id`, exactly one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferForm {
    /// To this agent.
    user_id: Option<i64>,
    /// To this department's queue.
    department_id: Option<i64>,
    /// Why (shown in the system line; at most 1000 characters).
    #[schema(max_length = 1000)]
    comment: Option<String>,
}

/// `POST /conversations/{id}/transfer`: to an agent or to a department's queue.
#[utoipa::path(post, path = "/conversations/{id}/transfer", params(("id" = i64, Path, description = "The conversation")), request_body = TransferForm,
    responses(
        (status = 200, description = "The conversation: the agent's (`open`), or queued in the department", body = ConversationOut),
        (status = 422, description = "Neither or both targets, an unknown or deactivated user, an agent outside the department, an unknown department, where it already is, a comment too long", body = ErrorBody),
    ))]
pub(super) async fn transfer(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<TransferForm>,
) -> Result<Json<ConversationOut>, ApiError> {
    let to = match (form.user_id, form.department_id) {
        (Some(user), None) => TransferTarget::Agent(UserId(user)),
        (None, Some(department)) => TransferTarget::Department(DepartmentId(department)),
        (Some(_), Some(_)) => {
            return Err(ApiError::Unprocessable(
                "Transfer to an agent (user_id) or to a department's queue (department_id), not both"
                    .into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::Unprocessable(
                "Say where to transfer it: an agent (user_id) or a department's queue (department_id)"
                    .into(),
            ));
        }
    };
    if let Some(comment) = &form.comment
        && comment.chars().count() > MAX_COMMENT_CHARS
    {
        return Err(ApiError::Unprocessable(format!(
            "The comment is longer than {MAX_COMMENT_CHARS} characters: write the details as a message"
        )));
    }
    let done = state
        .store
        .transfer_conversation(c.id, &auth.user, to, form.comment.as_deref())
        .await
        .map_err(desk_error)?;
    let (assignee_id, department_id) = match to {
        TransferTarget::Agent(user) => (Some(user), None),
        TransferTarget::Department(department) => (None, Some(department)),
    };
    state.bus.publish(Event::ConversationTransferred {
        conversation_id: c.id,
        assignee_id,
        department_id,
        previous_assignee_id: done.previous_assignee,
    });
    if department_id.is_some() {
        entered_queue_by_transfer(&state, &done.conversation);
    }
    Ok(Json(ConversationOut::from(&done.conversation)))
}

/// A transfer put `conversation` into its (new) department's queue: tell the department's
/// agents it is there to take. The routing service hears the same event and, when the
/// department routes automatically (`round_robin`, `load_balancing`), assigns it as it does a
/// newly arrived one.
fn entered_queue_by_transfer(state: &AppState, conversation: &Conversation) {
    state.bus.publish(Event::ConversationQueued {
        conversation_id: conversation.id,
        inbox_id: conversation.inbox_id,
    });
}

/// A body with no fields (given or not).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NoFields {}

/// `POST /conversations/{id}/hold`: On Hold.
#[utoipa::path(post, path = "/conversations/{id}/hold", params(("id" = i64, Path, description = "The conversation")),
    request_body(content = Option<NoFields>, description = "None, or an empty object"),
    responses((status = 200, description = "The conversation, `on_hold`", body = ConversationOut)))]
pub(super) async fn hold(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    body: axum::body::Bytes,
) -> Result<Json<ConversationOut>, ApiError> {
    let NoFields {} = optional_body(&body)?;
    set_waiting(&state, &auth, &c, Waiting::Hold).await
}

/// `POST /conversations/{id}/resume`: back to Chats in Progress from On Hold (or a snooze).
#[utoipa::path(post, path = "/conversations/{id}/resume", params(("id" = i64, Path, description = "The conversation")),
    request_body(content = Option<NoFields>, description = "None, or an empty object"),
    responses((status = 200, description = "The conversation, `open`", body = ConversationOut)))]
pub(super) async fn resume(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    body: axum::body::Bytes,
) -> Result<Json<ConversationOut>, ApiError> {
    let NoFields {} = optional_body(&body)?;
    set_waiting(&state, &auth, &c, Waiting::Resume).await
}

/// Until when to snooze.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SnoozeForm {
    /// RFC 3339, in the future and at most a year ahead.
    #[schema(format = DateTime)]
    until: String,
}

/// `POST /conversations/{id}/snooze {until}`.
#[utoipa::path(post, path = "/conversations/{id}/snooze", params(("id" = i64, Path, description = "The conversation")), request_body = SnoozeForm,
    responses(
        (status = 200, description = "The conversation, `snoozed` with `snoozed_until`", body = ConversationOut),
        (status = 422, description = "Not an RFC 3339 time, in the past, or more than a year ahead", body = ErrorBody),
    ))]
pub(super) async fn snooze(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<SnoozeForm>,
) -> Result<Json<ConversationOut>, ApiError> {
    let until = chrono::DateTime::parse_from_rfc3339(form.until.trim())
        .map_err(|e| {
            ApiError::Unprocessable(format!(
                "until must be an RFC 3339 time such as 2026-12-08T09:00:00Z ({e})"
            ))
        })?
        .timestamp_millis();
    set_waiting(&state, &auth, &c, Waiting::Snooze { until }).await
}

/// On Hold, Resume or Snooze: the store's change, then its event (a snooze's event also
/// wakes the snooze task, which then sleeps until the earliest end).
async fn set_waiting(
    state: &AppState,
    auth: &AuthUser,
    c: &Conversation,
    change: Waiting,
) -> Result<Json<ConversationOut>, ApiError> {
    let changed = state
        .store
        .set_waiting(c.id, &auth.user, change)
        .await
        .map_err(desk_error)?;
    let conversation_id = c.id;
    state.bus.publish(match change {
        Waiting::Hold => Event::ConversationOnHold { conversation_id },
        Waiting::Resume => Event::ConversationResumed { conversation_id },
        Waiting::Snooze { .. } => Event::ConversationSnoozed { conversation_id },
    });
    Ok(Json(ConversationOut::from(&changed)))
}

/// The conversation to merge into.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MergeForm {
    /// The conversation that survives.
    into_id: i64,
}

/// `POST /conversations/{id}/merge {into_id}`: needs Write on both; answers the merged
/// conversation (closed, with `merged_into_id`).
#[utoipa::path(post, path = "/conversations/{id}/merge", params(("id" = i64, Path, description = "The conversation")), request_body = MergeForm,
    responses(
        (status = 200, description = "The merged conversation: `closed`, with `merged_into_id`", body = ConversationOut),
        (status = 422, description = "Into itself, into an unknown or a merged conversation", body = ErrorBody),
    ))]
pub(super) async fn merge(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<MergeForm>,
) -> Result<Json<ConversationOut>, ApiError> {
    let into = ConversationId(form.into_id);
    if into == c.id {
        return Err(ApiError::Unprocessable(
            "A conversation cannot be merged into itself".into(),
        ));
    }
    let target = state
        .store
        .find_conversation(into)
        .await?
        .ok_or_else(|| ApiError::Unprocessable(format!("There is no conversation #{into}")))?;
    if let Some(next) = target.merged_into_id {
        return Err(ApiError::Unprocessable(format!(
            "#{into} was merged into #{next}: merge into #{next} instead"
        )));
    }
    // The route's rule allowed writing in this one; the same policy decides the other.
    let scope = state
        .store
        .conversation_scope(into)
        .await?
        .ok_or_else(|| ApiError::Unprocessable(format!("There is no conversation #{into}")))?;
    access::decide(&auth.actor(), Action::Write, &scope).map_err(|d| super::policy::denied(&d))?;
    let merged = state
        .store
        .merge_conversations(c.id, into, &auth.user)
        .await
        .map_err(desk_error)?;
    for conversation_id in [c.id, into] {
        state.bus.publish(Event::ConversationMerged {
            conversation_id,
            merged_id: c.id,
            into_id: into,
        });
    }
    Ok(Json(ConversationOut::from(&merged.merged)))
}
