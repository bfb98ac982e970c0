//! Parsing raw RFC 5322 / MIME bytes into a [`ParsedEmail`].
//!
//! mail-parser does the MIME work; this module decides what postdesk keeps
//! and repairs what mail-parser reads too literally:
//!
//! - before parsing, attached messages and digests are renamed so that
//!   mail-parser does not nest them (`guard.rs`: deep nesting would overflow
//!   the stack); they come back as `message/rfc822` attachments whose bytes
//!   are the inner message, and whose own parts are not flattened into the
//!   outer email;
//! - text bodies are decoded from their bytes with the charset rules of
//!   `charset.rs` (mislabelled and undeclared charsets);
//! - `Subject` is decoded by `headers.rs` (RFC 2047 runs, raw 8-bit text);
//!   address headers and attachment-name headers are repaired by it first
//!   when mail-parser would get them wrong;
//! - part contents are always read from the original bytes (the renaming
//!   keeps every offset);
//! - `winmail.dat` is unpacked (`winmail.rs`);
//! - `cid:` references of the sanitised HTML mark their parts inline
//!   (`cid.rs`);
//! - [`MAX_ATTACHMENTS`], [`MAX_BODY_PARTS`], [`MAX_HTML_BYTES`] and
//!   [`MAX_TEXT_BYTES`] bound the work per email.

use std::borrow::Cow;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Addr, Encoding, Header, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    MimeHeaders, PartType,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Mailbox;
use crate::charset::{self, Hint};
use crate::cid;
use crate::classify::{self, Bounce};
use crate::guard::{self, DIGEST_SUBTYPE, NESTED_TYPE};
use crate::headers;
use crate::sanitize::{html_to_text, sanitize_html, text_as_html, text_as_html_len};
use crate::winmail;

pub use crate::guard::{MAX_ATTACHMENTS, MAX_BODY_PARTS, MAX_HTML_BYTES, MAX_TEXT_BYTES};

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
    /// Lowercase `type/subtype`, e.g. `application/pdf`. Attached messages
    /// are `message/rfc822` (or `message/global`), also the parts of a
    /// `multipart/digest`.
    pub content_type: String,
    /// Content-ID without the angle brackets.
    pub content_id: Option<String>,
    /// `Content-Disposition: inline`, or the part's Content-ID is referenced
    /// by an `<img src="cid:...">` of the HTML body (see
    /// [`ParsedEmail::cid_attachment`]).
    pub inline: bool,
    /// Decoded content (transfer encoding removed; text parts keep their
    /// original charset, they are not transcoded). For an attached message,
    /// the inner message exactly as it was sent (headers and body).
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
    /// Decoded subject (RFC 2047, raw 8-bit text), single line, trimmed; `""`
    /// when missing.
    pub subject: String,
    /// Date header in UTC; `None` when missing or invalid.
    pub date: Option<chrono::DateTime<chrono::Utc>>,
    /// Plain-text body with `\n` line endings; rendered from the HTML body
    /// when the message has no text/plain body.
    pub text: String,
    /// Sanitised HTML body (see [`sanitize_html`]); `None` when the message
    /// has no text/html body. Inline images keep `src="cid:..."`; see
    /// [`rewrite_cid_sources`](crate::rewrite_cid_sources).
    pub html: Option<String>,
    /// The HTML body loads remote (http/https) images.
    pub remote_images: bool,
    /// Every non-body part, in message order. Files inside a `winmail.dat`
    /// (TNEF) take its place when they can be extracted.
    pub attachments: Vec<ParsedAttachment>,
    /// Automatic message (vacation reply, autoresponder, bulk): do not answer
    /// it automatically. See `classify.rs` for the exact rules.
    pub auto_reply: bool,
    /// Why it is an automatic message (`"Auto-Submitted: auto-replied"`,
    /// `"vacation subject"`, ...), for `postdesk inspect`; `None` when it is
    /// not one.
    pub auto_reply_rule: Option<String>,
    /// Delivery-status notification found in a `multipart/report`, if any.
    pub bounce: Option<Bounce>,
    /// A per-email limit cut something: more than [`MAX_ATTACHMENTS`]
    /// attachments or [`MAX_BODY_PARTS`] body parts (the rest are dropped),
    /// or a body longer than [`MAX_HTML_BYTES`] / [`MAX_TEXT_BYTES`] (cut).
    pub truncated: bool,
}

