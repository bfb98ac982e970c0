//! Signing in and out, who am I, one's own password and sessions.
//!
//! A sign-in is throttled per account and per address ([`super::limits`]), checked with a
//! bounded number of concurrent argon2 hashes, and recorded in the audit log whether it
//! worked or not. Ending a session (logout, revocation, password change or reset,
//! deactivation) also ends its open event streams at once ([`SessionEnds`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use postdesk_core::access::Rule;
use postdesk_core::ids::{DepartmentId, SessionId, UserId};
use postdesk_core::model::{Availability, Role};
use postdesk_store::{NewAuditEntry, NewSession, SessionInfo};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use super::conversations::Time;
use super::error::{ApiJson, ErrorBody, Path};
use super::limits::Client;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};
use crate::password;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/login", Rule::Public, login),
        Route::post("/logout", Rule::SignedIn, logout).before_two_factor(),
        Route::get("/me", Rule::SignedIn, me).before_two_factor(),
        Route::put("/me/password", Rule::SignedIn, change_password),
        Route::get("/me/sessions", Rule::SignedIn, my_sessions),
        Route::delete("/me/sessions/{id}", Rule::SignedIn, end_my_session),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(login, logout, me, change_password, my_sessions, end_my_session))]
pub(super) struct Api;

/// A session or all of a user's sessions ended: their event streams stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// One session.
    Session(SessionId),
    /// Every session of a user.
    User(UserId),
}

/// Tells open event streams that their session ended (in this process; a stream also checks
/// its session in the database at every heartbeat, which covers the other nodes).
#[derive(Debug, Clone)]
pub struct SessionEnds(broadcast::Sender<Ended>);

impl Default for SessionEnds {
    fn default() -> Self {
        Self(broadcast::channel(256).0)
    }
}

impl SessionEnds {
    /// Announces an end.
    pub fn announce(&self, ended: Ended) {
        let _ = self.0.send(ended);
    }

    /// Hears ends from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Ended> {
        self.0.subscribe()
    }
}

/// A sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginForm {
    username: String,
    password: String,
    /// The second factor: a 6-digit code or a recovery code, when the user has one.
    totp: Option<String>,
}

/// A user as the API shows them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub(super) struct UserOut {
    id: UserId,
    /// Login name; what `/invite @username` names.
    username: String,
    /// Display name.
    name: String,
    /// Email address (may be empty).
    email: String,
    roles: Vec<Role>,
    /// Deactivated users cannot sign in.
    active: bool,
    availability: Availability,
}

impl From<&postdesk_store::User> for UserOut {
    fn from(user: &postdesk_store::User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            roles: user.roles.clone(),
            active: user.active,
            availability: user.availability,
        }
    }
}

/// A sign-in session as its user and admins see it (never its token).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub(super) struct SessionOut {
    id: SessionId,
    user_id: UserId,
    created_at: Time,
    expires_at: Time,
    /// Last used (updated at most once a minute).
    last_seen_at: Time,
    /// The address it signed in from.
    ip: String,
    user_agent: String,
    /// `password`, `password+totp`, `password+recovery_code` or `oidc`.
    method: String,
    /// It is the session of this call.
    current: bool,
}

impl SessionOut {
    /// `s`; `current` is the session of the call, when it is the user's own list.
    pub(super) fn of(s: &SessionInfo, current: Option<SessionId>) -> Self {
        Self {
            id: s.id,
            user_id: s.user_id,
            created_at: Time::at(s.created_at),
            expires_at: Time::at(s.expires_at),
            last_seen_at: Time::at(s.last_seen_at),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            method: s.method.clone(),
            current: current == Some(s.id),
        }
    }
}

/// A user's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SessionList {
    /// Newest first.
    pub(super) sessions: Vec<SessionOut>,
}

/// A change that answers nothing more.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Done {
    /// Always true.
    pub(super) ok: bool,
}

impl Done {
    /// `{ok: true}`.
    pub(super) fn ok() -> Json<Done> {
        Json(Done { ok: true })
    }
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

/// Why a sign-in did not start a session.
pub(super) enum SignInError {
    /// Wrong username or password, or a deactivated user (the same answer, so neither can
    /// be probed).
    Credentials,
    /// Too many failures: try again in this many seconds.
    Throttled(u64),
    /// The password was right; the second factor is due.
    TwoFactorRequired,
    /// The second factor was wrong (or already used).
    WrongSecondFactor,
    /// A store failure.
    Store(ApiError),
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::Credentials => ApiError::Unauthorized("Wrong username or password".into()),
            SignInError::Throttled(seconds) => ApiError::TooManyRequests {
                message: format!(
                    "Too many failed sign-ins: try again in {seconds} s (each failure doubles the wait)"
                ),
                retry_after: Some(seconds),
            },
            SignInError::TwoFactorRequired => ApiError::TwoFactorRequired(
                "Enter the 6-digit code from your authenticator app (or a recovery code)".into(),
            ),
            SignInError::WrongSecondFactor => {
                ApiError::Unauthorized("Wrong or already used two-factor code".into())
            }
            SignInError::Store(e) => e,
        }
    }
}

