//! Single sign-on for agents with OpenID Connect (authorization code flow with PKCE).
//!
//! `GET /api/v1/login/oidc` sends the browser to the provider; the provider sends it back to
//! `GET /api/v1/login/oidc/callback`, which checks everything, finds or creates the user by
//! their **verified** email address and starts a session as the password sign-in does.
//!
//! - The provider's metadata and keys (discovery) are fetched at the first sign-in, not at
//!   startup, so an unreachable provider never keeps postdesk from starting; they are kept
//!   for [`METADATA_TTL`] and fetched again at once when an ID token is signed with a key
//!   they do not have (key rotation).
//! - Each sign-in gets a random `state`, `nonce` and PKCE (S256) verifier. They are kept in
//!   this process for [`PENDING_TTL`] under the state, which the browser holds in the
//!   HttpOnly, SameSite=Lax cookie [`OIDC_COOKIE`]: the callback must come back to the same
//!   node, in the same browser. (Behind a load balancer with several nodes, route
//!   `/api/v1/login/oidc*` to one node or make sessions sticky.)
//! - The ID token is verified by `openidconnect`: signature against the provider's keys
//!   (the algorithms it announces), issuer, audience, expiry and nonce. Then
//!   `email_verified` must be true.
//! - Roles come from the claim [`Settings::oidc_role_claim`](crate::settings::Settings):
//!   when the ID token has it, it sets the user's roles at every sign-in (so taking admin
//!   away at the provider takes effect at the next sign-in); without it, a new user is an
//!   agent and an existing one keeps their roles.
//! - A session opened here has the method `oidc`: postdesk's own two-factor code is not
//!   asked (the provider's sign-in, with its own second factor, stands for it).
//!
//! Failures end on the login page (`/login?error=sso&reason=…`) with words a person can act
//! on; the causes are in the server log and the audit log (`sign_in.failed`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use postdesk_core::access::Rule;
use postdesk_core::ids::UserId;
use postdesk_core::model::Role;
use postdesk_store::{NewAuditEntry, NewUser, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::{constant_time_eq, cookie};
use super::error::Query;
use super::limits::Client;
use super::policy::Route;
use super::ui::{over_tls, set_cookie, signed_in};
use super::{ApiError, AppState};
use crate::password;
use crate::settings::Settings;

/// The cookie binding a sign-in under way to the browser that started it (holds the state).
pub const OIDC_COOKIE: &str = "postdesk_oidc";

/// How long a sign-in may take at the provider.
pub const PENDING_TTL: Duration = Duration::from_secs(10 * 60);

/// How long the provider's metadata and keys are used before they are fetched again.
pub const METADATA_TTL: Duration = Duration::from_secs(60 * 60);

/// Sign-ins under way that one node keeps at most (the oldest give way).
const MAX_PENDING: usize = 10_000;

/// How long one request to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/login/oidc", Rule::Public, begin),
        Route::get("/login/oidc/callback", Rule::Public, callback),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(begin, callback))]
pub(super) struct Api;

/// Every claim of the ID token, for the role claim (whose name is configured).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// The client as discovery builds it: authorization endpoint set, token and userinfo
/// endpoints as the provider announced them.
type ProviderClient = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider's metadata and keys, as fetched at one time.
struct Discovered {
    client: Arc<ProviderClient>,
    at: Instant,
}

/// A sign-in under way: what the callback needs to finish it.
struct Pending {
    verifier: String,
    nonce: String,
    redirect_uri: String,
    created: Instant,
}

