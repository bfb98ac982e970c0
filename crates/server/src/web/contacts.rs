//! Contacts. The contact center: `GET /contacts?q=` (search and page), `GET /contacts/{id}`
//! (their details and their conversations) and `PATCH /contacts/{id}` (their name), for every
//! signed-in user within what the access policy lets them see: a contact is known to an agent
//! through a conversation the agent may see, so a contact none of whose conversations the
//! caller may see is "not found" to them, and only the conversations they may see are listed
//! and counted. Whoever may see one of a contact's conversations may correct their name.
//!
//! Contacts' data (admins): everything stored about one contact, exported as one JSON file
//! when they ask for their data, or deleted when they ask to be forgotten. Both are recorded
//! in the audit log, with counts only (never the data itself), and so is a rename.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use postdesk_core::access::{Rule, list_scope};
use postdesk_core::ids::ContactId;
use postdesk_store::{
    ContactCursor, ContactExport, ContactFilter, ContactSummary, ConversationFilter, ListCursor,
    MAX_CONTACT_NAME_CHARS,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::conversations::{conversation_json, message_json, time};
use super::error::ApiJson;
use super::limits::Client;
use super::lists::{capitalised, limit_param};
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};

/// Contacts (or a contact's conversations) a page has unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 50;
/// The most one page answers.
const MAX_LIMIT: i64 = 200;

#[derive(Deserialize)]
struct PageQuery {
    /// Text in the address or name (the list only).
    q: Option<String>,
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

impl PageQuery {
    /// The cursor text, when one was given.
    fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.trim().is_empty())
    }
}

fn bad_cursor(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::BadRequest(capitalised(e))
}

/// A contact as the contact center shows them.
fn contact_json(c: &ContactSummary) -> Value {
    json!({
        "id": c.contact.id,
        "email": c.contact.email,
        "name": c.contact.name,
        "created_at": time(c.created_at),
        "conversations": c.conversations,
    })
}

/// `GET /contacts?q=&limit=&cursor=`: newest contacts first, `{contacts, next_cursor}`.
async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = ContactFilter {
        text: q.q.clone().filter(|t| !t.trim().is_empty()),
        visible: Some(list_scope(&auth.actor())),
        limit: Some(limit_param(q.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?),
        after: q
            .cursor()
            .map(ContactCursor::parse)
            .transpose()
            .map_err(|e| bad_cursor(&e))?,
    };
    let page = state.store.list_contacts(&filter).await?;
    Ok(Json(json!({
        "contacts": page.contacts.iter().map(contact_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.encode()),
    })))
}

/// The contact, when the caller may see one of their conversations (admins: any contact).
async fn visible_contact(
    state: &AppState,
    auth: &AuthUser,
    id: i64,
) -> Result<ContactSummary, ApiError> {
    state
        .store
        .find_contact(ContactId(id), Some(&list_scope(&auth.actor())))
        .await?
        .ok_or_else(not_found)
}

/// `GET /contacts/{id}?limit=&cursor=`: the contact, and a page of their conversations the
/// caller may see, newest activity first (`conversations`, `next_cursor`, `total`).
async fn show(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let contact = visible_contact(&state, &auth, id).await?;
    let after = q
        .cursor()
        .map(ListCursor::parse)
        .transpose()
        .map_err(|e| bad_cursor(&e))?;
    let filter = ConversationFilter {
        contact_id: Some(contact.contact.id),
        visible: Some(list_scope(&auth.actor())),
        limit: Some(limit_param(q.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?),
        after,
        ..ConversationFilter::default()
    };
    if after.is_some_and(|a| a.order != filter.order()) {
        return Err(ApiError::BadRequest(
            "This cursor is from Queued Chats, not from a contact's conversations: start again without it".into(),
        ));
    }
    let page = state.store.conversation_page(&filter).await?;
    let mut body = contact_json(&contact);
    body["conversations"] = page.conversations.iter().map(conversation_json).collect();
    body["next_cursor"] = json!(page.next_cursor.map(|c| c.encode()));
    body["total"] = json!(contact.conversations);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameForm {
    name: String,
}

/// `PATCH /contacts/{id} {name}`: corrects the contact's name; their later emails no longer
/// replace it. Answers the contact.
async fn rename(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<RenameForm>,
) -> Result<Json<Value>, ApiError> {
    let contact = visible_contact(&state, &auth, id).await?;
    let name = form.name.trim();
    if name.is_empty() {
        return Err(ApiError::Unprocessable("The name is empty".into()));
    }
    if name.chars().count() > MAX_CONTACT_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "The name is longer than {MAX_CONTACT_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable(
            "The name cannot hold line breaks or other control characters".into(),
        ));
    }
    let renamed = state
        .store
        .rename_contact(contact.contact.id, name)
        .await?
        .ok_or_else(not_found)?;
    super::audit::record(
        &state,
        &auth,
        &client,
        "contact.rename",
        &format!("contact:{id}"),
        json!({}),
    )
    .await;
    Ok(Json(contact_json(&ContactSummary {
        contact: renamed,
        ..contact
    })))
}

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/contacts", Rule::SignedIn, list),
        Route::get("/contacts/{id}", Rule::SignedIn, show),
        Route::patch("/contacts/{id}", Rule::SignedIn, rename),
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