impl ParsedEmail {
    /// Index in [`attachments`](Self::attachments) of the part that a `cid:`
    /// reference (or a bare Content-ID) names; see
    /// [`match_content_id`](crate::match_content_id) for the comparison.
    pub fn cid_attachment(&self, reference: &str) -> Option<usize> {
        cid::match_content_id(
            reference,
            self.attachments.iter().map(|a| a.content_id.as_deref()),
        )
    }
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
///
/// Never panics, and its work is bounded by the input size and the limits
/// above, whatever the structure (deep nesting, thousands of parts, huge
/// headers).
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
    let original: &[u8] = terminated.as_ref();
    let neutral = guard::neutralize_nesting(original);
    let msg = PARSER
        .parse(neutral.as_ref())
        .ok_or_else(|| ParseError::NotAnEmail("no header section".into()))?;
    if msg.parts.is_empty() {
        return Err(ParseError::NotAnEmail("no header section".into()));
    }
    let mut truncated = false;

    let (message_id, message_id_synthetic) =
        match first_header(&msg, HeaderName::MessageId).and_then(first_id) {
            Some(id) => (id, false),
            None => (synthetic_message_id(raw), true),
        };
    let in_reply_to = first_header(&msg, HeaderName::InReplyTo).and_then(first_id);
    let references = first_header(&msg, HeaderName::References)
        .map(all_ids)
        .unwrap_or_default();

    let tld = sender_tld(&msg);
    let hint = Hint {
        encoding: message_charset(&msg),
        tld: tld.as_deref().map(str::as_bytes),
    };

    let from = mailboxes(&msg, original, HeaderName::From, hint)
        .into_iter()
        .next();
    let to = mailboxes(&msg, original, HeaderName::To, hint);
    let cc = mailboxes(&msg, original, HeaderName::Cc, hint);
    let reply_to = mailboxes(&msg, original, HeaderName::ReplyTo, hint);

    let subject = root_headers(&msg, HeaderName::Subject)
        .next()
        .map(|h| {
            single_line(&headers::decode_unstructured(
                value_bytes(original, h),
                hint,
            ))
        })
        .unwrap_or_default();