/// Single sign-on's configuration and state on this node; see the [module docs](self).
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: ClientSecret,
    role_claim: String,
    create_users: bool,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<Discovered>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// Single sign-on as the settings configure it, or `None` when it is off. Contacts no
    /// one: the provider is asked at the first sign-in.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Arc<Oidc>>> {
        if !settings.oidc_enabled() {
            return Ok(None);
        }
        let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
        let http = crate::mail_oauth::provider_http(PROVIDER_TIMEOUT)
            .context("Failed to set up the HTTP client for single sign-on")?;
        Ok(Some(Arc::new(Oidc {
            issuer: text(&settings.oidc_issuer),
            client_id: text(&settings.oidc_client_id),
            client_secret: ClientSecret::new(text(&settings.oidc_client_secret)),
            role_claim: settings.oidc_role_claim.trim().to_owned(),
            create_users: settings.oidc_create_users,
            http,
            discovered: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })))
    }

    /// The issuer URL, as configured.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The client for the provider, discovering it when not known yet, older than
    /// [`METADATA_TTL`], or when `refresh` (an unknown signing key). When fetching fails
    /// but an older copy is at hand, that one is used.
    async fn client(&self, refresh: bool) -> anyhow::Result<Arc<ProviderClient>> {
        let mut discovered = self.discovered.lock().await;
        if let Some(d) = discovered.as_ref()
            && !refresh
            && d.at.elapsed() < METADATA_TTL
        {
            return Ok(d.client.clone());
        }
        match self.discover().await {
            Ok(client) => {
                let client = Arc::new(client);
                *discovered = Some(Discovered {
                    client: client.clone(),
                    at: Instant::now(),
                });
                Ok(client)
            }
            Err(e) => match discovered.as_ref() {
                Some(d) => {
                    tracing::warn!(
                        "Refreshing the single sign-on provider's metadata failed; using the copy from {} s ago: {e:#}",
                        d.at.elapsed().as_secs()
                    );
                    Ok(d.client.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn discover(&self) -> anyhow::Result<ProviderClient> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .with_context(|| format!("POSTDESK_OIDC_ISSUER {:?} is not a URL", self.issuer))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .with_context(|| {
                format!(
                    "Discovery at {}/.well-known/openid-configuration failed (is POSTDESK_OIDC_ISSUER exactly the provider's issuer?)",
                    self.issuer.trim_end_matches('/')
                )
            })?;
        // Basic authentication unless the provider only takes the secret in the form.
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|methods| {
                !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            });
        let client = ProviderClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            Some(self.client_secret.clone()),
        );
        Ok(if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        })
    }

    /// Keeps a sign-in under way, dropping expired ones (and the oldest, when full).
    fn remember(&self, state: String, pending: Pending) {
        let mut map = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, p| p.created.elapsed() < PENDING_TTL);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state, pending);
    }

    /// The sign-in under way with `state`, used up; `None` when unknown or expired.
    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(state)
            .filter(|p| p.created.elapsed() < PENDING_TTL)
    }
}

/// Single sign-on, or the 404 saying it is off.
fn configured(state: &AppState) -> Result<Arc<Oidc>, ApiError> {
    state.oidc.clone().ok_or_else(|| {
        ApiError::NotFound(
            "Single sign-on is not configured (POSTDESK_OIDC_ISSUER, POSTDESK_OIDC_CLIENT_ID and POSTDESK_OIDC_CLIENT_SECRET are unset)".into(),
        )
    })
}

/// The redirect URI at `path` for this request: on the public URL, else on the origin the
/// browser used (its Host header), else on the listen address.
pub(super) fn redirect_uri(state: &AppState, headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    let scheme = if over_tls(state, headers) {
        "https"
    } else {
        "http"
    };
    let origin = host.map(|h| format!("{scheme}://{h}"));
    state.settings.redirect_uri(origin.as_deref(), path)
}

/// Why a single sign-on did not work, as the login page says it (`reason` of
/// `/login?error=sso`; with `provider`, the provider's error code and own words).
#[must_use]
pub(super) fn failure_message(
    reason: Option<&str>,
    provider_error: Option<&str>,
    description: Option<&str>,
) -> String {
    match reason {
        Some("provider") => {
            let code = provider_error.unwrap_or("error");
            match description.map(str::trim).filter(|d| !d.is_empty()) {
                Some(words) => {
                    format!("The single sign-on provider refused the sign-in: {words} ({code})")
                }
                None => format!("The single sign-on provider refused the sign-in ({code})"),
            }
        }
        Some("state") => "The single sign-on could not be matched to this browser (it took more than 10 minutes, or was started in another browser or tab): please try again".into(),
        Some("unverified") => "Your email address is not verified at the single sign-on provider: verify it there, then sign in again".into(),
        Some("no_email") => "The single sign-on provider did not send an email address: an admin must let postdesk have the email scope".into(),
        Some("deactivated") => "Your postdesk account is deactivated: ask an admin to activate it".into(),
        Some("unknown_user") => "No postdesk user has your email address, and single sign-on does not create users here: ask an admin to create your account".into(),
        Some("unavailable") => "The single sign-on provider cannot be reached right now: try again later, or log in with your password".into(),
        _ => "Single sign-on failed: the provider's answer could not be verified. Try again; if it keeps failing, tell an admin (the cause is in the server log)".into(),
    }
}

