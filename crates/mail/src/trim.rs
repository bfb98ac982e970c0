//! Separating the new part of a reply from the quoted history below it.
//!
//! The method: every line of the (plain-text) body is classified — empty,
//! text, `>` quote, attribution (`On <date>, <name> wrote:` and its
//! translations, also when wrapped over several lines), forward/original
//! separator (`-----Original Message-----`), embedded header block
//! (`From:` / `Sent:` / `To:` / `Subject:`, localised), signature delimiter
//! (`-- `, a line of underscores), other rule lines, mobile signature
//! (`Sent from my iPhone`) — and the history is then cut with a few rules
//! that never drop text written between quotes. See [`reply_text`].

/// The new text of a reply, without the quoted history and the signature.
///
/// - The history starts at the first attribution, separator or embedded
///   header block that has content (text or quotes) above it, when it is not
///   followed by `>` quotes: clients that do not quote (Outlook, most mobile
///   apps) put the whole earlier conversation, unquoted, below such a line.
///   Everything from there on is removed.
/// - An attribution is `On <date>, <name> wrote:` and its translations, or
///   a line without a known verb right above a `>` quote that ends with a
///   colon and holds a date and a time or an address (mutt's `* Name
///   <address> [date]:`, FairEmail's `date, Name:`; see
///   `verbless_attribution` for when an address alone is enough).
/// - An attribution followed by `>` quotes is removed alone; the quotes are
///   then handled as quotes: the block of quotes (and blank lines) at the end
///   is removed, quotes with new text after them are kept, since text written
///   between quoted blocks is the customer's answer (inline replies).
/// - A reply written below the quote ("bottom posting": an attribution and a
///   single quote block at the very top, then only new text) loses the
///   attribution and the quote.
/// - A forward or an attribution at the very top, with nothing above it, is
///   removed alone (with its header block) and the text below it kept.
/// - Everything from a signature delimiter (`--`, `-- `, a line of five or
///   more underscores) on is removed when there is content above it.
/// - Trailing mobile signatures (`Sent from my iPhone`, `Von meinem iPhone
///   gesendet`, `Get Outlook for iOS`, ...; each client's tagline in its
///   translations: a short line naming a device or mail app that starts or
///   ends with the client's "sent", or Outlook's "get"), rule lines and
///   blank lines are removed from the end.
/// - Fenced code blocks (```` ``` ````) are always text.
/// - Line endings become `\n`; leading blank lines and trailing whitespace
///   are removed.
///
/// If nothing would be left (a message that is only a quote), the whole
/// text, trimmed, is returned instead: never hide a message entirely.
pub fn reply_text(text: &str) -> String {
    reply_text_with_history(text, &[])
}

/// [`reply_text`], knowing the messages postdesk itself sent earlier in the
/// conversation (the agents' replies, as plain text).
///
/// A block of lines that reproduces one of `our_messages` is history for
/// certain and is removed even without an attribution line above it: after
/// removing `>` prefixes, the block's words (runs of letters and digits,
/// compared case-insensitively, so that re-wrapping, whitespace and
/// punctuation changes do not matter) must contain all the words of that
/// message, in order, starting at the first word of a line and ending at the
/// last word of a line. When the block is quoted, the rest of the same
/// quote block (older history quoted below our message) goes with it; text
/// written after it is kept. Messages of fewer than three words are ignored
/// (too likely to match by chance).
pub fn reply_text_with_history(text: &str, our_messages: &[&str]) -> String {
    trim_lines(text, our_messages, false, &mut Vec::new())
}

/// The new text of a reply and why: which rules decided (for `postdesk
/// inspect`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trimmed {
    /// The new text, as [`reply_text`] gives it.
    pub text: String,
    /// `"html"` when the quoted history was found in the structure of the
    /// HTML body, `"text"` when the plain text was read line by line.
    pub source: &'static str,
    /// The rules that fired, in order: the HTML quote containers found
    /// (`"blockquote type=cite"`, `"div.gmail_attr"`, `"#divrplyfwdmsg"`,
    /// ...) and what the line rules removed (`"history cut at attribution
    /// (line 4)"`, `"trailing quote block removed"`, ...).
    pub rules: Vec<String>,
}

/// The new text of an email that may have an HTML body: the quoted
/// history is found in the HTML's structure when it has quote containers
/// (client quote blocks, Outlook's reply header box, an attribution right
/// before a quote: see the `html_quote` module), whatever the language,
/// and the HTML, rendered as text with those marks, is then trimmed by the
/// line rules of [`reply_text_with_history`]. When a text/plain body
/// trimmed by the line rules comes to the same words, that text is returned
/// instead (its own line breaks and links). Without HTML, or HTML without
/// any quote structure, the plain `text` is trimmed.
pub fn reply_text_of(text: &str, html: Option<&str>, our_messages: &[&str]) -> String {
    explain(text, html, our_messages).text
}

/// [`reply_text_of`] with the rules that decided.
pub fn explain(text: &str, html: Option<&str>, our_messages: &[&str]) -> Trimmed {
    if let Some(html) = html.filter(|h| {
        !h.trim().is_empty() && (text.trim().is_empty() || crate::html_quote::may_have_quotes(h))
    }) && let Some(marked) = crate::html_quote::mark(html)
        && (marked.decisive || text.trim().is_empty())
    {
        let mut rules: Vec<String> = marked.rules.iter().map(|r| format!("html: {r}")).collect();
        let out = trim_lines(&marked.text, our_messages, true, &mut rules);
        if !out.trim().is_empty() || text.trim().is_empty() {
            // A text/plain body that the line rules cut to the same words
            // keeps its own layout (line breaks, links as written).
            if !text.trim().is_empty() {
                let mut text_rules = Vec::new();
                let plain = trim_lines(text, our_messages, false, &mut text_rules);
                if words(&plain) == words(&out)
                    && crate::sanitize::html_to_text(html).trim_end() != text.trim_end()
                {
                    text_rules.push("the HTML's quote structure agrees".to_string());
                    return Trimmed {
                        text: plain,
                        source: "text",
                        rules: text_rules,
                    };
                }
            }
            return Trimmed {
                text: out,
                source: "html",
                rules,
            };
        }
    }
    let mut rules = Vec::new();
    let out = trim_lines(text, our_messages, false, &mut rules);
    Trimmed {
        text: out,
        source: "text",
        rules,
    }
}

fn has_sentinel(line: &str) -> bool {
    line.contains(SENTINELS)
}

