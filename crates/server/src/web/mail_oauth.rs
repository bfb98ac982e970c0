//! Mailbox sign-in with OAuth2 (admin): the providers, and connecting an inbox.
//!
//! `POST /inboxes/{id}/oauth/start` answers the provider's authorization URL (code flow with
//! PKCE); the connection under way is kept in the database under its random `state`, bound to
//! the session that started it, for [`PENDING_TTL`], so that any node can finish it. The
//! provider sends the browser back to `GET /oauth/callback`, which must carry that same
//! session (the web app's cookie, or the same bearer token), redeems the code, stores the
//! tokens (encrypted) and sends the browser to the Email Inboxes page with a message: connected,
//! or the provider's own words. The inbox's reader restarts at once, from its watermark.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use postdesk_core::access::Rule;
use postdesk_core::ids::InboxId;
use postdesk_core::model::MailAuth;
use postdesk_store::{OAuthPending, OAuthProvider, OAuthProviderSettings, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::auth::{SESSION_COOKIE, constant_time_eq, cookie};
use super::conversations::Time;
use super::error::{ApiJson, ErrorBody, Path, Query};
use super::limits::Client;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};
use crate::mail_oauth::{ProviderKind, provider_text};
use crate::settings::MAIL_OAUTH_CALLBACK_PATH;

/// How long connecting a mailbox may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/oauth/providers", Rule::Admin, list),
        Route::post("/oauth/providers", Rule::Admin, create),
        Route::put("/oauth/providers/{id}", Rule::Admin, update),
        Route::delete("/oauth/providers/{id}", Rule::Admin, delete),
        Route::post("/inboxes/{id}/oauth/start", Rule::Admin, start),
        // Public like the single sign-on callback: the browser comes back from the provider.
        // The state and the session it is bound to are checked here.
        Route::get("/oauth/callback", Rule::Public, callback),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, update, delete, start, callback))]
pub(super) struct Api;

/// An OAuth2 provider's settings (`POST`, and `PUT` replacing them).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProviderForm {
    /// Unique.
    #[schema(min_length = 1)]
    name: String,
    /// `google`, `microsoft` or `generic` (another word is 422).
    #[schema(value_type = ProviderKindWord)]
    kind: String,
    client_id: String,
    /// Required on create; left out on update keeps the stored one.
    client_secret: Option<String>,
    auth_url: Option<String>,
    token_url: Option<String>,
    scopes: Option<Vec<String>>,
    /// Microsoft only: the directory (`common`, `organizations`, a domain or a tenant id).
    tenant: Option<String>,
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(message.into())
}

/// The kinds of OAuth2 provider, in the words the API takes.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Describes `ProviderForm::kind`, read by `ProviderKind::parse`.
enum ProviderKindWord {
    Google,
    Microsoft,
    Generic,
}

/// The provider as the API shows it: never the secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OAuthProvider)]
pub(super) struct ProviderOut {
    id: i64,
    name: String,
    /// `google`, `microsoft` or `generic`.
    kind: String,
    client_id: String,
    /// A client secret is stored (it is never answered).
    secret_set: bool,
    auth_url: String,
    token_url: String,
    scopes: Vec<String>,
    /// The path of the redirect URI to register at the provider, after the public URL.
    redirect_uri_path: String,
    created_at: Time,
}

impl From<&OAuthProvider> for ProviderOut {
    fn from(p: &OAuthProvider) -> Self {
        Self {
            id: p.id,
            name: p.settings.name.clone(),
            kind: p.settings.kind.clone(),
            client_id: p.settings.client_id.clone(),
            secret_set: !p.settings.client_secret_encrypted.is_empty(),
            auth_url: p.settings.auth_url.clone(),
            token_url: p.settings.token_url.clone(),
            scopes: p.settings.scopes.clone(),
            redirect_uri_path: MAIL_OAUTH_CALLBACK_PATH.to_owned(),
            created_at: Time::at(p.created_at),
        }
    }
}