/// `GET /login/oidc`: off to the provider.
#[utoipa::path(get, path = "/login/oidc",
    responses(
        (status = 303, description = "To the provider (or to the login page when it cannot be reached), with the `postdesk_oidc` cookie",
            headers(("Location" = String, description = "The provider's authorization URL"))),
        (status = 404, description = "Single sign-on is not configured", body = super::error::ErrorBody),
    ))]
async fn begin(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let oidc = configured(&state)?;
    let client = match oidc.client(false).await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!("Single sign-on is unavailable: {e:#}");
            return Ok(to_login(&state, &headers, "unavailable", &[]));
        }
    };
    let redirect_uri = redirect_uri(&state, &headers, crate::settings::OIDC_CALLBACK_PATH);
    let redirect = RedirectUrl::new(redirect_uri.clone()).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "The single sign-on redirect URI {redirect_uri:?} is not a URL (check POSTDESK_PUBLIC_URL): {e}"
        ))
    })?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .set_redirect_uri(Cow::Owned(redirect))
        .url();
    let state_value = csrf.secret().clone();
    oidc.remember(
        state_value.clone(),
        Pending {
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            redirect_uri,
            created: Instant::now(),
        },
    );
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            OIDC_COOKIE,
            &state_value,
            PENDING_TTL.as_secs(),
            over_tls(&state, &headers),
        ),
    );
    Ok(response)
}

/// What the provider sends back (plus whatever else it adds, ignored).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The sign-in under way (also in the `postdesk_oidc` cookie).
    state: Option<String>,
    /// RFC 9207: the issuer of this answer.
    iss: Option<String>,
    /// The provider's refusal.
    error: Option<String>,
    /// The provider's words.
    error_description: Option<String>,
}

/// To the login page with `reason` (and extra query pairs), the sign-in cookie gone.
fn to_login(
    state: &AppState,
    headers: &HeaderMap,
    reason: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut query = form_urlencoded_pairs(&[("error", "sso"), ("reason", reason)]);
    if !extra.is_empty() {
        query.push('&');
        query.push_str(&form_urlencoded_pairs(extra));
    }
    let mut response = Redirect::to(&format!("/login?{query}")).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(OIDC_COOKIE, "", 0, over_tls(state, headers)),
    );
    response
}

/// `k=v&…`, percent-encoded.
pub(super) fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", super::percent_encode(k), super::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The request a callback answers: where refusals are recorded from and sent back to.
struct Landing<'a> {
    state: &'a AppState,
    client: &'a Client,
    headers: &'a HeaderMap,
}

impl Landing<'_> {
    /// Records a failed single sign-on by `who` and sends the browser to the login page.
    async fn refuse(&self, who: (Option<UserId>, &str), reason: &str, details: Value) -> Response {
        let mut recorded = json!({ "method": "oidc", "reason": reason });
        if let (Some(into), Value::Object(more)) = (recorded.as_object_mut(), details) {
            into.extend(more);
        }
        super::session::record(self.state, self.client, who, "sign_in.failed", recorded).await;
        to_login(self.state, self.headers, reason, &[])
    }

    /// [`Landing::refuse`] before anyone is known.
    async fn refuse_anonymous(&self, reason: &str, details: Value) -> Response {
        self.refuse((None, ""), reason, details).await
    }
}

/// Who the provider says signed in.
struct Identity {
    subject: String,
    email: Option<String>,
    verified: bool,
    name: Option<String>,
    roles: Option<Vec<Role>>,
}