    let date = msg
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| chrono::DateTime::from_timestamp(d.to_timestamp(), 0));

    // Parts of a (renamed) multipart/digest without a Content-Type are
    // attached messages, not body text.
    let digest_messages = digest_messages(&msg);
    // mail-parser also lists inline images among the body parts; only text
    // counts towards the limit.
    let body_ids = |ids: &[u32], truncated: &mut bool| -> Vec<u32> {
        let ids: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| !digest_messages.contains(id))
            .filter(|&id| {
                msg.parts
                    .get(id as usize)
                    .is_some_and(|p| matches!(p.body, PartType::Text(_) | PartType::Html(_)))
            })
            .collect();
        if ids.len() > MAX_BODY_PARTS {
            *truncated = true;
        }
        ids.into_iter().take(MAX_BODY_PARTS).collect()
    };

    // Bodies. mail-parser lists, per body kind, the parts that make it up; a
    // text/plain part may appear in `html_body` (converted) and a text/html
    // part in `text_body` when the alternative is missing.
    //
    // A part listed in both is decoded once (`bodies`). Without any text/html
    // part there is no HTML body: its text/plain parts are then only measured
    // (for `truncated`), not converted.
    let mut bodies = BodyTexts::new(original, hint);
    let html_ids = body_ids(&msg.html_body, &mut truncated);
    let has_html = html_ids.iter().any(|&id| {
        msg.parts
            .get(id as usize)
            .is_some_and(|p| matches!(p.body, PartType::Html(_)))
    });
    let mut raw_html = String::new();
    let mut raw_html_len = 0;
    for id in html_ids {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        match &part.body {
            PartType::Html(_) => raw_html.push_str(bodies.get(id, part, &mut truncated)),
            PartType::Text(_) if has_html => {
                raw_html.push_str(&text_as_html(bodies.get(id, part, &mut truncated)));
            }
            PartType::Text(_) => {
                raw_html_len += text_as_html_len(bodies.get(id, part, &mut truncated));
            }
            _ => {}
        }
        if raw_html.len().max(raw_html_len) > MAX_HTML_BYTES {
            truncated = true;
            truncate_at_char(&mut raw_html, MAX_HTML_BYTES);
            break;
        }
    }
    let (html, remote_images) = if has_html {
        let (clean, remote) = sanitize_html(&raw_html);
        (Some(clean), remote)
    } else {
        (None, false)
    };

    let mut texts = Vec::new();
    let mut text_len = 0;
    for id in body_ids(&msg.text_body, &mut truncated) {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        let text = match &part.body {
            PartType::Text(_) => bodies.take(id, part, &mut truncated),
            PartType::Html(_) => {
                let part_html = bodies.take(id, part, &mut truncated);
                match &html {
                    // The HTML body is this part alone: already sanitised.
                    Some(clean) if part_html == raw_html => html_to_text(clean),
                    _ => html_to_text(&sanitize_html(&part_html).0),
                }
            }
            _ => continue,
        };
        text_len += text.len();
        texts.push(text);
        if text_len > MAX_TEXT_BYTES {
            break;
        }
    }
    let mut text = normalize_newlines(&texts.join("\n"));
    if text.trim().is_empty()
        && let Some(html) = &html
    {
        text = normalize_newlines(&html_to_text(html));
    }
    if text.len() > MAX_TEXT_BYTES {
        truncated = true;
        truncate_at_char(&mut text, MAX_TEXT_BYTES);
    }

    let mut attachment_ids: Vec<u32> = msg.attachments.clone();
    attachment_ids.extend(digest_messages.iter().copied());
    attachment_ids.sort_unstable();
    attachment_ids.dedup();
    if attachment_ids.len() > MAX_ATTACHMENTS {
        truncated = true;
        attachment_ids.truncate(MAX_ATTACHMENTS);
    }
    let mut attachments = Vec::new();
    for id in attachment_ids {
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        let found = attachment(original, part, digest_messages.contains(&id), hint);
        if winmail::is_tnef(&found.content_type, Some(&found.filename))
            && let Some(files) = winmail::extract(&found.bytes)
        {
            attachments.extend(files.into_iter().map(tnef_attachment));
        } else {
            attachments.push(found);
        }
    }
    if attachments.len() > MAX_ATTACHMENTS {
        truncated = true;
        attachments.truncate(MAX_ATTACHMENTS);
    }
    if let Some(html) = &html {
        let index = cid::CidIndex::new(attachments.iter().map(|a| a.content_id.as_deref()));
        for reference in cid::cid_references(html) {
            if let Some(i) = index.find(&reference) {
                attachments[i].inline = true;
            }
        }
    }

    let auto_reply_rule = classify::auto_reply_rule(&msg, &subject);
    let auto_reply = auto_reply_rule.is_some();
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
        auto_reply_rule,
        bounce,
        truncated,
    })
}

/// Whether `raw` contains `\n\n` or `\n\r\n`.
fn has_blank_line(raw: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', raw).any(|i| match raw.get(i + 1) {
        Some(b'\n') => true,
        Some(b'\r') => raw.get(i + 2) == Some(&b'\n'),
        _ => false,
    })
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

