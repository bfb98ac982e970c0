//! Header values as raw bytes: RFC 2047 encoded words and raw 8-bit text.
//!
//! mail-parser decodes encoded words one at a time with the declared charset
//! and reads raw 8-bit header bytes as UTF-8. Real mail needs more:
//!
//! - adjacent encoded words of one charset are joined *before* charset
//!   decoding, so a multi-byte character split across two words (a common
//!   encoder bug) comes out whole;
//! - an encoded word declared `iso-8859-1` (or `us-ascii`, or any single-byte
//!   charset) that holds valid UTF-8 is read as UTF-8 (see `charset.rs`);
//! - raw 8-bit values that are not UTF-8 are decoded with the message's
//!   charset as a hint, else by detection; raw ISO-2022-JP (escape sequences,
//!   no encoded words) is decoded as such;
//! - malformed encoded words (no closing `?=`, unknown encoding letter, bad
//!   base64) are left as they are written.
//!
//! [`decode_unstructured`] decodes a value such as `Subject` completely.
//! [`repair_structured`] rewrites a structured value (addresses, MIME
//! parameters) into an equivalent that mail-parser decodes correctly: raw
//! text transcoded to UTF-8, and encoded-word runs that need the rules above
//! replaced by a single `=?UTF-8?B?...?=` word.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use mail_parser::decoders::charsets::map::charset_decoder;

use crate::charset::{self, Charset, Hint};

/// Longest charset name accepted in an encoded word.
const MAX_CHARSET_LEN: usize = 64;

/// Base64 as found in encoded words: padding optional, trailing bits allowed.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A piece of a header value.
#[derive(Debug)]
enum Segment<'a> {
    /// Text outside encoded words, as raw bytes.
    Text(&'a [u8]),
    /// A well-formed encoded word.
    Word {
        /// The whole `=?...?=` as written.
        raw: &'a [u8],
        charset: &'a str,
        /// Decoded bytes (still in `charset`).
        bytes: Vec<u8>,
    },
}

/// Removes line folding: CR and LF are dropped, the whitespace that follows
/// them is kept (RFC 5322 unfolding).
fn unfold(raw: &[u8]) -> Vec<u8> {
    raw.iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect()
}

/// Splits an unfolded value into text and encoded words.
fn segments(value: &[u8]) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i + 1 < value.len() {
        if value[i] == b'='
            && value[i + 1] == b'?'
            && let Some((end, charset, bytes)) = encoded_word(value, i)
        {
            if text_start < i {
                out.push(Segment::Text(&value[text_start..i]));
            }
            out.push(Segment::Word {
                raw: &value[i..end],
                charset,
                bytes,
            });
            i = end;
            text_start = end;
            continue;
        }
        i += 1;
    }
    if text_start < value.len() {
        out.push(Segment::Text(&value[text_start..]));
    }
    out
}

/// Parses `=?charset[*lang]?Q|B?text?=` at `start`; returns its end, charset
/// and decoded bytes.
fn encoded_word(value: &[u8], start: usize) -> Option<(usize, &str, Vec<u8>)> {
    let rest = &value[start + 2..];
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    if charset.is_empty()
        || charset.len() > MAX_CHARSET_LEN
        || !charset.iter().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    let charset = std::str::from_utf8(charset).ok()?;
    // RFC 2231 section 5: `charset*language`.
    let charset = charset.split('*').next().unwrap_or_default();
    let encoding = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = rest[text_start..].iter().position(|&b| b == b'?')?;
    if rest.get(text_start + text_len + 1) != Some(&b'=') {
        return None;
    }
    let text = &rest[text_start..text_start + text_len];
    let bytes = match encoding {
        b'B' | b'b' => {
            let compact: Vec<u8> = text
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            LENIENT_BASE64.decode(compact).ok()?
        }
        b'Q' | b'q' => q_decode(text),
        _ => return None,
    };
    let end = start + 2 + text_start + text_len + 2;
    Some((end, charset, bytes))
}