/// `GET /login/oidc/callback`: back from the provider.
#[utoipa::path(get, path = "/login/oidc/callback", params(CallbackQuery),
    responses(
        (status = 303, description = "Signed in: to `/` with the session cookie; else to `/login?error=sso&reason=…`",
            headers(("Location" = String, description = "The app or the login page"))),
        (status = 404, description = "Single sign-on is not configured", body = super::error::ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
async fn callback(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let oidc = configured(&state)?;
    let landing = Landing {
        state: &state,
        client: &client,
        headers: &headers,
    };
    // The state must be the one this browser was given: otherwise someone else's sign-in
    // could be finished in this browser (login CSRF).
    let bound = match (cookie(&headers, OIDC_COOKIE), q.state.as_deref()) {
        (Some(held), Some(sent)) => constant_time_eq(held, sent).then_some(sent),
        _ => None,
    };
    let Some(pending) = bound.and_then(|s| oidc.take(s)) else {
        let why = if bound.is_some() {
            "expired or already used"
        } else {
            "no or another state"
        };
        return Ok(landing
            .refuse_anonymous("state", json!({ "detail": why }))
            .await);
    };
    if let Some(error) = q.error.as_deref() {
        // The provider's words, kept short and without control characters.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        let words = crate::mail_oauth::provider_text(q.error_description.as_deref(), 300);
        super::session::record(
            &state,
            &client,
            (None, ""),
            "sign_in.failed",
            json!({ "method": "oidc", "reason": "provider", "error": code, "error_description": words }),
        )
        .await;
        return Ok(to_login(
            &state,
            &headers,
            "provider",
            &[("provider_error", &code), ("description", &words)],
        ));
    }
    if let Some(iss) = q.iss.as_deref()
        && iss != oidc.issuer()
    {
        tracing::warn!(
            "A single sign-on answer came from issuer {iss:?}, not {:?}",
            oidc.issuer()
        );
        return Ok(landing
            .refuse_anonymous("failed", json!({ "detail": "wrong iss" }))
            .await);
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return Ok(landing
            .refuse_anonymous("failed", json!({ "detail": "no code" }))
            .await);
    };
    let identity = match identify(&oidc, pending, code).await {
        Ok(identity) => identity,
        Err(Failure::Unavailable(e)) => {
            tracing::error!("Single sign-on is unavailable: {e:#}");
            return Ok(landing.refuse_anonymous("unavailable", json!({})).await);
        }
        Err(Failure::Invalid(e)) => {
            tracing::warn!("A single sign-on was refused: {e:#}");
            // Only the step in the audit log; the whole cause is in the server log.
            let detail = e.to_string();
            return Ok(landing
                .refuse_anonymous("failed", json!({ "detail": detail }))
                .await);
        }
    };
    let Some(email) = identity.email.clone().filter(|e| !e.trim().is_empty()) else {
        let detail = json!({ "subject": identity.subject });
        return Ok(landing.refuse_anonymous("no_email", detail).await);
    };
    if !identity.verified {
        return Ok(landing
            .refuse((None, &email), "unverified", json!({}))
            .await);
    }
    let user = match state.store.find_user_by_email(&email).await? {
        Some(user) if !user.active => {
            let who = (Some(user.id), user.username.as_str());
            return Ok(landing.refuse(who, "deactivated", json!({})).await);
        }
        Some(user) => update_roles(&state, &client, &oidc, user, identity.roles.as_deref()).await?,
        None if oidc.create_users => create_user(&state, &client, &oidc, &email, &identity).await?,
        None => {
            return Ok(landing
                .refuse((None, &email), "unknown_user", json!({}))
                .await);
        }
    };
    let session = super::session::open_session(&state, &client, &user, "oidc").await?;
    super::session::record(
        &state,
        &client,
        (Some(user.id), &user.username),
        "sign_in",
        json!({ "method": "oidc", "issuer": oidc.issuer() }),
    )
    .await;
    let mut response = signed_in(&state, &headers, &session.token);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(OIDC_COOKIE, "", 0, over_tls(&state, &headers)),
    );
    Ok(response)
}

/// Why the provider's answer gave no identity.
enum Failure {
    /// The provider could not be reached (or answered nonsense to discovery).
    Unavailable(anyhow::Error),
    /// The code exchange or the ID token failed its checks.
    Invalid(anyhow::Error),
}

/// Redeems the code and verifies the ID token.
async fn identify(oidc: &Oidc, pending: Pending, code: String) -> Result<Identity, Failure> {
    let client = oidc.client(false).await.map_err(Failure::Unavailable)?;
    let redirect = RedirectUrl::new(pending.redirect_uri)
        .map_err(|e| Failure::Invalid(anyhow::anyhow!("bad redirect URI: {e}")))?;
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            Failure::Unavailable(anyhow::anyhow!("the provider has no token endpoint: {e}"))
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .set_redirect_uri(Cow::Owned(redirect))
        .request_async(&oidc.http)
        .await
        .map_err(|e| match e {
            openidconnect::RequestTokenError::Request(e) => {
                Failure::Unavailable(anyhow::Error::new(e).context("the token request failed"))
            }
            other => {
                Failure::Invalid(anyhow::Error::new(other).context("the code exchange failed"))
            }
        })?;
    let id_token = response
        .id_token()
        .ok_or_else(|| Failure::Invalid(anyhow::anyhow!("the token response has no ID token")))?;
    let nonce = Nonce::new(pending.nonce);
    let verified = match read_identity(oidc, &client, id_token, &nonce) {
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => {
            // The provider may have rotated its keys since they were fetched.
            let fresh = oidc.client(true).await.map_err(Failure::Unavailable)?;
            read_identity(oidc, &fresh, id_token, &nonce)
        }
        other => other,
    };
    verified.map_err(|e| {
        Failure::Invalid(anyhow::Error::new(e).context("the ID token failed its checks"))
    })
}

fn read_identity(
    oidc: &Oidc,
    client: &ProviderClient,
    id_token: &openidconnect::IdToken<
        OtherClaims,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    nonce: &Nonce,
) -> Result<Identity, ClaimsVerificationError> {
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, nonce)?;
    Ok(Identity {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        verified: claims.email_verified() == Some(true),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().trim().to_owned())
            .filter(|n| !n.is_empty()),
        roles: roles_of(&claims.additional_claims().claims, &oidc.role_claim),
    })
}

