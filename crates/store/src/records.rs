//! The rows the rest of postdesk reads and writes.

use postdesk_core::ids::{
    AttachmentId, ContactId, ConversationId, InboxId, MessageId, RawEmailId, UserId,
};
use postdesk_core::model::{
    ConversationStatus, DeliveryStatus, InboxState, MailAuth, MessageKind, Role, Security,
    SenderAuth,
};
use serde::{Deserialize, Serialize};

/// A user of postdesk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Login name, unique; what `/invite @username` names.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Email address (for notifications; not the login).
    pub email: String,
    /// What the user may do.
    pub roles: Vec<Role>,
    /// Deactivated users cannot log in.
    pub active: bool,
    /// When created (ms).
    pub created_at: i64,
    /// Whether they take conversations now (routing gives only to `available` agents).
    pub availability: postdesk_core::model::Availability,
}

impl User {
    /// Whether the user has `role`.
    #[must_use]
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the user may read every conversation without being a member.
    #[must_use]
    pub fn reads_all(&self) -> bool {
        self.roles.iter().any(|r| r.reads_all())
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    /// Roles.
    pub roles: Vec<Role>,
}

/// How to reach one mail server (IMAP or SMTP) of an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// tls, starttls or none.
    pub security: Security,
    /// Login.
    pub username: String,
    /// The password, encrypted with the data folder's key. Never sent over the API.
    pub password_encrypted: Vec<u8>,
    /// Verify the server's TLS certificate (the default). Off only for self-signed servers,
    /// by explicit choice.
    pub tls_verify: bool,
    /// How postdesk signs in: the password above, or an OAuth2 access token of the inbox's
    /// provider ([`InboxSettings::oauth_provider_id`]).
    pub auth: MailAuth,
}

/// An inbox's reader health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxStatus {
    /// What the reader is doing.
    pub state: InboxState,
    /// The last error, kept until the next successful sync.
    pub last_error: Option<String>,
    /// When mail was last fetched successfully (ms).
    pub last_sync_at: Option<i64>,
}

/// An email inbox: one shared address, read over IMAP and answered over SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbox {
    /// Id.
    pub id: InboxId,
    /// What an admin sets: address, names, servers, folders, reopen window.
    pub settings: InboxSettings,
    /// Reader health.
    pub status: InboxStatus,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
}

/// An inbox to create or the new settings of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxSettings {
    /// Display name.
    pub name: String,
    /// The shared address, normalised.
    pub email: String,
    /// The name in From of outgoing emails.
    pub sender_name: String,
    /// Optional department.
    pub department_id: Option<i64>,
    /// Whether its reader runs.
    pub active: bool,
    /// Where mail is read.
    pub imap: ServerSettings,
    /// The IMAP folder to read.
    pub imap_mailbox: String,
    /// The IMAP folder emails are moved to once stored (created when missing); `None` leaves
    /// them where they are.
    pub imap_move_to: Option<String>,
    /// The IMAP folder every email postdesk sends is also appended to (with `\Seen`): `None`
    /// finds it by the `\Sent` special-use flag, `Some("")` turns copies off.
    pub imap_sent_mailbox: Option<String>,
    /// Where mail is sent.
    pub smtp: ServerSettings,
    /// Reopen window in days.
    pub reopen_days: i64,
    /// Days a closed conversation is kept, counted from when it was closed; then it is
    /// deleted with its messages, files and raw emails. `None` keeps it forever.
    pub retention_days: Option<i64>,
    /// The OAuth2 provider that IMAP and SMTP sign in with when their `auth` is `oauth2`
    /// (one provider and one connection serve both).
    pub oauth_provider_id: Option<i64>,
    /// Markdown added once to the end of every Reply via Email, with the variables of
    /// [`postdesk_core::template`]; empty for none.
    pub signature: String,
    /// Whether a Reply via Email quotes the email it answers below the reply.
    pub quote_history: bool,
}

/// An OAuth2 client postdesk is registered as, at Google, Microsoft or any OAuth2 server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthProvider {
    /// Id.
    pub id: i64,
    /// What an admin sets.
    pub settings: OAuthProviderSettings,
    /// Created (ms).
    pub created_at: i64,
}