impl From<postdesk_store::StoreError> for SignInError {
    fn from(e: postdesk_store::StoreError) -> Self {
        SignInError::Store(e.into())
    }
}

/// Records a sign-in (or a failed one) in the audit log; a failure to record is logged, not
/// answered (the answer does not depend on it).
pub(super) async fn record(
    state: &AppState,
    client: &Client,
    actor: (Option<UserId>, &str),
    action: &str,
    details: Value,
) {
    let entry = NewAuditEntry {
        actor_id: actor.0,
        actor: actor.1.to_owned(),
        action: action.to_owned(),
        target: actor.0.map(|u| format!("user:{u}")).unwrap_or_default(),
        ip: client.ip.clone(),
        details,
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!(
            "Failed to record {action} of {:?} in the audit log: {e}",
            actor.1
        );
    }
}

/// Checks a username and password and starts a session.
///
/// # Errors
/// [`SignInError`].
pub(super) async fn start_session(
    state: &AppState,
    client: &Client,
    username: &str,
    password: String,
    second_factor: Option<&str>,
) -> Result<Session, SignInError> {
    let now = postdesk_store::now_ms();
    if let Some(seconds) =
        super::limits::sign_in_wait(&state.store, username, &client.ip, now).await?
    {
        record(
            state,
            client,
            (None, username),
            "sign_in.throttled",
            json!({ "retry_after": seconds }),
        )
        .await;
        return Err(SignInError::Throttled(seconds));
    }
    let Some((user, hash)) = state.store.find_user_credentials(username).await? else {
        // Spend the same time as a real check so usernames cannot be probed by timing.
        let _ = password::verify_async(password, dummy_hash().await).await;
        record(
            state,
            client,
            (None, username),
            "sign_in.failed",
            json!({ "reason": "unknown user" }),
        )
        .await;
        return Err(SignInError::Credentials);
    };
    if !password::verify_async(password, hash).await {
        record(
            state,
            client,
            (Some(user.id), username),
            "sign_in.failed",
            json!({ "reason": "wrong password" }),
        )
        .await;
        return Err(SignInError::Credentials);
    }
    if !user.active {
        record(
            state,
            client,
            (Some(user.id), username),
            "sign_in.failed",
            json!({ "reason": "deactivated" }),
        )
        .await;
        return Err(SignInError::Credentials);
    }
    let method = second_factor_of(state, client, &user, username, second_factor).await?;
    let session = open_session(state, client, &user, method).await?;
    record(
        state,
        client,
        (Some(user.id), username),
        "sign_in",
        json!({ "method": method }),
    )
    .await;
    Ok(session)
}

/// The second half of a sign-in for a user with two-factor sign-in on; the session's method.
async fn second_factor_of(
    state: &AppState,
    client: &Client,
    user: &postdesk_store::User,
    username: &str,
    code: Option<&str>,
) -> Result<&'static str, SignInError> {
    if !state.store.totp_state(user.id).await?.enabled {
        return Ok("password");
    }
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        // Not a failure: the first half of a two-step sign-in.
        return Err(SignInError::TwoFactorRequired);
    };
    if !super::two_factor::check_second_factor(state, user.id, code)
        .await
        .map_err(SignInError::Store)?
    {
        record(
            state,
            client,
            (Some(user.id), username),
            "sign_in.failed",
            json!({ "reason": "wrong two-factor code" }),
        )
        .await;
        return Err(SignInError::WrongSecondFactor);
    }
    Ok(if crate::totp::is_recovery_code(code) {
        "password+recovery_code"
    } else {
        "password+totp"
    })
}

/// Opens a session for a user who has proven who they are (`method`: how, e.g. `password`,
/// `password+totp`, `oidc`).
pub(super) async fn open_session(
    state: &AppState,
    client: &Client,
    user: &postdesk_store::User,
    method: &str,
) -> Result<Session, SignInError> {
    let token = password::new_token();
    let hours = i64::try_from(state.settings.session_hours).unwrap_or(24);
    let expires_at = postdesk_store::now_ms() + hours * 3_600_000;
    state
        .store
        .create_session(&NewSession {
            user_id: user.id,
            token_hash: password::token_hash(&token),
            expires_at,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            method: method.to_owned(),
        })
        .await?;
    // Logins are when sessions pile up, so expired ones are swept here.
    state.store.purge_expired_sessions().await?;
    Ok(Session {
        token,
        user: user.clone(),
        expires_at,
    })
}

/// A started session.
#[derive(Debug, Serialize, ToSchema)]
struct LoginAnswer {
    /// The bearer token: `Authorization: Bearer <token>`.
    token: String,
    expires_at: Time,
    user: UserOut,
}

