//! Two-factor sign-in (TOTP): enrol, confirm (answers one-time recovery codes), turn off; an
//! admin resets a user's who lost their device, and says who must use it (nobody, admins or
//! everyone). A user who must and has not is signed in for setting it up only
//! ([`super::policy`] refuses every other route).

use axum::Json;
use axum::extract::State;
use postdesk_core::access::Rule;
use postdesk_core::ids::UserId;
use postdesk_core::model::Role;
use postdesk_store::User;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{ApiJson, ErrorBody, Path};
use super::limits::Client;
use super::policy::Route;
use super::session::Done;
use super::{ApiError, AppState, AuthUser};
use crate::totp;

/// The system setting naming who must use two-factor sign-in.
const REQUIRE_KEY: &str = "require_totp";

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::post("/me/totp", Rule::SignedIn, enrol).before_two_factor(),
        Route::post("/me/totp/confirm", Rule::SignedIn, confirm).before_two_factor(),
        Route::delete("/me/totp", Rule::SignedIn, turn_off),
        Route::delete("/users/{id}/totp", Rule::Admin, reset),
        Route::get("/security", Rule::Admin, security),
        Route::put("/security", Rule::Admin, set_security),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(enrol, confirm, turn_off, reset, security, set_security))]
pub(super) struct Api;

/// Who must sign in with a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Whoever wants to.
    #[default]
    Off,
    /// Admins.
    Admins,
    /// Every user.
    Everyone,
}

async fn requirement(state: &AppState) -> Result<Requirement, ApiError> {
    Ok(match state.store.setting(REQUIRE_KEY).await?.as_deref() {
        Some("admins") => Requirement::Admins,
        Some("everyone") => Requirement::Everyone,
        _ => Requirement::Off,
    })
}

/// Whether `user` must sign in with a second factor.
///
/// # Errors
/// Store failures.
pub(super) async fn required_of(state: &AppState, user: &User) -> Result<bool, ApiError> {
    Ok(match requirement(state).await? {
        Requirement::Off => false,
        Requirement::Admins => user.has_role(Role::Admin),
        Requirement::Everyone => true,
    })
}

/// Checks a second factor for a sign-in: a 6-digit code whose time step was never used, or
/// an unused recovery code (used up by this). `Ok(false)` for a wrong one.
///
/// # Errors
/// Store failures.
pub(super) async fn check_second_factor(
    state: &AppState,
    user: UserId,
    code: &str,
) -> Result<bool, ApiError> {
    if totp::is_recovery_code(code) {
        return Ok(state
            .store
            .use_recovery_code(user, &totp::recovery_hash(code))
            .await?);
    }
    let stored = state.store.totp_state(user).await?;
    let Some(secret) = stored.secret_encrypted.filter(|_| stored.enabled) else {
        return Ok(false);
    };
    let secret = state.secrets.decrypt(&secret)?;
    match totp::matching_step(&secret, code, state.clock.now_seconds()) {
        Some(step) => Ok(state.store.use_totp_step(user, step).await?),
        None => Ok(false),
    }
}

/// A new second factor to confirm.
#[derive(Debug, Serialize, ToSchema)]
struct Enrolment {
    /// An `otpauth://` URI for an authenticator app (as a QR code).
    secret_uri: String,
    /// Its base32 key, to type in instead.
    secret: String,
}

/// Starts setting up two-factor sign-in: a new secret for an authenticator app.
#[utoipa::path(post, path = "/me/totp",
    responses(
        (status = 200, description = "The secret", body = Enrolment),
        (status = 409, description = "Already on", body = ErrorBody),
    ))]
async fn enrol(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Enrolment>, ApiError> {
    if auth.totp_enabled {
        return Err(ApiError::Conflict(
            "Two-factor sign-in is already on: turn it off first to enrol another device".into(),
        ));
    }
    let secret = totp::new_secret();
    let (uri, base32) = totp::enrolment(&secret, &auth.user.username)?;
    state
        .store
        .set_pending_totp(auth.user.id, &state.secrets.encrypt(&secret))
        .await?;
    Ok(Json(Enrolment {
        secret_uri: uri,
        secret: base32,
    }))
}

/// The authenticator app's current code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeForm {
    /// 6 digits.
    #[schema(pattern = "^[0-9]{6}$")]
    code: String,
}

/// One-time recovery codes.
#[derive(Debug, Serialize, ToSchema)]
struct RecoveryCodes {
    /// 10 codes `xxxxx-xxxxx`, shown once; each signs in once.
    recovery_codes: Vec<String>,
}

