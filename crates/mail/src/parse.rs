//! Parsing raw RFC 5322 / MIME bytes into a [`ParsedEmail`].

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Addr, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Mailbox;
use crate::classify::{self, Bounce};
use crate::sanitize::{html_to_text, sanitize_html, text_as_html};

/// Domain of the synthetic Message-IDs given to messages that carry none.
pub(crate) const SYNTHETIC_ID_DOMAIN: &str = "postdesk.invalid";

/// One non-body MIME part: a real attachment or an inline image.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedAttachment {
    /// Safe file name (see [`safe_filename`]); never empty. When the message
    /// names none, `attachment.<ext>` with the extension derived from the
    /// content type (`attachment.bin` when unknown), or `<subject>.eml` for an
    /// attached message.
    pub filename: String,
    /// Lowercase `type/subtype`, e.g. `application/pdf`.
    pub content_type: String,
    /// Content-ID without the angle brackets.
    pub content_id: Option<String>,
    /// `Content-Disposition: inline`, or the part's Content-ID is referenced
    /// as `cid:` from the HTML body.
    pub inline: bool,
    /// Decoded content (transfer encoding removed; text parts keep their
    /// original charset, they are not transcoded).
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// `bytes.len()`.
    pub size: usize,
}

/// A parsed incoming email.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedEmail {
    /// Message-ID without `<>`. When the message has none, a synthetic id
    /// `<first 32 hex digits of SHA-256(raw)>@postdesk.invalid`: the same bytes
    /// always give the same id.
    pub message_id: String,
    /// Whether `message_id` was synthesised.
    pub message_id_synthetic: bool,
    /// First id of In-Reply-To, without `<>`.
    pub in_reply_to: Option<String>,
    /// References ids without `<>`, in header order.
    pub references: Vec<String>,
    /// First mailbox of the (first) From header.
    pub from: Option<Mailbox>,
    /// Mailboxes of all To headers (group syntax flattened).
    pub to: Vec<Mailbox>,
    /// Mailboxes of all Cc headers.
    pub cc: Vec<Mailbox>,
    /// Mailboxes of all Reply-To headers.
    pub reply_to: Vec<Mailbox>,
    /// Decoded subject (RFC 2047), single line, trimmed; `""` when missing.
    pub subject: String,
    /// Date header in UTC; `None` when missing or invalid.
    pub date: Option<chrono::DateTime<chrono::Utc>>,
    /// Plain-text body with `\n` line endings; rendered from the HTML body
    /// when the message has no text/plain body.
    pub text: String,
    /// Sanitised HTML body (see [`sanitize_html`]); `None` when the message
    /// has no text/html body.
    pub html: Option<String>,
    /// The HTML body loads remote (http/https) images.
    pub remote_images: bool,
    /// Every non-body part.
    pub attachments: Vec<ParsedAttachment>,
    /// Automatic message (vacation reply, autoresponder, bulk): do not answer
    /// it automatically. See `classify.rs` for the exact rules.
    pub auto_reply: bool,
    /// Delivery-status notification found in a `multipart/report`, if any.
    pub bounce: Option<Bounce>,
}

/// The input could not be read as an email at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Empty input, or no RFC 5322 header section at its start.
    #[error("not an email: {0}")]
    NotAnEmail(String),
}

/// Parses a raw message (RFC 5322 with MIME; CRLF or LF line endings).
///
/// Lenient: anything that starts with a header field is accepted and missing
/// parts are left empty. Errors only when the input is empty or does not begin
/// with a header field (an mbox `From ` line before it is skipped).
pub fn parse(raw: &[u8]) -> Result<ParsedEmail, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::NotAnEmail("empty input".into()));
    }
    if !starts_with_header_field(raw) {
        return Err(ParseError::NotAnEmail(
            "no header section: the input does not start with a header field".into(),
        ));
    }
    // mail-parser and html5ever are not supposed to panic, but mail-parser has
    // `debug_assert!`s on malformed nesting; a bad message must never take the
    // caller down with it.
    catch_unwind(AssertUnwindSafe(|| parse_checked(raw))).unwrap_or_else(|_| {
        Err(ParseError::NotAnEmail(
            "the MIME structure could not be parsed".into(),
        ))
    })
}