/// Calls `read` with `raw` parsed the way [`parse`] parses (attached
/// messages kept opaque, so nesting costs no stack), or returns `None` when
/// it has no header section. For classify.rs, which reads the report
/// inside an attached message.
pub(crate) fn with_message<T>(raw: &[u8], read: impl FnOnce(&Message<'_>) -> T) -> Option<T> {
    let neutral = guard::neutralize_nesting(raw);
    let msg = PARSER.parse(neutral.as_ref())?;
    if msg.parts.is_empty() {
        return None;
    }
    Some(read(&msg))
}

/// The parser of whole messages: mail-parser's default header parsers
/// (as listed in `MessageStream::parse_headers`), except that `Received`
/// is kept as raw text. Nothing reads it, and its full parse is a large share
/// of header parsing; the raw reader ends the value at the same byte (after
/// the last line that is not a continuation), so every offset is the same.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    let parser = [
        HeaderName::Subject,
        HeaderName::Comments,
        HeaderName::ContentDescription,
        HeaderName::ContentLocation,
        HeaderName::ContentTransferEncoding,
    ]
    .into_iter()
    .fold(MessageParser::new(), MessageParser::header_text);
    let parser = [
        HeaderName::From,
        HeaderName::To,
        HeaderName::Cc,
        HeaderName::Bcc,
        HeaderName::ReplyTo,
        HeaderName::Sender,
        HeaderName::ResentTo,
        HeaderName::ResentFrom,
        HeaderName::ResentBcc,
        HeaderName::ResentCc,
        HeaderName::ResentSender,
        HeaderName::ListArchive,
        HeaderName::ListHelp,
        HeaderName::ListId,
        HeaderName::ListOwner,
        HeaderName::ListPost,
        HeaderName::ListSubscribe,
        HeaderName::ListUnsubscribe,
    ]
    .into_iter()
    .fold(parser, MessageParser::header_address);
    let parser = [
        HeaderName::MessageId,
        HeaderName::References,
        HeaderName::InReplyTo,
        HeaderName::ReturnPath,
        HeaderName::ContentId,
        HeaderName::ResentMessageId,
    ]
    .into_iter()
    .fold(parser, MessageParser::header_id);
    parser
        .header_date(HeaderName::Date)
        .header_date(HeaderName::ResentDate)
        .header_comma_separated(HeaderName::Keywords)
        .header_comma_separated(HeaderName::ContentLanguage)
        .header_content_type(HeaderName::ContentType)
        .header_content_type(HeaderName::ContentDisposition)
        .header_raw(HeaderName::MimeVersion)
        .header_raw(HeaderName::Received)
});

/// The first occurrence of a top-level header (mail-parser's own accessors
/// return the *last* one).
fn first_header<'a>(msg: &'a Message<'a>, name: HeaderName<'a>) -> Option<&'a HeaderValue<'a>> {
    msg.header_values(name).next()
}

/// Every top-level header called `name`, in order.
fn root_headers<'a>(
    msg: &'a Message<'a>,
    name: HeaderName<'static>,
) -> impl Iterator<Item = &'a Header<'a>> + 'a {
    msg.parts[0].headers.iter().filter(move |h| h.name == name)
}

/// The raw value of a header (after the colon), without the final line break.
fn value_bytes<'r>(original: &'r [u8], header: &Header<'_>) -> &'r [u8] {
    let value = original
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    let end = value
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |p| p + 1);
    &value[..end]
}

/// Parses a single repaired header value the way it would be parsed in a
/// message; the header comes back owned.
fn reparse_header(name: &str, value: &[u8]) -> Option<HeaderValue<'static>> {
    let mut mini = Vec::with_capacity(name.len() + value.len() + 8);
    mini.extend_from_slice(name.as_bytes());
    mini.push(b':');
    mini.extend_from_slice(value);
    mini.extend_from_slice(b"\r\n\r\n");
    let parsed = MessageParser::default().parse_headers(&mini[..])?;
    let header = parsed.parts.first()?.headers.first()?;
    Some(header.value.clone().into_owned())
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