/// Confirms two-factor sign-in with a code: it is on.
#[utoipa::path(post, path = "/me/totp/confirm", request_body = CodeForm,
    responses(
        (status = 200, description = "On; the recovery codes", body = RecoveryCodes),
        (status = 409, description = "Already on, or not started", body = ErrorBody),
        (status = 422, description = "The code does not match", body = ErrorBody),
    ))]
async fn confirm(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<CodeForm>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let stored = state.store.totp_state(auth.user.id).await?;
    if stored.enabled {
        return Err(ApiError::Conflict(
            "Two-factor sign-in is already on".into(),
        ));
    }
    let secret = stored.secret_encrypted.ok_or_else(|| {
        ApiError::Conflict("Start with POST /api/v1/me/totp: there is nothing to confirm".into())
    })?;
    let secret = state.secrets.decrypt(&secret)?;
    let step =
        totp::matching_step(&secret, &form.code, state.clock.now_seconds()).ok_or_else(|| {
            ApiError::Unprocessable(
                "That code does not match: check the time on your phone and type the current code"
                    .into(),
            )
        })?;
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
    state.store.enable_totp(auth.user.id, step, &hashes).await?;
    let target = format!("user:{}", auth.user.id);
    super::audit::record(
        &state,
        &auth,
        &client,
        "user.totp_enable",
        &target,
        json!({}),
    )
    .await;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// One's password, again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordConfirmation)]
struct PasswordForm {
    password: String,
}

/// Turns one's two-factor sign-in off.
#[utoipa::path(delete, path = "/me/totp", request_body = PasswordForm,
    responses(
        (status = 200, description = "Off", body = Done),
        (status = 403, description = "A wrong password, or required by the admin", body = ErrorBody),
    ))]
async fn turn_off(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<PasswordForm>,
) -> Result<Json<Done>, ApiError> {
    if required_of(&state, &auth.user).await? {
        return Err(ApiError::Forbidden(
            "Your admin requires two-factor sign-in: it cannot be turned off".into(),
        ));
    }
    super::session::confirm_password(&state, &auth, form.password).await?;
    state.store.disable_totp(auth.user.id).await?;
    let target = format!("user:{}", auth.user.id);
    super::audit::record(
        &state,
        &auth,
        &client,
        "user.totp_disable",
        &target,
        json!({}),
    )
    .await;
    Ok(Done::ok())
}

/// An admin turns a user's two-factor sign-in off (a lost phone); they enrol again at their
/// next sign-in when it is required.
#[utoipa::path(delete, path = "/users/{id}/totp", params(("id" = i64, Path, description = "The user")),
    responses(
        (status = 200, description = "Off", body = Done),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
async fn reset(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Json<Done>, ApiError> {
    let id = UserId(id);
    super::users::existing(&state, id).await?;
    state.store.disable_totp(id).await?;
    super::audit::record(
        &state,
        &auth,
        &client,
        "user.totp_reset",
        &format!("user:{id}"),
        json!({}),
    )
    .await;
    Ok(Done::ok())
}

/// The security settings.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SecuritySettings {
    /// Who must sign in with a second factor.
    require_totp: Requirement,
}

/// The security settings.
#[utoipa::path(get, path = "/security", responses((status = 200, description = "The settings", body = SecuritySettings)))]
async fn security(State(state): State<AppState>) -> Result<Json<SecuritySettings>, ApiError> {
    Ok(Json(SecuritySettings {
        require_totp: requirement(&state).await?,
    }))
}

/// Says who must sign in with a second factor.
#[utoipa::path(put, path = "/security", request_body = SecuritySettings,
    responses(
        (status = 200, description = "The settings", body = SecuritySettings),
        (status = 409, description = "The admin has no second factor yet", body = ErrorBody),
    ))]
async fn set_security(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<SecuritySettings>,
) -> Result<Json<SecuritySettings>, ApiError> {
    if form.require_totp != Requirement::Off && !auth.totp_enabled {
        // Else the admin would lock themselves out of everything but enrolling.
        return Err(ApiError::Conflict(
            "Set up two-factor sign-in for yourself first, then require it of others".into(),
        ));
    }
    let value = serde_json::to_value(form.require_totp)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "off".into());
    state.store.set_setting(REQUIRE_KEY, &value).await?;
    super::audit::record(
        &state,
        &auth,
        &client,
        "security.update",
        "system",
        json!({ "require_totp": value }),
    )
    .await;
    Ok(Json(SecuritySettings {
        require_totp: form.require_totp,
    }))
}