/// Signs in with a username and password (and the second factor, when the user has one).
#[utoipa::path(post, path = "/login", request_body = LoginForm,
    responses(
        (status = 200, description = "Signed in", body = LoginAnswer),
        (status = 401, description = "Wrong credentials; or `totp_required: true` when the password was right and the second factor is due", body = ErrorBody),
        (status = 429, description = "Too many failures: `retry_after` seconds (also `Retry-After`)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[tracing::instrument(skip_all, fields(username = %form.username))]
async fn login(
    State(state): State<AppState>,
    client: Client,
    ApiJson(form): ApiJson<LoginForm>,
) -> Result<Json<LoginAnswer>, ApiError> {
    let session = start_session(
        &state,
        &client,
        form.username.trim(),
        form.password,
        form.totp.as_deref(),
    )
    .await?;
    Ok(Json(LoginAnswer {
        token: session.token,
        expires_at: Time::at(session.expires_at),
        user: UserOut::from(&session.user),
    }))
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

/// Signs out: the token stops working and its event streams end.
#[utoipa::path(post, path = "/logout", responses((status = 200, description = "Signed out", body = Done)))]
async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Done>, ApiError> {
    state.store.delete_session(&auth.token_hash).await?;
    state.ends.announce(Ended::Session(auth.session.id));
    super::availability::sessions_ended(&state).await;
    Ok(Done::ok())
}

/// The signed-in user, with what the web app needs of their sign-in.
#[derive(Debug, Serialize, ToSchema)]
struct Me {
    #[serde(flatten)]
    user: UserOut,
    /// The departments they are in.
    departments: Vec<DepartmentId>,
    /// They sign in with a second factor.
    totp_enabled: bool,
    /// They must set up two-factor sign-in before anything else.
    totp_enrolment_required: bool,
}

/// Who is signed in.
#[utoipa::path(get, path = "/me", responses((status = 200, description = "The signed-in user", body = Me)))]
async fn me(auth: AuthUser) -> Json<Me> {
    Json(Me {
        user: UserOut::from(&auth.user),
        departments: auth.departments,
        totp_enabled: auth.totp_enabled,
        totp_enrolment_required: auth.must_enrol,
    })
}

/// A new password for oneself.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordChange)]
struct PasswordForm {
    current_password: String,
    /// At least 10 characters, at most 256, not guessable.
    #[schema(min_length = 10, max_length = 256)]
    new_password: String,
}

/// Changes one's own password; every other session of the user ends.
#[utoipa::path(put, path = "/me/password", request_body = PasswordForm,
    responses(
        (status = 200, description = "Changed", body = Done),
        (status = 403, description = "The current password is wrong", body = ErrorBody),
        (status = 422, description = "The new password is weak", body = ErrorBody),
    ))]
async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<PasswordForm>,
) -> Result<Json<Done>, ApiError> {
    confirm_password(&state, &auth, form.current_password).await?;
    password::check_policy(
        &form.new_password,
        &[&auth.user.username, &auth.user.email, &auth.user.name],
    )
    .map_err(ApiError::Unprocessable)?;
    let hash = password::hash_async(form.new_password).await?;
    state
        .store
        .set_password_hash(auth.user.id, &hash, Some(auth.session.id))
        .await?;
    // Streams of this user re-check their session: all but this one's are gone.
    state.ends.announce(Ended::User(auth.user.id));
    super::audit::record(
        &state,
        &auth,
        &client,
        "user.password_change",
        &format!("user:{}", auth.user.id),
        json!({}),
    )
    .await;
    Ok(Done::ok())
}

/// The signed-in user's sessions.
#[utoipa::path(get, path = "/me/sessions", responses((status = 200, description = "Their sessions", body = SessionList)))]
async fn my_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state
        .store
        .list_sessions(auth.user.id)
        .await?
        .iter()
        .map(|s| SessionOut::of(s, Some(auth.session.id)))
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// Ends one of one's own sessions, and its event streams.
#[utoipa::path(delete, path = "/me/sessions/{id}", params(("id" = i64, Path, description = "The session")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "Not a session of the caller", body = ErrorBody),
    ))]
async fn end_my_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let id = SessionId(id);
    if !state.store.delete_user_session(auth.user.id, id).await? {
        return Err(ApiError::NotFound("session not found".into()));
    }
    state.ends.announce(Ended::Session(id));
    super::availability::sessions_ended(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks that `password` is the signed-in user's own (for changes that need it again).
///
/// # Errors
/// [`ApiError::Forbidden`] for a wrong password.
pub(super) async fn confirm_password(
    state: &AppState,
    auth: &AuthUser,
    password: String,
) -> Result<(), ApiError> {
    let (_, hash) = state
        .store
        .find_user_credentials(&auth.user.username)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    if password::verify_async(password, hash).await {
        Ok(())
    } else {
        Err(ApiError::Forbidden("The password is wrong".into()))
    }
}
