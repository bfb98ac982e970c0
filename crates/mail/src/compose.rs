//! Composing a reply the way a mail client does.
//!
//! An agent types a reply (plain text or Markdown), the inbox adds its
//! signature, and the email being answered is quoted below. [`render_reply`]
//! turns that into the bodies of the email ([`Rendered::text`] and, for
//! Markdown, [`Rendered::html`]) and into what postdesk shows in its
//! timeline, the same without the quoted history ([`Rendered::shown_text`],
//! [`Rendered::shown_html`]). The layout is the one Gmail and Thunderbird
//! write, so that the contact's mail client, and postdesk's own trimming
//! ([`crate::trim`]) when the contact's answer quotes ours, recognise the
//! quoted history:
//!
//! ```text
//! Thanks, it works now.
//!
//! --
//! Support Team
//!
//! On Mon, 7 Dec 2026 at 10:00, Ann Lee <ann@example.com> wrote:
//! > It does not work.
//! ```
//!
//! (The signature separator is the standard `-- `: two dashes and a space.)
//! In HTML the signature is a `<div class="postdesk-signature">` and the
//! quote a Gmail quote (`div.gmail_quote`, `div.gmail_attr`,
//! `blockquote.gmail_quote type=cite`).
//!
//! [`markdown_to_html`] renders Markdown with pulldown-cmark and sanitises the
//! result ([`crate::sanitize_html`]): raw HTML typed in the Markdown is shown
//! as text, never passed through as markup.
//!
//! [`parse_recipient`] reads one recipient typed by an agent
//! (`ann@example.com`, `Ann Lee <ann@example.com>`,
//! `"Lee, Ann" <ann@example.com>`) and refuses anything that could smuggle a
//! header or a second address.

use chrono::{DateTime, Utc};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

use crate::Mailbox;
use crate::build::is_valid_address;
use crate::parse::{normalize_newlines, single_line};
use crate::sanitize::{html_to_text, sanitize_html, text_as_html};

/// How the agent wrote a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text: the email is text/plain only, sent as typed.
    Text,
    /// Markdown: the email is text/plain (the Markdown source, readable as
    /// it is) plus text/html (the Markdown rendered and sanitised).
    Markdown,
}

/// The email being answered, quoted below a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// Its sender, named in the attribution line (`... Ann Lee
    /// <ann@example.com> wrote:`).
    pub from: Option<&'a Mailbox>,
    /// When it was sent; the attribution leaves the date out without it.
    pub date: Option<DateTime<Utc>>,
    /// Its plain-text body (when blank, the text of `html` is quoted).
    pub text: &'a str,
    /// Its HTML body (as stored: sanitised), quoted in the HTML of a
    /// Markdown reply; its text is quoted instead when absent.
    pub html: Option<&'a str>,
}

/// What an agent wrote, with what goes below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyBody<'a> {
    /// The reply as typed.
    pub text: &'a str,
    /// Plain text or Markdown.
    pub format: Format,
    /// The inbox's signature, variables already filled: Markdown when
    /// `format` is Markdown, plain text otherwise. `None` or blank: none.
    pub signature: Option<&'a str>,
    /// The email answered, quoted below the reply and signature.
    pub quote: Option<Quoted<'a>>,
}

/// A reply ready to send and to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The text/plain body of the email: reply, signature, quoted history.
    pub text: String,
    /// The text/html body of the email (Markdown replies only), sanitised.
    pub html: Option<String>,
    /// `text` without the quoted history: what postdesk stores and shows in
    /// the conversation's timeline.
    pub shown_text: String,
    /// `html` without the quoted history.
    pub shown_html: Option<String>,
}

/// Inline style of the quote's `blockquote` (Gmail's), so that clients that
/// know no quote classes still draw the bar on the left.
const QUOTE_STYLE: &str = "margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex";

