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
use serde_json::Value;

use super::conversations::conversation_json;
use super::error::ApiJson;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferForm {
    /// To this agent.
    user_id: Option<i64>,
    /// To this department's queue.
    department_id: Option<i64>,
    /// Why (shown in the system line).
    comment: Option<String>,
}

/// `POST /conversations/{id}/transfer`: to an agent or to a department's queue.
pub(super) async fn transfer(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<TransferForm>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(conversation_json(&done.conversation)))
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
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct NoFields {}

/// `POST /conversations/{id}/hold`: On Hold.
pub(super) async fn hold(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let NoFields {} = optional_body(&body)?;
    set_waiting(&state, &auth, &c, Waiting::Hold).await
}

/// `POST /conversations/{id}/resume`: back to Chats in Progress from On Hold (or a snooze).
pub(super) async fn resume(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let NoFields {} = optional_body(&body)?;
    set_waiting(&state, &auth, &c, Waiting::Resume).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SnoozeForm {
    /// RFC 3339.
    until: String,
}

/// `POST /conversations/{id}/snooze {until}`.
pub(super) async fn snooze(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<SnoozeForm>,
) -> Result<Json<Value>, ApiError> {
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
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(conversation_json(&changed)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MergeForm {
    /// The conversation that survives.
    into_id: i64,
}

/// `POST /conversations/{id}/merge {into_id}`: needs Write on both; answers the merged
/// conversation (closed, with `merged_into_id`).
pub(super) async fn merge(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<MergeForm>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(conversation_json(&merged.merged)))
}
