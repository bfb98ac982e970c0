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
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use postdesk_core::access::{Rule, list_scope};
use postdesk_core::ids::{ContactId, InboxId, RawEmailId};
use postdesk_store::{
    ContactCursor, ContactExport, ContactFilter, ContactSummary, ConversationFilter,
    DeletionReport, ListCursor, MAX_CONTACT_NAME_CHARS,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::conversations::{ConversationOut, MessageOut, Time};
use super::error::{ApiJson, ErrorBody, Path, Query};
use super::limits::Client;
use super::lists::{capitalised, limit_param};
use super::policy::Route;
use super::{ApiError, AppState, AuthUser};

/// Contacts (or a contact's conversations) a page has unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 50;
/// The most one page answers.
const MAX_LIMIT: i64 = 200;

/// A page of a list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Text in the address or name (the list only).
    q: Option<String>,
    /// 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Contact)]
struct ContactOut {
    id: ContactId,
    email: String,
    /// Display name (may be empty).
    name: String,
    created_at: Time,
    /// How many of their conversations the caller may see.
    conversations: i64,
}

impl From<&ContactSummary> for ContactOut {
    fn from(c: &ContactSummary) -> Self {
        Self {
            id: c.contact.id,
            email: c.contact.email.clone(),
            name: c.contact.name.clone(),
            created_at: Time::at(c.created_at),
            conversations: c.conversations,
        }
    }
}

/// A page of contacts.
#[derive(Debug, Serialize, ToSchema)]
struct ContactPage {
    /// Newest first.
    contacts: Vec<ContactOut>,
    /// Send it back as `?cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `GET /contacts?q=&limit=&cursor=`: newest contacts first, `{contacts, next_cursor}`.
#[utoipa::path(get, path = "/contacts", params(PageQuery),
    responses((status = 200, description = "A page of contacts", body = ContactPage)))]
async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<PageQuery>,
) -> Result<Json<ContactPage>, ApiError> {
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
    Ok(Json(ContactPage {
        contacts: page.contacts.iter().map(ContactOut::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.encode()),
    }))
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

/// A contact with a page of their conversations.
#[derive(Debug, Serialize, ToSchema)]
struct ContactDetails {
    id: ContactId,
    email: String,
    name: String,
    created_at: Time,
    /// Newest activity first.
    conversations: Vec<ConversationOut>,
    /// Send it back as `?cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
    /// How many of their conversations the caller may see.
    total: i64,
}

/// `GET /contacts/{id}?limit=&cursor=`: the contact, and a page of their conversations the
/// caller may see, newest activity first (`conversations`, `next_cursor`, `total`).
#[utoipa::path(get, path = "/contacts/{id}", params(("id" = i64, Path, description = "The contact"), PageQuery),
    responses(
        (status = 200, description = "The contact and a page of their conversations", body = ContactDetails),
        (status = 404, description = "No such contact, or none of their conversations is the caller's to see", body = ErrorBody),
    ))]
async fn show(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ContactDetails>, ApiError> {
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
    Ok(Json(ContactDetails {
        id: contact.contact.id,
        email: contact.contact.email,
        name: contact.contact.name,
        created_at: Time::at(contact.created_at),
        conversations: ConversationOut::all(&page.conversations),
        next_cursor: page.next_cursor.map(|c| c.encode()),
        total: contact.conversations,
    }))
}

/// A contact's name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RenameForm {
    /// One line of at most 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// `PATCH /contacts/{id} {name}`: corrects the contact's name; their later emails no longer
/// replace it. Answers the contact.
#[utoipa::path(patch, path = "/contacts/{id}", params(("id" = i64, Path, description = "The contact")), request_body = RenameForm,
    responses(
        (status = 200, description = "The contact", body = ContactOut),
        (status = 404, description = "No such contact, or none of their conversations is the caller's to see", body = ErrorBody),
        (status = 422, description = "An empty name, one too long or with a line break", body = ErrorBody),
    ))]