fn without_sentinels(line: &str) -> std::borrow::Cow<'_, str> {
    if has_sentinel(line) {
        std::borrow::Cow::Owned(line.replace(SENTINELS, ""))
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

/// The line rules over `text`; with `structural`, `text` comes from
/// `html_quote::mark` and its sentinels are read (and removed).
fn trim_lines(
    text: &str,
    our_messages: &[&str],
    structural: bool,
    rules: &mut Vec<String>,
) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let raw_lines: Vec<&str> = normalized.split('\n').collect();
    let cleaned: Vec<std::borrow::Cow<'_, str>> = raw_lines
        .iter()
        .map(|l| {
            if structural {
                // HTML's `&nbsp;` reads as a space in the text.
                match without_sentinels(l) {
                    std::borrow::Cow::Borrowed(b) if b.contains('\u{a0}') => {
                        std::borrow::Cow::Owned(b.replace('\u{a0}', " "))
                    }
                    std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o.replace('\u{a0}', " ")),
                    other => other,
                }
            } else {
                std::borrow::Cow::Borrowed(*l)
            }
        })
        .collect();
    let lines: Vec<&str> = cleaned.iter().map(|l| l.as_ref()).collect();
    let mut classified = classify(&lines);
    if structural {
        apply_structural_marks(&raw_lines, &mut classified);
    }
    let before = classified.iter().filter(|l| l.kind == Kind::Ours).count();
    mark_our_messages(&lines, &mut classified, our_messages);
    if classified.iter().filter(|l| l.kind == Kind::Ours).count() > before {
        rules.push("one of our earlier messages removed".to_string());
    }
    let keep = select(&classified, rules);

    let mut out: Vec<&str> = Vec::new();
    let mut dropped_since_last = false;
    for (i, line) in lines.iter().enumerate() {
        if !keep[i] {
            dropped_since_last = true;
            continue;
        }
        let blank = line.trim().is_empty();
        // A removed block between two blank lines leaves one blank line.
        if blank && dropped_since_last && out.last().is_some_and(|l| l.trim().is_empty()) {
            continue;
        }
        if blank && out.is_empty() {
            continue;
        }
        dropped_since_last = false;
        out.push(line.trim_end());
    }
    let kept = out.join("\n");
    let kept = kept.trim_end();
    if kept.trim().is_empty() {
        if !lines.iter().all(|l| l.trim().is_empty()) {
            rules.push("nothing new found: whole text kept".to_string());
        }
        let whole: Vec<&str> = lines
            .iter()
            .skip_while(|l| l.trim().is_empty())
            .copied()
            .collect();
        whole.join("\n").trim_end().to_string()
    } else {
        kept.to_string()
    }
}

use crate::html_quote::{ATTR_END, ATTR_START, HISTORY, SENTINELS, SIG_END, SIG_START};

/// Most lines of a signature the HTML marks.
const MAX_SIGNATURE_LINES: usize = 40;