/// The roles a claim names: `None` without the claim; otherwise every `admin`, `manager`
/// and `agent` in it (a list, or a space-separated string; case-insensitive), or `agent`
/// when it names none of them. A dotted name (`realm_access.roles`) reaches into objects
/// when no claim has the whole name.
fn roles_of(claims: &serde_json::Map<String, Value>, name: &str) -> Option<Vec<Role>> {
    let value = claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |v, part| v.get(part))
    })?;
    let words: Vec<String> = match value {
        Value::Null => return None,
        Value::String(s) => s.split_whitespace().map(str::to_ascii_lowercase).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .flat_map(str::split_whitespace)
            .map(str::to_ascii_lowercase)
            .collect(),
        _ => Vec::new(),
    };
    let roles: Vec<Role> = [Role::Admin, Role::Manager, Role::Agent]
        .into_iter()
        .filter(|r| words.iter().any(|w| w == r.as_str()))
        .collect();
    Some(if roles.is_empty() {
        vec![Role::Agent]
    } else {
        roles
    })
}

/// Applies the claim's roles to an existing user when they differ (recorded as
/// `user.roles_change`).
async fn update_roles(
    state: &AppState,
    client: &Client,
    oidc: &Oidc,
    user: User,
    roles: Option<&[Role]>,
) -> Result<User, ApiError> {
    let Some(roles) = roles else {
        return Ok(user);
    };
    let mut before = user.roles.clone();
    let mut after = roles.to_vec();
    before.sort_by_key(|r| r.as_str());
    after.sort_by_key(|r| r.as_str());
    if before == after {
        return Ok(user);
    }
    state.store.set_user_roles(user.id, roles).await?;
    audit_as_postdesk(
        state,
        client,
        "user.roles_change",
        user.id,
        json!({ "username": user.username, "from": user.roles, "to": roles, "source": "oidc", "issuer": oidc.issuer() }),
    )
    .await;
    Ok(User {
        roles: roles.to_vec(),
        ..user
    })
}

