//! Email inboxes (admin): create, change, read with health, test the servers, quarantine.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use postdesk_core::access::Rule;
use postdesk_core::address::EmailAddress;
use postdesk_core::ids::{InboxId, RawEmailId};
use postdesk_core::model::{InboxState, MailAuth, Security};
use postdesk_store::{Inbox, InboxSettings, ServerSettings};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::conversations::Time;
use super::error::{ApiJson, ErrorBody, Path};
use super::limits::Client;
use super::mail_oauth::OAuthConnection;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};
use crate::imap::ImapSettings;

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/inboxes", Rule::Admin, list),
        Route::post("/inboxes", Rule::Admin, create),
        Route::get("/inboxes/{id}", Rule::Admin, show),
        Route::put("/inboxes/{id}", Rule::Admin, update),
        Route::post("/inboxes/{id}/test", Rule::Admin, test_connections),
        Route::get("/quarantine", Rule::Admin, quarantine),
        Route::post("/quarantine/{id}/reprocess", Rule::Admin, reprocess),
        Route::get("/quarantine/{id}/raw", Rule::Admin, raw_email),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    show,
    update,
    test_connections,
    quarantine,
    reprocess,
    raw_email
))]
pub(super) struct Api;

/// How to reach one mail server (IMAP or SMTP).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ServerForm {
    /// A host name or address, without spaces.
    #[schema(pattern = "^\\S+$")]
    host: String,
    /// 1 to 65535.
    #[schema(minimum = 1)]
    port: u16,
    security: Security,
    #[serde(default)]
    username: String,
    /// Required on create; on update, omitted keeps the stored password.
    password: Option<String>,
    mailbox: Option<String>,
    /// IMAP only: the folder to move emails to once stored.
    move_to: Option<String>,
    /// IMAP only: the folder every email sent is also appended to; absent or null finds it
    /// by the `\Sent` special-use flag, `""` turns copies off.
    sent_mailbox: Option<String>,
    /// Verify the server's TLS certificate. Default true; false only for self-signed servers.
    tls_verify: Option<bool>,
    /// `password` (the default) or `oauth2`.
    auth: Option<MailAuth>,
    /// With `oauth2`: the provider (the same for IMAP and SMTP).
    oauth_provider_id: Option<i64>,
}

/// An inbox's settings (`POST`, and `PUT` replacing them).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InboxForm {
    #[schema(min_length = 1)]
    name: String,
    /// The shared address.
    #[schema(format = Email)]
    email: String,
    /// The name in From of replies: one line.
    #[schema(min_length = 1)]
    sender_name: String,
    /// Its conversations go to this department's agents (422 when unknown).
    department_id: Option<i64>,
    /// Whether its reader runs (default true).
    #[serde(default = "yes")]
    active: bool,
    imap: ServerForm,
    smtp: ServerForm,
    /// A closed conversation reopens on a new email within this many days (default 30).
    #[schema(minimum = 0)]
    reopen_days: Option<i64>,
    /// Days closed conversations are kept; absent or null keeps them forever.
    retention_days: Option<i64>,
    /// Markdown ending every Reply via Email; absent keeps the current one ('' for none).
    signature: Option<String>,
    /// Whether replies quote the email they answer; absent keeps the current setting (on for
    /// a new inbox).
    quote_history: Option<bool>,
}

/// The longest signature an inbox takes, in characters.
const MAX_SIGNATURE_CHARS: usize = 5_000;

fn yes() -> bool {
    true
}

/// A mail server of an inbox as the API shows it: never its password.
#[derive(Debug, Serialize, ToSchema)]
struct ServerOut {
    host: String,
    port: u16,
    security: Security,
    username: String,
    tls_verify: bool,
    auth: MailAuth,
    /// A password is stored.
    password_set: bool,
    /// With `auth: oauth2` only: the inbox's provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    oauth_provider_id: Option<i64>,
}

