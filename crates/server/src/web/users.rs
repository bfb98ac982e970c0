//! Users (admin only to create and change).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use postdesk_core::access::Rule;
use postdesk_core::event::Event;
use postdesk_core::ids::UserId;
use postdesk_core::model::{Availability, Role};
use postdesk_store::NewUser;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiJson, ErrorBody, Path};
use super::limits::Client;
use super::policy::Route;
use super::session::{Ended, SessionList, SessionOut, UserOut};
use super::{ApiError, AppState, AuthUser};
use crate::password;

pub(super) fn routes() -> Vec<Route> {
    vec![
        // Every signed-in user lists users: /invite completes usernames.
        Route::get("/users", Rule::SignedIn, list),
        Route::post("/users", Rule::Admin, create),
        Route::patch("/users/{id}", Rule::Admin, update),
        Route::get("/users/{id}/sessions", Rule::Admin, sessions),
        Route::delete("/users/{id}/sessions", Rule::Admin, end_sessions),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, update, sessions, end_sessions))]
pub(super) struct Api;

/// A user to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    /// 1 to 64 letters, digits, `.`, `_` or `-`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    username: String,
    /// Display name (default: the username).
    name: Option<String>,
    email: Option<String>,
    /// At least 10 characters, at most 256, not guessable.
    #[schema(min_length = 10, max_length = 256)]
    password: String,
    /// At least one.
    #[schema(min_items = 1)]
    roles: Vec<Role>,
}

/// Checks a username: what `/invite @username` can name.
///
/// # Errors
/// A message saying what a username may contain.
pub fn validate_username(username: &str) -> Result<(), String> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "The username {username:?} must be 1 to 64 letters, digits, '.', '_' or '-'"
        ))
    }
}

/// Creates a user.
#[utoipa::path(post, path = "/users", request_body = CreateUser,
    responses(
        (status = 201, description = "The user", body = UserOut),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 422, description = "A bad username or address, a weak password, no role", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    validate_username(&form.username).map_err(ApiError::Unprocessable)?;
    password::check_policy(
        &form.password,
        &[
            &form.username,
            form.email.as_deref().unwrap_or_default(),
            form.name.as_deref().unwrap_or_default(),
        ],
    )
    .map_err(ApiError::Unprocessable)?;
    if form.roles.is_empty() {
        return Err(ApiError::Unprocessable(
            "Give the user at least one role: admin, manager or agent".into(),
        ));
    }
    let email = form.email.unwrap_or_default();
    if !email.is_empty() {
        postdesk_core::address::EmailAddress::parse(&email)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    }
    let user = state
        .store
        .create_user(&NewUser {
            name: form
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| form.username.clone()),
            username: form.username,
            email,
            password_hash: password::hash_async(form.password).await?,
            roles: form.roles,
        })
        .await?;
    let details = json!({ "username": user.username, "roles": user.roles });
    super::audit::record(
        &state,
        &auth,
        &client,
        "user.create",
        &format!("user:{}", user.id),
        details,
    )
    .await;
    Ok((StatusCode::CREATED, Json(UserOut::from(&user))))
}

/// The users.
#[derive(Debug, Serialize, ToSchema)]
struct UserList {
    users: Vec<UserOut>,
}

/// Every user (every signed-in user may list them, for `/invite` autocomplete).
#[utoipa::path(get, path = "/users", responses((status = 200, description = "The users", body = UserList)))]
async fn list(State(state): State<AppState>) -> Result<Json<UserList>, ApiError> {
    let users = state
        .store
        .list_users()
        .await?
        .iter()
        .map(UserOut::from)
        .collect();
    Ok(Json(UserList { users }))
}

/// Changes to a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    /// False deactivates them: every session and event stream ends, their conversations in
    /// progress return to their queues.
    active: Option<bool>,
    /// A new password: every session of theirs ends.
    #[schema(min_length = 10, max_length = 256)]
    password: Option<String>,
}

/// Activates or deactivates a user, or sets their password.
#[utoipa::path(patch, path = "/users/{id}", params(("id" = i64, Path, description = "The user")), request_body = UpdateUser,
    responses(
        (status = 200, description = "The user", body = UserOut),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "A weak password, or deactivating oneself", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<UpdateUser>,
) -> Result<Json<UserOut>, ApiError> {
    let id = UserId(id);
    let user = existing(&state, id).await?;
    if let Some(password) = &form.password {
        password::check_policy(password, &[&user.username, &user.email, &user.name])
            .map_err(ApiError::Unprocessable)?;
    }
    if let Some(active) = form.active {
        if !active && id == auth.user.id {
            return Err(ApiError::Unprocessable(
                "You cannot deactivate yourself".into(),
            ));
        }
        let returned = state.store.set_user_active(id, active).await?;
        if !active {
            state.ends.announce(Ended::User(id));
            if user.availability != Availability::Offline {
                state.bus.publish(Event::UserAvailability {
                    user_id: id,
                    availability: Availability::Offline,
                });
            }
            // Their conversations are back in their queues: routed again.
            state.routing.returned(&state.bus, &returned);
        }
        let action = if active {
            "user.activate"
        } else {
            "user.deactivate"
        };
        super::audit::record(
            &state,
            &auth,
            &client,
            action,
            &format!("user:{id}"),
            json!({}),
        )
        .await;
    }
    if let Some(password) = form.password {
        // A reset by an admin ends every session of the user.
        state
            .store
            .set_password_hash(id, &password::hash_async(password).await?, None)
            .await?;
        state.ends.announce(Ended::User(id));
        super::availability::sessions_ended(&state).await;
        super::audit::record(
            &state,
            &auth,
            &client,
            "user.password_reset",
            &format!("user:{id}"),
            json!({}),
        )
        .await;
    }
    let user = existing(&state, id).await?;
    Ok(Json(UserOut::from(&user)))
}

/// A user's sessions.
#[utoipa::path(get, path = "/users/{id}/sessions", params(("id" = i64, Path, description = "The user")),
    responses(
        (status = 200, description = "Their sessions", body = SessionList),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
async fn sessions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<SessionList>, ApiError> {
    let id = UserId(id);
    existing(&state, id).await?;
    let sessions = state
        .store
        .list_sessions(id)
        .await?
        .iter()
        .map(|s| SessionOut::of(s, None))
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
struct SessionsEnded {
    ended: u64,
}

/// Ends every session of a user (an admin's "sign out everywhere").
#[utoipa::path(delete, path = "/users/{id}/sessions", params(("id" = i64, Path, description = "The user")),
    responses(
        (status = 200, description = "Every session of theirs ended", body = SessionsEnded),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
async fn end_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let id = UserId(id);
    existing(&state, id).await?;
    let ended = state.store.delete_user_sessions(id).await?;
    state.ends.announce(Ended::User(id));
    super::availability::sessions_ended(&state).await;
    super::audit::record(
        &state,
        &auth,
        &client,
        "user.sessions_end",
        &format!("user:{id}"),
        json!({ "ended": ended }),
    )
    .await;
    Ok(Json(SessionsEnded { ended }))
}

/// The user with `id`, or 404.
pub(super) async fn existing(
    state: &AppState,
    id: UserId,
) -> Result<postdesk_store::User, ApiError> {
    state
        .store
        .find_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))
}