/// Creates the user of a verified email address no user has (recorded as `user.create`).
async fn create_user(
    state: &AppState,
    client: &Client,
    oidc: &Oidc,
    email: &str,
    identity: &Identity,
) -> Result<User, ApiError> {
    let roles = identity.roles.clone().unwrap_or_else(|| vec![Role::Agent]);
    // Nobody knows this password: the user signs in with single sign-on (or an admin sets
    // a password for them).
    let password_hash = password::hash_async(password::new_token()).await?;
    let base = username_base(email);
    let mut created = None;
    for n in 1..=100u32 {
        let username = if n == 1 {
            base.clone()
        } else {
            format!("{base}{n}")
        };
        let new = NewUser {
            username,
            name: identity.name.clone().unwrap_or_else(|| email.to_owned()),
            email: email.to_owned(),
            password_hash: password_hash.clone(),
            roles: roles.clone(),
        };
        match state.store.create_user(&new).await {
            Ok(user) => {
                created = Some(user);
                break;
            }
            Err(postdesk_store::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let user = created.ok_or_else(|| {
        ApiError::Conflict(format!(
            "Could not find a free username for {email} (tried {base} to {base}100): ask an admin to create the account"
        ))
    })?;
    audit_as_postdesk(
        state,
        client,
        "user.create",
        user.id,
        json!({ "username": user.username, "roles": user.roles, "source": "oidc", "issuer": oidc.issuer() }),
    )
    .await;
    Ok(user)
}

/// A valid username from an email address's local part: letters, digits, `.`, `_` and `-`
/// kept (others become `-`), at most 60 characters, `user` when nothing is left.
fn username_base(email: &str) -> String {
    let local = email.rsplit_once('@').map_or(email, |(local, _)| local);
    let mapped: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let trimmed = mapped.trim_matches(|c| matches!(c, '.' | '-' | '_'));
    let base = if trimmed.is_empty() { "user" } else { trimmed };
    debug_assert!(super::validate_username(base).is_ok());
    base.to_owned()
}

/// Records what single sign-on did to a user, with postdesk itself as the actor.
async fn audit_as_postdesk(
    state: &AppState,
    client: &Client,
    action: &str,
    user: UserId,
    details: Value,
) {
    let entry = NewAuditEntry {
        actor_id: None,
        actor: "postdesk".to_owned(),
        action: action.to_owned(),
        target: format!("user:{user}"),
        ip: client.ip.clone(),
        details,
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!("Failed to record {action} of user {user} in the audit log: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn roles_come_from_a_string_a_list_or_a_nested_claim() {
        let c = claims(json!({ "postdesk_role": "admin" }));
        assert_eq!(roles_of(&c, "postdesk_role"), Some(vec![Role::Admin]));
        let c = claims(json!({ "postdesk_role": "Agent manager" }));
        assert_eq!(
            roles_of(&c, "postdesk_role"),
            Some(vec![Role::Manager, Role::Agent])
        );
        let c = claims(json!({ "roles": ["viewer", "admin"] }));
        assert_eq!(roles_of(&c, "roles"), Some(vec![Role::Admin]));
        let c = claims(json!({ "realm_access": { "roles": ["manager"] } }));
        assert_eq!(
            roles_of(&c, "realm_access.roles"),
            Some(vec![Role::Manager])
        );
        let c = claims(json!({ "postdesk_role": "superuser" }));
        assert_eq!(roles_of(&c, "postdesk_role"), Some(vec![Role::Agent]));
        let c = claims(json!({ "other": "admin" }));
        assert_eq!(roles_of(&c, "postdesk_role"), None);
    }

    #[test]
    fn usernames_are_made_valid_from_the_local_part() {
        assert_eq!(username_base("Ana.Agent@example.test"), "ana.agent");
        assert_eq!(username_base("ana+support@example.test"), "ana-support");
        assert_eq!(username_base("Zoë@example.test"), "zo");
        assert_eq!(username_base("+++@example.test"), "user");
        assert_eq!(
            username_base(&format!("{}@x.test", "a".repeat(90))).len(),
            60
        );
        for email in ["ana@x.test", "ünïcödé@x.test", "@x.test", "a b@x.test"] {
            assert!(super::super::validate_username(&username_base(email)).is_ok());
        }
    }

    #[test]
    fn the_provider_s_words_are_framed_and_our_reasons_are_actionable() {
        let words = failure_message(
            Some("provider"),
            Some("access_denied"),
            Some("Not in the group"),
        );
        assert!(
            words.contains("Not in the group") && words.contains("access_denied"),
            "{words}"
        );
        assert!(failure_message(Some("unverified"), None, None).contains("not verified"));
        assert!(failure_message(Some("made-up"), None, None).contains("server log"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            form_urlencoded_pairs(&[("error", "sso"), ("description", "a b&c=<d>")]),
            "error=sso&description=a%20b%26c%3D%3Cd%3E"
        );
    }
}