/// The charset the message declares for its text (top-level Content-Type,
/// else the first body part that names one), as a hint for undeclared text.
fn message_charset(msg: &Message<'_>) -> Option<&'static encoding_rs::Encoding> {
    let declared = |part: &MessagePart<'_>| {
        part.content_type()
            .and_then(|ct| ct.attribute("charset"))
            .and_then(charset::hint_encoding)
    };
    msg.parts.first().and_then(declared).or_else(|| {
        msg.text_body
            .iter()
            .chain(&msg.html_body)
            .take(MAX_BODY_PARTS)
            .filter_map(|&id| msg.parts.get(id as usize))
            .find_map(declared)
    })
}

/// Top-level domain of the From address, lowercase (`"jp"`), for charset
/// detection.
fn sender_tld(msg: &Message<'_>) -> Option<String> {
    let address = msg.from()?.first()?.address()?;
    let tld = address.rsplit('.').next()?.trim().trim_end_matches('>');
    (tld.len() >= 2 && tld.len() <= 24 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| tld.to_ascii_lowercase())
}

fn mailboxes(
    msg: &Message<'_>,
    original: &[u8],
    name: HeaderName<'static>,
    hint: Hint<'_>,
) -> Vec<Mailbox> {
    let mut out = Vec::new();
    for header in root_headers(msg, name) {
        let repaired = headers::repair_structured(value_bytes(original, header), hint)
            .and_then(|value| reparse_header("To", &value));
        let value = repaired.as_ref().unwrap_or(&header.value);
        if let Some(address) = value.as_address() {
            out.extend(address.iter().filter_map(mailbox));
        }
    }
    out
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

/// `\r\n` and lone `\r` become `\n` (as
/// `s.replace("\r\n", "\n").replace('\r', "\n")`), in one pass.
pub(crate) fn normalize_newlines(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    for cr in memchr::memchr_iter(b'\r', bytes) {
        if cr < copied {
            continue;
        }
        out.push_str(&s[copied..cr]);
        out.push('\n');
        copied = if bytes.get(cr + 1) == Some(&b'\n') {
            cr + 2
        } else {
            cr + 1
        };
    }
    out.push_str(&s[copied..]);
    out
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

/// Ids of the parts that are attached messages of a (renamed)
/// `multipart/digest`: its children without a Content-Type.
fn digest_messages(msg: &Message<'_>) -> HashSet<u32> {
    let mut ids = HashSet::new();
    for part in &msg.parts {
        let is_digest = part
            .content_type()
            .is_some_and(|ct| ct.ctype() == "multipart" && ct.subtype() == Some(DIGEST_SUBTYPE));
        if let (true, PartType::Multipart(children)) = (is_digest, &part.body) {
            for &child in children {
                let untyped = msg
                    .parts
                    .get(child as usize)
                    .is_some_and(|c| c.content_type().is_none());
                if untyped {
                    ids.insert(child);
                }
            }
        }
    }
    ids
}

/// The decoded text of body parts (see [`body_text`]), each decoded once
/// even when it makes up both the text and the HTML body.
struct BodyTexts<'a> {
    original: &'a [u8],
    hint: Hint<'a>,
    decoded: Vec<(u32, String)>,
}

impl<'a> BodyTexts<'a> {
    fn new(original: &'a [u8], hint: Hint<'a>) -> Self {
        BodyTexts {
            original,
            hint,
            decoded: Vec::new(),
        }
    }

    /// [`body_text`] of part `id`, at most [`MAX_HTML_BYTES`] of an HTML
    /// part and [`MAX_TEXT_BYTES`] of a text part. `truncated` is set as
    /// `body_text` sets it (on the first call for the part).
    fn get(&mut self, id: u32, part: &MessagePart<'_>, truncated: &mut bool) -> &str {
        let index = match self.decoded.iter().position(|(i, _)| *i == id) {
            Some(index) => index,
            None => {
                let text = self.decode(part, truncated);
                self.decoded.push((id, text));
                self.decoded.len() - 1
            }
        };
        &self.decoded[index].1
    }

    /// Like [`get`](Self::get), for the last use of the part's text.
    fn take(&mut self, id: u32, part: &MessagePart<'_>, truncated: &mut bool) -> String {
        match self.decoded.iter().position(|(i, _)| *i == id) {
            Some(index) => self.decoded.swap_remove(index).1,
            None => self.decode(part, truncated),
        }
    }

    fn decode(&self, part: &MessagePart<'_>, truncated: &mut bool) -> String {
        let max = if matches!(part.body, PartType::Html(_)) {
            MAX_HTML_BYTES
        } else {
            MAX_TEXT_BYTES
        };
        body_text(self.original, part, self.hint, max, truncated)
    }
}

/// A body part's text, decoded from its bytes with its declared charset (or
/// the charset of an HTML `<meta>`), see `charset.rs`; a `format=flowed`
/// text/plain part has its soft line breaks joined (`flowed.rs`).
/// At most `max` bytes of the part are decoded; `truncated` is set when
/// there are more.
fn body_text(
    original: &[u8],
    part: &MessagePart<'_>,
    hint: Hint<'_>,
    max: usize,
    truncated: &mut bool,
) -> String {
    let mut bytes = part_bytes(original, part);
    if bytes.len() > max {
        *truncated = true;
        bytes.truncate(max);
    }
    let declared = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(str::to_string)
        .filter(|label| charset::Charset::for_label(label).is_some())
        .or_else(|| {
            matches!(part.body, PartType::Html(_))
                .then(|| charset::html_meta_charset(&bytes))
                .flatten()
        });
    let text = charset::decode_owned(bytes, declared.as_deref(), hint);
    match flowed_params(part) {
        Some(delsp) => crate::flowed::decode(&text, delsp),
        None => text,
    }
}

/// For a `text/plain; format=flowed` part (RFC 3676), whether it says
/// `delsp=yes`; `None` for any other part.
fn flowed_params(part: &MessagePart<'_>) -> Option<bool> {
    if !matches!(part.body, PartType::Text(_)) {
        return None;
    }
    let ct = part.content_type()?;
    if !ct.ctype().eq_ignore_ascii_case("text")
        || !ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
    {
        return None;
    }
    let param = |name: &str| {
        ct.attributes()?
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.trim().to_ascii_lowercase())
    };
    (param("format")? == "flowed").then(|| param("delsp").is_some_and(|v| v == "yes"))
}