impl ServerOut {
    fn of(s: &ServerSettings, oauth_provider_id: Option<i64>) -> Self {
        Self {
            host: s.host.clone(),
            port: s.port,
            security: s.security,
            username: s.username.clone(),
            tls_verify: s.tls_verify,
            auth: s.auth,
            password_set: s.auth == MailAuth::Password && !s.password_encrypted.is_empty(),
            oauth_provider_id: oauth_provider_id.filter(|_| s.auth == MailAuth::OAuth2),
        }
    }
}

/// The IMAP server of an inbox, with its folders.
#[derive(Debug, Serialize, ToSchema)]
struct ImapOut {
    #[serde(flatten)]
    server: ServerOut,
    /// The folder read.
    mailbox: String,
    /// The folder emails are moved to once stored; null: they stay.
    move_to: Option<String>,
    /// The folder sent emails are appended to; null: the one flagged `\Sent`; `""`: none.
    sent_mailbox: Option<String>,
}

/// An inbox's reader health.
#[derive(Debug, Serialize, ToSchema)]
struct InboxStatusOut {
    state: InboxState,
    /// The last error, kept until the next successful sync.
    last_error: Option<String>,
    /// When mail was last fetched.
    last_sync_at: Option<Time>,
    /// Emails fetched and waiting to be processed.
    backlog: i64,
    /// Emails that could not be processed (`GET /quarantine`).
    quarantined: i64,
}

/// An inbox as the API shows it: its settings without passwords, its OAuth2 connection and
/// its health.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Inbox)]
struct InboxOut {
    id: InboxId,
    name: String,
    email: String,
    sender_name: String,
    department_id: Option<i64>,
    active: bool,
    reopen_days: i64,
    /// Null: closed conversations are kept forever.
    retention_days: Option<i64>,
    /// Markdown ending every Reply via Email (`""`: none).
    signature: String,
    quote_history: bool,
    imap: ImapOut,
    smtp: ServerOut,
    /// Null without an OAuth2 provider.
    oauth: Option<OAuthConnection>,
    status: InboxStatusOut,
    /// The node that reads it now; null when none does.
    reader: Option<super::cluster::ReaderOut>,
    created_at: Time,
}

impl InboxOut {
    async fn of(state: &AppState, inbox: &Inbox) -> Result<Self, ApiError> {
        let provider = inbox.settings.oauth_provider_id;
        let backlog = state.store.count_raw(inbox.id, "new").await?;
        let quarantined = state.store.count_raw(inbox.id, "quarantined").await?;
        let reader = state.store.reader_leases(Some(inbox.id)).await?;
        Ok(Self {
            id: inbox.id,
            name: inbox.settings.name.clone(),
            email: inbox.settings.email.clone(),
            sender_name: inbox.settings.sender_name.clone(),
            department_id: inbox.settings.department_id,
            active: inbox.settings.active,
            reopen_days: inbox.settings.reopen_days,
            retention_days: inbox.settings.retention_days,
            signature: inbox.settings.signature.clone(),
            quote_history: inbox.settings.quote_history,
            imap: ImapOut {
                server: ServerOut::of(&inbox.settings.imap, provider),
                mailbox: inbox.settings.imap_mailbox.clone(),
                move_to: inbox.settings.imap_move_to.clone(),
                sent_mailbox: inbox.settings.imap_sent_mailbox.clone(),
            },
            smtp: ServerOut::of(&inbox.settings.smtp, provider),
            oauth: OAuthConnection::of(state, inbox).await?,
            status: InboxStatusOut {
                state: inbox.status.state,
                last_error: inbox.status.last_error.clone(),
                last_sync_at: inbox.status.last_sync_at.map(Time::at),
                backlog,
                quarantined,
            },
            reader: super::cluster::ReaderOut::of(reader.first()),
            created_at: Time::at(inbox.created_at),
        })
    }
}

fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(message.into())
}

