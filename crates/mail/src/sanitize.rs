//! HTML sanitising (ammonia) and HTML-to-text rendering (html2text).

use std::cell::Cell;
use std::sync::LazyLock;

use ammonia::UrlRelative;

use crate::html_quote::names_signature;

/// Deepest element nesting handed to html5ever (ammonia, html2text). Parsing
/// time grows quadratically with the nesting depth (about 12 s for 20,000
/// nested `<div>`s in a debug build), so deeper documents are flattened to
/// text by mail-parser's linear converter instead. Real mail stays far below.
const MAX_HTML_DEPTH: usize = 1000;

/// Most elements handed to html5ever. Time and memory grow with the element
/// count (about 2.5 s in a release build for 650,000 `<p>`s); documents with
/// more are flattened to text like too deep ones. Real mail stays far below
/// (a 2 MiB newsletter has some tens of thousands).
const MAX_HTML_ELEMENTS: usize = 200_000;

/// Whether html5ever may parse `html` (see [`MAX_HTML_DEPTH`] and
/// [`MAX_HTML_ELEMENTS`]).
pub(crate) fn parseable(html: &str) -> bool {
    let (depth, elements) = html_shape(html);
    depth <= MAX_HTML_DEPTH && elements <= MAX_HTML_ELEMENTS
}

/// Sanitises an HTML body for display; returns the clean HTML and whether it
/// loads remote images.
///
/// Allow-list based (ammonia), keeping the structure and formatting of mail:
/// `p`, `div`, `br`, `span`, `b`/`i`/`u`, headings, lists, `blockquote`,
/// `pre`, tables (with `width`, `border`, `cellpadding`, `bgcolor`, ...),
/// `font`, `a` and `img`.
///
/// Removed with their content: `script`, `style`, `title`, `noscript`,
/// `template`, `iframe`, `frame`/`frameset`, `object`, `embed`, `applet`,
/// `svg`, `math`, `noembed`, `noframes`. Removed (content kept as text):
/// every other tag not allowed, among them `link`, `meta`, `base`, `form`,
/// `input`, `button`, `picture`/`source`, `video`/`audio`. Dropped
/// attributes: event handlers (`on*`), `srcset`, `background`, `class`
/// (except the quote markers `gmail_quote`, `yahoo_quoted`,
/// `protonmail_quote`, `zmail_extra`, ... on `div` and `blockquote`, also
/// when prefixed, and classes naming a signature, kept as `signature` on
/// `div`, `p`, `pre` and `section`), `id` (except Outlook's `appendonsend`,
/// `divRplyFwdMsg`, `mail-editor-reference-message-container`, and ids
/// naming a signature, kept as `Signature`), `name` (except `quote` and
/// a signature's on `div`), and every URL whose scheme is not allowed (no
/// `javascript:`, `vbscript:`, `data:`) or that is relative.
///
/// Links get `rel="noopener noreferrer"` and `target="_blank"`.
///
/// CSS is dropped entirely: `<style>` elements with their content and every
/// `style` attribute, so no overlay (`position: fixed`), no remote load
/// (`url(...)`) and no script (`expression(...)`) can come from CSS. Layout
/// survives through the HTML attributes above (`align`, `width`, `bgcolor`,
/// `<font color>`, ...).
///
/// `img src` may be `cid:` (inline parts of the same message) or `http(s)`;
/// remote images are kept and reported in the returned `bool` so the UI can
/// block them until the agent allows them. Protocol-relative sources (`//host`)
/// are dropped.
///
/// HTML nested deeper than 1000 elements or with more than 200,000 elements
/// is not parsed: it is reduced to its text and returned as escaped text with
/// `<br>` line breaks (and no images).
pub fn sanitize_html(html: &str) -> (String, bool) {
    if !parseable(html) {
        return (text_as_html(&flat_html_to_text(html)), false);
    }
    REMOTE_IMAGES.with(|remote| remote.set(false));
    let document = CLEANER.clean(html);
    let remote = REMOTE_IMAGES.with(Cell::get);
    // `Document::to_string` serialises into a buffer and then copies it.
    let mut buf = Vec::with_capacity(html.len());
    let mut clean = match document.write_to(&mut buf) {
        Ok(()) => String::from_utf8(buf).unwrap_or_else(|_| document.to_string()),
        Err(_) => document.to_string(),
    };
    let end = clean.trim_end().len();
    clean.truncate(end);
    let start = clean.len() - clean.trim_start().len();
    clean.drain(..start);
    (clean, remote)
}

