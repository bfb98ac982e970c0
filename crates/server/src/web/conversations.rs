//! Conversations: Queued Chats, Take it!, Chats in Progress, messages (internal and Reply via
//! Email), uploads, Send via Email as attachment, slash commands, close, attachments.
//!
//! Who may do what is the access policy's ([`postdesk_core::access`]): each route names its
//! action, and the policy's middleware has decided it before a handler here runs.

use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use postdesk_core::command::Command;
use postdesk_core::event::Event;
use postdesk_core::ids::{
    AttachmentId, ContactId, ConversationId, DepartmentId, InboxId, MessageId, UserId,
};
use postdesk_core::model::{ConversationStatus, MessageKind, SenderAuth};
use postdesk_store::{Addr, Author, Conversation, Delivery, Message, NewAttachment, TakeError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiJson, ErrorBody, Path, Query};
use super::policy::{Allowed, Route};
use super::{ApiError, AppState, AuthUser, MAX_MESSAGE_CHARS, MAX_UPLOAD_BYTES};
use crate::outbox::{ComposeError, Reply};
use postdesk_core::access::{Action, Rule};
use postdesk_mail::Format;

pub(super) fn routes() -> Vec<Route> {
    use Action::{Read, Reopen, Reply, Take, Transfer, Write};
    let on = Rule::Conversation;
    vec![
        Route::get("/conversations/{id}", on(Read), show),
        Route::post("/conversations/{id}/take", on(Take), take),
        Route::get("/conversations/{id}/messages", on(Read), messages),
        Route::post("/conversations/{id}/messages", on(Write), post_message),
        Route::get("/conversations/{id}/recipients", on(Read), recipients),
        Route::post("/conversations/{id}/uploads", on(Write), upload)
            .with_body_limit(MAX_UPLOAD_BYTES + 64 * 1024),
        Route::post("/conversations/{id}/commands", on(Write), command),
        Route::post("/conversations/{id}/close", on(Write), close),
        Route::post("/conversations/{id}/reopen", on(Reopen), reopen),
        Route::post(
            "/conversations/{id}/transfer",
            on(Transfer),
            super::desk::transfer,
        ),
        Route::post("/conversations/{id}/hold", on(Write), super::desk::hold),
        Route::post("/conversations/{id}/resume", on(Write), super::desk::resume),
        Route::post("/conversations/{id}/snooze", on(Write), super::desk::snooze),
        Route::post("/conversations/{id}/merge", on(Write), super::desk::merge),
        Route::post("/messages/{id}/send-email", on(Reply), send_email),
        Route::post("/messages/{id}/retry", on(Reply), retry),
        Route::get("/messages/{id}/body.html", on(Read), super::ui::email_body),
        Route::get("/attachments/{id}", on(Read), attachment),
    ]
}

/// This file's routes in the OpenAPI document (the desk's are described in `desk.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    show,
    take,
    messages,
    post_message,
    recipients,
    upload,
    command,
    close,
    reopen,
    super::desk::transfer,
    super::desk::hold,
    super::desk::resume,
    super::desk::snooze,
    super::desk::merge,
    send_email,
    retry,
    super::ui::email_body,
    attachment,
))]
pub(super) struct Api;

/// A stored time (ms) as RFC 3339 UTC.
pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A time as the API shows it: RFC 3339 in UTC, with milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(format = DateTime, example = "2026-05-04T09:30:00.000Z")]
pub(crate) struct Time(String);

impl Time {
    /// A stored time (ms).
    pub(crate) fn at(ms: i64) -> Self {
        Self(time(ms))
    }
}