/// RFC 2047 "Q": `_` is a space, `=XX` a byte; anything else is literal.
fn q_decode(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' => {
                if let (Some(h), Some(l)) = (
                    text.get(i + 1).and_then(|&b| hex(b)),
                    text.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A run of encoded words of one charset, joined, and what it decodes to.
struct Run<'a> {
    /// Index range in the segment list.
    first: usize,
    last: usize,
    charset: &'a str,
    bytes: Vec<u8>,
}

/// Groups consecutive encoded words (separated by nothing or by whitespace
/// only) that share a charset.
fn runs<'a>(segs: &[Segment<'a>]) -> Vec<Run<'a>> {
    let mut runs: Vec<Run<'a>> = Vec::new();
    let mut prev_word: Option<usize> = None;
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Segment::Word { charset, bytes, .. } => {
                let joins = prev_word.is_some_and(|p| {
                    runs.last()
                        .is_some_and(|r| r.last == p && r.charset.eq_ignore_ascii_case(charset))
                        && segs[p + 1..i].iter().all(is_blank)
                });
                if joins {
                    if let Some(run) = runs.last_mut() {
                        run.last = i;
                        run.bytes.extend_from_slice(bytes);
                    }
                } else {
                    runs.push(Run {
                        first: i,
                        last: i,
                        charset,
                        bytes: bytes.clone(),
                    });
                }
                prev_word = Some(i);
            }
            Segment::Text(_) if is_blank(seg) => {}
            Segment::Text(_) => prev_word = None,
        }
    }
    runs
}

fn is_blank(seg: &Segment<'_>) -> bool {
    matches!(seg, Segment::Text(t) if t.iter().all(|b| *b == b' ' || *b == b'\t'))
}

/// Decodes the bytes of an encoded word (or run) declared `charset`.
fn decode_word_bytes(bytes: &[u8], charset: &str, hint: Hint<'_>) -> String {
    match Charset::for_label(charset) {
        Some(cs) => charset::decode_declared(bytes, cs),
        None => charset::decode_undeclared(bytes, hint),
    }
}

