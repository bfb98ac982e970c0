//! Contacts' data (admins): everything stored about one contact, exported as one JSON file
//! when they ask for their data, or deleted when they ask to be forgotten. Both are recorded
//! in the audit log, with counts only (never the data itself).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use postdesk_core::access::Rule;
use postdesk_core::ids::ContactId;
use postdesk_store::ContactExport;
use serde_json::{Value, json};

use super::conversations::{conversation_json, message_json, time};
use super::limits::Client;
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/contacts/{id}/export", Rule::Admin, export),
        Route::delete("/contacts/{id}", Rule::Admin, delete),
    ]
}

fn not_found() -> ApiError {
    ApiError::NotFound("contact not found".into())
}

/// The export as the file an admin hands to the contact.
fn export_json(data: &ContactExport) -> Value {
    let conversations: Vec<Value> = data
        .conversations
        .iter()
        .map(|c| {
            let mut conversation = conversation_json(&c.conversation);
            conversation["messages"] = c.messages.iter().map(message_json).collect();
            conversation
        })
        .collect();
    let raw_emails: Vec<Value> = data
        .raw_emails
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "inbox_id": r.inbox_id,
                "fetched_at": time(r.fetched_at),
                "sha256": r.sha256,
                "size": r.size,
                "eml_base64": base64::engine::general_purpose::STANDARD.encode(&r.bytes),
            })
        })
        .collect();
    json!({
        "contact": {
            "id": data.contact.id,
            "email": data.contact.email,
            "name": data.contact.name,
            "created_at": time(data.created_at),
        },
        "exported_at": time(postdesk_store::now_ms()),
        "conversations": conversations,
        "messages_elsewhere": data.messages_elsewhere.iter().map(message_json).collect::<Vec<_>>(),
        "raw_emails": raw_emails,
    })
}

/// Everything stored about the contact, as a JSON file to download.
async fn export(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let data = state
        .store
        .export_contact(ContactId(id))
        .await?
        .ok_or_else(not_found)?;
    let body = export_json(&data);
    let messages: usize = data
        .conversations
        .iter()
        .map(|c| c.messages.len())
        .sum::<usize>()
        + data.messages_elsewhere.len();
    super::audit::record(
        &state,
        &auth,
        &client,
        "contact.export",
        &format!("contact:{id}"),
        json!({
            "conversations": data.conversations.len(),
            "messages": messages,
            "raw_emails": data.raw_emails.len(),
        }),
    )
    .await;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"contact-{id}.json\""),
            ),
        ],
        body.to_string(),
    )
        .into_response())
}

/// Deletes the contact and everything stored about them; answers what was deleted.
async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let report = state
        .store
        .delete_contact(ContactId(id))
        .await?
        .ok_or_else(not_found)?;
    let counts = json!(report);
    super::audit::record(
        &state,
        &auth,
        &client,
        "contact.delete",
        &format!("contact:{id}"),
        counts.clone(),
    )
    .await;
    Ok(Json(counts))
}