/// A conversation as every answer shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Conversation)]
pub(super) struct ConversationOut {
    id: ConversationId,
    /// The inbox it came in through.
    inbox_id: InboxId,
    /// The subject of its first email.
    subject: String,
    status: ConversationStatus,
    /// The agent who has it (none while queued).
    assignee_id: Option<UserId>,
    contact: ContactRef,
    created_at: Time,
    last_message_at: Time,
    /// While closed.
    closed_at: Option<Time>,
    /// The closed conversation this one follows up on.
    follows_id: Option<ConversationId>,
    /// An email of the contact in it has a From that failed DMARC.
    dmarc_failed: bool,
    /// Its tags, in the order they were set.
    tags: Vec<String>,
    /// Its department: its inbox's on arrival, or the one it was transferred to.
    department_id: Option<DepartmentId>,
    /// When it last entered Queued Chats, while queued.
    queued_at: Option<Time>,
    /// While snoozed.
    snoozed_until: Option<Time>,
    /// Once merged: the conversation it was merged into.
    merged_into_id: Option<ConversationId>,
}

/// The contact of a conversation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct ContactRef {
    id: ContactId,
    email: String,
    /// Display name (may be empty).
    name: String,
}

impl ConversationOut {
    /// Each of `conversations` (a page of a list).
    pub(super) fn all(conversations: &[Conversation]) -> Vec<Self> {
        conversations.iter().map(Self::from).collect()
    }
}

impl From<&Conversation> for ConversationOut {
    fn from(c: &Conversation) -> Self {
        Self {
            id: c.id,
            inbox_id: c.inbox_id,
            subject: c.subject.clone(),
            status: c.status,
            assignee_id: c.assignee_id,
            contact: ContactRef {
                id: c.contact.id,
                email: c.contact.email.clone(),
                name: c.contact.name.clone(),
            },
            created_at: Time::at(c.created_at),
            last_message_at: Time::at(c.last_message_at),
            closed_at: c.closed_at.map(Time::at),
            follows_id: c.follows_id,
            dmarc_failed: c.dmarc_failed,
            tags: c.tags.clone(),
            department_id: c.department_id,
            queued_at: c.queued_at.map(Time::at),
            snoozed_until: c.snoozed_until.map(Time::at),
            merged_into_id: c.merged_into_id,
        }
    }
}

/// A message as the API shows it, with its files' metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Message)]
pub struct MessageOut {
    id: MessageId,
    conversation_id: ConversationId,
    kind: MessageKind,
    author: Author,
    text: String,
    /// `email_in` only: the new text, without quoted history and signature (found in the
    /// HTML's quote structure when it has one).
    reply_text: Option<String>,
    /// Sanitised HTML, for emails that had it.
    html: Option<String>,
    /// The HTML loads remote images (shown only when the agent allows them).
    remote_images: bool,
    /// The email's headers and delivery, for `email_in` and `email_out`.
    email: Option<EmailOut>,
    attachments: Vec<AttachmentOut>,
    /// For an email sent from a file message: that message.
    source_message_id: Option<MessageId>,
    created_at: Time,
}

/// The email part of an email message.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Email)]
pub(super) struct EmailOut {
    /// Message-ID without `<>`.
    message_id: String,
    subject: String,
    from: Option<Addr>,
    to: Vec<Addr>,
    cc: Vec<Addr>,
    /// Only ever set on our own emails: whom they sent a blind copy (never in its headers).
    bcc: Vec<Addr>,
    /// In-Reply-To without `<>`.
    in_reply_to: Option<String>,
    /// References without `<>`, oldest first.
    references: Vec<String>,
    /// The Date header.
    date: Option<Time>,
    /// Why an inbound email joined this conversation.
    thread_reason: Option<String>,
    /// Delivery, for outgoing emails.
    delivery: Option<Delivery>,
    /// DKIM, SPF and DMARC of an inbound email; null when not checked.
    auth: Option<SenderAuth>,
}

/// A file on a message (its bytes are at `url`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Attachment)]
pub(super) struct AttachmentOut {
    id: AttachmentId,
    filename: String,
    content_type: String,
    /// Bytes.
    size: i64,
    /// Shown inline (an image the HTML names by `cid:`) rather than as a download.
    inline: bool,
    /// Content-ID without `<>`.
    content_id: Option<String>,
    /// Where its bytes are: `/api/v1/attachments/{id}`.
    url: String,
}

impl From<&Message> for MessageOut {
    fn from(m: &Message) -> Self {
        Self::with_history(m, &[])
    }
}