fn http_url(url: &str, what: &str) -> Result<String, ApiError> {
    let url = url.trim();
    let parsed = oauth2::url::Url::parse(url)
        .map_err(|e| unprocessable(format!("{what} {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(unprocessable(format!("{what} must be an https:// URL")));
    }
    Ok(url.to_owned())
}

fn provider_settings(
    state: &AppState,
    form: ProviderForm,
    existing: Option<&OAuthProvider>,
) -> Result<OAuthProviderSettings, ApiError> {
    let kind = ProviderKind::parse(&form.kind).map_err(|e| unprocessable(format!("{e:#}")))?;
    if form.name.trim().is_empty() {
        return Err(unprocessable("The provider needs a name"));
    }
    if form.client_id.trim().is_empty() {
        return Err(unprocessable("The client id is required"));
    }
    let tenant = form
        .tenant
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    if !tenant
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
    {
        return Err(unprocessable(
            "The tenant is a directory name, domain or id (letters, digits, '-' and '.')",
        ));
    }
    let (auth_url, token_url) = match (kind.endpoints(tenant), form.auth_url, form.token_url) {
        (_, Some(auth), Some(token)) => {
            (http_url(&auth, "auth_url")?, http_url(&token, "token_url")?)
        }
        (Some(known), None, None) => known,
        (Some(_), _, _) => {
            return Err(unprocessable(
                "Give both auth_url and token_url, or neither to use the provider's own",
            ));
        }
        (None, _, _) => {
            return Err(unprocessable(
                "A generic provider needs auth_url and token_url",
            ));
        }
    };
    let scopes: Vec<String> = form
        .scopes
        .unwrap_or_else(|| kind.default_scopes())
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.is_empty() {
        return Err(unprocessable(
            "Give the scopes that allow IMAP and SMTP access (and a refresh token)",
        ));
    }
    if scopes.iter().any(|s| s.contains(char::is_whitespace)) {
        return Err(unprocessable("A scope has no spaces: give a list"));
    }
    let client_secret_encrypted = match (form.client_secret, existing) {
        (Some(secret), _) if !secret.trim().is_empty() => {
            state.secrets.encrypt(secret.trim().as_bytes())
        }
        (_, Some(old)) => old.settings.client_secret_encrypted.clone(),
        _ => return Err(unprocessable("The client secret is required")),
    };
    Ok(OAuthProviderSettings {
        name: form.name.trim().to_owned(),
        kind: kind.as_str().to_owned(),
        client_id: form.client_id.trim().to_owned(),
        client_secret_encrypted,
        auth_url,
        token_url,
        scopes,
    })
}

/// The providers.
#[derive(Debug, Serialize, ToSchema)]
struct ProviderList {
    providers: Vec<ProviderOut>,
}

/// The OAuth2 providers mailboxes sign in with.
#[utoipa::path(get, path = "/oauth/providers", responses((status = 200, description = "The providers", body = ProviderList)))]
async fn list(State(state): State<AppState>) -> Result<Json<ProviderList>, ApiError> {
    let providers = state
        .store
        .list_oauth_providers()
        .await?
        .iter()
        .map(ProviderOut::from)
        .collect();
    Ok(Json(ProviderList { providers }))
}

/// Adds an OAuth2 provider.
#[utoipa::path(post, path = "/oauth/providers", request_body = ProviderForm,
    responses(
        (status = 201, description = "The provider", body = ProviderOut),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A setting that cannot work (a generic provider without both URLs, no secret)", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<ProviderForm>,
) -> Result<(StatusCode, Json<ProviderOut>), ApiError> {
    let settings = provider_settings(&state, form, None)?;
    let provider = state.store.create_oauth_provider(&settings).await?;
    let details = json!({ "name": provider.settings.name, "kind": provider.settings.kind });
    let target = format!("oauth_provider:{}", provider.id);
    super::audit::record(
        &state,
        &auth,
        &client,
        "oauth_provider.create",
        &target,
        details,
    )
    .await;
    Ok((StatusCode::CREATED, Json(ProviderOut::from(&provider))))
}

async fn find_provider(state: &AppState, id: i64) -> Result<OAuthProvider, ApiError> {
    state
        .store
        .find_oauth_provider(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("OAuth2 provider not found".into()))
}

/// Replaces a provider's settings (`client_secret` left out keeps the stored one).
#[utoipa::path(put, path = "/oauth/providers/{id}", params(("id" = i64, Path, description = "The provider")), request_body = ProviderForm,
    responses(
        (status = 200, description = "The provider", body = ProviderOut),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "A setting that cannot work", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<ProviderForm>,
) -> Result<Json<ProviderOut>, ApiError> {
    let existing = find_provider(&state, id).await?;
    let settings = provider_settings(&state, form, Some(&existing))?;
    let provider = state.store.update_oauth_provider(id, &settings).await?;
    let details = json!({ "name": provider.settings.name, "kind": provider.settings.kind });
    let target = format!("oauth_provider:{id}");
    super::audit::record(
        &state,
        &auth,
        &client,
        "oauth_provider.update",
        &target,
        details,
    )
    .await;
    Ok(Json(ProviderOut::from(&provider)))
}

/// Deletes a provider.
#[utoipa::path(delete, path = "/oauth/providers/{id}", params(("id" = i64, Path, description = "The provider")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 409, description = "An inbox signs in with it", body = ErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let provider = find_provider(&state, id).await?;
    state.store.delete_oauth_provider(id).await?;
    let details = json!({ "name": provider.settings.name });
    let target = format!("oauth_provider:{id}");
    super::audit::record(
        &state,
        &auth,
        &client,
        "oauth_provider.delete",
        &target,
        details,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Where to send the browser to connect an inbox.
#[derive(Debug, Serialize, ToSchema)]
struct OAuthStart {
    /// The provider's authorization URL.
    authorize_url: String,
    /// Where the provider sends the browser back.
    redirect_uri: String,
}

/// `POST /inboxes/{id}/oauth/start`: the provider's authorization URL for this inbox.
#[utoipa::path(post, path = "/inboxes/{id}/oauth/start", params(("id" = i64, Path, description = "The inbox")),
    responses(
        (status = 200, description = "Send the browser to `authorize_url`", body = OAuthStart),
        (status = 404, description = "No such inbox", body = ErrorBody),
        (status = 409, description = "The inbox signs in with a password", body = ErrorBody),
        (status = 422, description = "The provider's settings cannot start a sign-in", body = ErrorBody),
    ))]
async fn start(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<OAuthStart>, ApiError> {
    let inbox = state
        .store
        .find_inbox(InboxId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("inbox not found".into()))?;
    let uses_oauth = inbox.settings.imap.auth == MailAuth::OAuth2
        || inbox.settings.smtp.auth == MailAuth::OAuth2;
    let Some(provider_id) = inbox.settings.oauth_provider_id.filter(|_| uses_oauth) else {
        return Err(ApiError::Conflict(
            "The inbox signs in with a password: set imap.auth or smtp.auth to \"oauth2\" with an oauth_provider_id first".into(),
        ));
    };
    let provider = find_provider(&state, provider_id).await?;
    let redirect_uri = super::oidc::redirect_uri(&state, &headers, MAIL_OAUTH_CALLBACK_PATH);
    let begun = state
        .oauth
        .begin(&provider, &redirect_uri, &inbox.settings.email)
        .map_err(|e| unprocessable(format!("{e:#}")))?;
    state
        .store
        .save_oauth_pending(&OAuthPending {
            state: begun.state,
            inbox_id: inbox.id,
            provider_id,
            session_hash: auth.token_hash.clone(),
            user_id: auth.user.id,
            verifier_encrypted: state.secrets.encrypt(begun.verifier.as_bytes()),
            redirect_uri: redirect_uri.clone(),
            expires_at: now_ms() + i64::try_from(PENDING_TTL.as_millis()).unwrap_or(0),
        })
        .await?;
    let details = json!({ "provider": provider.settings.name });
    let target = format!("inbox:{}", inbox.id);
    super::audit::record(
        &state,
        &auth,
        &client,
        "inbox.oauth_start",
        &target,
        details,
    )
    .await;
    Ok(Json(OAuthStart {
        authorize_url: begun.authorize_url,
        redirect_uri,
    }))
}

/// What the provider sends back (plus whatever else it adds, ignored).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The connection under way.
    state: Option<String>,
    /// The provider's refusal.
    error: Option<String>,
    /// The provider's words.
    error_description: Option<String>,
}

/// To the Email Inboxes page with the outcome (`oauth=connected|failed`, the inbox, the words).
fn to_inboxes(outcome: &str, inbox: Option<InboxId>, message: &str) -> Response {
    let inbox = inbox.map(|i| i.to_string()).unwrap_or_default();
    let query = super::oidc::form_urlencoded_pairs(&[
        ("oauth", outcome),
        ("inbox", &inbox),
        ("message", message),
    ]);
    let mut response = Redirect::to(&format!("/?{query}#/admin/inboxes")).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("a header value"),
    );
    response
}