/// Checks the form and encrypts passwords; `existing` supplies passwords left out on update,
/// but only while the server stays the same: a stored password is never sent to another
/// host, port or security than it was given for.
async fn settings_from(
    state: &AppState,
    form: InboxForm,
    existing: Option<&Inbox>,
) -> Result<InboxSettings, ApiError> {
    let email = EmailAddress::parse(&form.email).map_err(|e| unprocessable(e.to_string()))?;
    if let Some(department) = form.department_id
        && state
            .store
            .find_department(postdesk_core::ids::DepartmentId(department))
            .await?
            .is_none()
    {
        return Err(unprocessable(format!(
            "Unknown department {department}: create it first (POST /api/v1/departments)"
        )));
    }
    if form.name.trim().is_empty() {
        return Err(unprocessable("The inbox needs a name"));
    }
    if form.sender_name.trim().is_empty() || form.sender_name.contains(['\r', '\n']) {
        return Err(unprocessable("The sender name must be one non-empty line"));
    }
    let oauth_provider_id = oauth_provider_of(state, &form).await?;
    let server = |f: ServerForm,
                  what: &str,
                  old: Option<&ServerSettings>|
     -> Result<ServerSettings, ApiError> {
        if f.host.trim().is_empty() || f.host.contains(char::is_whitespace) {
            return Err(unprocessable(format!(
                "The {what} host is missing or has spaces"
            )));
        }
        if f.port == 0 {
            return Err(unprocessable(format!(
                "The {what} port must be between 1 and 65535"
            )));
        }
        let same_server = |old: &ServerSettings| {
            old.host.eq_ignore_ascii_case(f.host.trim())
                && old.port == f.port
                && old.security == f.security
                && old.username == f.username
        };
        let auth = f.auth.unwrap_or(MailAuth::Password);
        if auth == MailAuth::OAuth2 {
            if f.password.is_some() {
                return Err(unprocessable(format!(
                    "The {what} server signs in with OAuth2: leave its password out"
                )));
            }
            // The mailbox address is the login (XOAUTH2's user); a shared mailbox may name
            // another.
            let username = if f.username.trim().is_empty() {
                email.to_string()
            } else {
                f.username.trim().to_owned()
            };
            return Ok(ServerSettings {
                host: f.host.trim().to_owned(),
                port: f.port,
                security: f.security,
                username,
                password_encrypted: Vec::new(),
                tls_verify: f.tls_verify.unwrap_or(true),
                auth,
            });
        }
        let password_encrypted = match (f.password, old) {
            (Some(p), _) => state.secrets.encrypt(p.as_bytes()),
            (None, Some(old)) if same_server(old) => old.password_encrypted.clone(),
            (None, Some(_)) => {
                return Err(unprocessable(format!(
                    "The {what} server, port, security or username changed: give its password again"
                )));
            }
            (None, None) if f.username.is_empty() => state.secrets.encrypt(b""),
            (None, None) => return Err(unprocessable(format!("The {what} password is required"))),
        };
        Ok(ServerSettings {
            host: f.host.trim().to_owned(),
            port: f.port,
            security: f.security,
            username: f.username,
            password_encrypted,
            tls_verify: f.tls_verify.unwrap_or(true),
            auth,
        })
    };
    let mailbox = form
        .imap
        .mailbox
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "INBOX".into());
    if form.imap.username.is_empty() && form.imap.auth != Some(MailAuth::OAuth2) {
        return Err(unprocessable("The IMAP username is required"));
    }
    let move_to = form
        .imap
        .move_to
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    if move_to
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case(&mailbox))
    {
        return Err(unprocessable(
            "The folder to move emails to must differ from the mailbox read",
        ));
    }
    if form.smtp.sent_mailbox.is_some() {
        return Err(unprocessable(
            "sent_mailbox belongs to the IMAP settings (imap.sent_mailbox): the copy is appended over IMAP",
        ));
    }
    let sent_mailbox = form.imap.sent_mailbox.as_deref().map(str::trim);
    if sent_mailbox.is_some_and(|m| m.contains(['\r', '\n', '"', '\\'])) {
        return Err(unprocessable(
            "imap.sent_mailbox must be a folder name without quotes, backslashes or line breaks",
        ));
    }
    if sent_mailbox.is_some_and(|m| m.eq_ignore_ascii_case(&mailbox)) {
        return Err(unprocessable(
            "The Sent folder must differ from the mailbox read (its copies would come back as new mail)",
        ));
    }
    let sent_mailbox = sent_mailbox.map(str::to_owned);
    let reopen_days = form.reopen_days.unwrap_or(30);
    if reopen_days < 0 {
        return Err(unprocessable("reopen_days cannot be negative"));
    }
    if form.retention_days.is_some_and(|days| days < 1) {
        return Err(unprocessable(
            "retention_days must be at least 1 (a number of days), or left out to keep closed conversations forever",
        ));
    }
    let signature = match form.signature {
        Some(signature) => signature.trim_end().to_owned(),
        None => existing
            .map(|e| e.settings.signature.clone())
            .unwrap_or_default(),
    };
    if signature.chars().count() > MAX_SIGNATURE_CHARS {
        return Err(unprocessable(format!(
            "The signature is longer than {MAX_SIGNATURE_CHARS} characters"
        )));
    }
    let quote_history = form
        .quote_history
        .or(existing.map(|e| e.settings.quote_history))
        .unwrap_or(true);
    Ok(InboxSettings {
        name: form.name.trim().to_owned(),
        email: email.to_string(),
        sender_name: form.sender_name.trim().to_owned(),
        department_id: form.department_id,
        active: form.active,
        imap: server(form.imap, "IMAP", existing.map(|e| &e.settings.imap))?,
        imap_mailbox: mailbox,
        imap_move_to: move_to,
        imap_sent_mailbox: sent_mailbox,
        smtp: server(form.smtp, "SMTP", existing.map(|e| &e.settings.smtp))?,
        reopen_days,
        retention_days: form.retention_days,
        oauth_provider_id,
        signature,
        quote_history,
    })
}

