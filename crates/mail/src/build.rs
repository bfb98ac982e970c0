//! Building outgoing replies (mail-builder).
//!
//! [`build`] writes an [`OutgoingEmail`] as RFC 5322 bytes the way a mail
//! client does: From, To and Cc headers (display names RFC 2047 encoded when
//! they are not ASCII), threading headers, and a text/plain body, or a
//! multipart/alternative text/plain + text/html body when the reply has HTML
//! (see [`crate::render_reply`]), inside multipart/mixed when files are
//! attached. Bcc recipients never appear in the bytes: they only reach the
//! SMTP envelope, which the caller builds from
//! [`OutgoingEmail::envelope_recipients`].

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;

use crate::Mailbox;
use crate::parse::{safe_filename, single_line};

/// An email to send: an agent's reply, usually.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Sender, e.g. `Support Team <support@example.com>`.
    pub from: Mailbox,
    /// Recipients shown in the To header.
    pub to: Vec<Mailbox>,
    /// Recipients shown in the Cc header.
    pub cc: Vec<Mailbox>,
    /// Blind copies: validated like To and Cc but never written into any
    /// header; the caller adds them to the SMTP envelope
    /// ([`OutgoingEmail::envelope_recipients`]).
    pub bcc: Vec<Mailbox>,
    /// Subject; line breaks become spaces.
    pub subject: String,
    /// Message-ID without `<>` (see [`new_message_id`]).
    pub message_id: String,
    /// Id of the message answered, without `<>`.
    pub in_reply_to: Option<String>,
    /// Thread chain, without `<>`, oldest first.
    pub references: Vec<String>,
    /// The Date header.
    pub date: chrono::DateTime<chrono::Utc>,
    /// Plain-text body.
    pub text: String,
    /// HTML body (already sanitised, e.g. by [`crate::render_reply`]); with
    /// it the body is multipart/alternative, text/plain first. `None` or a
    /// blank string: text only.
    pub html: Option<String>,
    /// Files attached after the body.
    pub attachments: Vec<OutgoingAttachment>,
}

impl OutgoingEmail {
    /// The SMTP envelope recipients (`RCPT TO`): the addresses of To, then
    /// Cc, then Bcc, trimmed, without blanks and without repeats (compared
    /// case-insensitively; the first spelling is kept).
    pub fn envelope_recipients(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|m| m.email.trim())
            .filter(|email| !email.is_empty() && seen.insert(email.to_lowercase()))
            .map(str::to_string)
            .collect()
    }
}

/// A file attached to an [`OutgoingEmail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAttachment {
    /// Passed through [`safe_filename`]; non-ASCII names are written with
    /// RFC 2231.
    pub filename: String,
    /// `type/subtype`; anything malformed is sent as `application/octet-stream`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why an [`OutgoingEmail`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// An address in From, To, Cc or Bcc is not a plain `local@domain`.
    #[error("invalid email address {0:?}")]
    InvalidAddress(String),
    /// The Message-ID is empty or has characters that cannot appear in one.
    #[error("invalid Message-ID {0:?}")]
    InvalidMessageId(String),
    /// To, Cc and Bcc are all empty.
    #[error("no recipients")]
    NoRecipients,
}