/// The session token the request carries: the web app's cookie or a bearer token.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE).or_else(|| {
        headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
    })
}

/// `GET /oauth/callback`: back from the provider (the browser, with the session that started
/// the connection).
#[utoipa::path(get, path = "/oauth/callback", params(CallbackQuery),
    responses((status = 303, description = "To the Email Inboxes page: `/?oauth=connected|failed&inbox=<id>&message=<words>#/admin/inboxes`",
        headers(("Location" = String, description = "The Email Inboxes page")))))]
#[tracing::instrument(skip_all)]
async fn callback(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let pending = match q.state.as_deref() {
        Some(s) if !s.is_empty() => state.store.take_oauth_pending(s).await?,
        _ => None,
    };
    let Some(pending) = pending else {
        return Ok(to_inboxes(
            "failed",
            None,
            "The connection could not be matched to one under way (it took more than 10 minutes, was already used, or did not start here): use Connect again",
        ));
    };
    // The session that started it must finish it: otherwise someone could have another
    // admin's browser connect an inbox to the attacker's mailbox.
    let bound = session_token(&headers).is_some_and(|token| {
        constant_time_eq(&crate::password::token_hash(token), &pending.session_hash)
    });
    let user = state.store.find_user(pending.user_id).await?;
    let Some(user) = user.filter(|_| bound) else {
        tracing::warn!(inbox = %pending.inbox_id, "A mailbox OAuth2 callback came without the session that started it");
        return Ok(to_inboxes(
            "failed",
            Some(pending.inbox_id),
            "The connection must be finished in the browser session that started it: sign in to postdesk there and use Connect again",
        ));
    };
    let target = format!("inbox:{}", pending.inbox_id);
    let record = async |action: &str, details: Value| {
        super::audit::record_as(&state, &user, &client, action, &target, details).await;
    };
    if let Some(error) = q.error.as_deref() {
        let code = provider_text(Some(error), 64);
        let words = provider_text(q.error_description.as_deref(), 300);
        record(
            "inbox.oauth_failed",
            json!({ "error": code, "error_description": words }),
        )
        .await;
        let message = if words.trim().is_empty() {
            format!("The provider refused the connection ({code})")
        } else {
            format!("The provider refused the connection: {words} ({code})")
        };
        return Ok(to_inboxes("failed", Some(pending.inbox_id), &message));
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return Ok(to_inboxes(
            "failed",
            Some(pending.inbox_id),
            "The provider sent no authorization code: use Connect again",
        ));
    };
    let provider = find_provider(&state, pending.provider_id).await?;
    let verifier = state
        .secrets
        .decrypt_string(&pending.verifier_encrypted)
        .map_err(ApiError::Internal)?;
    if let Err(words) = state
        .oauth
        .finish(
            pending.inbox_id,
            &provider,
            code,
            verifier,
            &pending.redirect_uri,
        )
        .await
    {
        tracing::warn!(inbox = %pending.inbox_id, "Connecting the mailbox with OAuth2 failed: {words}");
        record("inbox.oauth_failed", json!({ "error": words })).await;
        return Ok(to_inboxes(
            "failed",
            Some(pending.inbox_id),
            &format!("Connecting with {} failed: {words}", provider.settings.name),
        ));
    }
    record(
        "inbox.oauth_connect",
        json!({ "provider": provider.settings.name }),
    )
    .await;
    // The reader starts again (also out of needs_reauth), from its watermark.
    state.readers.reconcile(pending.inbox_id).await?;
    state.outbox.interrupt();
    Ok(to_inboxes(
        "connected",
        Some(pending.inbox_id),
        &format!("Connected with {}", provider.settings.name),
    ))
}