/// The OAuth2 provider the form names, when IMAP or SMTP signs in with OAuth2: one provider
/// serves both, so when both name one it must be the same.
async fn oauth_provider_of(state: &AppState, form: &InboxForm) -> Result<Option<i64>, ApiError> {
    let servers = [("imap", &form.imap), ("smtp", &form.smtp)];
    let mut chosen: Option<i64> = None;
    for (what, server) in servers {
        let oauth = server.auth == Some(MailAuth::OAuth2);
        match (oauth, server.oauth_provider_id) {
            (false, Some(_)) => {
                return Err(unprocessable(format!(
                    "{what}.oauth_provider_id needs {what}.auth \"oauth2\""
                )));
            }
            (true, Some(id)) if chosen.is_some_and(|c| c != id) => {
                return Err(unprocessable(
                    "IMAP and SMTP sign in with the same OAuth2 provider: give one oauth_provider_id",
                ));
            }
            (true, Some(id)) => chosen = Some(id),
            _ => {}
        }
    }
    let any_oauth = servers
        .iter()
        .any(|(_, s)| s.auth == Some(MailAuth::OAuth2));
    match chosen {
        None if any_oauth => Err(unprocessable(
            "OAuth2 sign-in needs oauth_provider_id: add a provider first (POST /api/v1/oauth/providers)",
        )),
        Some(id) if state.store.find_oauth_provider(id).await?.is_none() => Err(unprocessable(
            format!("Unknown OAuth2 provider {id}: add it first (POST /api/v1/oauth/providers)"),
        )),
        chosen => Ok(chosen),
    }
}

/// Adds an inbox; its reader starts at once.
#[utoipa::path(post, path = "/inboxes", request_body = InboxForm,
    responses(
        (status = 201, description = "The inbox", body = InboxOut),
        (status = 409, description = "The address is taken", body = ErrorBody),
        (status = 422, description = "A setting that cannot work, in words", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    ApiJson(form): ApiJson<InboxForm>,
) -> Result<(StatusCode, Json<InboxOut>), ApiError> {
    let settings = settings_from(&state, form, None).await?;
    let inbox = state.store.create_inbox(&settings).await?;
    let details = json!({ "email": inbox.settings.email, "imap_host": inbox.settings.imap.host, "smtp_host": inbox.settings.smtp.host });
    super::audit::record(
        &state,
        &auth,
        &client,
        "inbox.create",
        &format!("inbox:{}", inbox.id),
        details,
    )
    .await;
    state.readers.reconcile(inbox.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(InboxOut::of(&state, &inbox).await?),
    ))
}