async fn rename(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(form): ApiJson<RenameForm>,
) -> Result<Json<ContactOut>, ApiError> {
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
    Ok(Json(ContactOut::from(&ContactSummary {
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

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, rename, export, delete))]
pub(super) struct Api;

fn not_found() -> ApiError {
    ApiError::NotFound("contact not found".into())
}

/// The contact in their export.
#[derive(Debug, Serialize, ToSchema)]
struct ExportedContact {
    id: ContactId,
    email: String,
    name: String,
    created_at: Time,
}

/// A conversation of the contact with every message.
#[derive(Debug, Serialize, ToSchema)]
struct ExportedConversation {
    #[serde(flatten)]
    conversation: ConversationOut,
    messages: Vec<MessageOut>,
}

/// An email of the contact exactly as received.
#[derive(Debug, Serialize, ToSchema)]
struct ExportedEmail {
    id: RawEmailId,
    inbox_id: InboxId,
    fetched_at: Time,
    /// Of its bytes, hex.
    sha256: String,
    /// Bytes.
    size: i64,
    /// Its bytes, base64.
    #[schema(content_encoding = "base64")]
    eml_base64: String,
}

/// Everything stored about one contact: the file an admin hands to them.
#[derive(Debug, Serialize, ToSchema)]
struct ContactExportOut {
    contact: ExportedContact,
    exported_at: Time,
    /// Every conversation of theirs, with every message.
    conversations: Vec<ExportedConversation>,
    /// The messages they wrote in other contacts' conversations.
    messages_elsewhere: Vec<MessageOut>,
    raw_emails: Vec<ExportedEmail>,
}

/// The export as the file an admin hands to the contact.
fn export_json(data: &ContactExport) -> ContactExportOut {
    let conversations = data
        .conversations
        .iter()
        .map(|c| ExportedConversation {
            conversation: ConversationOut::from(&c.conversation),
            messages: c.messages.iter().map(MessageOut::from).collect(),
        })
        .collect();
    let raw_emails = data
        .raw_emails
        .iter()
        .map(|r| ExportedEmail {
            id: r.id,
            inbox_id: r.inbox_id,
            fetched_at: Time::at(r.fetched_at),
            sha256: r.sha256.clone(),
            size: r.size,
            eml_base64: base64::engine::general_purpose::STANDARD.encode(&r.bytes),
        })
        .collect();
    ContactExportOut {
        contact: ExportedContact {
            id: data.contact.id,
            email: data.contact.email.clone(),
            name: data.contact.name.clone(),
            created_at: Time::at(data.created_at),
        },
        exported_at: Time::at(postdesk_store::now_ms()),
        conversations,
        messages_elsewhere: data
            .messages_elsewhere
            .iter()
            .map(MessageOut::from)
            .collect(),
        raw_emails,
    }
}

/// Everything stored about the contact, as a JSON file to download.
#[utoipa::path(get, path = "/contacts/{id}/export", params(("id" = i64, Path, description = "The contact")),
    responses(
        (status = 200, description = "The file (`Content-Disposition: attachment; filename=\"contact-<id>.json\"`)", body = ContactExportOut),
        (status = 404, description = "No such contact", body = ErrorBody),
    ))]
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
        Json(body),
    )
        .into_response())
}

/// Deletes the contact and everything stored about them; answers what was deleted.
#[utoipa::path(delete, path = "/contacts/{id}", params(("id" = i64, Path, description = "The contact")),
    responses(
        (status = 200, description = "What was deleted", body = DeletionReport),
        (status = 404, description = "No such contact", body = ErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Json<DeletionReport>, ApiError> {
    let report = state
        .store
        .delete_contact(ContactId(id))
        .await?
        .ok_or_else(not_found)?;
    super::audit::record(
        &state,
        &auth,
        &client,
        "contact.delete",
        &format!("contact:{id}"),
        json!(report),
    )
    .await;
    Ok(Json(report))
}