fn attachment(
    original: &[u8],
    part: &MessagePart<'_>,
    digest_message: bool,
    hint: Hint<'_>,
) -> ParsedAttachment {
    let mut content_type = part_content_type(part);
    if digest_message {
        content_type = "message/rfc822".into();
    } else if let Some(subtype) = content_type.strip_prefix(&format!("{NESTED_TYPE}/")) {
        content_type = format!("message/{subtype}");
    }
    let is_message = content_type == "message/rfc822" || content_type == "message/global";
    let content_id = part
        .content_id()
        .map(clean_id)
        .filter(|cid| !cid.is_empty());
    let inline = part.content_disposition().is_some_and(|cd| cd.is_inline());
    let bytes = part_bytes(original, part);

    let filename = attachment_name(original, part, hint)
        .and_then(|name| sanitize_filename(&name))
        .or_else(|| {
            is_message
                .then(|| nested_subject(&bytes, hint))
                .flatten()
                .and_then(|subject| {
                    let subject = subject.replace(['/', '\\'], "-");
                    sanitize_filename(&format!("{subject}.eml"))
                })
        })
        .unwrap_or_else(|| fallback_filename(&content_type));

    ParsedAttachment {
        filename,
        content_type,
        content_id,
        inline,
        size: bytes.len(),
        bytes,
    }
}

