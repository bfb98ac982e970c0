//! Drafts: the reply the signed-in agent is writing in a conversation, kept on the server so
//! that it survives a reload, a crash or a switch of device. One per agent and conversation,
//! never shown to anyone else, never sent by itself. Whoever may open a conversation may
//! keep a draft in it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use postdesk_core::access::{Action, Rule};
use postdesk_core::ids::MessageId;
use postdesk_store::{Draft, DraftContent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::conversations::{Time, check_length};
use super::error::{ApiJson, ErrorBody};
use super::policy::{Allowed, Route};
use super::{ApiError, AppState, AuthUser};

/// The most addresses a draft's To, Cc or Bcc holds.
pub const MAX_DRAFT_ADDRESSES: usize = 100;

/// The longest address a draft holds (characters): a display name and an address of the
/// longest RFC 5321 allows, with room to spare.
pub const MAX_DRAFT_ADDRESS_CHARS: usize = 500;

pub(super) fn routes() -> Vec<Route> {
    let on = Rule::Conversation;
    vec![
        Route::get("/conversations/{id}/draft", on(Action::Read), show),
        Route::put("/conversations/{id}/draft", on(Action::Read), save),
        Route::delete("/conversations/{id}/draft", on(Action::Read), delete),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, save, delete))]
pub(super) struct Api;

/// A draft as saved.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Draft)]
struct DraftOut {
    text: String,
    #[schema(value_type = Via)]
    via: String,
    /// As typed; null: the default recipients.
    to: Option<Vec<String>>,
    cc: Option<Vec<String>>,
    bcc: Option<Vec<String>>,
    in_reply_to_message_id: Option<MessageId>,
    #[schema(value_type = Format)]
    format: String,
    updated_at: Time,
}

/// The caller's draft in a conversation.
#[derive(Debug, Serialize, ToSchema)]
struct DraftAnswer {
    /// Null when there is none.
    draft: Option<DraftOut>,
}

impl DraftAnswer {
    /// `{draft: …}`, `null` when there is none.
    fn of(draft: Option<&Draft>) -> Json<Self> {
        let draft = draft.map(|d| {
            let c = &d.content;
            DraftOut {
                text: c.text.clone(),
                via: c.via.clone(),
                to: c.to.clone(),
                cc: c.cc.clone(),
                bcc: c.bcc.clone(),
                in_reply_to_message_id: c.in_reply_to_message_id,
                format: c.format.clone(),
                updated_at: Time::at(d.updated_at),
            }
        });
        Json(DraftAnswer { draft })
    }
}

/// `GET /conversations/{id}/draft`: the caller's draft in it.
#[utoipa::path(get, path = "/conversations/{id}/draft", params(("id" = i64, Path, description = "The conversation")),
    responses((status = 200, description = "The caller's draft, or null", body = DraftAnswer)))]
async fn show(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
) -> Result<Json<DraftAnswer>, ApiError> {
    let draft = state.store.find_draft(auth.user.id, c.id).await?;
    Ok(DraftAnswer::of(draft.as_ref()))
}

/// Where the reply goes: to the contact (`email`) or to the team only (`internal`).
#[derive(Deserialize, Clone, Copy, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DraftVia)]
enum Via {
    #[default]
    Email,
    Internal,
}

/// How its text is written.
#[derive(Deserialize, Clone, Copy, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DraftFormat)]
enum Format {
    Text,
    #[default]
    Markdown,
}

/// The body of `PUT`: the composer as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DraftForm {
    /// At most 100,000 characters.
    #[schema(max_length = 100000)]
    text: String,
    #[serde(default)]
    via: Via,
    /// At most 100 addresses of at most 500 characters, kept as typed.
    to: Option<Vec<String>>,
    cc: Option<Vec<String>>,
    bcc: Option<Vec<String>>,
    /// A message of this conversation.
    in_reply_to_message_id: Option<i64>,
    #[serde(default)]
    format: Format,
}

/// Refuses an address list over the limits (422); the addresses themselves are kept as
/// typed.
fn check_addresses(field: &str, list: Option<&Vec<String>>) -> Result<(), ApiError> {
    let Some(list) = list else { return Ok(()) };
    if list.len() > MAX_DRAFT_ADDRESSES {
        return Err(ApiError::Unprocessable(format!(
            "A draft's {field} holds at most {MAX_DRAFT_ADDRESSES} addresses"
        )));
    }
    if list
        .iter()
        .any(|a| a.chars().count() > MAX_DRAFT_ADDRESS_CHARS)
    {
        return Err(ApiError::Unprocessable(format!(
            "An address in the draft's {field} is longer than {MAX_DRAFT_ADDRESS_CHARS} characters"
        )));
    }
    Ok(())
}

/// `PUT /conversations/{id}/draft`: saves the caller's draft, or deletes it when it holds
/// nothing (no text and no recipients): `{draft}`.
#[utoipa::path(put, path = "/conversations/{id}/draft", params(("id" = i64, Path, description = "The conversation")), request_body = DraftForm,
    responses(
        (status = 200, description = "The draft as saved, or null when it held nothing (deleted)", body = DraftAnswer),
        (status = 413, description = "The text is longer than 100,000 characters", body = ErrorBody),
        (status = 422, description = "Too many or too long addresses, or a message of another conversation", body = ErrorBody),
    ))]
async fn save(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<DraftForm>,
) -> Result<Json<DraftAnswer>, ApiError> {
    check_length(&form.text)?;
    for (field, list) in [("to", &form.to), ("cc", &form.cc), ("bcc", &form.bcc)] {
        check_addresses(field, list.as_ref())?;
    }
    let no_recipients = [&form.to, &form.cc, &form.bcc]
        .iter()
        .all(|l| l.as_ref().is_none_or(Vec::is_empty));
    if form.text.trim().is_empty() && no_recipients {
        state.store.delete_draft(auth.user.id, c.id).await?;
        return Ok(DraftAnswer::of(None));
    }
    if let Some(id) = form.in_reply_to_message_id {
        let message = state.store.find_message(MessageId(id)).await?;
        if message.is_none_or(|m| m.conversation_id != c.id) {
            return Err(ApiError::Unprocessable(format!(
                "Message {id} is not in this conversation: a draft answers one of its own emails"
            )));
        }
    }
    let content = DraftContent {
        text: form.text,
        via: match form.via {
            Via::Email => "email",
            Via::Internal => "internal",
        }
        .to_owned(),
        to: form.to,
        cc: form.cc,
        bcc: form.bcc,
        in_reply_to_message_id: form.in_reply_to_message_id.map(MessageId),
        format: match form.format {
            Format::Text => "text",
            Format::Markdown => "markdown",
        }
        .to_owned(),
    };
    let draft = state.store.save_draft(auth.user.id, c.id, &content).await?;
    Ok(DraftAnswer::of(Some(&draft)))
}

/// `DELETE /conversations/{id}/draft`: 204, whether there was one or not.
#[utoipa::path(delete, path = "/conversations/{id}/draft", params(("id" = i64, Path, description = "The conversation")),
    responses((status = 204, description = "Deleted (or there was none)")))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
) -> Result<StatusCode, ApiError> {
    state.store.delete_draft(auth.user.id, c.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