/// Serialises `email` as RFC 5322 bytes (CRLF line endings).
///
/// Headers: From, To, Cc (when any), Subject, Message-ID, In-Reply-To and
/// References (when set), Date, and MIME-Version (added by mail-builder).
/// Never a Bcc header: Bcc addresses are only checked here. Display names
/// that are not ASCII are written as RFC 2047 encoded words.
///
/// The body is text/plain UTF-8 (mail-builder picks 7bit, quoted-printable or
/// base64); with [`OutgoingEmail::html`] it is multipart/alternative
/// (text/plain, then text/html). With attachments the message is
/// multipart/mixed: the body (or the alternative) first, then the files.
///
/// User-supplied header text never carries a raw line break: CR, LF and other
/// control characters in the subject and display names are replaced with
/// spaces. Addresses must be plain `local@domain` without spaces, control
/// characters or `<>(),;:"[]\` ([`BuildError::InvalidAddress`]); the
/// Message-ID must be visible ASCII without `<>` ([`BuildError::InvalidMessageId`]).
/// In-Reply-To and References ids that fail that same check are left out
/// rather than failing the reply, since they usually come from the customer's
/// mail client.
pub fn build(email: &OutgoingEmail) -> Result<Vec<u8>, BuildError> {
    let from = address(&email.from)?;
    let to = email
        .to
        .iter()
        .map(address)
        .collect::<Result<Vec<_>, _>>()?;
    let cc = email
        .cc
        .iter()
        .map(address)
        .collect::<Result<Vec<_>, _>>()?;
    // Bcc is checked like To and Cc, then left to the envelope.
    for mailbox in &email.bcc {
        address(mailbox)?;
    }
    if to.is_empty() && cc.is_empty() && email.bcc.is_empty() {
        return Err(BuildError::NoRecipients);
    }
    let message_id = valid_id(&email.message_id)
        .ok_or_else(|| BuildError::InvalidMessageId(email.message_id.clone()))?;

    let mut builder = MessageBuilder::new().from(from);
    if !to.is_empty() {
        builder = builder.to(Address::new_list(to));
    }
    if !cc.is_empty() {
        builder = builder.cc(Address::new_list(cc));
    }
    builder = builder
        .subject(single_line(&email.subject))
        .message_id(message_id);
    if let Some(id) = email.in_reply_to.as_deref().and_then(valid_id) {
        builder = builder.in_reply_to(id);
    }
    let references: Vec<String> = email
        .references
        .iter()
        .filter_map(|r| valid_id(r))
        .collect();
    if !references.is_empty() {
        builder = builder.references(MessageId::from(references));
    }
    builder = builder
        .date(email.date.timestamp())
        .text_body(email.text.as_str());
    if let Some(html) = email.html.as_deref().filter(|h| !h.trim().is_empty()) {
        builder = builder.html_body(html);
    }
    for attachment in &email.attachments {
        builder = builder.attachment(
            content_type(&attachment.content_type),
            safe_filename(&attachment.filename),
            attachment.bytes.as_slice(),
        );
    }
    // Writing to a Vec cannot fail.
    Ok(builder.write_to_vec().unwrap_or_default())
}

fn address(mailbox: &Mailbox) -> Result<Address<'static>, BuildError> {
    let email = mailbox.email.trim();
    if !is_valid_address(email) {
        return Err(BuildError::InvalidAddress(mailbox.email.clone()));
    }
    let name = mailbox
        .name
        .as_deref()
        .map(single_line)
        .filter(|n| !n.is_empty());
    Ok(Address::new_address(name, email.to_string()))
}

/// `local@domain`: one `@`, both sides non-empty, no whitespace, controls or
/// characters special in address headers. Shared with
/// [`crate::parse_recipient`].
pub(crate) fn is_valid_address(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(
                    c,
                    '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '[' | ']' | '\\'
                )
        })
}

/// The id without `<>` when it only has visible ASCII other than `<>`.
fn valid_id(id: &str) -> Option<String> {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id);
    (!id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>'))
    .then(|| id.to_string())
}

fn content_type(value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match value.split_once('/') {
        Some((t, s)) if token(t) && token(s) => value,
        _ => "application/octet-stream".to_string(),
    }
}

/// Reply prefixes recognised (case-insensitively) by [`reply_subject`]:
/// English `Re`, German `Aw`/`Antw`, Scandinavian `Sv`/`Vs`, Dutch `Antw`,
/// Polish `Odp`, Italian `Rif`, Portuguese/Spanish `Res`, Turkish `Ynt`.
const REPLY_PREFIXES: [&str; 9] = ["re", "aw", "sv", "vs", "antw", "odp", "rif", "res", "ynt"];

/// `"Re: "` + the subject without its leading reply prefixes, so replies never
/// stack up as `Re: Re: ...`.
///
/// Removes any run of reply prefixes, case-insensitively, optionally with a
/// counter (`Re[2]:`, `Re(2):`), a space before the colon or a full-width
/// colon: `Re`, `Aw`, `Antw`, `Sv`, `Vs`, `Odp`, `Rif`, `Res`, `Ynt`. Forward prefixes (`Fwd:`) are kept:
/// the reply is about the forwarded message. Line breaks and other control
/// characters become spaces. An empty subject gives `"Re: (no subject)"`,
/// matching how the conversation is shown.
pub fn reply_subject(subject: &str) -> String {
    let subject = single_line(subject);
    let mut rest = subject.as_str();
    while let Some(after) = strip_reply_prefix(rest) {
        rest = after.trim_start();
    }
    if rest.is_empty() {
        "Re: (no subject)".to_string()
    } else {
        format!("Re: {rest}")
    }
}

fn strip_reply_prefix(s: &str) -> Option<&str> {
    let word_len = s
        .char_indices()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(s.len(), |(i, _)| i);
    let word = s[..word_len].to_lowercase();
    if !REPLY_PREFIXES.contains(&word.as_str()) {
        return None;
    }
    let mut rest = &s[word_len..];
    // Optional counter: [2] or (2).
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = rest.strip_prefix(open)
            && let Some(end) = inner.find(close)
            && inner[..end].chars().all(|c| c.is_ascii_digit())
        {
            rest = &inner[end + close.len_utf8()..];
            break;
        }
    }
    let rest = rest.trim_start();
    rest.strip_prefix(':').or_else(|| rest.strip_prefix('：'))
}