/// A provider to create, or the new settings of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthProviderSettings {
    /// A name an admin recognises ("Google Workspace"); unique.
    pub name: String,
    /// `google`, `microsoft` or `generic`.
    pub kind: String,
    /// The client id.
    pub client_id: String,
    /// The client secret, encrypted with the data folder's key. Never sent over the API.
    pub client_secret_encrypted: Vec<u8>,
    /// The authorization endpoint.
    pub auth_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
}

/// An inbox's OAuth2 connection: its tokens (encrypted) and whether it must be renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthTokens {
    /// The inbox.
    pub inbox_id: InboxId,
    /// The provider that issued the tokens.
    pub provider_id: i64,
    /// The refresh token, encrypted; `None` when the provider gave none.
    pub refresh_token_encrypted: Option<Vec<u8>>,
    /// The access token, encrypted.
    pub access_token_encrypted: Option<Vec<u8>>,
    /// When the access token expires (ms).
    pub access_expires_at: Option<i64>,
    /// The provider's words when it refused a refresh: the inbox must be connected again.
    pub reauth_error: Option<String>,
    /// When the inbox was (last) connected (ms).
    pub connected_at: i64,
    /// When the access token was last refreshed (ms).
    pub refreshed_at: Option<i64>,
}

/// A connection under way: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthPending {
    /// The random `state` of the authorization request.
    pub state: String,
    /// The inbox being connected.
    pub inbox_id: InboxId,
    /// Its provider.
    pub provider_id: i64,
    /// The hash of the session token that started it (the callback must carry that session).
    pub session_hash: String,
    /// Who started it.
    pub user_id: UserId,
    /// The PKCE verifier, encrypted.
    pub verifier_encrypted: Vec<u8>,
    /// The redirect URI sent with the request (the code exchange must repeat it).
    pub redirect_uri: String,
    /// When it stops being accepted (ms).
    pub expires_at: i64,
}

/// Someone who writes to an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// Normalised address.
    pub email: String,
    /// Display name (may be empty).
    pub name: String,
}

/// A conversation with a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// The inbox it came in through.
    pub inbox_id: InboxId,
    /// Subject of the first email.
    pub subject: String,
    /// Where it stands.
    pub status: ConversationStatus,
    /// The agent who took it.
    pub assignee_id: Option<UserId>,
    /// Its department: its inbox's when it arrived, another after a transfer to that
    /// department's queue; none for everyone's queue.
    pub department_id: Option<postdesk_core::ids::DepartmentId>,
    /// The contact.
    pub contact: Contact,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
    /// Last message (ms).
    pub last_message_at: i64,
    /// Closed (ms), while closed.
    pub closed_at: Option<i64>,
    /// The closed conversation this one follows up on (an email that arrived after the
    /// inbox's reopen window).
    pub follows_id: Option<ConversationId>,
    /// An email of the contact in it has a From that failed DMARC (the mark in Queued Chats).
    pub dmarc_failed: bool,
    /// Its tags, in the order they were set.
    pub tags: Vec<String>,
    /// When it last entered Queued Chats (ms), while queued; the queue is served oldest first.
    pub queued_at: Option<i64>,
    /// Until when it is snoozed (ms), while snoozed.
    pub snoozed_until: Option<i64>,
    /// The conversation it was merged into, once merged.
    pub merged_into_id: Option<ConversationId>,
}

/// A mailbox as in an email header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Addr {
    /// Display name.
    pub name: Option<String>,
    /// Address.
    pub email: String,
}

/// Delivery of an outgoing email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// queued, sent or failed.
    pub status: DeliveryStatus,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// The email part of an email message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailMeta {
    /// Message-ID without <>.
    pub message_id: String,
    /// Subject.
    pub subject: String,
    /// From.
    pub from: Option<Addr>,
    /// To.
    pub to: Vec<Addr>,
    /// Cc.
    pub cc: Vec<Addr>,
    /// Bcc of an email we sent (never in its headers); empty for inbound emails.
    pub bcc: Vec<Addr>,
    /// In-Reply-To without <>.
    pub in_reply_to: Option<String>,
    /// References without <>, oldest first.
    pub references: Vec<String>,
    /// The Date header (ms).
    pub date: Option<i64>,
    /// Why an inbound email joined this conversation.
    pub thread_reason: Option<String>,
    /// Delivery, for outgoing emails.
    pub delivery: Option<Delivery>,
    /// DKIM, SPF and DMARC verdicts, for inbound emails (none for emails processed before
    /// they were checked).
    pub auth: Option<SenderAuth>,
}

