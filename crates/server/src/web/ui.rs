//! The web app agents work in: server-rendered login and app shell, a small hand-written
//! script and stylesheet embedded in the binary (no bundler, no third-party code), and the
//! framed view of an email's HTML.
//!
//! Every page is sent with a Content-Security-Policy that allows scripts only from our own
//! origin (no inline script), so text from users or emails can never run as script even if
//! it slipped through escaping. Email HTML is sanitised, then shown in a sandboxed frame whose
//! own policy forbids every script and, until the agent allows them, remote images.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use postdesk_core::access::Rule;
use postdesk_core::ids::MessageId;
use serde::Deserialize;

use super::auth::{SESSION_COOKIE, constant_time_eq, cookie, csrf_token, user_for_token};
use super::error::{Path, Query};
use super::limits::Client;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};
use crate::password;

/// The policy of every page: our own scripts, styles and images; frames only from us.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     frame-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The cookie that protects the login form itself against cross-site posting.
const LOGIN_CSRF_COOKIE: &str = "postdesk_login_csrf";

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/", Rule::Public, app_shell),
        Route::get("/login", Rule::Public, login_page),
        Route::post("/login", Rule::Public, login_submit),
        Route::post("/logout", Rule::Public, logout),
        Route::get("/static/app.js", Rule::Public, app_js),
        Route::get("/static/app.css", Rule::Public, app_css),
    ]
}

/// This file's routes in the OpenAPI document (the email frame's route is with the
/// conversations').
#[derive(utoipa::OpenApi)]
#[openapi(paths(app_shell, login_page, login_submit, logout, app_js, app_css))]
pub(super) struct Api;

/// The web app's script.
#[utoipa::path(get, path = "/static/app.js",
    responses((status = 200, description = "The script", content_type = "text/javascript", body = String)))]
async fn app_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    )
}

/// The web app's stylesheet.
#[utoipa::path(get, path = "/static/app.css",
    responses((status = 200, description = "The stylesheet", content_type = "text/css", body = String)))]
async fn app_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Escapes text for HTML element content and quoted attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, head: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/static/app.css\">{head}</head>\n<body>{body}</body></html>\n",
        escape(title)
    );
    let mut response = Html(html).into_response();
    secure_headers(response.headers_mut(), PAGE_CSP);
    response
}

fn secure_headers(headers: &mut HeaderMap, csp: &str) {
    if let Ok(value) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Whether cookies must be `Secure`: the public URL is https, or a proxy says the request
/// came over TLS.
pub(super) fn over_tls(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .settings
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            == Some("https")
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, for the whole site, Secure over TLS;
/// `max_age_secs` 0 deletes the cookie.
pub(super) fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn session_of(state: &AppState, headers: &HeaderMap) -> Option<(AuthUser, String)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let auth = user_for_token(state, token).await.ok()?;
    Some((auth, token.to_owned()))
}

/// The web app (signed in by the session cookie), or to the login page.
#[utoipa::path(get, path = "/",
    responses(
        (status = 200, description = "The app's page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in: to `/login`", headers(("Location" = String, description = "/login"))),
    ))]