impl MessageOut {
    /// `ours` are the texts of the conversation's outgoing emails, which the new text of an
    /// inbound email (`reply_text`) never repeats.
    fn with_history(m: &Message, ours: &[&str]) -> Self {
        let email = m.email.as_ref().map(|e| EmailOut {
            message_id: e.message_id.clone(),
            subject: e.subject.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            cc: e.cc.clone(),
            bcc: e.bcc.clone(),
            in_reply_to: e.in_reply_to.clone(),
            references: e.references.clone(),
            date: e.date.map(Time::at),
            thread_reason: e.thread_reason.clone(),
            delivery: e.delivery.clone(),
            auth: e.auth.clone(),
        });
        let attachments = m
            .attachments
            .iter()
            .map(|a| AttachmentOut {
                id: a.id,
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: a.size,
                inline: a.inline,
                content_id: a.content_id.clone(),
                url: format!("/api/v1/attachments/{}", a.id),
            })
            .collect();
        Self {
            id: m.id,
            conversation_id: m.conversation_id,
            kind: m.kind,
            author: m.author.clone(),
            text: m.text.clone(),
            reply_text: (m.kind == MessageKind::EmailIn)
                .then(|| postdesk_mail::trim::reply_text_of(&m.text, m.html.as_deref(), ours)),
            html: m.html.clone(),
            remote_images: m.html.as_deref().is_some_and(|h| h.contains("src=\"http")),
            email,
            attachments,
            source_message_id: m.source_message_id,
            created_at: Time::at(m.created_at),
        }
    }
}

/// A `?status=` filter (empty: none).
pub(super) fn status_param(value: Option<&str>) -> Result<Option<ConversationStatus>, ApiError> {
    value
        .filter(|s| !s.is_empty())
        .map(ConversationStatus::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A conversation.
#[utoipa::path(get, path = "/conversations/{id}", params(("id" = i64, Path, description = "The conversation")),
    responses((status = 200, description = "The conversation", body = ConversationOut)))]
async fn show(Allowed(c): Allowed) -> Json<ConversationOut> {
    Json(ConversationOut::from(&c))
}

/// Take it!: a queued conversation becomes the caller's, `open`.
#[utoipa::path(post, path = "/conversations/{id}/take", params(("id" = i64, Path, description = "The conversation")),
    responses(
        (status = 200, description = "The conversation, open and assigned to the caller", body = ConversationOut),
        (status = 409, description = "Already taken by someone (the answer names them), or not queued", body = ErrorBody),
    ))]
async fn take(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
) -> Result<Json<ConversationOut>, ApiError> {
    match state.store.take_conversation(c.id, &auth.user).await {
        Ok(c) => {
            state.bus.publish(Event::ConversationTaken {
                conversation_id: c.id,
                assignee_id: auth.user.id,
            });
            Ok(Json(ConversationOut::from(&c)))
        }
        Err(TakeError::AlreadyTaken { by }) => Err(ApiError::Conflict(format!(
            "This conversation is already taken by {by}"
        ))),
        Err(TakeError::Store(e)) => Err(e.into()),
    }
}

/// The messages of a conversation.
#[derive(Debug, Serialize, ToSchema)]
struct MessageList {
    /// Oldest first.
    messages: Vec<MessageOut>,
}

/// A conversation's messages, oldest first: emails both ways, internal messages and system
/// lines.
#[utoipa::path(get, path = "/conversations/{id}/messages", params(("id" = i64, Path, description = "The conversation")),
    responses((status = 200, description = "Its messages", body = MessageList)))]
async fn messages(
    State(state): State<AppState>,
    Allowed(c): Allowed,
) -> Result<Json<MessageList>, ApiError> {
    let messages = state.store.list_messages(c.id).await?;
    // What we sent is history for certain when the contact quotes it back.
    let ours: Vec<&str> = outgoing_texts(&messages);
    let messages = messages
        .iter()
        .map(|m| MessageOut::with_history(m, &ours))
        .collect();
    Ok(Json(MessageList { messages }))
}

/// Where a message goes: to the team only (`internal`) or to the contact (`email`, Reply via
/// Email).
#[derive(Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Via {
    Internal,
    Email,
}