/// Applies the marks of the HTML structure (see `html_quote`): a line with
/// [`HISTORY`] starts unquoted history (a separator), the lines from
/// [`ATTR_START`] to [`ATTR_END`] are an attribution, and those from
/// [`SIG_START`] to [`SIG_END`] a signature, when the writer's text is
/// above it and no quote is inside it.
fn apply_structural_marks(raw: &[&str], out: &mut [Line]) {
    let n = raw.len();
    let mut i = 0;
    while i < n {
        if raw[i].contains(SIG_START) {
            let end = (i..n.min(i + MAX_SIGNATURE_LINES)).find(|&k| raw[k].contains(SIG_END));
            let text_above = out[..i].iter().any(|l| l.kind == Kind::Text);
            if let Some(end) = end
                && text_above
                && out[i..=end]
                    .iter()
                    .all(|l| !matches!(l.kind, Kind::Quote | Kind::Ours))
            {
                for line in &mut out[i..=end] {
                    line.kind = Kind::Signature;
                    line.structural = true;
                    line.span_end = end + 1;
                }
            }
        }
        if raw[i].contains(ATTR_START) {
            let end = (i..n)
                .find(|&k| raw[k].contains(ATTR_END))
                .unwrap_or(i)
                .min(i + 8);
            // Only lines that are not quotes or code become the attribution.
            if out[i..=end]
                .iter()
                .all(|l| matches!(l.kind, Kind::Text | Kind::Empty | Kind::Attribution))
            {
                let first = (i..=end).find(|&k| out[k].kind != Kind::Empty).unwrap_or(i);
                let last = (first..=end)
                    .rev()
                    .find(|&k| out[k].kind != Kind::Empty)
                    .unwrap_or(first);
                for line in &mut out[first..=last] {
                    line.kind = Kind::Attribution;
                    line.span_end = last + 1;
                }
                out[first].span_end = last + 1;
                out[first].structural = true;
            }
            i = end + 1;
            continue;
        }
        if raw[i].contains(HISTORY) && !matches!(out[i].kind, Kind::Quote) {
            out[i].kind = Kind::Separator;
            out[i].structural = true;
            out[i].span_end = i + 1;
        }
        i += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Empty,
    Text,
    /// `>` (or `Name>`) quoted line.
    Quote,
    /// Part of a reproduction of one of our own messages.
    Ours,
    /// Part of an `On <date>, <name> wrote:` line.
    Attribution,
    /// `-----Original Message-----`, `---------- Forwarded message ---------`.
    Separator,
    /// Part of an embedded `From:` / `Sent:` / `To:` / `Subject:` block.
    Header,
    /// `--`, `-- ` or a line of underscores.
    SigDelimiter,
    /// Other lines of only `-=*~+#` (or a lone middle dot).
    Rule,
    /// `Sent from my iPhone` and similar.
    MobileSig,
    /// Part of a signature the HTML marks (see `html_quote`).
    Signature,
}

#[derive(Debug, Clone, Copy)]
struct Line {
    kind: Kind,
    /// Exclusive end of the attribution or header block this line starts.
    span_end: usize,
    /// Found in the HTML structure rather than by the line rules.
    structural: bool,
}

fn classify(lines: &[&str]) -> Vec<Line> {
    let n = lines.len();
    let mut code = vec![false; n];
    let mut in_code = false;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("```") {
            code[i] = true;
            in_code = !in_code;
        } else {
            code[i] = in_code;
        }
    }

    let mut out: Vec<Line> = (0..n)
        .map(|i| {
            let line = lines[i];
            let kind = if code[i] {
                Kind::Text
            } else if line.trim().is_empty() {
                Kind::Empty
            } else if is_quote(line) {
                Kind::Quote
            } else if is_separator(line) {
                Kind::Separator
            } else if is_sig_delimiter(line) {
                Kind::SigDelimiter
            } else if is_rule(line) {
                Kind::Rule
            } else if is_mobile_signature(line) {
                Kind::MobileSig
            } else {
                Kind::Text
            };
            Line {
                kind,
                span_end: i + 1,
                structural: false,
            }
        })
        .collect();

    // Attributions, found from their last line (the one ending in `wrote:`).
    let mut j = 0;
    while j < n {
        let candidate = !code[j]
            && (out[j].kind == Kind::Text
                || (out[j].kind == Kind::Quote && is_bracket_fragment(lines[j])))
            && attribution_end_candidate(lines[j]);
        if candidate && let Some(start) = attribution_start(lines, &out, j) {
            for line in &mut out[start..=j] {
                line.kind = Kind::Attribution;
            }
            out[start].span_end = j + 1;
        }
        j += 1;
    }

    // Attributions without a verb, known from the quote right below them.
    for j in 0..n {
        if code[j] || out[j].kind != Kind::Text {
            continue;
        }
        if let Some(start) = verbless_attribution(lines, &out, j) {
            for line in &mut out[start..=j] {
                line.kind = Kind::Attribution;
            }
            out[start].span_end = j + 1;
        }
    }

    // Embedded header blocks.
    let mut i = 0;
    while i < n {
        if !code[i]
            && out[i].kind == Kind::Text
            && let Some(end) = header_block(lines, &out, i)
        {
            for line in &mut out[i..end] {
                line.kind = Kind::Header;
            }
            out[i].span_end = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Which lines to keep.
fn select(lines: &[Line], rules: &mut Vec<String>) -> Vec<bool> {
    let what = |l: &Line| -> &'static str {
        match (l.kind, l.structural) {
            (Kind::Attribution, true) => "attribution (html)",
            (Kind::Attribution, false) => "attribution",
            (Kind::Separator, true) => "quote container (html)",
            (Kind::Separator, false) => "separator",
            (Kind::Header, _) => "header block",
            (Kind::SigDelimiter, _) => "signature delimiter",
            _ => "line",
        }
    };
    let n = lines.len();
    let mut keep: Vec<bool> = lines
        .iter()
        .map(|l| !matches!(l.kind, Kind::Ours | Kind::Signature))
        .collect();
    if let Some(first) = lines.iter().position(|l| l.kind == Kind::Signature) {
        let last = lines
            .iter()
            .rposition(|l| l.kind == Kind::Signature)
            .unwrap_or(first);
        rules.push(if first == last {
            format!("signature (html) removed (line {})", first + 1)
        } else {
            format!(
                "signature (html) removed (lines {}-{})",
                first + 1,
                last + 1
            )
        });
    }
    // quote_from[k] / text_from[k]: a quote / text line at k or after.
    let mut quote_from = vec![false; n + 1];
    let mut text_from = vec![false; n + 1];
    for k in (0..n).rev() {
        quote_from[k] = quote_from[k + 1] || lines[k].kind == Kind::Quote;
        text_from[k] = text_from[k + 1] || lines[k].kind == Kind::Text;
    }
    let mut end = n;
    let mut seen_content = false;
    let mut i = 0;
    while i < n {
        match lines[i].kind {
            Kind::Text | Kind::Quote => {
                seen_content = true;
                i += 1;
            }
            Kind::Attribution => {
                let span_end = lines[i].span_end.max(i + 1);
                let next = (span_end..n).find(|&k| lines[k].kind != Kind::Empty);
                let quoted_next =
                    next.is_some_and(|k| matches!(lines[k].kind, Kind::Quote | Kind::Ours));
                if seen_content && !quoted_next {
                    rules.push(format!(
                        "history cut at {} (line {})",
                        what(&lines[i]),
                        i + 1
                    ));
                    end = i;
                    break;
                }
                rules.push(format!("{} removed (line {})", what(&lines[i]), i + 1));
                keep[i..span_end].iter_mut().for_each(|k| *k = false);
                if !seen_content && quoted_next {
                    // Bottom posting: attribution, one quote block, then only
                    // new text.
                    let block_start = next.unwrap_or(span_end);
                    let block_end = (block_start..n)
                        .find(|&k| !matches!(lines[k].kind, Kind::Quote | Kind::Ours | Kind::Empty))
                        .unwrap_or(n);
                    if !quote_from[block_end] && text_from[block_end] {
                        keep[block_start..block_end]
                            .iter_mut()
                            .for_each(|k| *k = false);
                        rules.push("quote above a bottom-posted reply removed".to_string());
                        i = block_end;
                        continue;
                    }
                }
                i = span_end;
            }
            Kind::Separator | Kind::SigDelimiter | Kind::Header if seen_content => {
                rules.push(format!(
                    "history cut at {} (line {})",
                    what(&lines[i]),
                    i + 1
                ));
                end = i;
                break;
            }
            Kind::Separator => {
                rules.push(format!(
                    "{} at the top removed (line {})",
                    what(&lines[i]),
                    i + 1
                ));
                keep[i] = false;
                i += 1;
            }
            Kind::Header => {
                rules.push(format!("header block at the top removed (line {})", i + 1));
                let span_end = lines[i].span_end.max(i + 1);
                keep[i..span_end].iter_mut().for_each(|k| *k = false);
                i = span_end;
            }
            _ => i += 1,
        }
    }
    keep[end..].iter_mut().for_each(|k| *k = false);

    // Trailing blank lines, rules, mobile signatures, and quotes below text.
    let first_text = (0..end).find(|&k| keep[k] && lines[k].kind == Kind::Text);
    let mut last = end;
    let (mut trailing_quote, mut trailing_sig) = (false, false);
    while last > 0 {
        let k = last - 1;
        if !keep[k] {
            last -= 1;
            continue;
        }
        let strip = match lines[k].kind {
            Kind::Empty | Kind::Rule | Kind::MobileSig => true,
            Kind::Quote => first_text.is_some_and(|t| t < k),
            _ => false,
        };
        if !strip {
            break;
        }
        match lines[k].kind {
            Kind::Quote => trailing_quote = true,
            Kind::MobileSig => trailing_sig = true,
            _ => {}
        }
        keep[k] = false;
        last -= 1;
    }
    if trailing_quote {
        rules.push("trailing quote block removed".to_string());
    }
    if trailing_sig {
        rules.push("mobile signature removed".to_string());
    }
    keep
}

// --- line predicates ------------------------------------------------------------

fn is_quote(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with('>') {
        return true;
    }
    // Supercite style: `Name> text` (a short word of letters, then `>`).
    match t.find('>') {
        Some(pos) if (1..=10).contains(&pos) => {
            t[..pos].chars().all(|c| c.is_ascii_alphabetic())
                && t[pos + 1..].chars().next().is_none_or(|c| c == ' ')
        }
        _ => false,
    }
}

/// A line starting with `>` that is the end of a wrapped `<address>`, such
/// as `> wrote:` or `>:`.
fn is_bracket_fragment(line: &str) -> bool {
    let t = line.trim();
    t.strip_prefix('>')
        .is_some_and(|rest| rest.trim().chars().count() <= 25 && !rest.contains('>'))
}

/// Phrases of forward and "original message" separator lines, lowercase.
const SEPARATOR_PHRASES: &[&str] = &[
    "original message",
    "forwarded message",
    "begin forwarded message",
    "ursprüngliche nachricht",
    "weitergeleitete nachricht",
    "anfang der weitergeleiteten nachricht",
    "mensaje original",
    "mensaje reenviado",
    "inicio del mensaje reenviado",
    "message d'origine",
    "message original",
    "message transféré",
    "début du message réexpédié",
    "début du message transféré",
    "messaggio originale",
    "messaggio inoltrato",
    "inizio messaggio inoltrato",
    "oorspronkelijk bericht",
    "origineel bericht",
    "doorgestuurd bericht",
    "ursprungligt meddelande",
    "vidarebefordrat meddelande",
    "opprinnelig melding",
    "videresendt melding",
    "oprindelig meddelelse",
    "videresendt meddelelse",
    "mensagem original",
    "mensagem encaminhada",
    "wiadomość oryginalna",
    "oryginalna wiadomość",
    "przekazana wiadomość",
    "исходное сообщение",
    "пересылаемое сообщение",
    "пересланное сообщение",
    "оригінальне повідомлення",
    "переслане повідомлення",
    "alkuperäinen viesti",
    "välitetty viesti",
    "eredeti üzenet",
    "původní zpráva",
    "orijinal ileti",
    "原始邮件",
    "原始郵件",
    "转发的邮件",
    "元のメッセージ",
    "転送されたメッセージ",
];

fn is_separator(line: &str) -> bool {
    let t = line
        .trim()
        .trim_matches(|c: char| matches!(c, '-' | '_' | '*' | '=' | ' ' | '\u{a0}'))
        .trim_end_matches([':', '：'])
        .trim()
        .to_lowercase();
    if t.is_empty() {
        return false;
    }
    let framed = line.trim_start().starts_with(['-', '_', '*', '=']);
    SEPARATOR_PHRASES
        .iter()
        .any(|p| t == *p || (framed && t.starts_with(p) && t.len() <= p.len() + 12))
        || (t.starts_with("begin forwarded message") && line.trim().ends_with(':'))
}

fn is_sig_delimiter(line: &str) -> bool {
    let t = line.trim();
    t == "--" || (t.chars().count() >= 5 && t.chars().all(|c| c == '_'))
}

fn is_rule(line: &str) -> bool {
    let t: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    if t.is_empty() {
        return false;
    }
    if t.chars().count() == 1 {
        return matches!(t.chars().next(), Some('ᐧ' | '·' | '•'));
    }
    t.chars().count() >= 2
        && t.chars()
            .all(|c| matches!(c, '-' | '_' | '=' | '*' | '~' | '+' | '#' | '—' | '–'))
}

/// Beginnings of mobile and app signatures, lowercase, after removing
/// brackets around the line and markdown links.
const MOBILE_SIGNATURES: &[&str] = &[
    "sent from ",
    "sent via ",
    "sent with ",
    "sent by ",
    "sent using ",
    "sent on the go",
    "get outlook for ",
    "envoyé de mon ",
    "envoyé depuis ",
    "envoyé avec ",
    "envoyé à partir de ",
    "von meinem ",
    "gesendet von ",
    "gesendet mit ",
    "diese nachricht wurde von ",
    "inviato da ",
    "inviato dal mio ",
    "sendt fra min ",
    "sendt fra ",
    "skickat från min ",
    "skickat från ",
    "från min ",
    "lähetetty ",
    "enviado do meu ",
    "enviado desde mi ",
    "enviado desde ",
    "enviado de meu ",
    "enviado de mi ",
    "verzonden met ",
    "verzonden vanaf mijn ",
    "verstuurd vanaf mijn ",
    "verstuurd met ",
    "wysłane z ",
    "wysłano z ",
    "odesláno z ",
    "отправлено с ",
    "отправлено из ",
    "відправлено з ",
    "发自我的",
    "從我的",
    "來自我的",
];

fn is_mobile_signature(line: &str) -> bool {
    let t = strip_angle_links(&strip_markdown_links(line.trim()));
    let t = t
        .trim_start_matches(['(', '<', '[', '*', '_'])
        .trim_end_matches([')', '>', ']', '*', '_'])
        .trim();
    if t.is_empty() || t.chars().count() > 90 {
        return false;
    }
    let lower = t.to_lowercase();
    if MOBILE_SIGNATURES.iter().any(|p| lower.starts_with(p)) {
        return true;
    }
    if lower.ends_with("iphoneから送信") || lower.ends_with("從我的 iphone 傳送") {
        return true;
    }
    let words: Vec<&str> = lower.split_whitespace().collect();
    // "From my iPhone 6", "Jane from mobile".
    (lower.starts_with("from my ") && words.len() <= 5)
        || (words.len() <= 3 && lower.ends_with(" from mobile"))
        || is_client_tagline(&lower)
}

/// Devices and mail apps that mobile clients name in their taglines
/// (lowercase, found anywhere in the line).
const TAGLINE_DEVICES: &[&str] = &[
    "iphone",
    "ipad",
    "ipod",
    "android",
    "samsung",
    "galaxy",
    "blackberry",
    "huawei",
    "xiaomi",
    "gmail",
    "yahoo",
    "proton",
    "outlook",
    "smartphone",
    "mobile",
    "mobil",
    "mobiel",
    "móvil",
    "movil",
    "celular",
    "cellulare",
    "telemóvel",
    "handy",
    "tablet",
    "телефон",
    "смартфон",
];

/// "Sent" in the taglines of mobile clients, in the languages they are
/// translated into (lowercase): the tagline starts or ends with it
/// ("Von meinem iPhone gesendet", "Envoyé de mon iPad", "iPhoneから送信").
/// English "sent" is left to the `Sent from`/`Sent with` prefixes of
/// [`MOBILE_SIGNATURES`] ("Sent to Samsung support" is no tagline).
const TAGLINE_SENT: &[&str] = &[
    "envoyé",
    "envoye",
    "gesendet",
    "inviato",
    "enviado",
    "enviada",
    "enviat",
    "verzonden",
    "verstuurd",
    "skickat",
    "sendt",
    "lähetetty",
    "wysłane",
    "wysłano",
    "odesláno",
    "odoslané",
    "gönderildi",
    "elküldve",
    "trimis",
    "poslano",
    "dikirim",
    "εστάλη",
    "отправлено",
    "надіслано",
    "送信",
    "发送",
    "傳送",
    "寄出",
    "보냄",
    "발송",
];

/// "Get" and "download" in the translations of Outlook's mobile tagline
/// ("Get Outlook for iOS", "Outlook für Android herunterladen", "Obtenir
/// Outlook pour iOS", "iOS 版 Outlook を入手"), lowercase.
const TAGLINE_GET: &[&str] = &[
    "get",
    "download",
    "downloaden",
    "herunterladen",
    "obtenir",
    "télécharger",
    "obtener",
    "descargar",
    "descarga",
    "scarica",
    "ottieni",
    "obter",
    "obtenha",
    "baixe",
    "baixar",
    "hämta",
    "hent",
    "få",
    "hanki",
    "lataa",
    "pobierz",
    "stáhnout",
    "stáhněte",
    "získat",
    "získejte",
    "edinin",
    "indir",
    "получить",
    "получите",
    "скачать",
    "скачайте",
    "загрузите",
    "入手",
    "获取",
    "取得",
    "下载",
    "下載",
    "다운로드",
];

/// A mobile client's tagline in any of its translations: a short line (at
/// most ten words) that names a device or mail app and starts or ends with
/// the client's "sent" ([`TAGLINE_SENT`]), or Outlook's "Get Outlook for
/// iOS/Android" with its "get" ([`TAGLINE_GET`]). The verb must be the
/// first or last word, as in every client's tagline, so that a sentence
/// that mentions a phone ("ich habe es vom iPhone gesendet, aber ...")
/// does not qualify.
fn is_client_tagline(lower: &str) -> bool {
    let t = lower.trim_end_matches(['.', '!', ' ']);
    let words: Vec<&str> = t
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() || words.len() > 10 {
        return false;
    }
    let at_an_end = |verbs: &[&str]| {
        verbs.iter().any(|v| {
            // Scripts without spaces: the line starts or ends with it.
            let unspaced = v.chars().next().is_some_and(|c| c as u32 >= 0x2E80);
            if unspaced {
                t.starts_with(v) || t.ends_with(v)
            } else {
                words.first() == Some(v) || words.last() == Some(v)
            }
        })
    };
    let device = TAGLINE_DEVICES.iter().any(|d| t.contains(d));
    let outlook_app = t.contains("outlook") && (t.contains("ios") || t.contains("android"));
    (device && at_an_end(TAGLINE_SENT)) || (outlook_app && at_an_end(TAGLINE_GET))
}

/// `text<https://...>` -> `text` (links as Outlook writes them in its
/// text/plain alternative).
fn strip_angle_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let lower = after.get(..8).unwrap_or(after).to_ascii_lowercase();
        let link = ["http://", "https://", "mailto:"]
            .iter()
            .any(|p| lower.starts_with(p));
        match after.find('>') {
            Some(close) if link => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[text](url)` -> `text`.
fn strip_markdown_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find("](") else {
            break;
        };
        let Some(end) = after[close + 2..].find(')') else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&after[..close]);
        rest = &after[close + 2 + end + 1..];
    }
    out.push_str(rest);
    out
}

// --- attributions -----------------------------------------------------------------

/// Verbs of attribution lines, lowercase.
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",
    "writes",
    "schrieb",
    "écrit",
    "escribió",
    "skrev",
    "scritto",
    "scrisse",
    "napisał",
    "napisała",
    "escreveu",
    "написал",
    "написала",
    "написав",
    "написала",
    "пише",
    "geschreven",
    "schreef",
    "kirjoitti",
    "írta",
    "napsal",
    "yazdı",
    "a scris",
    "写道",
    "寫道",
    "さんは書きました",
    "が書きました",
    "작성",
    "napisao",
    "napisala",
    "написао",
    "написа",
    "έγραψε",
    "escriure",
    "menulis",
    "đã viết",
    "rašė",
    "rakstīja",
    "kirjutas",
    "כתב",
    "כתבה",
    "كتب",
    "نوشت",
    "เขียน",
    "skrifaði",
    "pisze",
    "пишет",
    "napsala",
    "napísal",
    "napísala",
    "schreibt",
    "skriver",
];

/// First words of attribution lines (`On ...`, `Am ...`), case-sensitive.
const ATTRIBUTION_OPENERS: &[&str] = &[
    "On ",
    "Am ",
    "Le ",
    "El ",
    "Em ",
    "Op ",
    "Il ",
    "Den ",
    "Dnia ",
    "W dniu ",
    "At ",
    "Quoting ",
    "Zitat von ",
    "Citando ",
    "Dne ",
    "På ",
    "Pe ",
    "В ",
    "У ",
    "在 ",
    "Στις ",
    "Il giorno ",
    "Pada ",
    "Vào ",
    "Op ",
    "Den ",
    "Dňa ",
    "Dana ",
    "Dne ",
    "Le ",
];

fn starts_with_opener(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches(['-', ' ']);
    ATTRIBUTION_OPENERS.iter().any(|o| t.starts_with(o))
        || t.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Whether a line can be the last line of an attribution.
fn attribution_end_candidate(line: &str) -> bool {
    let t = normalize_spaces(line);
    t.ends_with(':') || t.ends_with('：') || framed_core(&t).is_some() || starts_with_iso_date(&t)
}

/// The first line of the attribution ending at line `j`, if there is one.
fn attribution_start(lines: &[&str], classified: &[Line], j: usize) -> Option<usize> {
    let usable = |k: usize| {
        classified[k].kind == Kind::Text
            || (classified[k].kind == Kind::Empty)
            || (classified[k].kind == Kind::Quote && is_bracket_fragment(lines[k]))
    };
    // The shortest span ending at `j` that reads as an attribution.
    let mut start = None;
    let lowest = j.saturating_sub(5);
    let mut k = j + 1;
    while k > lowest {
        k -= 1;
        if !usable(k) || (k < j && is_blank(lines[k]) && is_blank(lines[k + 1])) {
            break;
        }
        if is_blank(lines[k]) {
            continue;
        }
        if classified[k].kind == Kind::Quote && k != j {
            // A `>` line can only continue an attribution, not start one.
            continue;
        }
        if is_attribution(&join(&lines[k..=j])) {
            start = Some(k);
            break;
        }
    }
    let mut i = start?;
    // Extend upwards over the first half of a wrapped attribution.
    while !starts_with_opener(lines[i]) && i > 0 {
        let mut above = i - 1;
        if is_blank(lines[above]) {
            let fragment = lines[i].trim_start().starts_with(['<', '>']);
            if !fragment || above == 0 || is_blank(lines[above - 1]) {
                break;
            }
            above -= 1;
        }
        if j - above >= 6 || classified[above].kind != Kind::Text {
            break;
        }
        let t = lines[above].trim_end();
        if t.ends_with(['.', '!', '?', ':', ';']) {
            break;
        }
        if !(t.chars().any(|c| c.is_ascii_digit())
            || t.contains('@')
            || t.contains('<')
            || t.contains('"'))
        {
            break;
        }
        if !is_attribution(&join(&lines[above..=j])) {
            break;
        }
        i = above;
    }
    Some(i)
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn join(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn normalize_spaces(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c == '\u{a0}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `---- On ... wrote ----` -> `On ... wrote` (Zoho's framed attribution).
fn framed_core(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("--")?.trim_start_matches('-');
    let inner = inner.strip_suffix("--")?.trim_end_matches('-').trim();
    let lower = inner.to_lowercase();
    ATTRIBUTION_VERBS
        .iter()
        .any(|v| lower.ends_with(v))
        .then_some(inner)
}

fn is_attribution(joined: &str) -> bool {
    let s = normalize_spaces(joined);
    if s.is_empty() || s.chars().count() > 400 {
        return false;
    }
    // Gmail's numeric forms: `2016-10-24 15:36 GMT+02:00 Name <a@b.c>:`,
    // `2013/7/20 Name <a@b.c>`.
    if starts_with_iso_date(&s) {
        if has_gmt_offset(&s) {
            return true;
        }
        if s.contains('@') && (s.ends_with(':') || s.ends_with('>')) {
            return true;
        }
    }
    let (core, framed) = match framed_core(&s) {
        Some(core) => (core.to_string(), true),
        None => (s.clone(), false),
    };
    let colon = core.ends_with(':') || core.ends_with('：');
    if !colon && !framed {
        return false;
    }
    let core = core.trim_end_matches([':', '：', ' ']);
    if colon && dated_address_line(core) {
        return true;
    }
    let lower = core.to_lowercase();
    let Some(verb_at) = find_verb(&lower) else {
        return false;
    };
    let after_verb: Vec<&str> = lower[verb_at..].split_whitespace().collect();
    let verb_at_end = after_verb.len() <= 2;
    // Name before date: `Jane Doe wrote on 2024-01-01 10:00:`,
    // `Jane schrieb am 01.01.2024:`.
    let dated_after_verb = after_verb.len() <= 12
        && after_verb.get(1).is_some_and(|w| {
            [
                "on", "am", "le", "el", "op", "il", "em", "den", "at", "в", "o", "dne", "в",
            ]
            .contains(w)
        })
        && has_time(&lower[verb_at..])
        && {
            let before: Vec<&str> = lower[..verb_at].split_whitespace().collect();
            !before.is_empty()
                && before.len() <= 4
                && !before
                    .iter()
                    .any(|w| ["as", "i", "we", "you", "like", "he", "she"].contains(w))
        };
    let opener = starts_with_opener(core);
    let address = core.contains('@');
    if !(opener || address || verb_at_end || dated_after_verb) {
        return false;
    }
    address || has_time(core) || has_year(core)
}

/// The first line of an attribution that has no verb the rules know
/// (mutt's `* Name <address> [2024-03-05 10:12 +0000]:`, FairEmail's
/// `05-03-2024 11:12, Name:`, Horde's `Zitat von Name <address>:`, and
/// whatever a client writes in a language not listed), ending at line `j`:
/// a short line (or two, when wrapped at the width of a line) ending with a
/// colon, immediately
/// followed by a `>` quote (at most one blank line between), with no
/// sentence in it (no `?`/`!`, no `word. Word`, at most 16 words), and
/// with
///
/// - an address and a date or time, or a date and a time: enough
///   wherever the quote is, also above inline answers;
/// - only an address: when the quote runs to the end of the message (then
///   the line only introduces the history that goes anyway), so that
///   "I got this from billing@example.org:" above a quote the customer
///   answers stays.
///
/// "Here is what I think:" has no date, time or address and is never one.
fn verbless_attribution(lines: &[&str], classified: &[Line], j: usize) -> Option<usize> {
    let line = normalize_spaces(lines[j]);
    if !(line.ends_with(':') || line.ends_with('：')) {
        return None;
    }
    let n = lines.len();
    let next = (j + 1..n.min(j + 3)).find(|&k| classified[k].kind != Kind::Empty)?;
    if classified[next].kind != Kind::Quote {
        return None;
    }
    // Wrapped over two lines: the line above is one that a client wrapping
    // at about 72 columns had to break (it and the next word are long).
    let wrapped = j > 0 && classified[j - 1].kind == Kind::Text && {
        let above = lines[j - 1].trim();
        let next_word = lines[j].split_whitespace().next().unwrap_or_default();
        !above.ends_with(['.', '!', '?', ':', ';'])
            && above.chars().count() + 1 + next_word.chars().count() > 60
    };
    let candidates = [wrapped.then(|| j - 1), Some(j)];
    for start in candidates.into_iter().flatten() {
        let joined = normalize_spaces(&join(&lines[start..=j]));
        if joined.chars().count() > 200 || joined.split(' ').count() > 16 {
            continue;
        }
        if joined.contains(['?', '!']) || has_sentence_break(&joined) {
            continue;
        }
        let address = joined.contains('@');
        let date = has_year(&joined) || numeric_date(&joined) || joined.contains('年');
        let time = has_time(&joined);
        let strong = (address && (date || time)) || (date && time);
        if strong || (address && quote_runs_to_the_end(classified, next)) {
            return Some(start);
        }
    }
    None
}

/// Whether the quote block starting at `first` is followed only by blank
/// lines, rules and mobile signatures, or by a signature.
fn quote_runs_to_the_end(classified: &[Line], first: usize) -> bool {
    classified[first..]
        .iter()
        .map(|l| l.kind)
        .skip_while(|k| matches!(k, Kind::Quote | Kind::Empty))
        .find(|k| !matches!(k, Kind::Empty | Kind::Rule | Kind::MobileSig))
        .is_none_or(|k| k == Kind::SigDelimiter)
}

/// `Thanks. Here`: the end of a sentence (a word of at least four letters
/// ending lowercase, a full stop, a capital), not an abbreviation
/// (`Dr. Müller`, `Di. 5. März`).
fn has_sentence_break(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    (4..chars.len().saturating_sub(2)).any(|i| {
        chars[i] == '.'
            && chars[i + 1] == ' '
            && chars[i + 2].is_uppercase()
            && chars[i - 4..i].iter().all(|c| c.is_alphabetic())
            && chars[i - 3..i].iter().all(|c| c.is_lowercase())
    })
}

/// A numeric date: three groups of digits with the same separator
/// (`05-03-2024`, `2024-03-05`, `5.3.24`, `3/5/2024`), not a version
/// (`2.1`) or an IP address (four groups).
fn numeric_date(s: &str) -> bool {
    s.split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '(' | ')'))
        .any(|word| {
            let word = word.trim_end_matches(['.', ':']);
            ['.', '/', '-'].iter().any(|&sep| {
                let groups: Vec<&str> = word.split(sep).collect();
                groups.len() == 3
                    && groups.iter().all(|g| {
                        (1..=4).contains(&g.len()) && g.chars().all(|c| c.is_ascii_digit())
                    })
                    && groups.iter().any(|g| g.len() >= 2)
            })
        })
}

/// An attribution without a verb, whatever the language: a date and time,
/// then a name and its address in angle brackets right before the colon
/// (`01.01.2024, 10:00, "Ivan" <ivan@example.ru>:`, `пн, 1 янв. 2024 г. в
/// 10:00, Jane <j@example.org>:`, `2024年1月1日(月) 10:00 Taro <t@example.jp>:`).
fn dated_address_line(core: &str) -> bool {
    let t = core.trim_end();
    let Some(open) = t.rfind('<') else {
        return false;
    };
    let inside = &t[open + 1..];
    let Some(inner) = inside.strip_suffix('>') else {
        return false;
    };
    if !inner.contains('@') || inner.contains(char::is_whitespace) {
        return false;
    }
    let before = &t[..open];
    has_time(before)
        && (has_year(before) || before.contains('年') || dotted_date(before))
        && before.chars().count() <= 200
}

/// `1.1.`, `01/01/24`, `1-1-2024`.
fn dotted_date(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(2)).any(|i| {
        b[i].is_ascii_digit()
            && matches!(b[i + 1], b'.' | b'/' | b'-')
            && b[i + 2].is_ascii_digit()
            && (i == 0 || !matches!(b[i - 1], b':'))
    })
}

/// Byte position of the first attribution verb that starts a word.
fn find_verb(lower: &str) -> Option<usize> {
    ATTRIBUTION_VERBS
        .iter()
        .filter_map(|verb| {
            // Verbs in scripts without spaces (写道, 작성) need no word
            // boundary.
            let unspaced = verb.chars().next().is_some_and(|c| c as u32 >= 0x2E80);
            lower.match_indices(verb).map(|(at, _)| at).find(|&at| {
                unspaced
                    || lower[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !c.is_alphanumeric())
            })
        })
        .min()
}

/// `2016-03-03`, `2013/7/20`.
fn starts_with_iso_date(s: &str) -> bool {
    let t = s.trim_start();
    let b = t.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sep = b[4];
    if sep != b'-' && sep != b'/' {
        return false;
    }
    let rest = &t[5..];
    let month: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if month.is_empty() || month.len() > 2 {
        return false;
    }
    let rest = &rest[month.len()..];
    let Some(rest) = rest.strip_prefix(sep as char) else {
        return false;
    };
    let day: String = rest.chars().take_while(char::is_ascii_digit).collect();
    !day.is_empty() && day.len() <= 2
}

/// `GMT+01:00`, `GMT-5`.
fn has_gmt_offset(s: &str) -> bool {
    s.match_indices("GMT").any(|(at, _)| {
        let rest = &s[at + 3..];
        rest.starts_with(['+', '-']) && rest[1..].starts_with(|c: char| c.is_ascii_digit())
    })
}

/// `10:00`, `20.42`.
pub(crate) fn has_time(s: &str) -> bool {
    let b = s.as_bytes();
    (1..b.len().saturating_sub(2)).any(|i| {
        (b[i] == b':' || b[i] == b'.')
            && b[i - 1].is_ascii_digit()
            && b[i + 1].is_ascii_digit()
            && b[i + 2].is_ascii_digit()
            && b.get(i + 3).is_none_or(|c| !c.is_ascii_digit())
    })
}

/// A year 1970-2099 as a separate number.
pub(crate) fn has_year(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(3)).any(|i| {
        b[i..i + 4].iter().all(u8::is_ascii_digit)
            && (&b[i..i + 2] == b"20" || &b[i..i + 2] == b"19")
            && (i == 0 || !b[i - 1].is_ascii_digit())
            && b.get(i + 4).is_none_or(|c| !c.is_ascii_digit())
    })
}

// --- embedded header blocks -----------------------------------------------------

/// Header names of "who sent it" (`From:`), lowercase.
const FROM_HEADERS: &[&str] = &[
    "from",
    "von",
    "de",
    "da",
    "från",
    "fra",
    "van",
    "od",
    "от",
    "від",
    "lähettäjä",
    "feladó",
    "kimden",
    "mittente",
    "remetente",
    "afzender",
    "发件人",
    "寄件者",
    "差出人",
    "από",
];

/// Other header names of embedded header blocks, lowercase.
const OTHER_HEADERS: &[&str] = &[
    "sent",
    "date",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "importance",
    "gesendet",
    "datum",
    "an",
    "kopie",
    "betreff",
    "antwort an",
    "enviado",
    "enviado el",
    "fecha",
    "para",
    "asunto",
    "envoyé",
    "envoyé le",
    "à",
    "objet",
    "répondre à",
    "data",
    "inviato",
    "a",
    "oggetto",
    "risposta",
    "rispondi a",
    "skickat",
    "till",
    "kopia",
    "ämne",
    "sendt",
    "til",
    "emne",
    "verzonden",
    "verstuurd",
    "aan",
    "onderwerp",
    "wysłano",
    "wysłane",
    "do",
    "temat",
    "dw",
    "отправлено",
    "дата",
    "кому",
    "копия",
    "тема",
    "надіслано",
    "тема",
    "enviada em",
    "enviada",
    "assunto",
    "lähetetty",
    "vastaanottaja",
    "aihe",
    "elküldve",
    "címzett",
    "tárgy",
    "gönderildi",
    "tarih",
    "kime",
    "konu",
    "odesláno",
    "komu",
    "předmět",
    "日期",
    "发送时间",
    "收件人",
    "抄送",
    "主题",
    "寄件日期",
    "收件者",
    "主旨",
    "送信日時",
    "宛先",
    "件名",
    "ημερομηνία",
    "προς",
    "θέμα",
];

/// The lowercase name of a header-looking line (`From: x`, `*Sent:* x`).
fn header_name(line: &str) -> Option<String> {
    let t = line.trim().trim_start_matches('*');
    let colon = t.find([':', '：'])?;
    let name = t[..colon].trim().trim_end_matches('*').trim();
    if name.is_empty() || name.chars().count() > 20 || name.split_whitespace().count() > 2 {
        return None;
    }
    if !name
        .chars()
        .all(|c| c.is_alphabetic() || c == '-' || c == ' ')
    {
        return None;
    }
    let name = name.to_lowercase();
    (FROM_HEADERS.contains(&name.as_str()) || OTHER_HEADERS.contains(&name.as_str()))
        .then_some(name)
}

/// Whether `line` is a `From:` header line in one of the known languages
/// (`From:`, `Von:`, `De :`, `*From:*`, ...).
pub(crate) fn is_from_header_line(line: &str) -> bool {
    header_name(line).is_some_and(|name| FROM_HEADERS.contains(&name.as_str()))
}

/// The exclusive end of an embedded header block starting at `i`: at least
/// three header lines of different names, one of them a `From:`, with
/// possibly wrapped values, up to a blank line.
fn header_block(lines: &[&str], classified: &[Line], i: usize) -> Option<usize> {
    header_name(lines[i])?;
    let mut names: Vec<String> = Vec::new();
    let mut end = i;
    let mut continuation = 0;
    let mut k = i;
    while k < lines.len() && k < i + 16 {
        if classified[k].kind != Kind::Text {
            break;
        }
        match header_name(lines[k]) {
            Some(name) => {
                if !names.contains(&name) {
                    names.push(name);
                }
                continuation = 0;
                end = k + 1;
            }
            None => {
                continuation += 1;
                if continuation > 2 {
                    break;
                }
                end = k + 1;
            }
        }
        k += 1;
    }
    // Do not end on continuation lines that turned out to be the body.
    while end > i && header_name(lines[end - 1]).is_none() && continuation > 0 {
        end -= 1;
        continuation -= 1;
    }
    let has_from = names.iter().any(|n| FROM_HEADERS.contains(&n.as_str()));
    (has_from && names.len() >= 3).then_some(end)
}

// --- our own messages -------------------------------------------------------------

/// Lowercase runs of letters and digits.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn strip_quote_prefix(line: &str) -> &str {
    line.trim_start_matches(|c: char| c == '>' || c.is_whitespace())
}