thread_local! {
    /// Set by [`CLEANER`]'s attribute filter when it keeps a remote image;
    /// reset before each [`sanitize_html`] (cleaning runs on the calling
    /// thread).
    static REMOTE_IMAGES: Cell<bool> = const { Cell::new(false) };
}

/// The ammonia configuration of [`sanitize_html`], built once.
static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["font", "center"])
        .add_generic_attributes(["id"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes(
            "table",
            ["width", "border", "cellpadding", "cellspacing", "bgcolor"],
        )
        .add_tag_attributes("td", ["width", "height", "valign", "bgcolor", "nowrap"])
        .add_tag_attributes("th", ["width", "height", "valign", "bgcolor", "nowrap"])
        .add_tag_attributes("tr", ["valign", "bgcolor"])
        .add_tag_attributes("div", ["align", "dir", "name"])
        .add_tag_attributes("p", ["align", "dir"])
        .add_tag_attributes("span", ["dir"])
        .add_tag_attributes("blockquote", ["type"])
        .add_tag_attributes("ul", ["type"])
        .add_tag_attributes("ol", ["type"])
        .add_allowed_classes("div", QUOTE_CLASSES)
        .add_allowed_classes("blockquote", QUOTE_CLASSES)
        .add_allowed_classes("div", [SIGNATURE_CLASS])
        .add_allowed_classes("p", [SIGNATURE_CLASS])
        .add_allowed_classes("pre", [SIGNATURE_CLASS])
        .add_allowed_classes("section", [SIGNATURE_CLASS])
        .set_tag_attribute_value("a", "target", "_blank")
        .add_clean_content_tags(REMOVED_WITH_CONTENT)
        .add_url_schemes(["cid"])
        .url_relative(UrlRelative::Deny)
        .attribute_filter(|element, attribute, value| match attribute {
            "id" => ALLOWED_IDS
                .iter()
                .find(|id| {
                    value
                        .to_ascii_lowercase()
                        .contains(&id.to_ascii_lowercase())
                })
                .copied()
                .or_else(|| names_signature(value).then_some(SIGNATURE_ID))
                .map(Into::into),
            // Prefixed quote classes (`ydp1a2byahoo_quoted`) under their plain
            // names, so that the allow-list keeps them; signature classes
            // under one name.
            "class" => {
                let classes: Vec<&str> = value
                    .split_ascii_whitespace()
                    .map(|class| {
                        QUOTE_CLASSES
                            .iter()
                            .find(|q| class == **q)
                            .or_else(|| QUOTE_CLASSES.iter().find(|q| class.ends_with(**q)))
                            .copied()
                            .or_else(|| names_signature(class).then_some(SIGNATURE_CLASS))
                            .unwrap_or(class)
                    })
                    .collect();
                Some(classes.join(" ").into())
            }
            // GMX's `<div name="quote">` and Spark's `name=
            // "messageSignatureSection"`; no other name is kept.
            "name" if element == "div" => {
                if value.trim().eq_ignore_ascii_case("quote") {
                    Some("quote".into())
                } else {
                    names_signature(value).then_some(SIGNATURE_CLASS.into())
                }
            }
            "src" if element == "img" => {
                let lower = value.trim().to_ascii_lowercase();
                if lower.starts_with("//") {
                    return None;
                }
                if lower.starts_with("http://") || lower.starts_with("https://") {
                    REMOTE_IMAGES.with(|remote| remote.set(true));
                }
                Some(value.into())
            }
            _ => Some(value.into()),
        });
    builder
});

/// Elements removed together with everything inside them.
const REMOVED_WITH_CONTENT: [&str; 13] = [
    "title", "noscript", "template", "iframe", "frame", "frameset", "object", "embed", "applet",
    "svg", "math", "noembed", "noframes",
];

/// Classes that mark quoted history (the UI hides them on demand).
const QUOTE_CLASSES: [&str; 10] = [
    "gmail_quote",
    "gmail_quote_container",
    "gmail_attr",
    "gmail_extra",
    "yahoo_quoted",
    "moz-cite-prefix",
    "protonmail_quote",
    "zmail_extra",
    "zmail_extra_hr",
    "yahoo_quoted_header",
];

/// The id that every id naming a signature is kept under (`Signature`,
/// `x_Signature`, `ms-outlook-mobile-signature`, Zoho's `Zm-_Id_-Sgn`, ...;
/// see `html_quote::names_signature`), so that quote trimming finds the
/// signature in stored HTML too.
const SIGNATURE_ID: &str = "Signature";

