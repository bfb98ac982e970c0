//! Where the access policy ([`postdesk_core::access`]) meets HTTP. Every route is declared
//! as a [`Route`] with its [`Rule`]; [`super::router`] wraps each one in [`authorize`], which
//! signs the user in, asks the policy and, for a conversation's routes, loads the
//! conversation, all before the handler runs. Handlers get the signed-in user ([`AuthUser`])
//! and the conversation ([`Allowed`]) only from here, so no route can skip the policy.
//!
//! One special case: `GET /metrics` is [`Rule::Admin`], and the operator may open it to
//! callers without sign-in with `POSTDESK_METRICS=1` ([`RouteInfo::open_with_metrics`]),
//! decided here too, before any handler.
//!
//! [`route_list`] is the same list the router is built from; the authorization matrix test
//! walks it, so a route added without an expectation fails that test.

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::MethodRouter;
use postdesk_core::access::{self, Action, Denial, Rule};
use postdesk_core::ids::{AttachmentId, ConversationId, MessageId};
use postdesk_store::Conversation;

use super::{ApiError, AppState};

/// One route: method, full path (as axum matches it), its access rule and its handler.
pub struct Route {
    /// What the matrix test and the docs see.
    pub info: RouteInfo,
    handler: MethodRouter<AppState>,
}

/// A route as listed: method, path and rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// `GET`, `POST`, …
    pub method: Method,
    /// The path with `{param}` placeholders, e.g. `/api/v1/conversations/{id}/take`.
    pub path: String,
    /// Who may call it.
    pub rule: Rule,
    /// Whether it answers a user who must still set up two-factor sign-in.
    pub before_two_factor: bool,
    /// An operations endpoint (`GET /metrics`): with `POSTDESK_METRICS=1` it answers anyone,
    /// without sign-in (for a scraper on a private network). Otherwise its rule applies, and
    /// a caller who sends no credentials at all is told it is off (404) instead of being
    /// asked to sign in.
    pub open_with_metrics: bool,
}

macro_rules! route_constructors {
    ($($name:ident => $method:ident, $routing:ident;)*) => {$(
        /// A route of this method.
        pub fn $name<H, T>(path: &str, rule: Rule, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            Self {
                info: RouteInfo { method: Method::$method, path: path.to_owned(), rule, before_two_factor: false, open_with_metrics: false },
                handler: axum::routing::$routing(handler),
            }
        }
    )*};
}

impl Route {
    route_constructors! {
        get => GET, get;
        post => POST, post;
        put => PUT, put;
        patch => PATCH, patch;
        delete => DELETE, delete;
    }

    /// The route answers a user who must still set up two-factor sign-in (to set it up).
    #[must_use]
    pub fn before_two_factor(mut self) -> Self {
        self.info.before_two_factor = true;
        self
    }

    /// The route answers without sign-in when `POSTDESK_METRICS` is on (see
    /// [`RouteInfo::open_with_metrics`]).
    #[must_use]
    pub fn open_with_metrics(mut self) -> Self {
        self.info.open_with_metrics = true;
        self
    }

    /// The route taking bodies of up to `bytes` (instead of [`super::MAX_JSON_BYTES`]).
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }

    /// The same route under `prefix` (e.g. `/api/v1`).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        self.info.path = format!("{prefix}{}", self.info.path);
        self
    }

    /// The handler wrapped in the policy's check.
    pub(super) fn guarded(self, state: &AppState) -> (String, MethodRouter<AppState>) {
        let guard = Guard {
            state: state.clone(),
            rule: self.info.rule,
            target: Target::of(&self.info.path),
            before_two_factor: self.info.before_two_factor,
            open_with_metrics: self.info.open_with_metrics,
        };
        let handler = self
            .handler
            .route_layer(axum::middleware::from_fn_with_state(guard, authorize));
        (self.info.path, handler)
    }
}

/// What a conversation route's `{id}` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Conversation,
    Message,
    Attachment,
    Other,
}

impl Target {
    fn of(path: &str) -> Self {
        let path = path.strip_prefix("/api/v1").unwrap_or(path);
        if path.starts_with("/conversations/{id}") {
            Target::Conversation
        } else if path.starts_with("/messages/{id}") {
            Target::Message
        } else if path.starts_with("/attachments/{id}") {
            Target::Attachment
        } else {
            Target::Other
        }
    }
}

