//! The HTTP side: the JSON API under `/api/v1` and the Server-Sent Events stream.
//!
//! Handlers follow one shape: extract (auth, path, JSON) -> check -> one store or service call
//! -> JSON. Errors go through [`error::ApiError`], which keeps the user's message apart from the
//! logged cause.

mod auth;
mod conversations;
mod error;
mod events;
mod inboxes;
mod push;
mod session;
mod ui;
mod users;

use axum::Router;
use axum::routing::get;
use postdesk_store::Store;

use crate::bus::Bus;
use crate::imap::Readers;
use crate::outbox::Outbox;
use crate::secrets::Secrets;
use crate::settings::Settings;

pub use auth::AuthUser;
pub use error::ApiError;
pub use ui::escape;
pub use users::validate_username;

/// Largest request body: an upload of up to this size (bytes).
pub const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Realtime events.
    pub bus: Bus,
    /// Encrypts mail-server passwords.
    pub secrets: Secrets,
    /// IMAP readers, restarted when inboxes change.
    pub readers: Readers,
    /// Outgoing email.
    pub outbox: Outbox,
    /// Configuration.
    pub settings: Settings,
    /// Turns true when the server stops; long-lived responses (the event stream) end then.
    pub stopping: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

/// The whole HTTP app.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(session::router())
        .merge(users::router())
        .merge(inboxes::router())
        .merge(conversations::router())
        .merge(events::router())
        .merge(push::router())
        .fallback(|| async { ApiError::NotFound("No such API endpoint".into()) });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(ui::router())
        .nest("/api/v1", api)
        .layer(axum::extract::DefaultBodyLimit::max(
            MAX_UPLOAD_BYTES + 64 * 1024,
        ))
        .with_state(state)
}