/// The class (and `div` name) that every class naming a signature is kept
/// under (`gmail_signature`, `moz-signature`, `protonmail_signature_block`,
/// ...).
const SIGNATURE_CLASS: &str = "signature";

/// Element ids kept (also when a client prefixed them, e.g.
/// `x_divRplyFwdMsg`): Outlook's markers of quoted history.
const ALLOWED_IDS: [&str; 4] = [
    "appendonsend",
    "divRplyFwdMsg",
    "mail-editor-reference-message-container",
    "OLK_SRC_BODY_SECTION",
];

/// Renders HTML as plain text (no emphasis markers, no table borders, links
/// as `[text][1]` with footnotes, wrapped at 80 columns),
/// for messages without a text/plain body. Falls back to mail-parser's flat
/// converter when html2text fails or the document is nested too deeply.
///
/// html2text drops text that its indentation (two columns per quote or list
/// level) pushes past the width, so deeply nested documents get a width of
/// 80 columns plus two per level beyond 30.
pub(crate) fn html_to_text(html: &str) -> String {
    let (depth, elements) = html_shape(html);
    let width = 80 + 2 * depth.saturating_sub(30);
    if depth <= MAX_HTML_DEPTH
        && elements <= MAX_HTML_ELEMENTS
        && let Ok(text) = html2text::config::plain_no_decorate()
            .link_footnotes(true)
            .no_table_borders()
            .allow_width_overflow()
            .string_from_read(html.as_bytes(), width)
    {
        return text.trim_end().to_string() + "\n";
    }
    flat_html_to_text(html)
}

/// mail-parser's single-pass converter; it `unwrap`s internally, so guard it.
fn flat_html_to_text(html: &str) -> String {
    std::panic::catch_unwind(|| mail_parser::decoders::html::html_to_text(html)).unwrap_or_default()
}

/// Plain text as an HTML fragment: escaped, line breaks as `<br>`.
pub(crate) fn text_as_html(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\n' => html.push_str("<br>\n"),
            '\r' => {}
            c => html.push(c),
        }
    }
    html
}

/// `text_as_html(text).len()`, without building it.
pub(crate) fn text_as_html_len(text: &str) -> usize {
    // Branch-free so that it vectorises: every byte counts 1, `&` 4 more,
    // `<` and `>` 3 more, `"` 5 more, `\n` 4 more (`<br>`), `\r` none.
    let extra: usize = text
        .bytes()
        .map(|b| {
            4 * usize::from(b == b'&')
                + 3 * usize::from(b == b'<' || b == b'>')
                + 5 * usize::from(b == b'"')
                + 4 * usize::from(b == b'\n')
        })
        .sum();
    let carriage_returns = text.bytes().filter(|&b| b == b'\r').count();
    text.len() + extra - carriage_returns
}

/// Rough element nesting depth of an HTML document: start tags minus end
/// tags, ignoring void elements, self-closed tags, and elements that the HTML
/// parser closes implicitly when a sibling starts (`p`, `li`, `td`, ...).
#[cfg(test)]
fn nesting_depth(html: &str) -> usize {
    html_shape(html).0
}