/// A message to post; the fields after `via` are for Reply via Email only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PostMessage {
    /// The text (at most 100,000 characters).
    #[schema(min_length = 1, max_length = 100000)]
    text: String,
    /// Default `internal`.
    via: Option<Via>,
    /// Reply via Email only: the recipients (left out: reply all, see `Outbox::reply`).
    to: Option<Vec<String>>,
    cc: Option<Vec<String>>,
    bcc: Option<Vec<String>>,
    /// Which email of the conversation this answers (left out: the contact's latest).
    in_reply_to_message_id: Option<i64>,
    format: Option<TextFormat>,
    /// The newest message the agent had seen: newer emails stop the send (409).
    seen_message_id: Option<i64>,
    /// Whether to quote the email answered below the reply (default: yes, when the inbox
    /// quotes history).
    quote: Option<bool>,
}

/// How a reply's text is written: plain text, or Markdown sent as text and HTML.
#[derive(Deserialize, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
enum TextFormat {
    Text,
    Markdown,
}

impl PostMessage {
    /// The fields that only Reply via Email takes, when any is set.
    fn email_fields(&self) -> Option<&'static str> {
        [
            ("to", self.to.is_some()),
            ("cc", self.cc.is_some()),
            ("bcc", self.bcc.is_some()),
            (
                "in_reply_to_message_id",
                self.in_reply_to_message_id.is_some(),
            ),
            ("format", self.format.is_some()),
            ("quote", self.quote.is_some()),
        ]
        .into_iter()
        .find_map(|(name, set)| set.then_some(name))
    }
}

fn compose_error(e: ComposeError) -> ApiError {
    match e {
        ComposeError::Invalid(message) => ApiError::Unprocessable(message),
        ComposeError::NewerMessages(_) => ApiError::Conflict(e.to_string()),
        ComposeError::Unexpected(e) => ApiError::Internal(e),
    }
}

/// Posts a message: internal (the team only) or Reply via Email.
#[utoipa::path(post, path = "/conversations/{id}/messages", params(("id" = i64, Path, description = "The conversation")), request_body = PostMessage,
    responses(
        (status = 201, description = "The message (an email is queued for delivery)", body = MessageOut),
        (status = 403, description = "Not allowed to reply via email", body = ErrorBody),
        (status = 409, description = "Newer emails than `seen_message_id` (`new_messages`), or the conversation's state", body = ErrorBody),
        (status = 413, description = "The text is longer than 100,000 characters", body = ErrorBody),
        (status = 422, description = "An empty text, a bad recipient, email fields on an internal message", body = ErrorBody),
    ))]