fn parse_checked(raw: &[u8]) -> Result<ParsedEmail, ParseError> {
    // mail-parser drops the value of a header that ends at the end of input
    // (no line break after it). A message with a body always has one; give
    // the headers-only ones a final line break.
    let terminated: Cow<'_, [u8]> = if has_blank_line(raw) || raw.ends_with(b"\n") {
        Cow::Borrowed(raw)
    } else {
        let mut owned = raw.to_vec();
        owned.extend_from_slice(b"\r\n");
        Cow::Owned(owned)
    };
    let msg = MessageParser::default()
        .parse(terminated.as_ref())
        .ok_or_else(|| ParseError::NotAnEmail("no header section".into()))?;
    if msg.parts.is_empty() {
        return Err(ParseError::NotAnEmail("no header section".into()));
    }

    let (message_id, message_id_synthetic) =
        match first_header(&msg, HeaderName::MessageId).and_then(first_id) {
            Some(id) => (id, false),
            None => (synthetic_message_id(raw), true),
        };
    let in_reply_to = first_header(&msg, HeaderName::InReplyTo).and_then(first_id);
    let references = first_header(&msg, HeaderName::References)
        .map(all_ids)
        .unwrap_or_default();

    let from = mailboxes(&msg, HeaderName::From).into_iter().next();
    let to = mailboxes(&msg, HeaderName::To);
    let cc = mailboxes(&msg, HeaderName::Cc);
    let reply_to = mailboxes(&msg, HeaderName::ReplyTo);

    let subject = first_header(&msg, HeaderName::Subject)
        .and_then(HeaderValue::as_text)
        .map(single_line)
        .unwrap_or_default();

    let date = msg
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| chrono::DateTime::from_timestamp(d.to_timestamp(), 0));

    // Bodies. mail-parser lists, per body kind, the parts that make it up; a
    // text/plain part may appear in `html_body` (converted) and a text/html
    // part in `text_body` when the alternative is missing.
    let mut raw_html = String::new();
    let mut has_html = false;
    for part in msg.html_bodies() {
        match &part.body {
            PartType::Html(html) => {
                has_html = true;
                raw_html.push_str(html);
            }
            PartType::Text(text) => raw_html.push_str(&text_as_html(text)),
            _ => {}
        }
    }
    let (html, remote_images) = if has_html {
        let (clean, remote) = sanitize_html(&raw_html);
        (Some(clean), remote)
    } else {
        (None, false)
    };

    let mut texts = Vec::new();
    for part in msg.text_bodies() {
        match &part.body {
            PartType::Text(text) => texts.push(text.to_string()),
            PartType::Html(html) => texts.push(html_to_text(&sanitize_html(html).0)),
            _ => {}
        }
    }
    let mut text = normalize_newlines(&texts.join("\n"));
    if text.trim().is_empty()
        && let Some(html) = &html
    {
        text = normalize_newlines(&html_to_text(html));
    }

    let raw_html_lower = raw_html.to_lowercase();
    let attachments = msg
        .attachments()
        .map(|part| attachment(&msg, part, &raw_html_lower))
        .collect();

    let auto_reply = classify::is_auto_reply(&msg, &subject);
    let bounce = classify::bounce(&msg);

    Ok(ParsedEmail {
        message_id,
        message_id_synthetic,
        in_reply_to,
        references,
        from,
        to,
        cc,
        reply_to,
        subject,
        date,
        text,
        html,
        remote_images,
        attachments,
        auto_reply,
        bounce,
    })
}

fn has_blank_line(raw: &[u8]) -> bool {
    raw.windows(2).any(|w| w == b"\n\n") || raw.windows(3).any(|w| w == b"\n\r\n")
}

/// Whether the first line (after blank lines, a UTF-8 BOM and an mbox `From `
/// line) is a header field: `name:` with a name of printable ASCII.
fn starts_with_header_field(raw: &[u8]) -> bool {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .skip_while(|line| line.iter().all(u8::is_ascii_whitespace));
    let Some(mut line) = lines.next() else {
        return false;
    };
    if line.starts_with(b"From ") {
        match lines.next() {
            Some(next) => line = next,
            None => return false,
        }
    }
    let name_len = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')
        .unwrap_or(line.len());
    if name_len == 0 {
        return false;
    }
    line[name_len..]
        .iter()
        .find(|&&b| b != b' ' && b != b'\t')
        .is_some_and(|&b| b == b':')
}

/// The first occurrence of a top-level header (mail-parser's own accessors
/// return the *last* one).
fn first_header<'a>(msg: &'a Message<'a>, name: HeaderName<'a>) -> Option<&'a HeaderValue<'a>> {
    msg.header_values(name).next()
}

