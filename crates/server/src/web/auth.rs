//! Authentication: `Authorization: Bearer <token>` on every API call but login and health.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use postdesk_core::model::Role;
use postdesk_store::User;

use super::{ApiError, AppState};
use crate::password::token_hash;

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

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).filter(|t| !t.is_empty()).ok_or_else(|| {
            ApiError::Unauthorized("Log in first: send Authorization: Bearer <token>".into())
        })?;
        let hash = token_hash(token);
        let user = state.store.find_session_user(&hash).await?.ok_or_else(|| {
            ApiError::Unauthorized("The login token is invalid or has expired; log in again".into())
        })?;
        Ok(AuthUser {
            user,
            token_hash: hash,
        })
    }
}