/// A file on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// Id.
    pub id: AttachmentId,
    /// The message it belongs to.
    pub message_id: MessageId,
    /// Safe file name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// sha256 of the bytes, hex.
    pub sha256: String,
    /// Content-ID (inline images), without <>.
    pub content_id: Option<String>,
    /// Shown inline rather than as a download.
    pub inline: bool,
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Author {
    /// An agent.
    User {
        /// Id.
        id: UserId,
        /// Login name.
        username: String,
        /// Display name.
        name: String,
    },
    /// The contact.
    Contact {
        /// Id.
        id: ContactId,
        /// Address.
        email: String,
        /// Display name.
        name: String,
    },
    /// postdesk itself (system lines).
    System,
}

/// A message in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// email_in, email_out, internal or system.
    pub kind: MessageKind,
    /// Who wrote it.
    pub author: Author,
    /// The text.
    pub text: String,
    /// Sanitised HTML, for emails that had it.
    pub html: Option<String>,
    /// The email headers and delivery, for email kinds.
    pub email: Option<EmailMeta>,
    /// Files.
    pub attachments: Vec<Attachment>,
    /// For an email sent from a file message: that message.
    pub source_message_id: Option<MessageId>,
    /// Created (ms).
    pub created_at: i64,
}

/// A raw email as fetched.
#[derive(Debug, Clone)]
pub struct RawEmail {
    /// Id.
    pub id: RawEmailId,
    /// The inbox it was fetched for.
    pub inbox_id: InboxId,
    /// Its bytes, exactly as fetched.
    pub bytes: Vec<u8>,
    /// Received by postdesk's own SMTP ingress (not fetched over IMAP): its topmost
    /// `Received` and `Return-Path` fields are postdesk's own.
    pub via_smtp: bool,
    /// When it was stored raw (ms): fetched, or received by the SMTP ingress.
    pub fetched_at: i64,
}

/// A quarantined raw email, for admins.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantinedEmail {
    /// Id of the raw email.
    pub id: RawEmailId,
    /// Inbox.
    pub inbox_id: InboxId,
    /// IMAP UID.
    pub uid: i64,
    /// Size in bytes.
    pub size: i64,
    /// Why it was quarantined.
    pub reason: String,
    /// When fetched (ms).
    pub fetched_at: i64,
}

/// A department: a team with its own queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Department {
    /// Id.
    pub id: postdesk_core::ids::DepartmentId,
    /// Its name, unique.
    pub name: String,
    /// Its members (agents and managers, by their role), by id.
    pub members: Vec<UserId>,
    /// How it hands out its queue.
    pub routing: postdesk_core::model::Routing,
    /// The most `open` conversations routing gives an agent (counted over every inbox);
    /// `None`: no limit.
    pub max_chats_per_agent: Option<i64>,
}

/// What `PUT /departments/{id}` sets: the whole department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentSettings {
    /// Its name.
    pub name: String,
    /// Its members, replacing the current ones.
    pub agents: Vec<UserId>,
    /// How it hands out its queue.
    pub routing: postdesk_core::model::Routing,
    /// The most open conversations per agent; `None`: no limit.
    pub max_chats_per_agent: Option<i64>,
}

/// A login session, as its user and admins see it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Id.
    pub id: postdesk_core::ids::SessionId,
    /// Whose.
    pub user_id: UserId,
    /// Started (ms).
    pub created_at: i64,
    /// Ends (ms).
    pub expires_at: i64,
    /// Last used (ms; updated at most once a minute).
    pub last_seen_at: i64,
    /// The address it signed in from.
    pub ip: String,
    /// The browser or client it signed in with.
    pub user_agent: String,
    /// How it signed in: `password`, `password+totp`, `oidc`.
    pub method: String,
}