fn mark_our_messages(lines: &[&str], classified: &mut [Line], our_messages: &[&str]) {
    let mut tokens: Vec<(String, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for word in words(strip_quote_prefix(line)) {
            tokens.push((word, i));
        }
    }
    for message in our_messages {
        let ours = words(message);
        if ours.len() < 3 || ours.len() > tokens.len() {
            continue;
        }
        for p in find_all(&tokens, &ours) {
            let start = tokens[p].1;
            let last = p + ours.len() - 1;
            let end = tokens[last].1;
            let aligned_start = p == 0 || tokens[p - 1].1 != start;
            let aligned_end = last + 1 == tokens.len() || tokens[last + 1].1 != end;
            if !(aligned_start && aligned_end) {
                continue;
            }
            let quoted = (start..=end)
                .all(|k| matches!(classified[k].kind, Kind::Quote | Kind::Empty | Kind::Ours));
            let mut stop = end + 1;
            if quoted {
                // The rest of the quote block is older history.
                while stop < lines.len()
                    && matches!(
                        classified[stop].kind,
                        Kind::Quote | Kind::Empty | Kind::Ours
                    )
                {
                    stop += 1;
                }
                // Leave the blank lines after the block to the text below.
                while stop > end + 1 && classified[stop - 1].kind == Kind::Empty {
                    stop -= 1;
                }
            }
            for line in &mut classified[start..stop] {
                line.kind = Kind::Ours;
                line.span_end = 0;
                line.structural = false;
            }
        }
    }
}