/// Builds the bodies of a reply: what the agent typed, then the signature,
/// then the quoted email.
///
/// - [`Format::Text`]: `text` is the reply as typed; no HTML.
/// - [`Format::Markdown`]: `text` is the Markdown source as typed (it reads
///   well as plain text) and `html` is [`markdown_to_html`] of it.
/// - The signature is added once, after the reply: in text after the
///   standard `-- ` separator line (`\n\n-- \n`), in HTML inside a
///   `<div class="postdesk-signature">`. When the reply already ends with
///   the signature's lines (the agent pasted it), it is not added again.
/// - The quote comes last. In text, an attribution line (`On Mon, 7 Dec
///   2026 at 10:00, Ann Lee <ann@example.com> wrote:`, in UTC, without the
///   date part when the date is unknown, with the bare address when the
///   sender has no name) and every line of the quoted text prefixed with
///   `> ` (`>` alone on empty lines, `>>` on lines already quoted). In HTML
///   (Markdown replies only), a Gmail quote holding the quoted email's HTML,
///   sanitised again, or its text with line breaks.
///
/// Line endings become `\n` (the email builder writes CRLF).
pub fn render_reply(body: &ReplyBody<'_>) -> Rendered {
    let typed = normalize_newlines(body.text);
    let signature = body
        .signature
        .map(|s| normalize_newlines(s).trim().to_string())
        .filter(|s| !s.is_empty() && !ends_with_lines(&typed, s));

    let shown_text = match &signature {
        None => typed.clone(),
        Some(signature) => match typed.trim_end() {
            "" => format!("-- \n{signature}"),
            reply => format!("{reply}\n\n-- \n{signature}"),
        },
    };
    let shown_html = (body.format == Format::Markdown).then(|| {
        let mut html = markdown_to_html(&typed);
        if let Some(signature) = &signature {
            html.push_str("<div class=\"postdesk-signature\">-- <br>");
            html.push_str(&markdown_to_html(signature));
            html.push_str("</div>");
        }
        html
    });

    let Some(quote) = &body.quote else {
        return Rendered {
            text: shown_text.clone(),
            html: shown_html.clone(),
            shown_text,
            shown_html,
        };
    };
    let attribution = attribution(quote);
    let text = match quoted_text(quote) {
        None => shown_text.clone(),
        Some(quoted) => match shown_text.trim_end() {
            "" => format!("{attribution}\n{quoted}\n"),
            reply => format!("{reply}\n\n{attribution}\n{quoted}\n"),
        },
    };
    let html = shown_html.as_deref().map(|reply| match quoted_html(quote) {
        None => reply.to_string(),
        Some(quoted) => format!(
            "{reply}<br><div class=\"gmail_quote\"><div class=\"gmail_attr\">{}</div>\
             <blockquote class=\"gmail_quote\" type=\"cite\" style=\"{QUOTE_STYLE}\">{quoted}</blockquote></div>",
            text_as_html(&attribution)
        ),
    });
    Rendered {
        text,
        html,
        shown_text,
        shown_html,
    }
}

/// Whether the last non-blank lines of `text` are the lines of `tail`
/// (each compared without surrounding whitespace).
fn ends_with_lines(text: &str, tail: &str) -> bool {
    let significant = |s: &str| -> Vec<String> {
        let mut lines: Vec<String> = s.lines().map(|l| l.trim().to_string()).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    };
    let text = significant(text);
    let tail = significant(tail);
    !tail.is_empty() && text.ends_with(&tail)
}

/// `On Mon, 7 Dec 2026 at 10:00, Ann Lee <ann@example.com> wrote:`.
fn attribution(quote: &Quoted<'_>) -> String {
    let who = quote.from.map(|from| {
        let email = single_line(&from.email);
        match from
            .name
            .as_deref()
            .map(single_line)
            .filter(|n| !n.is_empty())
        {
            Some(name) => format!("{name} <{email}>"),
            None => email,
        }
    });
    let who = who.as_deref().unwrap_or("the sender");
    match quote.date {
        Some(date) => format!("On {}, {who} wrote:", date.format("%a, %-d %b %Y at %H:%M")),
        None if quote.from.is_none() => "The sender wrote:".to_string(),
        None => format!("{who} wrote:"),
    }
}

