//! Bounds on hostile MIME structure.
//!
//! mail-parser builds attached messages (`message/rfc822`, `message/global`,
//! and the default parts of `multipart/digest`) as nested `Message` values
//! and both converts and drops them recursively. A few kilobytes of
//! `Content-Type: message/rfc822` headers nested inside each other (or a few
//! more inside a base64-encoded attached message, which a scan of the raw
//! bytes cannot see) overflow the stack, and a stack overflow aborts the
//! whole process: `catch_unwind` cannot stop it.
//!
//! postdesk never needs the nested structure (attached messages are kept as
//! opaque `.eml` attachments), so before mail-parser sees a message every
//! `Content-Type` header that mail-parser would read as `message/rfc822` or
//! `message/global` gets its type renamed to [`NESTED_TYPE`], and every
//! `multipart/digest` to `multipart/`[`DIGEST_SUBTYPE`]. The renames keep
//! the byte length, so every offset into the neutralised copy is an offset
//! into the original; `parse.rs` reads all part contents from the original.
//! mail-parser then sees attached messages as plain binary parts and never
//! nests.

use std::borrow::Cow;

use mail_parser::{MessageParser, MimeHeaders};

/// Replacement for the `message` type of attached messages (7 bytes, like
/// `message`).
pub(crate) const NESTED_TYPE: &str = "x-pdmsg";
/// Replacement for the `digest` subtype (6 bytes, like `digest`).
pub(crate) const DIGEST_SUBTYPE: &str = "x-dgst";

/// Most renames tried on one header (a type hidden behind comments).
const MAX_RENAMES_PER_HEADER: usize = 8;

/// Most attachments (non-body parts) returned for one email. Parts beyond
/// are dropped and `ParsedEmail::truncated` is set.
pub const MAX_ATTACHMENTS: usize = 1000;

/// Most body parts joined into each body (text, HTML); more set
/// `ParsedEmail::truncated`.
pub const MAX_BODY_PARTS: usize = 100;

/// Largest HTML body handed to the sanitiser, in bytes; longer HTML is cut
/// (at a character boundary). Sanitising and rendering to text take about
/// 0.4 s per MiB of ordinary markup in a release build.
pub const MAX_HTML_BYTES: usize = 2 * 1024 * 1024;

/// Largest plain-text body kept, in bytes; longer text is cut.
pub const MAX_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// A copy of `raw` (same length) in which mail-parser finds no nested message
/// (see the module docs), or `raw` itself when it has nothing to rename.
pub(crate) fn neutralize_nesting(raw: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut line_start = 0;
    while line_start < raw.len() {
        let line_end = find_newline(raw, line_start).unwrap_or(raw.len());
        if let Some(colon) = content_type_colon(&raw[line_start..line_end]) {
            let value_start = line_start + colon + 1;
            let value_end = folded_end(raw, line_end);
            // Only a value that names one of the nested types can need a
            // rename (see `may_be_nested`); copy the message for those only.
            if may_be_nested(&raw[value_start..value_end]) {
                let buf = out.get_or_insert_with(|| raw.to_vec());
                rename_nested(&mut buf[value_start..value_end]);
            }
            line_start = value_end;
            continue;
        }
        line_start = line_end + 1;
    }
    match out {
        Some(buf) if buf != raw => Cow::Owned(buf),
        _ => Cow::Borrowed(raw),
    }
}

fn find_newline(raw: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', &raw[from..]).map(|p| from + p)
}

