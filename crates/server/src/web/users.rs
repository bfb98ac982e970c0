//! Users (admin only to create and change).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use postdesk_core::ids::UserId;
use postdesk_core::model::Role;
use postdesk_store::NewUser;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiJson;
use super::session::user_json;
use super::{ApiError, AppState, AuthUser};
use crate::password;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", patch(update))
}

#[derive(Deserialize)]
struct CreateUser {
    username: String,
    name: Option<String>,
    email: Option<String>,
    password: String,
    roles: Vec<Role>,
}

/// Minimum password length for new users.
const MIN_PASSWORD_LEN: usize = 8;

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

async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(form): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_admin()?;
    validate_username(&form.username).map_err(ApiError::Unprocessable)?;
    if form.password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::Unprocessable(format!(
            "The password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
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
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

async fn list(State(state): State<AppState>, _auth: AuthUser) -> Result<Json<Value>, ApiError> {
    // Every agent may list users: /invite autocompletes usernames.
    let users: Vec<Value> = state
        .store
        .list_users()
        .await?
        .iter()
        .map(user_json)
        .collect();
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
struct UpdateUser {
    active: Option<bool>,
    password: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<UpdateUser>,
) -> Result<Json<Value>, ApiError> {
    auth.require_admin()?;
    let id = UserId(id);
    if let Some(active) = form.active {
        if !active && id == auth.user.id {
            return Err(ApiError::Unprocessable(
                "You cannot deactivate yourself".into(),
            ));
        }
        state.store.set_user_active(id, active).await?;
    }
    if let Some(password) = form.password {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(ApiError::Unprocessable(format!(
                "The password must have at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        state
            .store
            .set_password_hash(id, &password::hash_async(password).await?)
            .await?;
    }
    let user = state
        .store
        .find_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    Ok(Json(user_json(&user)))
}