/// Start positions of the occurrences of `needle` in the words of
/// `haystack` (Knuth-Morris-Pratt: linear in both lengths).
fn find_all(haystack: &[(String, usize)], needle: &[String]) -> Vec<usize> {
    let m = needle.len();
    let mut fail = vec![0usize; m];
    let mut k = 0;
    for i in 1..m {
        while k > 0 && needle[i] != needle[k] {
            k = fail[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut found = Vec::new();
    let mut k = 0;
    for (i, (word, _)) in haystack.iter().enumerate() {
        while k > 0 && *word != needle[k] {
            k = fail[k - 1];
        }
        if *word == needle[k] {
            k += 1;
        }
        if k == m {
            found.push(i + 1 - m);
            k = fail[k - 1];
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_trailing_quote_and_attribution() {
        let text = "Thanks, that fixed it!\n\nJane\n\nOn Mon, 1 Jan 2024 at 10:00, Support <support@example.com> wrote:\n> Hi Jane,\n>\n> try turning it off and on again.\n\n> Bye\n";
        assert_eq!(reply_text(text), "Thanks, that fixed it!\n\nJane");
    }

    #[test]
    fn removes_wrapped_attribution() {
        let text = "Yes please.\r\n\r\nOn Mon, Jan 1, 2024 at 10:00 AM Support Team <\r\nsupport@example.com> wrote:\r\n\r\n> Shall we?\r\n";
        assert_eq!(reply_text(text), "Yes please.");
    }

    #[test]
    fn removes_german_attribution() {
        let text = "Danke!\n\nAm 01.01.2024 um 10:00 schrieb Support <s@example.com>:\n> Hallo\n";
        assert_eq!(reply_text(text), "Danke!");
        let text = "Merci\n\nLe lun. 1 janv. 2024, Support <s@example.com> a écrit :\n> Bonjour\n";
        assert_eq!(reply_text(text), "Merci");
    }

    #[test]
    fn keeps_inline_answers() {
        let text = "> Which version?\n2.1\n> Which OS?\nLinux\n";
        assert_eq!(
            reply_text(text),
            "> Which version?\n2.1\n> Which OS?\nLinux"
        );
    }

    #[test]
    fn cuts_outlook_original_message() {
        let text =
            "See attached.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nHello";
        assert_eq!(reply_text(text), "See attached.");
    }

    #[test]
    fn only_quote_is_kept_whole() {
        let text = "> just a quote\n> nothing else\n";
        assert_eq!(reply_text(text), "> just a quote\n> nothing else");
        assert_eq!(reply_text(""), "");
        assert_eq!(reply_text("plain\n\n"), "plain");
    }

    #[test]
    fn wrote_without_quote_is_kept() {
        let text = "My colleague wrote:\nthe fix works.";
        assert_eq!(reply_text(text), text);
        let text = "As I wrote on 5 Jan 2024:\nthe printer is broken.";
        assert_eq!(reply_text(text), text);
    }

    #[test]
    fn attribution_predicates() {
        assert!(is_attribution(
            "On Mon, Jan 1, 2024 at 10:00 AM Jane <j@x.org> wrote:"
        ));
        assert!(is_attribution("Jane Doe <jane@example.org> wrote:"));
        assert!(is_attribution(
            "---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam wrote ----"
        ));
        assert!(is_attribution("2016-03-03 17:21 GMT+01:00 Some One"));
        assert!(is_attribution(
            "Le 2016-11-16 02:22, Erlend a\u{a0}écrit\u{a0}:"
        ));
        assert!(!is_attribution("My colleague wrote:"));
        assert!(!is_attribution(
            "On Monday I tried 3 times and my colleague wrote:"
        ));
        assert!(!is_attribution("As I wrote on 5 Jan 2024:"));
        assert!(!is_attribution("As I wrote on 5 Jan 2024 at 10:00:"));
        assert!(is_attribution("Jane Doe wrote on 2024-01-05 10:00:"));
        assert!(is_attribution(
            "01.03.2024, 10:15, \"Ivan\" <ivan@example.ru>:"
        ));
        assert!(is_attribution(
            "пн, 4 мар. 2024 г. в 10:15, Jane <jane@example.org>:"
        ));
        assert!(is_attribution(
            "Jane <jane@example.org> 于2024年3月4日周一 10:15写道："
        ));
        assert!(is_attribution(
            "2024년 3월 4일 (월) 오전 10:15, Jane <jane@example.org>님이 작성:"
        ));
        assert!(!is_attribution(
            "Please write by 10:00 on 4.3. to <billing@example.org>"
        ));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "\u{a0}\u{3000}>\n>>\n\u{feff}On\u{a0}1.1.2024 um 10:00 schrieb é <é@é.é>:\n> x",
            "：\n从：a\n日期：b\n收件人：c\n主题：d\n",
            "2024-01-01\n2024/1/1 é <a@b.c>\n[x](y\n[](\n---- wrote ----\n-- ",
            "```\n-- \n",
            "\r\r\n\n\r",
        ] {
            let _ = reply_text(text);
            let _ = reply_text_with_history(text, &[text, "é é é", ""]);
        }
    }

    #[test]
    fn time_and_year() {
        assert!(has_time("at 10:00 AM"));
        assert!(has_time("kl. 20.42"));
        assert!(!has_time("version 2.1"));
        assert!(has_year("Jan 2024"));
        assert!(!has_year("12345"));
    }
}