/// What mail-parser makes of one encoded word on its own.
fn naive_word(bytes: &[u8], charset: &str) -> String {
    match charset_decoder(charset.as_bytes()) {
        Some(decoder) => decoder(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Whether raw text outside encoded words needs decoding beyond UTF-8.
fn text_needs_decoding(text: &[u8]) -> bool {
    text.contains(&0x1B) || (!text.is_ascii() && std::str::from_utf8(text).is_err())
}

/// Decodes an unstructured header value (e.g. `Subject`) given as the raw
/// bytes after the colon. Folding is removed, encoded words are decoded
/// (whitespace between adjacent ones dropped), raw text is decoded as
/// described in the module docs. Not trimmed.
pub(crate) fn decode_unstructured(raw: &[u8], hint: Hint<'_>) -> String {
    let value = unfold(raw);
    let segs = segments(&value);
    let runs = runs(&segs);
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    let mut run_iter = runs.iter().peekable();
    while i < segs.len() {
        if let Some(run) = run_iter.peek()
            && run.first == i
        {
            out.push_str(&decode_word_bytes(&run.bytes, run.charset, hint));
            i = run.last + 1;
            run_iter.next();
            continue;
        }
        let between_words = i > 0
            && matches!(segs[i - 1], Segment::Word { .. })
            && matches!(segs.get(i + 1), Some(Segment::Word { .. }));
        match &segs[i] {
            // Whitespace between adjacent encoded words is not text.
            seg if between_words && is_blank(seg) => {}
            Segment::Text(text) => out.push_str(&charset::decode_undeclared(text, hint)),
            // Every word belongs to a run; kept for completeness.
            Segment::Word { raw, .. } => out.push_str(&String::from_utf8_lossy(raw)),
        }
        i += 1;
    }
    out
}

/// Rewrites a structured header value (the raw bytes after the colon) when
/// mail-parser would decode it wrongly; `None` when it needs nothing.
pub(crate) fn repair_structured(raw: &[u8], hint: Hint<'_>) -> Option<Vec<u8>> {
    let has_word = raw.windows(2).any(|w| w == b"=?");
    if !has_word && !text_needs_decoding(raw) {
        return None;
    }
    let value = unfold(raw);
    let segs = segments(&value);
    let runs = runs(&segs);
    let mut changed = false;
    let mut out = Vec::with_capacity(value.len() + 16);
    let mut i = 0;
    let mut run_iter = runs.iter().peekable();
    while i < segs.len() {
        if let Some(run) = run_iter.peek()
            && run.first == i
        {
            let decoded = decode_word_bytes(&run.bytes, run.charset, hint);
            let naive: String = segs[run.first..=run.last]
                .iter()
                .filter_map(|s| match s {
                    Segment::Word { charset, bytes, .. } => Some(naive_word(bytes, charset)),
                    Segment::Text(_) => None,
                })
                .collect();
            if decoded != naive {
                changed = true;
                out.extend_from_slice(b"=?UTF-8?B?");
                out.extend_from_slice(general_purpose::STANDARD.encode(decoded).as_bytes());
                out.extend_from_slice(b"?=");
            } else {
                for seg in &segs[run.first..=run.last] {
                    match seg {
                        Segment::Word { raw, .. } => out.extend_from_slice(raw),
                        Segment::Text(text) => out.extend_from_slice(text),
                    }
                }
            }
            i = run.last + 1;
            run_iter.next();
            continue;
        }
        match &segs[i] {
            Segment::Text(text) if text_needs_decoding(text) => {
                changed = true;
                out.extend_from_slice(charset::decode_undeclared(text, hint).as_bytes());
            }
            Segment::Text(text) => out.extend_from_slice(text),
            Segment::Word { raw, .. } => out.extend_from_slice(raw),
        }
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(raw: &[u8]) -> String {
        decode_unstructured(raw, Hint::default())
    }

    #[test]
    fn encoded_words() {
        assert_eq!(subject(b"=?utf-8?q?caf=C3=A9_au_lait?="), "café au lait");
        assert_eq!(subject(b"=?UTF-8?B?Y2Fmw6k=?="), "café");
        // Missing padding.
        assert_eq!(subject(b"=?UTF-8?B?Y2Fmw6k?="), "café");
        // Whitespace (and folding) between adjacent words is dropped, not
        // between a word and text.
        assert_eq!(
            subject(b"=?utf-8?q?a?= \r\n =?utf-8?q?b?= c =?utf-8?q?d?="),
            "ab c d"
        );
        // Adjacent without any space.
        assert_eq!(subject(b"=?utf-8?q?a?==?utf-8?q?b?="), "ab");
        // Language suffix (RFC 2231).
        assert_eq!(subject(b"=?iso-8859-1*fr?q?r=E9sum=E9?="), "résumé");
    }

    #[test]
    fn split_multibyte_character() {
        // "日本" is E6 97 A5 E6 9C AC; split after the fourth byte.
        let raw = b"=?UTF-8?B?5pel5g==?= =?UTF-8?B?nKw=?=";
        assert_eq!(subject(raw), "日本");
    }

    #[test]
    fn mislabelled_word() {
        assert_eq!(subject(b"=?iso-8859-1?Q?Caf=C3=A9?="), "Café");
        assert_eq!(subject(b"=?iso-8859-1?Q?Caf=E9?="), "Café");
    }

    #[test]
    fn malformed_words_stay_readable() {
        for raw in [
            &b"=?utf-8?Q?no end"[..],
            b"=?utf-8?X?abc?=",
            b"=??Q?abc?=",
            b"=?utf-8?B?***?=",
            b"=?",
            b"?=",
            b"=?utf-8?q?",
        ] {
            assert_eq!(subject(raw), String::from_utf8_lossy(raw), "{raw:?}");
        }
    }

    #[test]
    fn raw_text() {
        assert_eq!(subject("Grüße".as_bytes()), "Grüße");
        assert_eq!(subject(b"Gr\xFC\xDFe"), "Grüße");
        let (jis, _, _) = encoding_rs::ISO_2022_JP.encode("日本語");
        assert_eq!(subject(&jis), "日本語");
    }

    #[test]
    fn repair_only_when_needed() {
        assert_eq!(repair_structured(b"Jane <j@x.org>", Hint::default()), None);
        assert_eq!(
            repair_structured(b"=?utf-8?q?J=C3=B6rg?= <j@x.org>", Hint::default()),
            None
        );
        assert_eq!(
            repair_structured(b"J\xF6rg <j@x.org>", Hint::default()).as_deref(),
            Some("Jörg <j@x.org>".as_bytes())
        );
        let repaired =
            repair_structured(b"=?iso-8859-1?q?J=C3=B6rg?= <j@x.org>", Hint::default()).unwrap();
        assert_eq!(repaired, b"=?UTF-8?B?SsO2cmc=?= <j@x.org>");
    }
}