#[derive(Clone)]
struct Guard {
    state: AppState,
    rule: Rule,
    target: Target,
    before_two_factor: bool,
    open_with_metrics: bool,
}

/// The conversation a route acts on, after the policy allowed the action.
#[derive(Debug, Clone)]
pub struct Allowed(pub Conversation);

impl FromRequestParts<AppState> for Allowed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Allowed>().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "{} {} reads a conversation without a conversation rule",
                parts.method,
                parts.uri.path()
            ))
        })
    }
}

/// The words and status of a refusal.
pub fn denied(denial: &Denial) -> ApiError {
    if denial.is_state() {
        ApiError::Conflict(denial.to_string())
    } else {
        ApiError::Forbidden(denial.to_string())
    }
}

/// The middleware: sign in, ask the policy, load the conversation.
async fn authorize(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match check(&guard, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(guard: &Guard, request: Request) -> Result<Request, ApiError> {
    if guard.rule == Rule::Public {
        return Ok(request);
    }
    if guard.open_with_metrics {
        if guard.state.settings.metrics {
            return Ok(request);
        }
        if !super::auth::has_credentials(request.headers()) {
            return Err(ApiError::NotFound(
                "Metrics are off: set POSTDESK_METRICS=1 to serve them without sign-in (on a private network), or read them with an admin's token".into(),
            ));
        }
    }
    let (mut parts, body) = request.into_parts();
    let auth = super::auth::authenticate(&guard.state, &parts.method, &parts.headers).await?;
    if auth.must_enrol && !guard.before_two_factor {
        return Err(ApiError::EnrolmentRequired(
            "Two-factor sign-in is required: set it up under Account (POST /api/v1/me/totp) first"
                .into(),
        ));
    }
    let actor = auth.actor();
    access::decide_rule(&actor, guard.rule).map_err(|d| denied(&d))?;
    if let Rule::Conversation(action) = guard.rule {
        let id = path_id(&mut parts).await?;
        let conversation = conversation_of(&guard.state, guard.target, id).await?;
        let scope = guard
            .state
            .store
            .conversation_scope(conversation)
            .await?
            .ok_or_else(|| ApiError::NotFound("conversation not found".into()))?;
        match access::decide(&actor, action, &scope) {
            Ok(()) => {}
            // Allowed to take, but already taken: the store says by whom.
            Err(Denial::NotQueued) if action == Action::Take => {}
            Err(denial) => return Err(denied(&denial)),
        }
        let found = guard
            .state
            .store
            .find_conversation(conversation)
            .await?
            .ok_or_else(|| ApiError::NotFound("conversation not found".into()))?;
        parts.extensions.insert(Allowed(found));
    }
    parts.extensions.insert(auth);
    Ok(Request::from_parts(parts, body))
}

/// The route's `{id}`.
async fn path_id(parts: &mut Parts) -> Result<i64, ApiError> {
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let raw = params
        .iter()
        .find(|(name, _)| *name == "id")
        .map(|(_, value)| value)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("conversation route without {{id}}")))?;
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("{raw:?} is not an id")))
}

async fn conversation_of(
    state: &AppState,
    target: Target,
    id: i64,
) -> Result<ConversationId, ApiError> {
    let found = match target {
        Target::Conversation => Some(ConversationId(id)),
        Target::Message => state.store.conversation_of_message(MessageId(id)).await?,
        Target::Attachment => {
            state
                .store
                .conversation_of_attachment(AttachmentId(id))
                .await?
        }
        Target::Other => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a conversation rule on a route that names no conversation"
            )));
        }
    };
    found.ok_or_else(|| {
        ApiError::NotFound(match target {
            Target::Message => "message not found".into(),
            Target::Attachment => "attachment not found".into(),
            _ => "conversation not found".into(),
        })
    })
}

/// Every route of the app with its rule: what [`super::router`] is built from.
#[must_use]
pub fn route_list() -> Vec<RouteInfo> {
    super::routes().into_iter().map(|r| r.info).collect()
}
