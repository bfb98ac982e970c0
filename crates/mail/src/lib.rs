//! MIME parsing and building for postdesk.
//!
//! postdesk turns a shared address (say `support@example.com`) into a queue of
//! conversations. This crate is the part that understands email as bytes: it
//! parses what arrives into a [`ParsedEmail`] and builds the replies that agents
//! send back, threaded under the customer's message with `In-Reply-To` and
//! `References`.
//!
//! The crate is pure: no IO, no async, no clock except where a caller asks for a
//! fresh id ([`new_message_id`]). Every public function accepts arbitrary input
//! and returns an error or a best effort instead of panicking.
//!
//! # Layout
//!
//! - `lib.rs`: [`Mailbox`] and the re-exports below.
//! - `parse.rs`: [`parse`] raw RFC 5322 / MIME bytes into a [`ParsedEmail`]
//!   (headers, bodies, attachments) with [`safe_filename`] for attachment names
//!   and the per-email limits ([`MAX_ATTACHMENTS`], ...).
//! - `charset.rs`: decoding text in declared, undeclared and mislabelled
//!   charsets (encoding_rs, chardetng).
//! - `headers.rs`: RFC 2047 encoded words and raw 8-bit text in header values.
//! - `guard.rs`: keeps mail-parser from nesting attached messages (stack
//!   depth) and holds the per-email limits.
//! - `flowed.rs`: `format=flowed` text (RFC 3676) with its soft line
//!   breaks joined, for every reader of a text/plain body.
//! - `winmail.rs`: files inside `winmail.dat` (TNEF).
//! - `cid.rs`: inline images, [`rewrite_cid_sources`] and [`match_content_id`].
//! - `sanitize.rs`: [`sanitize_html`], the allow-list HTML cleaner applied to
//!   every HTML body before it is stored or shown.
//! - `compose.rs`: [`render_reply`] lays out a reply like a mail client
//!   (the agent's text or Markdown, the signature, the quoted email),
//!   [`markdown_to_html`] and [`parse_recipient`] for addresses typed by
//!   agents.
//! - `build.rs`: [`build`] an outgoing reply ([`OutgoingEmail`]) into RFC 5322
//!   bytes (text, or text and HTML; Bcc only for the envelope:
//!   [`OutgoingEmail::envelope_recipients`]), [`reply_subject`] and
//!   [`new_message_id`].
//! - [`trim`]: [`trim::reply_text`], which strips the quoted history from a reply.
//! - `classify.rs`: auto-reply detection ([`ParsedEmail::auto_reply`]) and a
//!   first cut of delivery-status (bounce) detection ([`Bounce`]).
//! - `inspect.rs`: [`inspect`], the JSON behind `postdesk inspect FILE.eml`.
//! - [`envelope`]: the SMTP client, HELO and MAIL FROM of a stored email, read from its
//!   `Received` and `Return-Path` fields (for SPF).

mod build;
mod charset;
mod cid;
mod classify;
mod compose;
pub mod envelope;
mod flowed;
mod guard;
mod headers;
mod html_quote;
mod inspect;
mod parse;
mod sanitize;
pub mod trim;
mod winmail;

use serde::{Deserialize, Serialize};

pub use build::{
    BuildError, OutgoingAttachment, OutgoingEmail, build, new_message_id, reply_subject,
};
pub use cid::{cid_references, match_content_id, normalize_content_id, rewrite_cid_sources};
pub use classify::Bounce;
pub use compose::{
    Format, Quoted, RecipientError, Rendered, ReplyBody, markdown_to_html, parse_recipient,
    render_reply,
};
pub use inspect::inspect;
pub use parse::{
    MAX_ATTACHMENTS, MAX_BODY_PARTS, MAX_HTML_BYTES, MAX_TEXT_BYTES, ParseError, ParsedAttachment,
    ParsedEmail, parse, safe_filename,
};
pub use sanitize::sanitize_html;

/// A mailbox as it appears in an address header: optional display name and address.
///
/// `email` is kept as written in the message (trimmed); compare addresses with
/// [`Mailbox::normalized_email`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// Display name, decoded (RFC 2047); `None` when absent or blank.
    pub name: Option<String>,
    /// The address (`local@domain`), as written, trimmed.
    pub email: String,
}

impl Mailbox {
    /// A mailbox without a display name.
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            name: None,
            email: email.into().trim().to_string(),
        }
    }

    /// A mailbox with a display name; a blank name becomes `None`.
    pub fn named(name: impl Into<String>, email: impl Into<String>) -> Self {
        let name = name.into().trim().to_string();
        Self {
            name: (!name.is_empty()).then_some(name),
            email: email.into().trim().to_string(),
        }
    }

    /// The whole address lowercased and trimmed, for comparisons and lookups.
    ///
    /// Strictly only the domain is case-insensitive, but no real mail system
    /// distinguishes local parts by case, and treating them as different would
    /// split one customer into several.
    pub fn normalized_email(&self) -> String {
        self.email.trim().to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_constructors_trim_and_normalize() {
        let m = Mailbox::named("  Jane Doe ", " Jane.Doe@Example.COM ");
        assert_eq!(m.name.as_deref(), Some("Jane Doe"));
        assert_eq!(m.email, "Jane.Doe@Example.COM");
        assert_eq!(m.normalized_email(), "jane.doe@example.com");
        assert_eq!(Mailbox::named("   ", "a@b.c").name, None);
        assert_eq!(Mailbox::new("a@b.c").name, None);
    }
}