/// The quoted email's text with `>` prefixes, or `None` when it has none.
fn quoted_text(quote: &Quoted<'_>) -> Option<String> {
    let text = if quote.text.trim().is_empty() {
        html_to_text(quote.html.filter(|h| !h.trim().is_empty())?)
    } else {
        normalize_newlines(quote.text)
    };
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty())?;
    let last = lines.iter().rposition(|l| !l.trim().is_empty())?;
    let quoted: Vec<String> = lines[first..=last]
        .iter()
        .map(|line| {
            if line.trim().is_empty() {
                ">".to_string()
            } else if line.starts_with('>') {
                format!(">{line}")
            } else {
                format!("> {line}")
            }
        })
        .collect();
    Some(quoted.join("\n"))
}

/// The inside of the quote's `blockquote`: the quoted email's HTML,
/// sanitised, or its text as HTML; `None` when it has neither.
fn quoted_html(quote: &Quoted<'_>) -> Option<String> {
    if let Some(html) = quote.html.filter(|h| !h.trim().is_empty()) {
        let (clean, _) = sanitize_html(html);
        if !clean.trim().is_empty() {
            return Some(clean);
        }
    }
    let text = normalize_newlines(quote.text);
    let text = text.trim_matches('\n').trim_end();
    (!text.trim().is_empty()).then(|| text_as_html(text))
}

/// Markdown rendered as HTML for an email, sanitised.
///
/// CommonMark plus strikethrough (`~~x~~`) and tables: bold, italics, lists,
/// links, block quotes, headings, inline code and code blocks. A single line
/// break is kept as `<br>` (what someone typing an email means), not joined
/// into one line as CommonMark does. Raw HTML in the Markdown is shown as
/// the text it is (`<b>` stays the three characters), never as markup. The
/// result then goes through [`crate::sanitize_html`], so links only keep
/// `http`, `https`, `mailto` and similar schemes (no `javascript:`), get
/// `rel="noopener noreferrer"`, and no event handler or script survives.
pub fn markdown_to_html(markdown: &str) -> String {
    let markdown = normalize_newlines(markdown);
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    let mut events: Vec<Event<'_>> = Vec::new();
    for event in Parser::new_ext(&markdown, options) {
        match event {
            Event::SoftBreak => events.push(Event::HardBreak),
            // A block of raw HTML becomes a paragraph of its text, line by line.
            Event::Start(Tag::HtmlBlock) => events.push(Event::Start(Tag::Paragraph)),
            Event::End(TagEnd::HtmlBlock) => {
                if events.last() == Some(&Event::HardBreak) {
                    events.pop();
                }
                events.push(Event::End(TagEnd::Paragraph));
            }
            Event::Html(line) => {
                let text = line.trim_end_matches('\n');
                events.push(Event::Text(CowStr::from(text.to_string())));
                if text.len() < line.len() {
                    events.push(Event::HardBreak);
                }
            }
            Event::InlineHtml(html) => events.push(Event::Text(html)),
            other => events.push(other),
        }
    }
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    sanitize_html(&html).0
}

/// Why [`parse_recipient`] refused a recipient. Each message quotes the input
/// (line breaks shown as `\r`, `\n`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    /// Nothing but whitespace.
    #[error("the recipient is empty: enter an email address such as ann@example.com")]
    Empty,
    /// A line break or another control character, which could add a header.
    #[error(
        "the recipient {0:?} contains a line break or another control character: enter it on one line"
    )]
    ControlCharacter(String),
    /// Two or more addresses in one recipient.
    #[error("the recipient {0:?} holds more than one address: enter one recipient at a time")]
    MultipleAddresses(String),
    /// No address, or one that is not a plain `local@domain`.
    #[error(
        "the recipient {0:?} is not a valid email address: write ann@example.com or Ann Lee <ann@example.com>"
    )]
    InvalidAddress(String),
    /// A double quote that is never closed.
    #[error("the recipient {0:?} has a double quote that is not closed")]
    UnbalancedQuotes(String),
    /// `<` without `>` (or the other way round, or several).
    #[error("the recipient {0:?} has unbalanced angle brackets: write Ann Lee <ann@example.com>")]
    UnbalancedBrackets(String),
    /// Something after the closing `>`.
    #[error("the recipient {0:?} has text after the address's closing >")]
    TextAfterAddress(String),
}