async fn app_shell(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((auth, token)) = session_of(&state, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    let user = &auth.user;
    let csrf = csrf_token(&token);
    let admin = user.has_role(postdesk_core::model::Role::Admin);
    let staff = admin || user.has_role(postdesk_core::model::Role::Manager);
    let admin_links = format!(
        "<a href=\"#/contacts\">Contacts</a><a href=\"#/canned\">Canned responses</a>{}{}",
        if staff {
            "<a href=\"#/departments\">Departments</a>"
        } else {
            ""
        },
        if admin {
            "<a href=\"#/admin/inboxes\">Email Inboxes</a><a href=\"#/admin/users\">Users</a><a href=\"#/admin/audit\">Audit log</a>"
        } else {
            ""
        }
    );
    let head = format!(
        "<meta name=\"csrf-token\" content=\"{csrf}\"><script src=\"/static/app.js\" defer></script>"
    );
    let body = format!(
        "<a class=\"skip\" href=\"#main\">Skip to conversation</a>\
         <header class=\"topbar\"><a class=\"brand\" href=\"#/\">postdesk</a>\
         <nav aria-label=\"Main\"><a href=\"#/\">Workspace</a>{admin_links}<a href=\"#/account\">Account</a></nav>\
         <span class=\"me\" id=\"me\" data-user-id=\"{id}\" data-username=\"{username}\" data-admin=\"{admin}\">{name}</span>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" class=\"link\">Log out</button></form>\
         </header>\
         <div class=\"layout\"><aside id=\"sidebar\" aria-label=\"Conversations\"></aside>\
         <main id=\"main\" tabindex=\"-1\"><p class=\"empty\">Loading…</p></main></div>\
         <div id=\"toast\" role=\"status\" aria-live=\"polite\"></div>",
        id = user.id,
        username = escape(&user.username),
        name = escape(&user.name),
    );
    page("postdesk", &head, &body)
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LoginQuery {
    /// Why the last sign-in did not work: `credentials`, `expired`, `totp`, `totp_wrong`,
    /// `throttled` or `sso`.
    error: Option<String>,
    /// Seconds to wait, with `error=throttled`.
    wait: Option<u64>,
    /// With `error=sso`: why single sign-on failed (see [`super::oidc::failure_message`]).
    reason: Option<String>,
    /// With `error=sso&reason=provider`: the provider's error code.
    provider_error: Option<String>,
    /// With `error=sso&reason=provider`: the provider's own words.
    description: Option<String>,
}

fn login_form(error: Option<&str>, csrf: &str, single_sign_on: bool) -> String {
    let error = error.map_or_else(String::new, |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    let single_sign_on = if single_sign_on {
        "<p class=\"sso\"><a href=\"/api/v1/login/oidc\">Sign in with single sign-on</a></p>"
    } else {
        ""
    };
    format!(
        "<main class=\"login\"><h1>postdesk</h1><form method=\"post\" action=\"/login\">{error}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>Username <input name=\"username\" autocomplete=\"username\" required autofocus></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <label>Two-factor code <span class=\"hint\">(if you set it up)</span> <input name=\"totp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"11\"></label>\
         <button type=\"submit\" class=\"primary\">Log in</button></form>{single_sign_on}</main>"
    )
}

/// The login page (to the app when signed in already).
#[utoipa::path(get, path = "/login", params(LoginQuery),
    responses(
        (status = 200, description = "The login page", content_type = "text/html", body = String),
        (status = 303, description = "Signed in already: to `/`", headers(("Location" = String, description = "/"))),
    ))]
async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    if session_of(&state, &headers).await.is_some() {
        return Redirect::to("/").into_response();
    }
    let csrf = password::new_token();
    let throttled;
    let sso;
    let message = match q.error.as_deref() {
        Some("credentials") => Some("Wrong username or password"),
        Some("expired") => Some("The login form expired; please try again"),
        Some("totp") => Some(
            "Two-factor sign-in is on for this account: enter your password again with the 6-digit code from your authenticator app",
        ),
        Some("totp_wrong") => Some("Wrong or already used two-factor code"),
        Some("throttled") => {
            throttled = format!(
                "Too many failed sign-ins: try again in {} s",
                q.wait.unwrap_or(1)
            );
            Some(throttled.as_str())
        }
        Some("sso") => {
            sso = super::oidc::failure_message(
                q.reason.as_deref(),
                q.provider_error.as_deref(),
                q.description.as_deref(),
            );
            Some(sso.as_str())
        }
        _ => None,
    };
    let form = login_form(message, &csrf, state.oidc.is_some());
    let mut response = page("Log in · postdesk", "", &form);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, over_tls(&state, &headers)),
    );
    response
}

/// The login page's form.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = LoginPageForm)]
struct LoginForm {
    username: String,
    password: String,
    /// The two-factor code, for users who have one.
    #[serde(default)]
    totp: String,
    /// The login page's token (also in its cookie).
    csrf: String,
}

/// The login page's form: to the app with the session cookie, or back to the page with why.
#[utoipa::path(post, path = "/login",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: to `/` with the session cookie; else to `/login?error=…`",
            headers(("Location" = String, description = "The app or the login page"))),
        (status = 400, description = "The form could not be read", content_type = "text/plain", body = String),
        (status = 415, description = "Not a form", content_type = "text/plain", body = String),
        (status = 422, description = "A field is missing", content_type = "text/plain", body = String),
    ))]
