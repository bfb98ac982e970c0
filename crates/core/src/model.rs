//! The enumerations of the domain, each with its stable text form as stored and as sent over the API.

use serde::{Deserialize, Serialize};

/// An unknown text form of one of this module's enumerations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct UnknownVariant {
    /// The enumeration that was asked for.
    pub what: &'static str,
    /// The text that was given.
    pub value: String,
    /// The accepted forms, comma separated.
    pub expected: &'static str,
}

macro_rules! text_enum {
    ($(#[doc = $doc:literal])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            // The stable text form, also in JSON (`softfail`, not `soft_fail`).
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),*
        }

        // By hand: `derive(ToSchema)` does not see the renames a macro writes, and would
        // describe the variants' Rust names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),*]))
                    .description(Some(concat!($($doc, "\n"),*).trim()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            /// The stable text form.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),*
                }
            }

            /// Parses the stable text form.
            ///
            /// # Errors
            /// [`UnknownVariant`] for any other text.
            pub fn parse(value: &str) -> Result<Self, UnknownVariant> {
                match value {
                    $($text => Ok(Self::$variant),)*
                    _ => Err(UnknownVariant {
                        what: $what,
                        value: value.to_owned(),
                        expected: concat!($($text, " "),*),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What a user may do.
    Role, "role" {
        /// Manages inboxes and users, and may read every conversation.
        Admin = "admin",
        /// Supervises agents (reads every conversation).
        Manager = "manager",
        /// Works conversations they took or were invited to.
        Agent = "agent",
    }
);

text_enum!(
    /// Where a conversation stands.
    ConversationStatus, "conversation status" {
        /// In Queued Chats, waiting for an agent to take it.
        Queued = "queued",
        /// Taken: in the assignee's Chats in Progress.
        Open = "open",
        /// On Hold: parked by its assignee until the contact writes or it is resumed.
        OnHold = "on_hold",
        /// Snoozed until a time or until the contact writes, whichever comes first.
        Snoozed = "snoozed",
        /// Done; a new email from the contact reopens it.
        Closed = "closed",
    }
);

text_enum!(
    /// Whether an agent takes conversations now: routing gives only to `available` agents.
    Availability, "availability" {
        /// Taking conversations: routing may assign to them.
        Available = "available",
        /// Signed in but not taking new conversations.
        Away = "away",
        /// Not signed in (set when their last session ends).
        Offline = "offline",
    }
);

text_enum!(
    /// What an agent is doing in a conversation, shown live to their colleagues in it.
    Presence, "presence" {
        /// Has it open.
        Viewing = "viewing",
        /// Is writing a reply or a note in it.
        Typing = "typing",
        /// Closed it (or went elsewhere).
        Left = "left",
    }
);

text_enum!(
    /// How a department hands out its queued conversations.
    Routing, "routing method" {
        /// Agents take conversations themselves (Take it!).
        Manual = "manual",
        /// Each in turn: the next available agent by id after the last one given one.
        RoundRobin = "round_robin",
        /// To the available agent with the fewest open conversations.
        LoadBalancing = "load_balancing",
    }
);

text_enum!(
    /// Who a canned response is for; who may change it is the access policy's
    /// ([`crate::access::decide_canned`]).
    CannedScope, "canned response scope" {
        /// Every agent's.
        Global = "global",
        /// The agents of one department.
        Department = "department",
        /// Its owner's alone.
        User = "user",
    }
);

text_enum!(
    /// What a message in a conversation is.
    MessageKind, "message kind" {
        /// An email from the contact.
        EmailIn = "email_in",
        /// An email to the contact (Reply via Email, Send via Email as attachment).
        EmailOut = "email_out",
        /// Seen by agents only; the contact never receives it.
        Internal = "internal",
        /// A line written by postdesk itself: taken by, invited, closed.
        System = "system",
    }
);

text_enum!(
    /// The delivery state of an outgoing email.
    DeliveryStatus, "delivery status" {
        /// Waiting in the outbox (also between retries).
        Queued = "queued",
        /// Accepted by the SMTP server.
        Sent = "sent",
        /// Refused for good, or out of attempts; the error says why.
        Failed = "failed",
        /// Accepted by our SMTP server, but a receiving server reported a
        /// delay (RFC 3464 `Action: delayed` or a delay warning): it is still
        /// retrying, so the email may yet arrive or fail; the error says why.
        Delayed = "delayed",
    }
);

text_enum!(
    /// How a connection to a mail server is secured.
    Security, "security" {
        /// TLS from the first byte (IMAPS 993, SMTPS 465).
        Tls = "tls",
        /// Plain connection upgraded with STARTTLS (IMAP 143, submission 587).
        Starttls = "starttls",
        /// No encryption: only for servers on a trusted network or loopback.
        None = "none",
    }
);

text_enum!(
    /// The state of an inbox's IMAP reader, as shown in its health.
    InboxState, "inbox state" {
        /// Not running: the inbox is disabled.
        Stopped = "stopped",
        /// Connecting or logging in.
        Connecting = "connecting",
        /// Fetching new mail.
        Syncing = "syncing",
        /// Connected and waiting for new mail (IDLE or polling).
        Idle = "idle",
        /// The last attempt failed; retrying with backoff. `last_error` says why.
        Error = "error",
        /// The OAuth2 provider refused to renew the mailbox's sign-in (`last_error` has its
        /// words): the reader waits, without retrying, until an admin connects the inbox again.
        NeedsReauth = "needs_reauth",
    }
);

text_enum!(
    /// How postdesk signs in to an inbox's IMAP or SMTP server.
    MailAuth, "sign-in method" {
        /// Username and password (IMAP `LOGIN`, SMTP `AUTH PLAIN`/`LOGIN`).
        Password = "password",
        /// An OAuth2 access token of the inbox's provider (IMAP `AUTHENTICATE XOAUTH2` or
        /// `OAUTHBEARER`, SMTP `AUTH XOAUTH2`); the username is the mailbox address.
        OAuth2 = "oauth2",
    }
);

impl Role {
    /// Whether this role may read every conversation, member or not.
    #[must_use]
    pub fn reads_all(self) -> bool {
        matches!(self, Role::Admin | Role::Manager)
    }
}

text_enum!(
    /// The result of one sender-authentication check (DKIM, SPF or DMARC) of an inbound email,
    /// in the words of RFC 8601 (Authentication-Results) that `mail-auth` reports.
    AuthResult, "authentication result" {
        /// The check passed.
        Pass = "pass",
        /// The check failed: the domain says this email is not from it.
        Fail = "fail",
        /// SPF: the domain says the sending host is probably not allowed.
        SoftFail = "softfail",
        /// SPF: the domain makes no statement about the sending host.
        Neutral = "neutral",
        /// Nothing to check: no signature, no SPF record, no DMARC policy, or nothing known of
        /// the sending host.
        None = "none",
        /// A temporary error (a DNS timeout): the check could not be made now.
        TempError = "temperror",
        /// A permanent error: a broken record or signature.
        PermError = "permerror",
    }
);

/// The sender-authentication verdicts of one inbound email, computed once when it is processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SenderAuth {
    /// DKIM: the best result of the email's signatures.
    pub dkim: AuthResult,
    /// SPF of the MAIL FROM domain (or the HELO name when MAIL FROM is empty).
    pub spf: AuthResult,
    /// DMARC of the From domain.
    pub dmarc: AuthResult,
    /// The domain of the From address, lowercase (empty when the email has no usable From).
    pub from_domain: String,
    /// Whether a passing DKIM signature or SPF check is aligned with the From domain (DMARC's
    /// identifier alignment, RFC 7489 §3.1).
    pub aligned: bool,
}

impl SenderAuth {
    /// Whether the From address failed DMARC: the warning shown in the conversation and in
    /// Queued Chats.
    #[must_use]
    pub fn dmarc_failed(&self) -> bool {
        self.dmarc == AuthResult::Fail
    }
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema as _;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::*;

    /// The words of an enumeration's OpenAPI schema.
    fn schema_words<T: utoipa::PartialSchema>() -> Vec<String> {
        let RefOr::T(Schema::Object(object)) = T::schema() else {
            panic!("not an object schema");
        };
        object
            .enum_values
            .unwrap_or_default()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_api_schema_of_an_enumeration_has_its_words_as_sent() {
        assert_eq!(
            schema_words::<ConversationStatus>(),
            ["queued", "open", "on_hold", "snoozed", "closed"]
        );
        assert_eq!(
            schema_words::<AuthResult>(),
            [
                "pass",
                "fail",
                "softfail",
                "neutral",
                "none",
                "temperror",
                "permerror"
            ]
        );
        let RefOr::T(Schema::Object(role)) = Role::schema() else {
            panic!("not an object schema");
        };
        assert_eq!(role.description.as_deref(), Some("What a user may do."));
    }
}