/// Strips whitespace and one level of angle brackets from a message id.
fn clean_id(id: &str) -> String {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id);
    id.trim().to_string()
}

/// First non-empty id of an id header. A header holding several ids comes as
/// `TextList`; `HeaderValue::as_text` would return the *last* one.
fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    value
        .as_text_list()?
        .iter()
        .map(|id| clean_id(id))
        .find(|id| !id.is_empty())
}

fn all_ids(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .map(|id| clean_id(id))
        .filter(|id| !id.is_empty())
        .collect()
}

fn synthetic_message_id(raw: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(raw));
    format!("{}@{SYNTHETIC_ID_DOMAIN}", &digest[..32])
}

fn mailboxes(msg: &Message<'_>, name: HeaderName<'_>) -> Vec<Mailbox> {
    msg.header_values(name)
        .filter_map(HeaderValue::as_address)
        .flat_map(|address| address.iter())
        .filter_map(mailbox)
        .collect()
}

fn mailbox(addr: &Addr<'_>) -> Option<Mailbox> {
    let email = addr.address()?.trim();
    if email.is_empty() {
        return None;
    }
    let name = addr.name().map(single_line).filter(|n| !n.is_empty());
    Some(Mailbox {
        name,
        email: email.to_string(),
    })
}

/// Control characters (CR, LF, tab, ...) become spaces; runs of whitespace
/// collapse to one space; trimmed.
pub(crate) fn single_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn attachment(msg: &Message<'_>, part: &MessagePart<'_>, raw_html_lower: &str) -> ParsedAttachment {
    let content_type = part_content_type(part);
    let content_id = part
        .content_id()
        .map(clean_id)
        .filter(|cid| !cid.is_empty());
    let disposition_inline = part.content_disposition().is_some_and(|cd| cd.is_inline());
    let referenced = content_id
        .as_ref()
        .is_some_and(|cid| raw_html_lower.contains(&format!("cid:{}", cid.to_lowercase())));

    let filename = part
        .attachment_name()
        .and_then(sanitize_filename)
        .or_else(|| match &part.body {
            PartType::Message(nested) => nested.subject().and_then(|s| {
                let subject = single_line(s).replace(['/', '\\'], "-");
                sanitize_filename(&format!("{subject}.eml"))
            }),
            _ => None,
        })
        .unwrap_or_else(|| fallback_filename(&content_type));

    let bytes = part_bytes(msg, part);
    ParsedAttachment {
        filename,
        content_type,
        content_id,
        inline: disposition_inline || referenced,
        size: bytes.len(),
        bytes,
    }
}

fn part_content_type(part: &MessagePart<'_>) -> String {
    let token = |s: &str| {
        s.trim()
            .chars()
            .filter(|c| c.is_ascii_graphic() && !matches!(c, '/' | ';' | '"'))
            .collect::<String>()
            .to_ascii_lowercase()
    };
    if let Some(ct) = part.content_type() {
        let ctype = token(ct.ctype());
        if !ctype.is_empty() {
            let subtype = ct.subtype().map(token).filter(|s| !s.is_empty());
            return match subtype {
                Some(subtype) => format!("{ctype}/{subtype}"),
                None if ctype == "text" => "text/plain".into(),
                None => format!("{ctype}/octet-stream"),
            };
        }
    }
    match part.body {
        PartType::Text(_) => "text/plain",
        PartType::Html(_) => "text/html",
        PartType::Message(_) => "message/rfc822",
        _ => "application/octet-stream",
    }
    .into()
}

/// The decoded bytes of a part. Text parts are decoded again from the raw
/// message: mail-parser hands them out transcoded to UTF-8 (lossily when the
/// charset is unknown), which would corrupt a CSV in Latin-1 or a binary file
/// mislabelled as text.
fn part_bytes(msg: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    if matches!(part.body, PartType::Text(_) | PartType::Html(_)) && !part.is_encoding_problem {
        let raw = msg
            .raw_message
            .get(part.offset_body as usize..part.offset_end as usize);
        if let Some(raw) = raw {
            let decoded = match part.encoding {
                Encoding::Base64 => base64_decode(raw),
                Encoding::QuotedPrintable => quoted_printable_decode(raw),
                Encoding::None => Some(raw.to_vec()),
            };
            if let Some(decoded) = decoded {
                return decoded;
            }
        }
    }
    part.contents().to_vec()
}