/// The file name a part gives itself (`Content-Disposition` `filename`, else
/// `Content-Type` `name`, RFC 2231 and RFC 2047 decoded), after repairing raw
/// 8-bit and mislabelled encoded words in those headers.
fn attachment_name(original: &[u8], part: &MessagePart<'_>, hint: Hint<'_>) -> Option<String> {
    let part_hint = Hint {
        encoding: part
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .and_then(charset::hint_encoding)
            .or(hint.encoding),
        ..hint
    };
    let find = |name: HeaderName<'static>| part.headers.iter().find(|h| h.name == name);
    let ct = find(HeaderName::ContentType);
    let cd = find(HeaderName::ContentDisposition);
    let repaired_ct =
        ct.and_then(|h| headers::repair_structured(value_bytes(original, h), part_hint));
    let repaired_cd =
        cd.and_then(|h| headers::repair_structured(value_bytes(original, h), part_hint));
    if repaired_ct.is_none() && repaired_cd.is_none() {
        return part.attachment_name().map(str::to_string);
    }
    let mut mini = Vec::new();
    for (name, header, repaired) in [
        ("Content-Type", ct, repaired_ct),
        ("Content-Disposition", cd, repaired_cd),
    ] {
        let Some(header) = header else { continue };
        mini.extend_from_slice(name.as_bytes());
        mini.push(b':');
        match repaired {
            Some(value) => mini.extend_from_slice(&value),
            None => mini.extend_from_slice(value_bytes(original, header)),
        }
        mini.extend_from_slice(b"\r\n");
    }
    mini.extend_from_slice(b"\r\n");
    let parsed = MessageParser::default().parse_headers(&mini[..])?;
    parsed.attachment_name().map(str::to_string)
}

/// The decoded subject of an attached message (its headers only are read).
fn nested_subject(inner: &[u8], hint: Hint<'_>) -> Option<String> {
    let headers_only = MessageParser::default().parse_headers(inner)?;
    let header = headers_only
        .parts
        .first()?
        .headers
        .iter()
        .find(|h| h.name == HeaderName::Subject)?;
    let subject = single_line(&headers::decode_unstructured(
        value_bytes(inner, header),
        hint,
    ));
    (!subject.is_empty()).then_some(subject)
}

