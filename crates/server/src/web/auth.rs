//! Authentication. API clients send `Authorization: Bearer <token>`; the browser app sends the
//! same token in the `postdesk_session` cookie (HttpOnly, SameSite=Lax, Secure over TLS). A
//! cookie is sent by the browser on its own, so every state-changing call authenticated by
//! the cookie must also carry the session's CSRF token in `X-CSRF-Token` (the page gets it in
//! a `<meta>` tag; another site cannot read it). Bearer calls need no CSRF token: a browser
//! never adds that header by itself.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use postdesk_core::model::Role;
use postdesk_store::User;

use super::{ApiError, AppState};
use crate::password::token_hash;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "postdesk_session";

/// The header carrying the CSRF token on cookie-authenticated calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The logged-in user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Who.
    pub user: User,
    /// The hash of the token used (to log out).
    pub token_hash: String,
}

impl AuthUser {
    /// 403 unless the user is an admin.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`].
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.has_role(Role::Admin) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("Only an admin can do this".into()))
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name`.
#[must_use]
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: derived from the session token, so it needs no storage and
/// dies with the session.
#[must_use]
pub fn csrf_token(session_token: &str) -> String {
    postdesk_store::sha256_hex(format!("postdesk-csrf:{session_token}").as_bytes())
}

/// Compares in time independent of where the first difference is.
#[must_use]
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The user a session token belongs to.
///
/// # Errors
/// [`ApiError::Unauthorized`] for an unknown or expired token.
pub async fn user_for_token(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let hash = token_hash(token);
    let user = state.store.find_session_user(&hash).await?.ok_or_else(|| {
        ApiError::Unauthorized("The login is invalid or has expired; log in again".into())
    })?;
    Ok(AuthUser {
        user,
        token_hash: hash,
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(&parts.headers) {
            return user_for_token(state, token).await;
        }
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(|| {
            ApiError::Unauthorized("Log in first: send Authorization: Bearer <token>".into())
        })?;
        let auth = user_for_token(state, token).await?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent, &csrf_token(token)) {
                return Err(ApiError::Forbidden(
                    "Missing or wrong CSRF token: reload the page".into(),
                ));
            }
        }
        Ok(auth)
    }
}