/// Whether a Content-Type value may be read by mail-parser as a nested type:
/// it takes the type and subtype as written (ASCII-lowercased, no decoding),
/// so `message` or `digest` must appear in the value, in any case.
fn may_be_nested(value: &[u8]) -> bool {
    contains_ignore_ascii_case(value, b"message") || contains_ignore_ascii_case(value, b"digest")
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// End of a header whose first line ends at `line_end` (the `\n`, or the end
/// of input): continuation lines start with a space or a tab.
fn folded_end(raw: &[u8], mut line_end: usize) -> usize {
    while line_end < raw.len() && matches!(raw.get(line_end + 1), Some(b' ' | b'\t')) {
        line_end = find_newline(raw, line_end + 1).unwrap_or(raw.len());
    }
    line_end
}

/// Position of the colon when `line` is a `Content-Type` header field the way
/// mail-parser reads header names: leading whitespace and colons skipped,
/// whitespace inside the name ignored, case-insensitive.
fn content_type_colon(line: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"content-type";
    let mut matched = 0;
    for (i, &b) in line.iter().enumerate() {
        if b == b':' {
            if matched == 0 {
                continue;
            }
            return (matched == NAME.len()).then_some(i);
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if matched < NAME.len() && b.to_ascii_lowercase() == NAME[matched] {
            matched += 1;
        } else {
            return None;
        }
    }
    None
}

/// What mail-parser reads from a Content-Type value.
fn parsed_type(value: &[u8]) -> Option<(String, Option<String>)> {
    let mut header = Vec::with_capacity(value.len() + 20);
    header.extend_from_slice(b"Content-Type:");
    header.extend_from_slice(value);
    header.extend_from_slice(b"\r\n\r\n");
    let msg = MessageParser::default().parse_headers(&header[..])?;
    let ct = msg.content_type()?;
    Some((ct.ctype().to_string(), ct.subtype().map(str::to_string)))
}

fn is_nested(ctype: &str, subtype: Option<&str>) -> bool {
    (ctype == "message" && matches!(subtype, Some("rfc822" | "global")))
        || (ctype == "multipart" && subtype == Some("digest"))
}

/// Renames, in place, the type of a Content-Type value that mail-parser
/// reads as an attached message or a digest, until it no longer does.
fn rename_nested(value: &mut [u8]) {
    for _ in 0..MAX_RENAMES_PER_HEADER {
        let Some((ctype, subtype)) = parsed_type(value) else {
            return;
        };
        if !is_nested(&ctype, subtype.as_deref()) {
            return;
        }
        let (word, replacement) = if ctype == "message" {
            (&b"message"[..], NESTED_TYPE.as_bytes())
        } else {
            (&b"digest"[..], DIGEST_SUBTYPE.as_bytes())
        };
        let Some(at) = value
            .windows(word.len())
            .position(|w| w.eq_ignore_ascii_case(word))
        else {
            break;
        };
        value[at..at + word.len()].copy_from_slice(replacement);
    }
    // Still nested after every rename (should not happen): make the value
    // unreadable as a type so that mail-parser falls back to text/plain.
    if parsed_type(value).is_some_and(|(t, s)| is_nested(&t, s.as_deref())) {
        value.fill(b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neutral(raw: &str) -> String {
        String::from_utf8(neutralize_nesting(raw.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn renames_attached_messages_and_digests() {
        assert_eq!(
            neutral("Content-Type: message/rfc822\r\n\r\n"),
            "Content-Type: x-pdmsg/rfc822\r\n\r\n"
        );
        assert_eq!(
            neutral("content-TYPE :\r\n  Message/Global; name=\"message.eml\"\n"),
            "content-TYPE :\r\n  x-pdmsg/Global; name=\"message.eml\"\n"
        );
        assert_eq!(
            neutral("Content-Type: multipart/digest; boundary=x\n"),
            "Content-Type: multipart/x-dgst; boundary=x\n"
        );
        // Comments before the type.
        assert_eq!(
            neutral("Content-Type: (message) message/rfc822\n"),
            "Content-Type: (x-pdmsg) x-pdmsg/rfc822\n"
        );
    }

    #[test]
    fn leaves_everything_else() {
        for raw in [
            "Content-Type: message/delivery-status\n",
            "Content-Type: text/plain; name=message.txt\n",
            "X-Content-Type: message/rfc822\n",
            "Subject: Content-Type: message/rfc822\n",
            "no header at all",
        ] {
            assert!(
                matches!(neutralize_nesting(raw.as_bytes()), Cow::Borrowed(_)),
                "{raw}"
            );
        }
    }

    #[test]
    fn name_matching_follows_mail_parser() {
        assert_eq!(content_type_colon(b"Content-Type: x"), Some(12));
        assert_eq!(content_type_colon(b"  Content - Type\t: x"), Some(17));
        assert_eq!(content_type_colon(b":Content-Type: x"), Some(13));
        assert_eq!(content_type_colon(b"Content-Types: x"), None);
        assert_eq!(content_type_colon(b"Content: x"), None);
    }
}
