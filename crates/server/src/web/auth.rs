//! Authentication. API clients send `Authorization: Bearer <token>`; the browser app sends the
//! same token in the `postdesk_session` cookie (HttpOnly, SameSite=Lax, Secure over TLS). A
//! cookie is sent by the browser on its own, so every state-changing call authenticated by
//! the cookie must also carry the session's CSRF token in `X-CSRF-Token` (the page gets it in
//! a `<meta>` tag; another site cannot read it). Bearer calls need no CSRF token: a browser
//! never adds that header by itself.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use postdesk_core::access::Actor;
use postdesk_core::ids::DepartmentId;
use postdesk_core::model::Role;
use postdesk_store::{SessionInfo, User};

use super::{ApiError, AppState};
use crate::password::token_hash;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "postdesk_session";

/// The header carrying the CSRF token on cookie-authenticated calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The signed-in user of a request, put there by the access policy's middleware
/// ([`super::policy`]) before any handler runs.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Who.
    pub user: User,
    /// The session used.
    pub session: SessionInfo,
    /// The departments the user belongs to.
    pub departments: Vec<DepartmentId>,
    /// The hash of the token used (to log out).
    pub token_hash: String,
    /// Whether the user signs in with a second factor.
    pub totp_enabled: bool,
    /// Two-factor sign-in is required of this user and not set up yet: until it is, only
    /// the routes that set it up answer.
    pub must_enrol: bool,
}

impl AuthUser {
    /// The user as the access policy sees them.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.user.id,
            roles: self.user.roles.clone(),
            departments: self.departments.clone(),
        }
    }

    /// Whether the user is an admin.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.user.has_role(Role::Admin)
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

/// Whether the request carries a login at all (a bearer token or the session cookie), valid
/// or not.
#[must_use]
pub fn has_credentials(headers: &HeaderMap) -> bool {
    bearer(headers).is_some() || cookie(headers, SESSION_COOKIE).is_some()
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
    let found = state.store.find_session_user(&hash).await?.ok_or_else(|| {
        ApiError::Unauthorized("The login is invalid or has expired; log in again".into())
    })?;
    // A single sign-on session's second factor is the provider's business.
    let must_enrol = !found.totp_enabled
        && found.session.method != "oidc"
        && super::two_factor::required_of(state, &found.user).await?;
    Ok(AuthUser {
        user: found.user,
        session: found.session,
        departments: found.departments,
        token_hash: hash,
        totp_enabled: found.totp_enabled,
        must_enrol,
    })
}

/// Authenticates a request by its bearer token or its session cookie; a state-changing call
/// authenticated by the cookie must carry the session's CSRF token.
///
/// # Errors
/// [`ApiError::Unauthorized`] without a valid login, [`ApiError::Forbidden`] for a missing or
/// wrong CSRF token.
pub async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<AuthUser, ApiError> {
    if let Some(token) = bearer(headers) {
        return user_for_token(state, token).await;
    }
    let token = cookie(headers, SESSION_COOKIE).ok_or_else(|| {
        ApiError::Unauthorized("Log in first: send Authorization: Bearer <token>".into())
    })?;
    let auth = user_for_token(state, token).await?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers
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

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    /// The user the policy's middleware authenticated. A handler on a route without a rule
    /// gets an error rather than an unchecked user: access cannot be forgotten.
    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuthUser>().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "{} {} has no access rule that signs the user in",
                parts.method,
                parts.uri.path()
            ))
        })
    }
}