async fn login_submit(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    use super::session::SignInError;
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected, &form.csrf) {
        return Ok(Redirect::to("/login?error=expired").into_response());
    }
    let token = match super::session::start_session(
        &state,
        &client,
        form.username.trim(),
        form.password,
        Some(form.totp.as_str()),
    )
    .await
    {
        Ok(session) => session.token,
        Err(SignInError::Credentials) => {
            return Ok(Redirect::to("/login?error=credentials").into_response());
        }
        Err(SignInError::Throttled(seconds)) => {
            return Ok(
                Redirect::to(&format!("/login?error=throttled&wait={seconds}")).into_response(),
            );
        }
        Err(SignInError::TwoFactorRequired) => {
            return Ok(Redirect::to("/login?error=totp").into_response());
        }
        Err(SignInError::WrongSecondFactor) => {
            return Ok(Redirect::to("/login?error=totp_wrong").into_response());
        }
        Err(SignInError::Store(e)) => return Err(e),
    };
    Ok(signed_in(&state, &headers, &token))
}

/// The answer to a browser sign-in that worked (password or single sign-on): to the app,
/// with the session cookie set and the login form's cookie gone.
pub(super) fn signed_in(state: &AppState, headers: &HeaderMap, token: &str) -> Response {
    let mut response = Redirect::to("/").into_response();
    let secure = over_tls(state, headers);
    let hours = state.settings.session_hours;
    let headers_out = response.headers_mut();
    headers_out.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, token, hours * 3600, secure),
    );
    headers_out.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", 0, secure),
    );
    response
}

/// The log-out button's form.
#[derive(Deserialize, utoipa::ToSchema)]
struct LogoutForm {
    /// The session's CSRF token.
    csrf: String,
}

/// The log-out button: the session ends, to the login page.
#[utoipa::path(post, path = "/logout",
    request_body(content = LogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed out: to `/login`", headers(("Location" = String, description = "/login"))),
        (status = 400, description = "The form could not be read", content_type = "text/plain", body = String),
        (status = 403, description = "A wrong CSRF token", body = super::error::ErrorBody),
        (status = 415, description = "Not a form", content_type = "text/plain", body = String),
        (status = 422, description = "A field is missing", content_type = "text/plain", body = String),
    ))]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if !constant_time_eq(&form.csrf, &csrf_token(token)) {
            return Err(ApiError::Forbidden(
                "Missing or wrong CSRF token: reload the page".into(),
            ));
        }
        state
            .store
            .delete_session(&password::token_hash(token))
            .await?;
        crate::routing::settle_offline(&state.store, &state.bus).await;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, over_tls(&state, &headers)),
    );
    Ok(response)
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct BodyQuery {
    /// `remote=1`: the agent allowed remote images.
    remote: Option<u8>,
    /// `quoted=1`: show quoted history (collapsed by default).
    quoted: Option<u8>,
}

/// An email's sanitised HTML as a document of its own, for a sandboxed frame. Inline `cid:`
/// images point at their attachments; remote images load only when allowed; quoted history
/// is hidden unless asked for. No script can run here: the document's policy has no
/// script source at all, and the frame is sandboxed without scripts.
#[utoipa::path(get, path = "/messages/{id}/body.html",
    params(("id" = i64, Path, description = "The message"), BodyQuery),
    responses(
        (status = 200, description = "The email's HTML as a document, with a Content-Security-Policy without scripts", content_type = "text/html", body = String),
        (status = 404, description = "No such message", body = super::error::ErrorBody),
    ))]
pub(super) async fn email_body(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<BodyQuery>,
) -> Result<Response, ApiError> {
    let message = state
        .store
        .find_message(MessageId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("message not found".into()))?;
    let html = message.html.clone().unwrap_or_default();
    let html = postdesk_mail::rewrite_cid_sources(&html, |cid: &str| {
        let ids = message.attachments.iter().map(|a| a.content_id.as_deref());
        postdesk_mail::match_content_id(cid, ids)
            .map(|i| format!("/api/v1/attachments/{}", message.attachments[i].id))
    });
    let hide_quotes = if q.quoted == Some(1) {
        ""
    } else {
        "blockquote,.gmail_quote,.yahoo_quoted,#appendonsend,#divRplyFwdMsg,#divRplyFwdMsg~*{display:none!important}"
    };
    let document = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">\
         <style>body{{font:14px/1.45 system-ui,sans-serif;margin:8px;color:#1d2433;overflow-wrap:anywhere}}img{{max-width:100%;height:auto}}{hide_quotes}</style>\
         </head><body>{html}</body></html>"
    );
    let images = if q.remote == Some(1) {
        "'self' data: https: http:"
    } else {
        "'self' data:"
    };
    let csp = format!(
        "default-src 'none'; img-src {images}; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    );
    let mut response = (StatusCode::OK, Html(document)).into_response();
    secure_headers(response.headers_mut(), &csp);
    Ok(response)
}