/// `attachment.<ext>` for a part that names no file.
fn fallback_filename(content_type: &str) -> String {
    let ext = match content_type {
        "application/pdf" => "pdf",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "application/json" => "json",
        "application/xml" | "text/xml" => "xml",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "image/bmp" => "bmp",
        "image/tiff" => "tif",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "text/rfc822-headers" => "txt",
        "message/rfc822" | "message/global" => "eml",
        "message/delivery-status" | "message/global-delivery-status" => "txt",
        "audio/mpeg" => "mp3",
        "video/mp4" => "mp4",
        _ => "bin",
    };
    format!("attachment.{ext}")
}

/// Longest file name kept, in bytes (common file system limit).
const MAX_FILENAME_BYTES: usize = 200;

/// Makes an attachment file name safe to store and offer for download.
///
/// Keeps only the last path component (`../../etc/passwd` -> `passwd`,
/// `C:\x\y.doc` -> `y.doc`), drops control and bidirectional-override
/// characters, replaces `<>:"|?*` with `_`, trims spaces and dots at both
/// ends, prefixes Windows device names (`CON`, `NUL`, `COM1`, ...) with `_`,
/// and limits the name to 200 bytes keeping the extension. Returns
/// `"attachment"` when nothing is left.
pub fn safe_filename(name: &str) -> String {
    sanitize_filename(name).unwrap_or_else(|| "attachment".to_string())
}

fn sanitize_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c == ' ' || c == '.');
    if cleaned.is_empty() {
        return None;
    }
    let mut cleaned = cleaned.to_string();
    let stem = cleaned.split('.').next().unwrap_or_default();
    const DEVICES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
    let upper = stem.to_ascii_uppercase();
    let is_device = DEVICES.contains(&upper.as_str())
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit());
    if is_device {
        cleaned.insert(0, '_');
    }
    Some(truncate_filename(cleaned))
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || c == '\u{FEFF}'
}

fn truncate_filename(name: String) -> String {
    if name.len() <= MAX_FILENAME_BYTES {
        return name;
    }
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 && dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name.as_str(), ""),
    };
    let mut end = MAX_FILENAME_BYTES - ext.len();
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", &stem[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_field_detection() {
        assert!(starts_with_header_field(b"From: a@b.c\n\nhi"));
        assert!(starts_with_header_field(b"\r\n\r\nSubject : x\r\n"));
        assert!(starts_with_header_field(
            b"From a@b.c Mon Jan  1 00:00:00 2024\nFrom: a@b.c\n"
        ));
        assert!(!starts_with_header_field(b"hello world"));
        assert!(!starts_with_header_field(b"hello world: not a name"));
        assert!(!starts_with_header_field(b": value"));
        assert!(!starts_with_header_field(b"\x00\x01\x02:"));
        assert!(!starts_with_header_field(b"From a@b.c"));
    }

    #[test]
    fn safe_filename_cases() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
            ("a\u{0}b\r\nc.txt", "abc.txt"),
            ("\u{202E}fdp.exe", "fdp.exe"),
            ("what?.txt", "what_.txt"),
            ("  .hidden  ", "hidden"),
            ("..", "attachment"),
            ("", "attachment"),
            ("/", "attachment"),
            ("CON.txt", "_CON.txt"),
            ("com1", "_com1"),
            ("console.txt", "console.txt"),
            ("Résumé été.pdf", "Résumé été.pdf"),
            ("tab\there.txt", "tabhere.txt"),
        ];
        for (input, expected) in cases {
            assert_eq!(safe_filename(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn safe_filename_truncates_keeping_extension() {
        let long = format!("{}.pdf", "é".repeat(300));
        let safe = safe_filename(&long);
        assert!(safe.len() <= MAX_FILENAME_BYTES, "{}", safe.len());
        assert!(safe.ends_with("é.pdf"));
    }

    #[test]
    fn synthetic_ids_are_stable() {
        assert_eq!(synthetic_message_id(b"x"), synthetic_message_id(b"x"));
        assert_ne!(synthetic_message_id(b"x"), synthetic_message_id(b"y"));
        assert!(synthetic_message_id(b"x").ends_with("@postdesk.invalid"));
        assert_eq!(synthetic_message_id(b"x").len(), 32 + 1 + 16);
    }

    #[test]
    fn single_line_collapses_controls() {
        assert_eq!(single_line("  a\r\n\tb  c \u{7}d "), "a b c d");
    }
}