/// Reads one recipient as an agent types it: `ann@example.com`,
/// `Ann Lee <ann@example.com>`, `"Lee, Ann" <ann@example.com>` or
/// `<ann@example.com>`, with any whitespace around it.
///
/// The name is unquoted (`\"` inside quotes is a quote) and trimmed, `None`
/// when absent; the address is kept as written, trimmed, and must pass the
/// same check as [`crate::build`] (`local@domain`, no spaces or characters
/// special in headers). Refused, with a [`RecipientError`] naming the input:
/// an empty input; any control character, CR and LF included, anywhere
/// (header injection), and Unicode line and paragraph separators; more than
/// one `@` outside quotes (`a@x, b@y`: one recipient at a time); an invalid
/// address; an unclosed `"`; unbalanced `<>`; text after `>`.
pub fn parse_recipient(input: &str) -> Result<Mailbox, RecipientError> {
    if input
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(RecipientError::ControlCharacter(input.to_string()));
    }
    let s = input.trim();
    if s.is_empty() {
        return Err(RecipientError::Empty);
    }

    // One pass over the input outside quoted strings.
    let (mut in_quote, mut escaped) = (false, false);
    let mut at_signs = 0;
    let (mut opens, mut closes) = (Vec::new(), Vec::new());
    for (i, c) in s.char_indices() {
        if in_quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '@' => at_signs += 1,
            '<' => opens.push(i),
            '>' => closes.push(i),
            _ => {}
        }
    }
    if in_quote {
        return Err(RecipientError::UnbalancedQuotes(input.to_string()));
    }
    if at_signs > 1 {
        return Err(RecipientError::MultipleAddresses(input.to_string()));
    }
    match (opens.as_slice(), closes.as_slice()) {
        ([], []) if is_valid_address(s) => Ok(Mailbox::new(s)),
        ([], []) => Err(RecipientError::InvalidAddress(input.to_string())),
        (&[open], &[close]) if open < close => {
            if !s[close + 1..].trim().is_empty() {
                return Err(RecipientError::TextAfterAddress(input.to_string()));
            }
            let address = s[open + 1..close].trim();
            if !is_valid_address(address) {
                return Err(RecipientError::InvalidAddress(input.to_string()));
            }
            Ok(Mailbox::named(unquote(&s[..open]), address))
        }
        _ => Err(RecipientError::UnbalancedBrackets(input.to_string())),
    }
}

/// A display name without its quote marks and backslash escapes (quotes
/// known to be balanced).
fn unquote(phrase: &str) -> String {
    let mut out = String::with_capacity(phrase.len());
    let (mut in_quote, mut escaped) = (false, false);
    for c in phrase.chars() {
        match c {
            _ if escaped => {
                out.push(c);
                escaped = false;
            }
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_lines_compare_without_surrounding_space() {
        assert!(ends_with_lines(
            "Hi\n\n-- \n Ann Lee \nSupport\n\n",
            "Ann Lee\nSupport"
        ));
        assert!(!ends_with_lines("Hi, Ann Lee", "Ann Lee"));
        assert!(!ends_with_lines("Support", "Ann Lee\nSupport"));
        assert!(!ends_with_lines("Hi", ""));
    }

    #[test]
    fn unquote_phrases() {
        assert_eq!(unquote(r#""Lee, Ann" "#), "Lee, Ann ");
        assert_eq!(unquote(r#""A \"B\" C""#), r#"A "B" C"#);
        assert_eq!(unquote(r#""Ann" Lee"#), "Ann Lee");
        assert_eq!(unquote(r"Ann\Lee"), r"Ann\Lee");
    }
}