/// An attachment for a file found inside `winmail.dat`.
fn tnef_attachment(file: winmail::TnefFile) -> ParsedAttachment {
    let filename = file
        .name
        .as_deref()
        .and_then(sanitize_filename)
        .unwrap_or_else(|| "attachment.bin".to_string());
    let content_type = file
        .content_type
        .filter(|t| {
            t.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && t.bytes().all(|c| c.is_ascii_graphic())
            })
        })
        .unwrap_or_else(|| winmail::content_type_for_name(&filename).to_string());
    ParsedAttachment {
        filename,
        content_type,
        content_id: None,
        inline: false,
        size: file.bytes.len(),
        bytes: file.bytes,
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

/// The decoded bytes of a part, always read from the original message (the
/// copy mail-parser parsed has renamed content types, see `guard.rs`), so a
/// text part keeps its charset and an attached message is byte-exact.
/// Undecodable base64 or quoted-printable gives the raw bytes, as
/// mail-parser does.
fn part_bytes(original: &[u8], part: &MessagePart<'_>) -> Vec<u8> {
    let Some(raw) = original.get(part.offset_body as usize..part.offset_end as usize) else {
        return part.contents().to_vec();
    };
    if part.is_encoding_problem {
        return raw.to_vec();
    }
    let decoded = match part.encoding {
        Encoding::Base64 => base64_decode(raw),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::None => None,
    };
    decoded.unwrap_or_else(|| raw.to_vec())
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
/// - Keeps only the last path component (`../../etc/passwd` -> `passwd`,
///   `C:\x\y.doc` -> `y.doc`); percent-encoded separators (`%2F`, `%5C`)
///   count as separators too.
/// - Drops control characters and invisible formatting characters
///   (bidirectional overrides such as U+202E, zero-width spaces and joiners,
///   soft hyphens, byte-order marks).
/// - Replaces `<>:"|?*` and look-alike slashes (U+2044, U+2215, U+2216,
///   U+29F8, U+29F9, U+FE68, U+FF0F, U+FF3C) with `_`, and other whitespace
///   with a space.
/// - Trims spaces and dots at both ends (no hidden `.name`, no trailing dot
///   that Windows would drop).
/// - Prefixes Windows device names (`CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`,
///   `LPT0`-`LPT9`, with superscript digits too, `CONIN$`, `CONOUT$`, with
///   or without extension) with `_`.
/// - Limits the name to 200 bytes, keeping an extension of up to 15 bytes.
///
/// Returns `"attachment"` when nothing is left.
pub fn safe_filename(name: &str) -> String {
    sanitize_filename(name).unwrap_or_else(|| "attachment".to_string())
}

fn sanitize_filename(name: &str) -> Option<String> {
    let base = last_path_component(name);
    let cleaned: String = base
        .chars()
        .filter(|&c| !c.is_control() && !is_invisible_format(c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            '\u{2044}' | '\u{2215}' | '\u{2216}' | '\u{29F8}' | '\u{29F9}' | '\u{FE68}'
            | '\u{FF0F}' | '\u{FF3C}' => '_',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c == ' ' || c == '.');
    if cleaned.is_empty() {
        return None;
    }
    let mut cleaned = cleaned.to_string();
    if is_windows_device_name(&cleaned) {
        cleaned.insert(0, '_');
    }
    Some(truncate_filename(cleaned))
}

/// The part after the last `/`, `\\`, `%2F` or `%5C`.
fn last_path_component(name: &str) -> &str {
    let mut start = 0;
    let bytes = name.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'/' || b == b'\\' {
            start = i + 1;
        } else if b == b'%'
            && let Some(code) = bytes.get(i + 1..i + 3)
            && (code.eq_ignore_ascii_case(b"2f") || code.eq_ignore_ascii_case(b"5c"))
        {
            start = i + 3;
        }
    }
    &name[start..]
}

fn is_windows_device_name(name: &str) -> bool {
    const DEVICES: [&str; 6] = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    let upper = stem.to_ascii_uppercase();
    if DEVICES.contains(&upper.as_str()) {
        return true;
    }
    let mut chars = upper.chars();
    let prefix: String = chars.by_ref().take(3).collect();
    let digit = chars.next();
    (prefix == "COM" || prefix == "LPT")
        && chars.next().is_none()
        && digit.is_some_and(|d| d.is_ascii_digit() || matches!(d, '\u{B9}' | '\u{B2}' | '\u{B3}'))
}

/// Invisible formatting characters: bidirectional controls, zero-width
/// characters, soft hyphen, byte-order mark, and similar.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{61C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
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
    fn newline_helpers_match_their_definitions() {
        for s in [
            "",
            "a",
            "\r",
            "\n",
            "\r\n",
            "\r\r\n",
            "\n\r",
            "a\r\nb\rc\nd\r",
            "é\r\n日本\r",
        ] {
            assert_eq!(
                normalize_newlines(s),
                s.replace("\r\n", "\n").replace('\r', "\n"),
                "{s:?}"
            );
            let b = s.as_bytes();
            assert_eq!(
                has_blank_line(b),
                b.windows(2).any(|w| w == b"\n\n") || b.windows(3).any(|w| w == b"\n\r\n"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn single_line_collapses_controls() {
        assert_eq!(single_line("  a\r\n\tb  c \u{7}d "), "a b c d");
    }
}
