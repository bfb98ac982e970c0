//! Identifiers. Each stored entity has its own type so an inbox id can never be passed where a
//! conversation id is expected.

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// A user (admin or agent).
    UserId,
    /// An email inbox (one shared address).
    InboxId,
    /// A contact: someone who writes to an inbox.
    ContactId,
    /// A conversation in an inbox.
    ConversationId,
    /// A message in a conversation (email, internal or system line).
    MessageId,
    /// A file attached to a message.
    AttachmentId,
    /// The raw bytes of one fetched email.
    RawEmailId,
    /// A queued outgoing email.
    OutboxId,
    /// A department: a team with its own queue.
    DepartmentId,
    /// A login session.
    SessionId,
    /// A canned response: a saved reply an agent inserts with `!shortcut`.
    CannedResponseId,
);