/// Replaces an inbox's settings; its reader restarts (or stops).
#[utoipa::path(put, path = "/inboxes/{id}", params(("id" = i64, Path, description = "The inbox")), request_body = InboxForm,
    responses(
        (status = 200, description = "The inbox", body = InboxOut),
        (status = 404, description = "No such inbox", body = ErrorBody),
        (status = 409, description = "The address is taken", body = ErrorBody),
        (status = 422, description = "A setting that cannot work, in words (a server changed without its password)", body = ErrorBody),
    ))]
async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<InboxForm>,
) -> Result<Json<InboxOut>, ApiError> {
    let existing = find(&state, id).await?;
    let settings = settings_from(&state, form, Some(&existing)).await?;
    let inbox = state.store.update_inbox(existing.id, &settings).await?;
    if existing.settings.oauth_provider_id.is_some()
        && existing.settings.oauth_provider_id != settings.oauth_provider_id
    {
        // Tokens of another provider (or none needed any more): connect again.
        state.store.disconnect_oauth(inbox.id).await?;
    }
    let details = json!({ "email": inbox.settings.email, "imap_host": inbox.settings.imap.host, "smtp_host": inbox.settings.smtp.host, "active": inbox.settings.active, "retention_days": inbox.settings.retention_days });
    super::audit::record(
        &state,
        &auth,
        &client,
        "inbox.update",
        &format!("inbox:{}", inbox.id),
        details,
    )
    .await;
    state.readers.reconcile(inbox.id).await?;
    let inbox = find(&state, id).await?;
    Ok(Json(InboxOut::of(&state, &inbox).await?))
}

async fn find(state: &AppState, id: i64) -> Result<Inbox, ApiError> {
    state
        .store
        .find_inbox(InboxId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("inbox not found".into()))
}

/// An inbox, with its health.
#[utoipa::path(get, path = "/inboxes/{id}", params(("id" = i64, Path, description = "The inbox")),
    responses(
        (status = 200, description = "The inbox", body = InboxOut),
        (status = 404, description = "No such inbox", body = ErrorBody),
    ))]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<InboxOut>, ApiError> {
    let inbox = find(&state, id).await?;
    Ok(Json(InboxOut::of(&state, &inbox).await?))
}

/// The inboxes.
#[derive(Debug, Serialize, ToSchema)]
struct InboxList {
    inboxes: Vec<InboxOut>,
}

/// Every inbox, with its health.
#[utoipa::path(get, path = "/inboxes", responses((status = 200, description = "The inboxes", body = InboxList)))]
async fn list(State(state): State<AppState>) -> Result<Json<InboxList>, ApiError> {
    let mut inboxes = Vec::new();
    for inbox in state.store.list_inboxes().await? {
        inboxes.push(InboxOut::of(&state, &inbox).await?);
    }
    Ok(Json(InboxList { inboxes }))
}

/// How one server answered.
#[derive(Debug, Serialize, ToSchema)]
struct Verdict {
    ok: bool,
    /// What went wrong, with the server's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    error: Option<String>,
}

impl Verdict {
    fn of(r: &anyhow::Result<()>) -> Self {
        Self {
            ok: r.is_ok(),
            error: r.as_ref().err().map(|e| format!("{e:#}")),
        }
    }
}

/// What Test connection found.
#[derive(Debug, Serialize, ToSchema)]
struct ConnectionTest {
    imap: Verdict,
    smtp: Verdict,
}

/// Test connection: logs in to the IMAP server and opens the mailbox; the SMTP check is a
/// connect + EHLO (+ AUTH) without sending anything. Each result carries the server's text.
#[utoipa::path(post, path = "/inboxes/{id}/test", params(("id" = i64, Path, description = "The inbox")),
    responses(
        (status = 200, description = "Each server's verdict", body = ConnectionTest),
        (status = 404, description = "No such inbox", body = ErrorBody),
    ))]