/// A new Message-ID on `domain`: `<uuid v4, simple form>@<domain>`, returned
/// without `<>`.
///
/// The domain is trimmed, a leading `@` removed and lowercased; characters
/// that cannot appear in a Message-ID are dropped, and `postdesk.invalid` is
/// used when nothing is left.
pub fn new_message_id(domain: &str) -> String {
    let domain: String = domain
        .trim()
        .trim_start_matches('@')
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '@'))
        .collect::<String>()
        .to_ascii_lowercase();
    let domain: Cow<'_, str> = if domain.is_empty() {
        crate::parse::SYNTHETIC_ID_DOMAIN.into()
    } else {
        domain.into()
    };
    format!("{}@{domain}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subject_table() {
        let cases = [
            ("Hello", "Re: Hello"),
            ("Re: Hello", "Re: Hello"),
            ("RE: Re: Hello", "Re: Hello"),
            ("Aw: Hello", "Re: Hello"),
            ("AW: Hello", "Re: Hello"),
            ("SV: Hello", "Re: Hello"),
            ("Re[2]: Hello", "Re: Hello"),
            ("Re(3): Hello", "Re: Hello"),
            ("Re:Hello", "Re: Hello"),
            ("Re : Hello", "Re: Hello"),
            ("re: RE: aw: Sv:  Hello", "Re: Hello"),
            ("Fwd: Hello", "Re: Fwd: Hello"),
            ("Re: Fwd: Hello", "Re: Fwd: Hello"),
            ("Regarding: Hello", "Re: Regarding: Hello"),
            ("Re[x]: Hello", "Re: Re[x]: Hello"),
            ("Reply needed", "Re: Reply needed"),
            ("", "Re: (no subject)"),
            ("Re:", "Re: (no subject)"),
            ("  Hello\r\nBcc: x@y ", "Re: Hello Bcc: x@y"),
            ("Réponse: été", "Re: Réponse: été"),
        ];
        for (input, expected) in cases {
            assert_eq!(reply_subject(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn new_message_ids() {
        let a = new_message_id("example.com");
        let b = new_message_id("example.com");
        assert_ne!(a, b);
        let (uuid, domain) = a.split_once('@').unwrap();
        assert_eq!(domain, "example.com");
        assert_eq!(uuid.len(), 32);
        assert!(uuid.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(new_message_id(" @Mail.Example.COM ").ends_with("@mail.example.com"));
        assert!(new_message_id("").ends_with("@postdesk.invalid"));
        assert!(new_message_id("a b\r\n<c>").ends_with("@abc"));
    }

    #[test]
    fn address_validation() {
        for ok in ["a@b.c", "first.last+tag@example.co.uk", "x@localhost"] {
            assert!(is_valid_address(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "@b.c",
            "a@",
            "a@b@c",
            "a b@c.d",
            "a@b.c\r\nBcc: x@y",
            "<a@b.c>",
            "a,b@c.d",
            "a@.b",
            "a@b.",
        ] {
            assert!(!is_valid_address(bad), "{bad}");
        }
    }

    #[test]
    fn envelope_recipients_are_to_cc_bcc_without_repeats() {
        let email = OutgoingEmail {
            from: Mailbox::new("support@example.com"),
            to: vec![
                Mailbox::named("Ann", " Ann@Example.com "),
                Mailbox::new("b@x.y"),
            ],
            cc: vec![Mailbox::new("ann@example.com"), Mailbox::new("c@x.y")],
            bcc: vec![
                Mailbox::new("B@X.Y"),
                Mailbox::new("  "),
                Mailbox::new("d@x.y"),
            ],
            subject: String::new(),
            message_id: "id@example.com".into(),
            in_reply_to: None,
            references: vec![],
            date: chrono::DateTime::UNIX_EPOCH,
            text: String::new(),
            html: None,
            attachments: vec![],
        };
        assert_eq!(
            email.envelope_recipients(),
            ["Ann@Example.com", "b@x.y", "c@x.y", "d@x.y"]
        );
    }

    #[test]
    fn content_type_validation() {
        assert_eq!(content_type("Application/PDF"), "application/pdf");
        assert_eq!(content_type("image/svg+xml"), "image/svg+xml");
        assert_eq!(
            content_type("text/plain\r\nX: y"),
            "application/octet-stream"
        );
        assert_eq!(content_type("pdf"), "application/octet-stream");
        assert_eq!(content_type(""), "application/octet-stream");
    }
}
