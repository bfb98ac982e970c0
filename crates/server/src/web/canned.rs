//! Canned responses: saved replies an agent inserts in the composer with `!shortcut`. Global
//! ones are every agent's, a department's are its agents', a user's own are theirs alone.
//!
//! The routes only need a sign-in; who sees and who may change which canned response is the
//! access policy's ([`postdesk_core::access::decide_canned`], [`canned_view`]). With
//! `?conversation_id=`, the list also carries each text with its variables filled for that
//! conversation (`filled_text`), so that filling lives here and not in the web app.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use postdesk_core::access::{
    self, Action, CannedAction, CannedOwner, Rule, canned_view, decide_canned,
};
use postdesk_core::ids::{CannedResponseId, ConversationId, DepartmentId, UserId};
use postdesk_core::model::CannedScope;
use postdesk_core::template;
use postdesk_store::{CannedContent, CannedResponse, Conversation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::conversations::Time;
use super::error::{ApiJson, ErrorBody, Path, Query};
use super::policy::{Route, denied};
use super::{ApiError, AppState, AuthUser};

/// The longest shortcut (characters).
pub const MAX_SHORTCUT_CHARS: usize = 40;

/// The longest canned response (characters): a long answer fits, a document does not.
pub const MAX_CANNED_CHARS: usize = 20_000;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/canned-responses", Rule::SignedIn, list),
        Route::post("/canned-responses", Rule::SignedIn, create),
        Route::put("/canned-responses/{id}", Rule::SignedIn, update),
        Route::delete("/canned-responses/{id}", Rule::SignedIn, delete),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, update, delete))]
pub(super) struct Api;

/// A canned response as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CannedResponse)]
struct CannedOut {
    id: CannedResponseId,
    /// Typed as `!shortcut` in the composer.
    shortcut: String,
    /// Its text, variables as written (`{{contact.name}}`, …).
    text: String,
    scope: CannedScope,
    /// A `department` one's department.
    department_id: Option<DepartmentId>,
    /// A `user` one's owner.
    user_id: Option<UserId>,
    created_at: Time,
    updated_at: Time,
    /// With `?conversation_id=`: the text with the variables filled for that conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    filled_text: Option<String>,
}

impl CannedOut {
    /// `c`; `filled` adds `filled_text`.
    fn of(c: &CannedResponse, filled: Option<&[(&str, &str)]>) -> Self {
        Self {
            id: c.id,
            shortcut: c.shortcut.clone(),
            text: c.text.clone(),
            scope: c.owner.scope(),
            department_id: c.owner.department(),
            user_id: c.owner.user(),
            created_at: Time::at(c.created_at),
            updated_at: Time::at(c.updated_at),
            filled_text: filled.map(|values| template::fill(&c.text, values)),
        }
    }
}

/// The canned responses the caller sees.
#[derive(Debug, Serialize, ToSchema)]
struct CannedList {
    /// By shortcut; for one shortcut in several scopes, the most personal first.
    canned_responses: Vec<CannedOut>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Fill the variables for this conversation.
    #[param(value_type = Option<i64>)]
    conversation_id: Option<String>,
}

/// `GET /canned-responses[?conversation_id=N]`: `{canned_responses:[…]}`.
#[utoipa::path(get, path = "/canned-responses", params(ListQuery),
    responses(
        (status = 200, description = "The canned responses the caller sees", body = CannedList),
        (status = 403, description = "Not allowed to open that conversation", body = ErrorBody),
        (status = 404, description = "No such conversation", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<CannedList>, ApiError> {
    let conversation = match q.conversation_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => {
            let id = raw.parse().map_err(|_| {
                ApiError::BadRequest(format!("conversation_id must be a number, not {raw:?}"))
            })?;
            Some(readable_conversation(&state, &auth, ConversationId(id)).await?)
        }
    };
    let values = match &conversation {
        Some(c) => Some(variables(&state, &auth, c).await?),
        None => None,
    };
    let pairs: Option<Vec<(&str, &str)>> = values
        .as_ref()
        .map(|v| v.iter().map(|(n, v)| (*n, v.as_str())).collect());
    let list = state
        .store
        .list_canned_responses(&canned_view(&auth.actor()))
        .await?;
    let canned_responses = list
        .iter()
        .map(|c| CannedOut::of(c, pairs.as_deref()))
        .collect();
    Ok(Json(CannedList { canned_responses }))
}

/// The conversation `id`, when the caller may read it (as its own routes decide).
async fn readable_conversation(
    state: &AppState,
    auth: &AuthUser,
    id: ConversationId,
) -> Result<Conversation, ApiError> {
    let not_found = || ApiError::NotFound("conversation not found".into());
    let scope = state
        .store
        .conversation_scope(id)
        .await?
        .ok_or_else(not_found)?;
    access::decide(&auth.actor(), Action::Read, &scope).map_err(|d| denied(&d))?;
    state
        .store
        .find_conversation(id)
        .await?
        .ok_or_else(not_found)
}

/// The variables' values in `c` for the caller: the contact's name (left as written when
/// the contact has none, for the agent to see and fill in) and address, the caller's name,
/// the inbox's name.
async fn variables(
    state: &AppState,
    auth: &AuthUser,
    c: &Conversation,
) -> Result<Vec<(&'static str, String)>, ApiError> {
    let inbox = state
        .store
        .find_inbox(c.inbox_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("inbox not found".into()))?;
    let mut values = vec![
        ("contact.email", c.contact.email.clone()),
        ("agent.name", auth.user.name.clone()),
        ("inbox.name", inbox.settings.name),
    ];
    if !c.contact.name.trim().is_empty() {
        values.push(("contact.name", c.contact.name.clone()));
    }
    Ok(values)
}

/// The body of `POST` and `PUT`: the whole canned response.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CannedForm {
    /// 1 to 40 letters (of any alphabet), digits, `-`, `_` or `.` (without the `!`).
    #[schema(min_length = 1, max_length = 40)]
    shortcut: String,
    /// 1 to 20,000 characters.
    #[schema(min_length = 1, max_length = 20000)]
    text: String,
    /// Another word is 422.
    #[schema(value_type = CannedScope)]
    scope: String,
    /// For a `department` one only.
    department_id: Option<i64>,
}