async fn post_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<PostMessage>,
) -> Result<(StatusCode, Json<MessageOut>), ApiError> {
    if form.text.trim().is_empty() {
        return Err(ApiError::Unprocessable("The message is empty".into()));
    }
    check_length(&form.text)?;
    let via = form.via.unwrap_or(Via::Internal);
    if matches!(via, Via::Email) {
        // Replying sends email: the policy's Reply, beyond writing.
        postdesk_core::access::decide(&auth.actor(), Action::Reply, &scope_of(&state, &c).await?)
            .map_err(|d| super::policy::denied(&d))?;
    } else if let Some(field) = form.email_fields() {
        return Err(ApiError::Unprocessable(format!(
            "{field} is for Reply via Email (\"via\": \"email\"); an internal message goes to the team only"
        )));
    }
    let message = match via {
        Via::Internal => {
            let m = state
                .store
                .add_internal_message(c.id, auth.user.id, &form.text)
                .await?;
            state.bus.publish(Event::MessageCreated {
                conversation_id: c.id,
                message_id: m.id,
            });
            m
        }
        Via::Email => {
            let reply = Reply {
                text: &form.text,
                format: match form.format.unwrap_or(TextFormat::Text) {
                    TextFormat::Text => Format::Text,
                    TextFormat::Markdown => Format::Markdown,
                },
                to: form.to.as_deref(),
                cc: form.cc.as_deref(),
                bcc: form.bcc.as_deref().unwrap_or_default(),
                answering: form.in_reply_to_message_id.map(MessageId),
                seen: form.seen_message_id.map(MessageId),
                quote: form.quote.unwrap_or(true),
                source: None,
            };
            match state.outbox.reply(&c, &auth.user, &reply).await {
                Ok(message) => message,
                Err(ComposeError::NewerMessages(ids)) => {
                    return Err(newer_messages(&state, &c, &ids).await);
                }
                Err(e) => return Err(compose_error(e)),
            }
        }
    };
    // What was being written is now posted: the agent's draft of it goes.
    if let Err(e) = state.store.delete_draft(auth.user.id, c.id).await {
        tracing::warn!(conversation = %c.id, "The draft of a posted message was not deleted: {e}");
    }
    Ok((StatusCode::CREATED, Json(MessageOut::from(&message))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RecipientsQuery {
    /// The email answered (default: the contact's latest).
    in_reply_to_message_id: Option<i64>,
}

/// What Reply via Email sends to when `to` and `cc` are left out.
#[derive(Debug, Serialize, ToSchema)]
struct Recipients {
    /// The email answered; null when the conversation has none.
    in_reply_to_message_id: Option<MessageId>,
    to: Vec<Addr>,
    cc: Vec<Addr>,
    /// The reply's subject.
    subject: String,
}

/// What Reply via Email starts from: `{in_reply_to_message_id, to, cc, subject}`, the email
/// answered (by default the contact's latest) and its reply-all recipients, as the composer
/// shows them for the agent to edit.
#[utoipa::path(get, path = "/conversations/{id}/recipients", params(("id" = i64, Path, description = "The conversation"), RecipientsQuery),
    responses(
        (status = 200, description = "The default recipients", body = Recipients),
        (status = 422, description = "The id is not an email of the conversation", body = ErrorBody),
    ))]
async fn recipients(
    State(state): State<AppState>,
    Allowed(c): Allowed,
    Query(query): Query<RecipientsQuery>,
) -> Result<Json<Recipients>, ApiError> {
    let defaults = state
        .outbox
        .reply_defaults(&c, query.in_reply_to_message_id.map(MessageId))
        .await
        .map_err(compose_error)?;
    let list = |l: &[postdesk_mail::Mailbox]| -> Vec<Addr> {
        l.iter()
            .map(|m| Addr {
                name: m.name.clone(),
                email: m.email.clone(),
            })
            .collect()
    };
    Ok(Json(Recipients {
        in_reply_to_message_id: defaults.answering,
        to: list(&defaults.to),
        cc: list(&defaults.cc),
        subject: defaults.subject,
    }))
}

/// The send-time collision check's answer: 409 with the emails the agent had not seen.
async fn newer_messages(state: &AppState, c: &Conversation, ids: &[MessageId]) -> ApiError {
    let messages = match state.store.list_messages(c.id).await {
        Ok(messages) => messages,
        Err(e) => return e.into(),
    };
    let ours: Vec<&str> = outgoing_texts(&messages);
    let new_messages = messages
        .iter()
        .filter(|m| ids.contains(&m.id))
        .map(|m| MessageOut::with_history(m, &ours))
        .collect();
    ApiError::NewerMessages {
        message: format!(
            "{} new email(s) in this conversation since you opened it: read them, then send anyway or edit your reply",
            ids.len()
        ),
        new_messages,
    }
}

/// The texts of the conversation's outgoing emails (history for certain when quoted back).
fn outgoing_texts(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .filter(|m| m.kind == MessageKind::EmailOut)
        .map(|m| m.text.as_str())
        .collect()
}

/// The body of an upload.
#[derive(ToSchema)]
#[allow(dead_code)] // Read by `Multipart`, described here.
struct UploadForm {
    /// The file (at most 50 MB).
    #[schema(content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

/// Uploads a file into the conversation: an internal message carrying it (nothing is sent).
#[utoipa::path(post, path = "/conversations/{id}/uploads", params(("id" = i64, Path, description = "The conversation")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The internal message with the file", body = MessageOut),
        (status = 422, description = "Larger than 50 MB", body = ErrorBody),
    ))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<MessageOut>), ApiError> {
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let filename = postdesk_mail::safe_filename(field.file_name().unwrap_or("file"));
        let content_type = field
            .content_type()
            .filter(|t| t.contains('/') && !t.contains(['\r', '\n']))
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(ApiError::Unprocessable(format!(
                "The file is larger than {} MB",
                MAX_UPLOAD_BYTES / 1024 / 1024
            )));
        }
        file = Some(NewAttachment {
            filename,
            content_type,
            content_id: None,
            inline: false,
            bytes: bytes.to_vec(),
        });
    }
    let file = file.ok_or_else(|| {
        ApiError::BadRequest("Send the file in a multipart field named \"file\"".into())
    })?;
    let message = state.store.add_upload(c.id, auth.user.id, &file).await?;
    state.bus.publish(Event::MessageCreated {
        conversation_id: c.id,
        message_id: message.id,
    });
    Ok((StatusCode::CREATED, Json(MessageOut::from(&message))))
}