/// An inbox's OAuth2 connection (never a token).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OAuthConnection {
    provider_id: i64,
    provider_name: Option<String>,
    provider_kind: Option<String>,
    /// Tokens are stored and were not refused.
    connected: bool,
    /// Why the provider refused to renew the sign-in (connect again); null when not.
    needs_reauth: Option<String>,
    connected_at: Option<Time>,
    refreshed_at: Option<Time>,
    access_token_expires_at: Option<Time>,
}

impl OAuthConnection {
    /// The inbox's connection as the inbox answer shows it: `None` without a provider.
    pub(super) async fn of(
        state: &AppState,
        inbox: &postdesk_store::Inbox,
    ) -> Result<Option<Self>, ApiError> {
        let Some(provider_id) = inbox.settings.oauth_provider_id else {
            return Ok(None);
        };
        let provider = state.store.find_oauth_provider(provider_id).await?;
        let tokens = state
            .store
            .find_oauth_tokens(inbox.id)
            .await?
            .filter(|t| t.provider_id == provider_id);
        Ok(Some(OAuthConnection {
            provider_id,
            provider_name: provider.as_ref().map(|p| p.settings.name.clone()),
            provider_kind: provider.as_ref().map(|p| p.settings.kind.clone()),
            connected: tokens.as_ref().is_some_and(|t| t.reauth_error.is_none()),
            needs_reauth: tokens.as_ref().and_then(|t| t.reauth_error.clone()),
            connected_at: tokens.as_ref().map(|t| Time::at(t.connected_at)),
            refreshed_at: tokens.as_ref().and_then(|t| t.refreshed_at).map(Time::at),
            access_token_expires_at: tokens
                .as_ref()
                .and_then(|t| t.access_expires_at)
                .map(Time::at),
        }))
    }
}
