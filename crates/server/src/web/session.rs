//! Login, logout and who am I.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiJson;
use super::{ApiError, AppState, AuthUser};
use crate::password;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

pub(super) fn user_json(user: &postdesk_store::User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "email": user.email,
        "roles": user.roles,
        "active": user.active,
    })
}

/// A started login session.
pub(super) struct Session {
    /// The bearer token (also the session cookie's value).
    pub token: String,
    /// Who logged in.
    pub user: postdesk_store::User,
    /// When it expires (ms).
    pub expires_at: i64,
}

/// Checks a username and password and starts a session, or `None` for wrong credentials or a
/// deactivated user (the same answer, so neither can be probed).
///
/// # Errors
/// Store failures.
pub(super) async fn start_session(
    state: &AppState,
    username: &str,
    password: String,
) -> Result<Option<Session>, ApiError> {
    let Some((user, hash)) = state.store.find_user_credentials(username).await? else {
        // Spend the same time as a real check so usernames cannot be probed by timing.
        let _ = password::verify_async(password, dummy_hash().await).await;
        return Ok(None);
    };
    if !password::verify_async(password, hash).await || !user.active {
        return Ok(None);
    }
    let token = password::new_token();
    let hours = i64::try_from(state.settings.session_hours).unwrap_or(24);
    let expires_at = postdesk_store::now_ms() + hours * 3_600_000;
    state
        .store
        .create_session(user.id, &password::token_hash(&token), expires_at)
        .await?;
    // Logins are when sessions pile up, so expired ones are swept here.
    state.store.purge_expired_sessions().await?;
    Ok(Some(Session {
        token,
        user,
        expires_at,
    }))
}

#[tracing::instrument(skip_all, fields(username = %form.username))]
async fn login(
    State(state): State<AppState>,
    ApiJson(form): ApiJson<LoginForm>,
) -> Result<Json<Value>, ApiError> {
    let session = start_session(&state, form.username.trim(), form.password)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Wrong username or password".into()))?;
    Ok(Json(json!({
        "token": session.token,
        "expires_at": super::conversations::time(session.expires_at),
        "user": user_json(&session.user),
    })))
}

/// A hash to verify against when the username is unknown, made once.
async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            password::hash_async(password::new_password())
                .await
                .unwrap_or_default()
        })
        .await
        .clone()
}

async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Value>, ApiError> {
    state.store.delete_session(&auth.token_hash).await?;
    Ok(Json(json!({ "ok": true })))
}

async fn me(auth: AuthUser) -> Json<Value> {
    Json(user_json(&auth.user))
}
