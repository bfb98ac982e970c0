//! The audit log over HTTP (admins): list with filters, and export everything as CSV.
//! [`record`] is how the other routes append to it.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use postdesk_core::access::Rule;
use postdesk_core::ids::UserId;
use postdesk_store::{AuditEntry, AuditFilter, NewAuditEntry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::conversations::{Time, time};
use super::error::Query;
use super::limits::Client;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/audit", Rule::Admin, list),
        Route::get("/audit/export", Rule::Admin, export),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, export))]
pub(super) struct Api;

/// Appends what `auth` did to the audit log. A failure to record is logged loudly; the
/// action itself already happened.
pub(super) async fn record(
    state: &AppState,
    auth: &AuthUser,
    client: &Client,
    action: &str,
    target: &str,
    details: Value,
) {
    record_as(state, &auth.user, client, action, target, details).await;
}

/// [`record`] for a request without a signed-in user, done on behalf of `user` (the admin who
/// started what the request finishes).
pub(super) async fn record_as(
    state: &AppState,
    user: &postdesk_store::User,
    client: &Client,
    action: &str,
    target: &str,
    details: Value,
) {
    let entry = NewAuditEntry {
        actor_id: Some(user.id),
        actor: user.username.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        ip: client.ip.clone(),
        details,
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!("Failed to record {action} on {target} in the audit log: {e}");
    }
}

/// The audit log's filters.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// RFC 3339 time.
    #[param(format = DateTime)]
    since: Option<String>,
    /// A username.
    actor: Option<String>,
    /// An action, or a family of them (`user` for `user.create`, `user.update`, …).
    action: Option<String>,
    /// Entries older than this id (the next page).
    before: Option<i64>,
    /// 1 to 1000 (default 200; out of range: the nearest).
    limit: Option<i64>,
}

fn filter_of(q: AuditQuery, limit: i64) -> Result<AuditFilter, ApiError> {
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp_millis())
                .map_err(|e| ApiError::BadRequest(format!("since must be an RFC 3339 time: {e}")))
        })
        .transpose()?;
    Ok(AuditFilter {
        since,
        actor: q.actor.filter(|a| !a.is_empty()),
        action: q.action.filter(|a| !a.is_empty()),
        before_id: q.before,
        limit,
    })
}

/// A line of the audit log.
#[derive(Debug, Serialize, ToSchema)]
struct AuditEntryOut {
    id: i64,
    at: Time,
    /// The username (as typed, for a failed sign-in).
    actor: String,
    /// The user, when known.
    actor_id: Option<UserId>,
    /// `sign_in`, `sign_in.failed`, `user.create`, `inbox.update`, …
    action: String,
    /// `user:7`, `inbox:2`, …
    target: String,
    /// The address the request came from.
    ip: String,
    /// More, by action (never a secret).
    details: Value,
}

impl From<&AuditEntry> for AuditEntryOut {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id,
            at: Time::at(e.at),
            actor: e.actor.clone(),
            actor_id: e.actor_id,
            action: e.action.clone(),
            target: e.target.clone(),
            ip: e.ip.clone(),
            details: e.details.clone(),
        }
    }
}

/// Audit log entries.
#[derive(Debug, Serialize, ToSchema)]
struct AuditEntries {
    /// Newest first.
    entries: Vec<AuditEntryOut>,
}

/// The audit log, newest first, filtered.
#[utoipa::path(get, path = "/audit", params(AuditQuery),
    responses((status = 200, description = "The entries", body = AuditEntries)))]
async fn list(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditEntries>, ApiError> {
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let entries = state.store.list_audit(&filter_of(q, limit)?).await?;
    Ok(Json(AuditEntries {
        entries: entries.iter().map(AuditEntryOut::from).collect(),
    }))
}

/// One CSV field, quoted when it needs to be; a leading `=`, `+`, `-` or `@` is prefixed
/// with `'` so a spreadsheet never runs it as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Every matching entry as CSV, oldest last (as listed), in pages of 1,000.
#[utoipa::path(get, path = "/audit/export", params(AuditQuery),
    responses((status = 200, description = "`postdesk-audit.csv`: id, at, actor, actor_id, action, target, ip, details",
        content_type = "text/csv", body = String)))]
async fn export(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let mut filter = filter_of(q, 1000)?;
    let mut csv = String::from("id,at,actor,actor_id,action,target,ip,details\n");
    loop {
        let page = state.store.list_audit(&filter).await?;
        for e in &page {
            let fields = [
                e.id.to_string(),
                time(e.at),
                e.actor.clone(),
                e.actor_id.map(|u| u.to_string()).unwrap_or_default(),
                e.action.clone(),
                e.target.clone(),
                e.ip.clone(),
                e.details.to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&line.join(","));
            csv.push('\n');
        }
        match page.last() {
            Some(last) if page.len() == 1000 => filter.before_id = Some(last.id),
            _ => break,
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"postdesk-audit.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}