/// A session to start.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Whose.
    pub user_id: UserId,
    /// The sha256 of its bearer token.
    pub token_hash: String,
    /// Ends (ms).
    pub expires_at: i64,
    /// The address it signed in from.
    pub ip: String,
    /// The browser or client it signed in with.
    pub user_agent: String,
    /// How it signed in.
    pub method: String,
}

/// The user a session token belongs to, with the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// Who.
    pub user: User,
    /// The session.
    pub session: SessionInfo,
    /// The departments the user belongs to.
    pub departments: Vec<postdesk_core::ids::DepartmentId>,
    /// Whether the user signs in with a second factor.
    pub totp_enabled: bool,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Id, increasing.
    pub id: i64,
    /// When (ms).
    pub at: i64,
    /// The user who acted, when known.
    pub actor_id: Option<UserId>,
    /// Their username (as typed, for a failed sign-in).
    pub actor: String,
    /// What was done: `sign_in`, `sign_in.failed`, `user.create`, `inbox.update`, …
    pub action: String,
    /// What it was done to: `user:7`, `inbox:2`, …
    pub target: String,
    /// The address the request came from.
    pub ip: String,
    /// More, as JSON (never a secret).
    pub details: serde_json::Value,
}

/// A line to append to the audit log.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    /// The user who acted, when known.
    pub actor_id: Option<UserId>,
    /// Their username.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// From where.
    pub ip: String,
    /// More, as JSON (never a secret).
    pub details: serde_json::Value,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only at or after this time (ms).
    pub since: Option<i64>,
    /// Only by this username.
    pub actor: Option<String>,
    /// Only this action, or actions under it (`user` matches `user.create`).
    pub action: Option<String>,
    /// Only entries with an id below this (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// Everything stored about one contact: what an admin exports when the contact asks for
/// their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactExport {
    /// The contact.
    pub contact: Contact,
    /// When they first wrote (ms).
    pub created_at: i64,
    /// Their conversations, oldest first, each with every message.
    pub conversations: Vec<ConversationExport>,
    /// Messages they wrote in other contacts' conversations (say, a reply from a colleague
    /// in Cc), oldest first.
    pub messages_elsewhere: Vec<Message>,
    /// The emails behind those messages, exactly as received, oldest first.
    pub raw_emails: Vec<ExportedRawEmail>,
}

/// One conversation of a contact, with every message (text, HTML, kind, author, email
/// headers, delivery and the files' metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationExport {
    /// The conversation.
    pub conversation: Conversation,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
}

/// A received email exactly as it arrived, in an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedRawEmail {
    /// Id of the raw email.
    pub id: RawEmailId,
    /// The inbox it arrived in.
    pub inbox_id: InboxId,
    /// When it was fetched or received (ms).
    pub fetched_at: i64,
    /// sha256 of the bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What a deletion removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct DeletionReport {
    /// Conversations, with their members.
    pub conversations: u64,
    /// Messages (of those conversations, and the contact's own in other conversations), with
    /// their outgoing emails.
    pub messages: u64,
    /// Files on those messages.
    pub attachments: u64,
    /// Raw emails behind those messages.
    pub raw_emails: u64,
    /// Stored bytes that nothing referred to any more (bytes still used by another file or
    /// email stay).
    pub blobs: u64,
}

impl DeletionReport {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &DeletionReport) {
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.attachments += other.attachments;
        self.raw_emails += other.raw_emails;
        self.blobs += other.blobs;
    }

    /// Whether nothing was deleted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == DeletionReport::default()
    }
}

/// What applying the inboxes' retention periods deleted, per inbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RetentionReport {
    /// The inboxes where something was deleted.
    pub inboxes: Vec<InboxDeletion>,
}

impl RetentionReport {
    /// The counts over every inbox.
    #[must_use]
    pub fn total(&self) -> DeletionReport {
        let mut total = DeletionReport::default();
        for inbox in &self.inboxes {
            total.add(&inbox.deleted);
        }
        total
    }

    /// Whether nothing was deleted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inboxes.is_empty()
    }
}

/// What an inbox's retention period deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxDeletion {
    /// The inbox.
    pub inbox_id: InboxId,
    /// Its retention period (days).
    pub retention_days: i64,
    /// What was deleted.
    pub deleted: DeletionReport,
}