/// Checks a form's words and shape (422 for each fault, in words) and names its owner: the
/// department given, or the caller for a `user` one.
fn content_of(form: CannedForm, auth: &AuthUser) -> Result<CannedContent, ApiError> {
    let shortcut = form.shortcut;
    let length = shortcut.chars().count();
    if !(1..=MAX_SHORTCUT_CHARS).contains(&length)
        || !shortcut
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::Unprocessable(format!(
            "A shortcut is 1 to {MAX_SHORTCUT_CHARS} letters, digits, '-', '_' or '.' (no spaces, \
             and without the '!' typed before it in the composer), not {shortcut:?}"
        )));
    }
    if form.text.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "A canned response needs a text".into(),
        ));
    }
    if form.text.chars().count() > MAX_CANNED_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "A canned response is at most {MAX_CANNED_CHARS} characters long"
        )));
    }
    let scope = CannedScope::parse(&form.scope).map_err(|_| {
        ApiError::Unprocessable(format!(
            "Unknown scope {:?}: use global, department or user",
            form.scope
        ))
    })?;
    let owner = match (scope, form.department_id) {
        (CannedScope::Department, Some(d)) => CannedOwner::Department(DepartmentId(d)),
        (CannedScope::Department, None) => {
            return Err(ApiError::Unprocessable(
                "A department's canned response needs department_id".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::Unprocessable(format!(
                "Only a department's canned response has a department_id, not a {scope} one"
            )));
        }
        (CannedScope::Global, None) => CannedOwner::Global,
        (CannedScope::User, None) => CannedOwner::User(auth.user.id),
    };
    Ok(CannedContent {
        shortcut,
        text: form.text,
        owner,
    })
}

/// Refuses a department that does not exist (422: the body names it).
async fn check_department(state: &AppState, owner: CannedOwner) -> Result<(), ApiError> {
    if let Some(d) = owner.department()
        && state.store.find_department(d).await?.is_none()
    {
        return Err(ApiError::Unprocessable(format!(
            "There is no department with id {d}"
        )));
    }
    Ok(())
}

/// The policy's decision as an answer: 403 with its words.
fn allowed(auth: &AuthUser, action: CannedAction, owner: CannedOwner) -> Result<(), ApiError> {
    decide_canned(&auth.actor(), action, owner).map_err(|d| denied(&d))
}

/// `POST /canned-responses`: 201 the canned response.
#[utoipa::path(post, path = "/canned-responses", request_body = CannedForm,
    responses(
        (status = 201, description = "The canned response", body = CannedOut),
        (status = 403, description = "Not the caller's to add (the policy's words)", body = ErrorBody),
        (status = 409, description = "The shortcut exists in that scope, whatever its case", body = ErrorBody),
        (status = 422, description = "A bad shortcut, text, scope or department", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(form): ApiJson<CannedForm>,
) -> Result<(StatusCode, Json<CannedOut>), ApiError> {
    let content = content_of(form, &auth)?;
    allowed(&auth, CannedAction::Manage, content.owner)?;
    check_department(&state, content.owner).await?;
    let created = state
        .store
        .create_canned_response(&content, auth.user.id)
        .await?;
    Ok((StatusCode::CREATED, Json(CannedOut::of(&created, None))))
}

async fn find(state: &AppState, id: i64) -> Result<CannedResponse, ApiError> {
    state
        .store
        .find_canned_response(CannedResponseId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("canned response not found".into()))
}

/// `PUT /canned-responses/{id}`: 200 the canned response, changed. A change of scope needs
/// the right to manage both the old owner's and the new owner's.
#[utoipa::path(put, path = "/canned-responses/{id}", params(("id" = i64, Path, description = "The canned response")), request_body = CannedForm,
    responses(
        (status = 200, description = "The canned response, changed", body = CannedOut),
        (status = 403, description = "Not the caller's to change (the policy's words)", body = ErrorBody),
        (status = 404, description = "No such canned response", body = ErrorBody),
        (status = 409, description = "The shortcut exists in that scope, whatever its case", body = ErrorBody),
        (status = 422, description = "A bad shortcut, text, scope or department", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<CannedForm>,
) -> Result<Json<CannedOut>, ApiError> {
    let current = find(&state, id).await?;
    allowed(&auth, CannedAction::Manage, current.owner)?;
    let content = content_of(form, &auth)?;
    allowed(&auth, CannedAction::Manage, content.owner)?;
    check_department(&state, content.owner).await?;
    let updated = state
        .store
        .update_canned_response(current.id, &content)
        .await?;
    Ok(Json(CannedOut::of(&updated, None)))
}

/// `DELETE /canned-responses/{id}`: 204.
#[utoipa::path(delete, path = "/canned-responses/{id}", params(("id" = i64, Path, description = "The canned response")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the caller's to delete (the policy's words)", body = ErrorBody),
        (status = 404, description = "No such canned response", body = ErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let current = find(&state, id).await?;
    allowed(&auth, CannedAction::Delete, current.owner)?;
    if !state.store.delete_canned_response(current.id).await? {
        return Err(ApiError::NotFound("canned response not found".into()));
    }
    Ok(StatusCode::NO_CONTENT)
}
