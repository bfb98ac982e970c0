//! Push from the mail server: Dovecot's push-notification plugin tells postdesk the moment it
//! stores a new email, and the inbox's reader syncs at once instead of when IDLE reports it.
//!
//! Dovecot 2.3 tells an IDLE client about new mail half a second after it is stored (a fixed
//! delay in its mailbox watcher); its `ox` push driver calls an HTTP endpoint as soon as the
//! email is saved. Off unless `POSTDESK_PUSH_SECRET` is set. See docs/imap-push.md.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use postdesk_core::access::Rule;
use serde::Deserialize;

use super::auth::constant_time_eq;
use super::error::ErrorBody;
use super::policy::Route;
use super::{ApiError, AppState};

pub(super) fn routes() -> Vec<Route> {
    // Public to the policy: the hook checks its own secret (HTTP Basic), not a user.
    vec![
        Route::put("/hooks/dovecot-push", Rule::Public, notify),
        Route::post("/hooks/dovecot-push", Rule::Public, notify),
    ]
}

/// This file's routes in the OpenAPI document: one handler for `PUT` and `POST`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(notify))]
pub(super) struct Api;

/// What Dovecot's `ox` driver sends (it sends more; only these are read).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct Notification {
    /// The IMAP login the email was stored for.
    user: String,
    /// The mailbox it was stored in.
    folder: Option<String>,
    /// `messageNew`, …
    event: Option<String>,
}

/// The password of an HTTP Basic `Authorization` header.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
}

/// Dovecot's push notification: the readers of the inboxes of that IMAP login and folder
/// fetch at once. Authenticated by its own secret (HTTP Basic, password
/// `POSTDESK_PUSH_SECRET`), not by a user.
#[utoipa::path(method(put, post), path = "/hooks/dovecot-push", request_body = Notification,
    security(("push_secret" = [])),
    responses(
        (status = 204, description = "The readers were woken"),
        (status = 400, description = "Not a Dovecot push notification", body = ErrorBody),
        (status = 401, description = "A wrong secret", body = ErrorBody),
        (status = 404, description = "Push is off (no `POSTDESK_PUSH_SECRET`)", body = ErrorBody),
    ))]
async fn notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Some(secret) = state.settings.push_secret.as_deref() else {
        return Err(ApiError::NotFound(
            "Push is off: set POSTDESK_PUSH_SECRET to turn it on".into(),
        ));
    };
    if !basic_password(&headers).is_some_and(|given| constant_time_eq(&given, secret)) {
        return Err(ApiError::Unauthorized(
            "Give the push secret as the password of HTTP Basic authentication".into(),
        ));
    }
    let note: Notification = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("Not a Dovecot push notification: {e}")))?;
    let woken = state
        .readers
        .wake_login(&note.user, note.folder.as_deref())
        .await?;
    tracing::debug!(user = %note.user, folder = ?note.folder, event = ?note.event, woken, "Push from the mail server");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_read_from_basic_authentication() {
        let mut headers = HeaderMap::new();
        assert_eq!(basic_password(&headers), None);
        // "push:s3cr:et" – a password may contain ':'.
        headers.insert(
            header::AUTHORIZATION,
            "Basic cHVzaDpzM2NyOmV0".parse().unwrap(),
        );
        assert_eq!(basic_password(&headers).as_deref(), Some("s3cr:et"));
        headers.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(basic_password(&headers), None);
    }
}
