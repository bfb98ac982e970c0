//! Inline images: `<img src="cid:...">` references (RFC 2392) and the parts
//! they point to.
//!
//! The sanitised HTML keeps `src="cid:<content-id>"`; the parts stay in
//! [`ParsedEmail::attachments`](crate::ParsedEmail::attachments) with their
//! `content_id` and `inline = true`. To display the HTML, replace the sources
//! by URLs of the stored parts with [`rewrite_cid_sources`], resolving each
//! id with [`match_content_id`] (or
//! [`ParsedEmail::cid_attachment`](crate::ParsedEmail::cid_attachment)).

use std::collections::{HashMap, HashSet};

/// Longest Content-ID considered, in bytes.
const MAX_CID_LEN: usize = 998;

/// The Content-ID a `cid:` reference names: `cid:` prefix (any case) and
/// angle brackets removed, percent-escapes decoded, trimmed. Also accepts a
/// bare Content-ID (`<a@b>` or `a@b`).
pub fn normalize_content_id(reference: &str) -> String {
    let r = reference.trim();
    let r = match r.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("cid:") => &r[4..],
        _ => r,
    };
    let decoded = percent_decode(r.trim());
    let d = decoded.trim();
    let d = d.strip_prefix('<').unwrap_or(d);
    let d = d.strip_suffix('>').unwrap_or(d);
    d.trim().to_string()
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Index of the Content-ID (among `content_ids`, each without `<>`; `None`
/// entries for parts without one) that `reference` (`cid:...` or a bare id)
/// names: the first exact match, else the first case-insensitive match
/// (RFC 2392 ids are case-sensitive, but clients are not consistent).
pub fn match_content_id<'a>(
    reference: &str,
    content_ids: impl IntoIterator<Item = Option<&'a str>>,
) -> Option<usize> {
    CidIndex::new(content_ids).find(reference)
}

/// Content-IDs indexed for [`match_content_id`]'s rules, for many lookups.
pub(crate) struct CidIndex {
    exact: HashMap<String, usize>,
    folded: HashMap<String, usize>,
}

impl CidIndex {
    pub(crate) fn new<'a>(content_ids: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut exact = HashMap::new();
        let mut folded = HashMap::new();
        for (i, id) in content_ids.into_iter().enumerate() {
            let Some(id) = id.map(normalize_content_id).filter(|id| !id.is_empty()) else {
                continue;
            };
            folded.entry(id.to_lowercase()).or_insert(i);
            exact.entry(id).or_insert(i);
        }
        CidIndex { exact, folded }
    }

    pub(crate) fn find(&self, reference: &str) -> Option<usize> {
        let wanted = normalize_content_id(reference);
        if wanted.is_empty() {
            return None;
        }
        self.exact
            .get(&wanted)
            .or_else(|| self.folded.get(&wanted.to_lowercase()))
            .copied()
    }
}

/// The Content-IDs referenced by `<img src="cid:...">` in `html`
/// (normalised as by [`normalize_content_id`]), without duplicates, in order
/// of appearance.
pub fn cid_references(html: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    img_sources(html)
        .into_iter()
        .filter_map(|src| cid_of(&src.value))
        .filter(|cid| seen.insert(cid.clone()))
        .collect()
}

/// Replaces the `cid:` sources of `<img>` elements in `html` by the URL that
/// `map` returns for their Content-ID (normalised as by
/// [`normalize_content_id`]: no `cid:`, no `<>`, percent-escapes decoded).
/// Sources for which `map` returns `None`, and all other attributes and
/// text, are left as they are. The URL is attribute-escaped.
///
/// Meant for the HTML of [`sanitize_html`](crate::sanitize_html) (i.e.
/// [`ParsedEmail::html`](crate::ParsedEmail::html)): the scan is a plain tag
/// tokenizer, not a full HTML parser, so it does not know about comments or
/// raw-text elements, which sanitised HTML does not contain.
///
/// ```
/// let html = r#"<p>Logo: <img src="cid:logo@example.com" alt="logo"></p>"#;
/// let out = postdesk_mail::rewrite_cid_sources(html, |cid| {
///     (cid == "logo@example.com").then(|| "/api/v1/attachments/7".to_string())
/// });
/// assert_eq!(out, r#"<p>Logo: <img src="/api/v1/attachments/7" alt="logo"></p>"#);
/// ```
pub fn rewrite_cid_sources(html: &str, map: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut copied = 0;
    for src in img_sources(html) {
        let Some(cid) = cid_of(&src.value) else {
            continue;
        };
        let Some(url) = map(&cid) else {
            continue;
        };
        out.push_str(&html[copied..src.span.0]);
        out.push('"');
        out.push_str(&escape_attribute(&url));
        out.push('"');
        copied = src.span.1;
    }
    out.push_str(&html[copied..]);
    out
}

fn cid_of(value: &str) -> Option<String> {
    let value = value.trim();
    let is_cid = value
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("cid:"));
    if !is_cid || value.len() > MAX_CID_LEN + 4 {
        return None;
    }
    let cid = normalize_content_id(value);
    (!cid.is_empty()).then_some(cid)
}

fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes the few character references an attribute value of sanitised
/// HTML can contain.
fn unescape_attribute(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// An `src` attribute of an `<img>` tag.
struct ImgSource {
    /// Byte range of the attribute value in the document, quotes included.
    span: (usize, usize),
    /// The value, character references decoded.
    value: String,
}

/// Every `src` attribute value of every `<img ...>` start tag.
fn img_sources(html: &str) -> Vec<ImgSource> {
    let bytes = html.as_bytes();
    let mut sources = Vec::new();
    let mut i = 0;
    while let Some(rel) = memchr_lt(&bytes[i..]) {
        let start = i + rel;
        i = start + 1;
        let is_img = bytes
            .get(start + 1..start + 4)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"img"))
            && bytes
                .get(start + 4)
                .is_none_or(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>');
        if !is_img {
            continue;
        }
        let (end, src) = scan_attributes(html, start + 4);
        i = end;
        if let Some(src) = src {
            sources.push(src);
        }
    }
    sources
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'<')
}

/// Scans the attributes of a start tag from `pos` (just after the tag name)
/// to the closing `>`; returns the position after the tag and its first
/// `src` attribute.
fn scan_attributes(html: &str, mut pos: usize) -> (usize, Option<ImgSource>) {
    let bytes = html.as_bytes();
    let mut src = None;
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'/') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return (pos, src);
        }
        if bytes[pos] == b'>' {
            return (pos + 1, src);
        }
        let name_start = pos;
        while pos < bytes.len()
            && !bytes[pos].is_ascii_whitespace()
            && !matches!(bytes[pos], b'=' | b'>' | b'/')
        {
            pos += 1;
        }
        let name = &html[name_start..pos];
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if bytes.get(pos) != Some(&b'=') {
            continue;
        }
        pos += 1;
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let value_start = pos;
        let (value, value_end) = match bytes.get(pos) {
            Some(&quote @ (b'"' | b'\'')) => {
                let close = bytes[pos + 1..]
                    .iter()
                    .position(|&b| b == quote)
                    .map_or(bytes.len(), |p| pos + 1 + p);
                let value = &html[pos + 1..close];
                (value, (close + 1).min(bytes.len()))
            }
            _ => {
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                    pos += 1;
                }
                (&html[value_start..pos], pos)
            }
        };
        pos = value_end;
        if src.is_none() && name.eq_ignore_ascii_case("src") {
            src = Some(ImgSource {
                span: (value_start, value_end),
                value: unescape_attribute(value),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_references() {
        assert_eq!(normalize_content_id("cid:a@b"), "a@b");
        assert_eq!(normalize_content_id("CID:<a@b>"), "a@b");
        assert_eq!(normalize_content_id(" <a@b> "), "a@b");
        assert_eq!(normalize_content_id("cid:part%201%40x"), "part 1@x");
        assert_eq!(normalize_content_id("cid:%zz"), "%zz");
    }

    #[test]
    fn matches_exactly_first_then_ignoring_case() {
        let ids = [None, Some("Logo@X"), Some("logo@x")];
        assert_eq!(match_content_id("cid:logo@x", ids), Some(2));
        assert_eq!(match_content_id("cid:Logo@X", ids), Some(1));
        assert_eq!(match_content_id("cid:LOGO@x", ids), Some(1));
        assert_eq!(match_content_id("cid:other@x", ids), None);
        assert_eq!(match_content_id("cid:", ids), None);
    }

    #[test]
    fn rewrites_only_img_cid_sources() {
        let html = concat!(
            r#"<img src="cid:a@x" alt="a"><img alt='b' src='CID:%3Cb@x%3E'>"#,
            r#"<img src=cid:c@x><img src="https://e/p.png"><a href="cid:a@x">cid:a@x</a>"#,
            r#"<img src="cid:unknown@x"><imgx src="cid:a@x"><img data-x="src=cid:a@x">"#
        );
        let out = rewrite_cid_sources(html, |cid| match cid {
            "a@x" => Some("/api/v1/attachments/1".into()),
            "b@x" => Some("/x?a=1&b=\"2\"".into()),
            "c@x" => Some("/api/v1/attachments/3".into()),
            _ => None,
        });
        assert_eq!(
            out,
            concat!(
                r#"<img src="/api/v1/attachments/1" alt="a"><img alt='b' src="/x?a=1&amp;b=&quot;2&quot;">"#,
                r#"<img src="/api/v1/attachments/3"><img src="https://e/p.png"><a href="cid:a@x">cid:a@x</a>"#,
                r#"<img src="cid:unknown@x"><imgx src="cid:a@x"><img data-x="src=cid:a@x">"#
            )
        );
        assert_eq!(cid_references(html), ["a@x", "b@x", "c@x", "unknown@x"]);
    }

    #[test]
    fn tolerates_broken_markup() {
        for html in [
            "<img",
            "<img src=",
            "<img src=\"cid:a",
            "<img src='",
            "<",
            "<img/src=cid:a>",
        ] {
            let _ = rewrite_cid_sources(html, |_| Some("u".into()));
            let _ = cid_references(html);
        }
        assert_eq!(
            rewrite_cid_sources("<img/src=cid:a>", |_| Some("u".into())),
            "<img/src=\"u\">"
        );
    }
}