async fn find_message(state: &AppState, id: i64) -> Result<Message, ApiError> {
    state
        .store
        .find_message(MessageId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("message not found".into()))
}

/// Send via Email as attachment: a new email to the contact carrying the message's files.
#[utoipa::path(post, path = "/messages/{id}/send-email", params(("id" = i64, Path, description = "The message")),
    responses(
        (status = 202, description = "The new `email_out` message, queued", body = MessageOut),
        (status = 422, description = "Not a file uploaded into the conversation", body = ErrorBody),
    ))]
async fn send_email(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<MessageOut>), ApiError> {
    let source = find_message(&state, id).await?;
    if source.kind != MessageKind::Internal {
        return Err(ApiError::Unprocessable(
            "Only a file uploaded into the conversation can be sent via email".into(),
        ));
    }
    let names: Vec<&str> = source
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    let text = if source.text.trim().is_empty() {
        format!("Please find attached: {}", names.join(", "))
    } else {
        source.text.clone()
    };
    let message = state
        .outbox
        .reply(
            &c,
            &auth.user,
            &Reply {
                source: Some(&source),
                ..Reply::plain(&text)
            },
        )
        .await
        .map_err(compose_error)?;
    Ok((StatusCode::ACCEPTED, Json(MessageOut::from(&message))))
}

/// Retry a failed email now.
#[utoipa::path(post, path = "/messages/{id}/retry", params(("id" = i64, Path, description = "The message")),
    responses(
        (status = 202, description = "The email, queued again", body = MessageOut),
        (status = 404, description = "No such email to retry", body = ErrorBody),
    ))]
async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<MessageOut>), ApiError> {
    let message = find_message(&state, id).await?;
    state.store.retry_email(message.id).await?;
    state.outbox.interrupt();
    state.bus.publish(Event::DeliveryUpdated {
        conversation_id: message.conversation_id,
        message_id: message.id,
        status: postdesk_core::model::DeliveryStatus::Queued,
    });
    let message = find_message(&state, id).await?;
    Ok((StatusCode::ACCEPTED, Json(MessageOut::from(&message))))
}

/// A slash command.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CommandForm {
    /// `/invite @username`.
    #[schema(example = "/invite @bob")]
    command: String,
}

/// What a slash command did.
#[derive(Debug, Serialize, ToSchema)]
struct CommandDone {
    ok: bool,
    /// In words.
    message: String,
}

/// Runs a slash command (`/invite @username`).
#[utoipa::path(post, path = "/conversations/{id}/commands", params(("id" = i64, Path, description = "The conversation")), request_body = CommandForm,
    responses(
        (status = 200, description = "Done", body = CommandDone),
        (status = 404, description = "No active user of that name", body = ErrorBody),
        (status = 422, description = "An unknown command or a bad usage", body = ErrorBody),
    ))]