async fn test_connections(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<ConnectionTest>, ApiError> {
    let inbox = find(&state, id).await?;
    let imap = ImapSettings::of(&inbox, &state.secrets, &state.oauth)?;
    let imap_result = crate::imap::check_login(&imap).await;
    let smtp_result = state.outbox.check_connection(&inbox).await;
    Ok(Json(ConnectionTest {
        imap: Verdict::of(&imap_result),
        smtp: Verdict::of(&smtp_result),
    }))
}

/// An email that could not be processed, kept raw.
#[derive(Debug, Serialize, ToSchema)]
struct QuarantinedOut {
    id: RawEmailId,
    inbox_id: InboxId,
    /// Its IMAP UID (0 for one received over SMTP).
    uid: i64,
    /// Bytes.
    size: i64,
    /// Why it could not be processed.
    reason: String,
    fetched_at: Time,
}

/// The quarantined emails.
#[derive(Debug, Serialize, ToSchema)]
struct QuarantineList {
    quarantined: Vec<QuarantinedOut>,
}

/// The emails that could not be processed.
#[utoipa::path(get, path = "/quarantine", responses((status = 200, description = "The quarantined emails", body = QuarantineList)))]
async fn quarantine(State(state): State<AppState>) -> Result<Json<QuarantineList>, ApiError> {
    let quarantined = state
        .store
        .list_quarantined()
        .await?
        .into_iter()
        .map(|q| QuarantinedOut {
            id: q.id,
            inbox_id: q.inbox_id,
            uid: q.uid,
            size: q.size,
            reason: q.reason,
            fetched_at: Time::at(q.fetched_at),
        })
        .collect();
    Ok(Json(QuarantineList { quarantined }))
}

/// What processing the inbox's waiting emails did.
#[derive(Debug, Serialize, ToSchema)]
struct Reprocessed {
    /// Emails added to conversations.
    added: usize,
    /// Emails the inbox already had.
    duplicates: usize,
    /// Bounces of our own emails, recorded on them.
    bounces: usize,
    /// Emails quarantined (again).
    quarantined: usize,
}

/// Puts a quarantined email back in line and processes it now.
#[utoipa::path(post, path = "/quarantine/{id}/reprocess", params(("id" = i64, Path, description = "The quarantined email")),
    responses(
        (status = 200, description = "What processing did", body = Reprocessed),
        (status = 404, description = "No such email", body = ErrorBody),
    ))]
async fn reprocess(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Json<Reprocessed>, ApiError> {
    let raw = state
        .store
        .find_raw(RawEmailId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("email not found".into()))?;
    state.store.requeue_raw(raw.id).await?;
    super::audit::record(
        &state,
        &auth,
        &client,
        "quarantine.reprocess",
        &format!("raw_email:{}", raw.id),
        json!({}),
    )
    .await;
    let report = crate::ingest::process_pending(
        &state.store,
        &state.bus,
        Some(raw.inbox_id),
        state.settings.limits(),
        &state.sender_auth,
        &state.metrics,
    )
    .await?;
    Ok(Json(Reprocessed {
        added: report.added,
        duplicates: report.duplicates,
        bounces: report.bounces,
        quarantined: report.quarantined,
    }))
}

/// The quarantined email exactly as received, to look at in a mail client or `postdesk inspect`.
#[utoipa::path(get, path = "/quarantine/{id}/raw", params(("id" = i64, Path, description = "The quarantined email")),
    responses(
        (status = 200, description = "The email's bytes", content_type = "message/rfc822", body = [u8]),
        (status = 404, description = "No such email", body = ErrorBody),
    ))]
async fn raw_email(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let raw = state
        .store
        .find_raw(RawEmailId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("email not found".into()))?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "message/rfc822".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"quarantined-{id}.eml\""),
            ),
            (
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                "nosniff".to_owned(),
            ),
        ],
        raw.bytes,
    )
        .into_response())
}