/// Rough nesting depth (see [`nesting_depth`]) and number of start tags.
fn html_shape(html: &str) -> (usize, usize) {
    const NOT_NESTING: [&str; 32] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "dt", "dd", "td", "th", "tr", "tbody", "thead",
        "tfoot", "colgroup", "option", "optgroup", "rb", "rt", "rp", "html", "body",
    ];
    let mut depth: usize = 0;
    let mut max = 0;
    let mut elements = 0;
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        rest = &rest[end..];
        let (closing, tag) = match tag.strip_prefix('/') {
            Some(tag) => (true, tag),
            None => (false, tag),
        };
        let name_len = tag
            .bytes()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(tag.len());
        let name = &tag[..name_len];
        if name.is_empty() {
            continue;
        }
        if !closing {
            elements += 1;
        }
        if NOT_NESTING.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        if tag.ends_with('/') {
            continue;
        }
        depth += 1;
        max = max.max(depth);
    }
    (max, elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_dangerous_markup() {
        let (clean, remote) = sanitize_html(
            r#"<p onclick="x()">Hi <a href="javascript:alert(1)">x</a>
            <a href="https://example.com/a">ok</a></p><script>alert(1)</script>
            <style>p{}</style><iframe src="https://evil"></iframe><form><input></form>"#,
        );
        assert!(!clean.contains("onclick"), "{clean}");
        assert!(!clean.contains("javascript"), "{clean}");
        assert!(!clean.contains("alert"), "{clean}");
        assert!(!clean.contains("iframe"), "{clean}");
        assert!(!clean.contains("<form"), "{clean}");
        assert!(!clean.contains("<input"), "{clean}");
        assert!(!clean.contains("p{}"), "{clean}");
        assert!(clean.contains(r#"href="https://example.com/a""#), "{clean}");
        assert!(clean.contains("<p>"), "{clean}");
        assert!(!remote);
    }

    #[test]
    fn signature_and_quote_marks_are_kept_under_one_name() {
        let (clean, _) = sanitize_html(
            "<div id=\"x_Signature\">a</div><div id=\"Zm-_Id_-Sgn\">b</div>\
             <div id=\"Zm-_Id_-Sgn1\">c</div><pre class=\"moz-signature x\">d</pre>\
             <div name=\"messageSignatureSection\">e</div><div name=\"quote\">f</div>\
             <div name=\"other\" id=\"other\">g</div><span class=\"gmail_signature\">h</span>",
        );
        assert_eq!(
            clean,
            "<div id=\"Signature\">a</div><div id=\"Signature\">b</div>\
             <div>c</div><pre class=\"signature\">d</pre>\
             <div name=\"signature\">e</div><div name=\"quote\">f</div>\
             <div>g</div><span>h</span>"
        );
    }

    #[test]
    fn images() {
        let (clean, remote) =
            sanitize_html(r#"<img src="cid:logo@x"><img src="data:image/png;base64,AA">"#);
        assert!(clean.contains(r#"src="cid:logo@x""#), "{clean}");
        assert!(!clean.contains("data:"), "{clean}");
        assert!(!remote);

        let (clean, remote) = sanitize_html(r#"<img src="HTTPS://t.example/p.gif">"#);
        assert!(clean.contains("t.example"), "{clean}");
        assert!(remote);

        let (clean, remote) = sanitize_html(r#"<img src="//t.example/p.gif"><img src="/rel.gif">"#);
        assert!(!clean.contains("t.example"), "{clean}");
        assert!(!clean.contains("rel.gif"), "{clean}");
        assert!(!remote);
    }

    #[test]
    fn depth_counting() {
        assert_eq!(
            nesting_depth("<p>a<br>b<img src=x/></p><div><b>x</b></div>"),
            2
        );
        assert_eq!(nesting_depth("<div><p>a<p>b<p>c</div>"), 1);
        assert_eq!(
            nesting_depth("<table><tr><td><table><tr><td>x</table></table>"),
            2
        );
        assert_eq!(nesting_depth("no tags"), 0);
        assert_eq!(nesting_depth(&"<div>".repeat(500)), 500);
    }

    #[test]
    fn deep_nesting_is_flattened_quickly() {
        let html = format!(
            "{}<script>x()</script><b>deep</b> &amp; <img src=\"https://t.example/p\">{}",
            "<div>".repeat(50_000),
            "</div>".repeat(50_000)
        );
        let started = std::time::Instant::now();
        let (clean, remote) = sanitize_html(&html);
        assert!(clean.contains("deep") && clean.contains("&amp;"), "{clean}");
        assert!(!clean.replace("<br>", "").contains('<'), "{clean}");
        assert!(!clean.contains("x()"), "{clean}");
        assert!(!remote);
        assert!(html_to_text(&html).contains("deep"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn sibling_paragraphs_are_not_deep() {
        let html = "<p>para".repeat(5000);
        assert!(nesting_depth(&html) <= 1);
        let (clean, _) = sanitize_html(&html);
        assert!(clean.starts_with("<p>para</p>"), "{}", &clean[..40]);
    }

    #[test]
    fn text_as_html_len_matches() {
        for text in ["", "plain", "a<b>&\"c\"\r\nd\r\re\n", "é – \r\n日本 <>"] {
            assert_eq!(text_as_html_len(text), text_as_html(text).len(), "{text:?}");
        }
    }

    #[test]
    fn text_as_html_escapes() {
        assert_eq!(
            text_as_html("a<b>&\"c\"\r\nd"),
            "a&lt;b&gt;&amp;&quot;c&quot;<br>\nd"
        );
    }

    #[test]
    fn renders_text() {
        let text = html_to_text("<p>Hello <b>world</b></p><ul><li>one</li></ul>");
        assert!(text.contains("Hello"), "{text}");
        assert!(text.contains("world"), "{text}");
        assert!(text.contains("one"), "{text}");
    }
}