async fn command(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<CommandForm>,
) -> Result<Json<CommandDone>, ApiError> {
    let command =
        Command::parse(&form.command).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    match command {
        Command::Invite { username } => {
            let invited = state
                .store
                .find_user_by_username(&username)
                .await?
                .filter(|u| u.active)
                .ok_or_else(|| {
                    ApiError::NotFound(format!("There is no active user @{username}"))
                })?;
            let added = state.store.add_member(c.id, &invited, &auth.user).await?;
            if let Some(message_id) = added {
                state.bus.publish(Event::MemberAdded {
                    conversation_id: c.id,
                    user_id: invited.id,
                });
                state.bus.publish(Event::MessageCreated {
                    conversation_id: c.id,
                    message_id,
                });
            }
            let text = if added.is_some() {
                format!("@{username} was invited and now sees the whole conversation")
            } else {
                format!("@{username} is already a member")
            };
            Ok(Json(CommandDone {
                ok: true,
                message: text,
            }))
        }
    }
}

/// Closing; the body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct CloseForm {
    /// A closing comment (a system line).
    comment: Option<String>,
}

/// Closes the conversation (Done).
#[utoipa::path(post, path = "/conversations/{id}/close", params(("id" = i64, Path, description = "The conversation")),
    request_body(content = Option<CloseForm>, description = "Optional"),
    responses((status = 200, description = "The conversation, closed", body = ConversationOut)))]
async fn close(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    body: axum::body::Bytes,
) -> Result<Json<ConversationOut>, ApiError> {
    // The body is optional: no body closes without a comment.
    let form: CloseForm = if body.iter().all(u8::is_ascii_whitespace) {
        CloseForm::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("Invalid JSON: {e}")))?
    };
    let closed = state
        .store
        .close_conversation(c.id, &auth.user, form.comment.as_deref())
        .await?;
    state.bus.publish(Event::ConversationClosed {
        conversation_id: c.id,
    });
    Ok(Json(ConversationOut::from(&closed)))
}

/// Reopen: a closed conversation goes back to Chats in Progress of whoever reopens it.
#[utoipa::path(post, path = "/conversations/{id}/reopen", params(("id" = i64, Path, description = "The conversation")),
    responses(
        (status = 200, description = "The conversation, open and assigned to the caller", body = ConversationOut),
        (status = 409, description = "Not closed, or merged into another (the answer names it)", body = ErrorBody),
    ))]
async fn reopen(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
) -> Result<Json<ConversationOut>, ApiError> {
    if let Some(into) = c.merged_into_id {
        return Err(ApiError::Conflict(format!(
            "This conversation was merged into #{into}: continue there"
        )));
    }
    let reopened = state
        .store
        .reopen_conversation(c.id, &auth.user)
        .await?
        .ok_or_else(|| ApiError::Conflict("This conversation is no longer closed".into()))?;
    state.bus.publish(Event::ConversationTaken {
        conversation_id: c.id,
        assignee_id: auth.user.id,
    });
    Ok(Json(ConversationOut::from(&reopened)))
}

/// The policy's facts about a conversation, for a second decision within a route.
async fn scope_of(
    state: &AppState,
    c: &Conversation,
) -> Result<postdesk_core::access::ConversationScope, ApiError> {
    state
        .store
        .conversation_scope(c.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("conversation not found".into()))
}

/// Refuses a message text over [`MAX_MESSAGE_CHARS`].
pub(super) fn check_length(text: &str) -> Result<(), ApiError> {
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::PayloadTooLarge(format!(
            "The message is longer than {MAX_MESSAGE_CHARS} characters; send long texts as a file"
        )));
    }
    Ok(())
}

/// The bytes of an attachment. Served as a download (never rendered inline by the browser on
/// our origin, so an HTML or SVG attachment cannot run script), with `nosniff`.
#[utoipa::path(get, path = "/attachments/{id}", params(("id" = i64, Path, description = "The attachment")),
    responses((status = 200, description = "The file's bytes, with its own content type and `Content-Disposition: attachment`",
        content_type = "*/*", body = [u8])))]
async fn attachment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (a, _, bytes) = state
        .store
        .find_attachment(AttachmentId(id))
        .await?
        .ok_or_else(|| ApiError::NotFound("attachment not found".into()))?;
    let ascii: String = a
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = super::percent_encode(&a.filename);
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &a.content_type)
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        )
        .body(Body::from(bytes))
        .map_err(|e| ApiError::Internal(e.into()))
}
