//! The HTTP side: the JSON API under `/api/v1` and the Server-Sent Events stream.
//!
//! Handlers follow one shape: extract (auth, path, JSON) -> check -> one store or service call
//! -> JSON. Errors go through [`error::ApiError`], which keeps the user's message apart from the
//! logged cause.

mod audit;
mod auth;
mod availability;
mod canned;
mod cluster;
mod contacts;
mod conversations;
mod departments;
mod desk;
mod drafts;
mod error;
mod events;
mod inboxes;
mod limits;
mod lists;
mod mail_oauth;
mod metrics;
mod oidc;
pub mod openapi;
pub mod policy;
mod presence;
mod push;
mod search;
mod session;
mod two_factor;
mod ui;
mod users;

use axum::Router;
use postdesk_core::access::Rule;
use postdesk_store::Store;

use crate::bus::Bus;
use crate::imap::Readers;
use crate::outbox::Outbox;
use crate::secrets::Secrets;
use crate::settings::Settings;

pub use auth::{AuthUser, constant_time_eq};
pub use error::ApiError;
pub use limits::StreamCounts;
pub use oidc::Oidc;
pub use policy::{RouteInfo, route_list};
pub use presence::Presences;
pub use session::SessionEnds;
pub use ui::escape;
pub use users::validate_username;

/// Largest file an upload takes (bytes).
pub const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;

/// Largest body of every other call (bytes): JSON forms, a message's text included.
pub const MAX_JSON_BYTES: usize = 512 * 1024;

/// Longest message text an agent may write (characters; an email reply included).
pub const MAX_MESSAGE_CHARS: usize = 100_000;

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
    /// Tells open event streams that their session ended.
    pub ends: session::SessionEnds,
    /// The open event streams per user, bounded by `settings.max_event_streams`.
    pub streams: limits::StreamCounts,
    /// The clock two-factor codes are checked against (tests move it).
    pub clock: crate::totp::Clock,
    /// Single sign-on (OpenID Connect), when configured.
    pub oidc: Option<std::sync::Arc<Oidc>>,
    /// Checks the senders of inbound emails (DKIM, SPF, DMARC).
    pub sender_auth: crate::sender_auth::Verifier,
    /// Mailbox sign-in with OAuth2: providers and tokens.
    pub oauth: crate::mail_oauth::MailOAuth,
    /// Routes departments' queues; nudge it when a queue or its agents change.
    pub routing: crate::routing::Routing,
    /// Who is viewing or typing in which conversation, on this node.
    pub presences: presence::Presences,
    /// What `GET /metrics` shows.
    pub metrics: crate::metrics::Metrics,
}

/// `text` with every byte but RFC 3986's unreserved characters (letters, digits, `-._~`)
/// percent-encoded: for query values and RFC 5987 header parameters.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every route of the app, each with its access rule.
pub(crate) fn routes() -> Vec<policy::Route> {
    let api = [
        session::routes(),
        oidc::routes(),
        two_factor::routes(),
        users::routes(),
        availability::routes(),
        departments::routes(),
        inboxes::routes(),
        cluster::routes(),
        mail_oauth::routes(),
        conversations::routes(),
        presence::routes(),
        drafts::routes(),
        lists::routes(),
        contacts::routes(),
        search::routes(),
        canned::routes(),
        events::routes(),
        audit::routes(),
        push::routes(),
        openapi::routes(),
    ];
    let mut all: Vec<policy::Route> = vec![policy::Route::get("/healthz", Rule::Public, healthz)];
    all.extend(ui::routes());
    all.extend(metrics::routes());
    all.extend(api.into_iter().flatten().map(|r| r.under("/api/v1")));
    all
}

/// `GET /healthz` and this module's other routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz))]
struct Api;

/// Whether the server answers (for load balancers and monitoring).
#[utoipa::path(get, path = "/healthz",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// The whole HTTP app: every route behind the access policy's check.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new();
    for route in routes() {
        let (path, handler) = route.guarded(&state);
        app = app.route(&path, handler);
    }
    let api_fallback = || async { ApiError::NotFound("No such API endpoint".into()) };
    app.route("/api/v1/{*rest}", axum::routing::any(api_fallback))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BYTES))
        .with_state(state)
}
