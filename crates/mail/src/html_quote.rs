//! Finding quoted history in the structure of an HTML reply, before it
//! becomes text.
//!
//! Mail clients mark what they quote: Gmail (`div.gmail_quote`,
//! `div.gmail_attr`, `blockquote.gmail_quote`), Apple Mail and Thunderbird
//! (`blockquote type=cite`, `div.moz-cite-prefix`), Yahoo
//! (`div.yahoo_quoted`, also with a `ydp…` prefix), Zoho (`div.zmail_extra`),
//! ProtonMail (`div/blockquote.protonmail_quote`), Outlook desktop, web and
//! mobile (`div#divRplyFwdMsg`, `div#appendonsend`, an `<hr>` or a
//! `border-top` box before a `From:` header block,
//! `#mail-editor-reference-message-container`), Yandex and Mail.ru (a
//! `blockquote` after a `date, name <address>:` line). [`mark`] renders the
//! HTML as text with these marks kept as invisible sentinel characters, so
//! that the line rules of [`crate::trim`] know, whatever the language:
//!
//! - every `blockquote` becomes `>` quoted lines (so an inline answer written
//!   between two quotes stays text between quotes, and is kept);
//! - the element or text run right before a quote that reads as an
//!   attribution (short, ends with a colon or `---`, has a time, a year or
//!   an address, or carries a client's attribution class) is wrapped in
//!   [`ATTR_START`] … [`ATTR_END`];
//! - a container that holds unquoted history (Outlook's reply header box,
//!   Yahoo's quote container without a `blockquote`) starts with
//!   [`HISTORY`]: the history starts there;
//! - a block that the client marks as the writer's signature (an `id`,
//!   `class` or `name` naming a signature: Outlook web's `#Signature`,
//!   Outlook mobile's `#ms-outlook-mobile-signature`, Gmail's
//!   `gmail_signature`, Thunderbird's `moz-signature`, Proton's
//!   `protonmail_signature_block`, Spark's `messageSignatureSection`,
//!   Samsung's `composer_signature`, Zoho's `Zm-_Id_-Sgn`, ...) is wrapped
//!   in [`SIG_START`] … [`SIG_END`]: those lines are removed, and only
//!   those (an answer written below the signature stays).
//!
//! Works on raw and on sanitised HTML ([`crate::sanitize_html`] keeps these
//! classes and ids, mapping prefixed variants to their plain names).

use std::cell::RefCell;
use std::collections::HashSet;

use html5ever::serialize::{SerializeOpts, TraversalScope};
use html5ever::tendril::{StrTendril, TendrilSink};
use markup5ever_rcdom::{Handle, Node, NodeData, RcDom, SerializableHandle};

/// Starts a container of unquoted history.
pub(crate) const HISTORY: char = '\u{E000}';
/// Starts a structural attribution.
pub(crate) const ATTR_START: char = '\u{E001}';
/// Ends a structural attribution.
pub(crate) const ATTR_END: char = '\u{E002}';
/// Starts a signature the client marked in its HTML.
pub(crate) const SIG_START: char = '\u{E003}';
/// Ends a signature the client marked in its HTML.
pub(crate) const SIG_END: char = '\u{E004}';
/// Every sentinel [`mark`] writes.
pub(crate) const SENTINELS: [char; 5] = [HISTORY, ATTR_START, ATTR_END, SIG_START, SIG_END];

/// Text longer than this in a signature element is not taken for a
/// signature (a client that put the whole reply in it).
const MAX_SIGNATURE_CHARS: usize = 2000;

/// How many quotes get an attribution look, and how many `<hr>`s a look
/// for the header box after them.
const MAX_LOOKS: usize = 200;

/// Text longer than this before a quote is never an attribution.
const MAX_ATTRIBUTION_CHARS: usize = 300;

/// What [`mark`] found.
pub(crate) struct Marked {
    /// The HTML as text, with the sentinels.
    pub text: String,
    /// Which structural rules fired (`"gmail_quote"`, `"blockquote"`, ...),
    /// in document order, without duplicates.
    pub rules: Vec<String>,
    /// Whether the structure says for sure where quoted history is: a
    /// client's quote container or attribution, or Outlook's reply header,
    /// not only a plain `blockquote` (which a text/plain alternative may
    /// not quote: then that text is trimmed instead).
    pub decisive: bool,
}

/// Classes (or parts of class names) that hold quoted history as a whole.
const HISTORY_CLASSES: &[&str] = &[
    "yahoo_quoted",
    "zmail_extra",
    "protonmail_quote",
    // Outlook 2003's header box around `<hr>` and the `From:` lines.
    "outlookmessageheader",
];

/// Classes of attribution elements.
const ATTRIBUTION_CLASSES: &[&str] = &["gmail_attr", "moz-cite-prefix", "yahoo_quoted_header"];

/// Ids (or parts of ids) of the box that starts Outlook's unquoted history.
const HISTORY_IDS: &[&str] = &[
    "divrplyfwdmsg",
    "appendonsend",
    "mail-editor-reference-message-container",
    "olk_src_body_section",
];

/// Whether `html` may hold any structure that [`mark`] finds (a cheap
/// substring test, so that HTML without any is not parsed again).
pub(crate) fn may_have_quotes(html: &str) -> bool {
    const NEEDLES: &[&str] = &[
        "blockquote",
        "gmail_",
        "moz-cite",
        "yahoo_quoted",
        "zmail_extra",
        "protonmail_quote",
        "outlookmessageheader",
        "divrplyfwdmsg",
        "appendonsend",
        "mail-editor-reference",
        "olk_src_body",
        "border-top",
        "<hr",
        "quote",
        "signature",
        "zm-_id_-sgn",
    ];
    let lower = html.to_ascii_lowercase();
    NEEDLES.iter().any(|n| lower.contains(n))
}

/// Renders `html` as text with the quote marks, or `None` when it cannot be
/// parsed within the limits of [`crate::sanitize`].
pub(crate) fn mark(html: &str) -> Option<Marked> {
    if !crate::sanitize::parseable(html) {
        return None;
    }
    // Sentinels written by the sender are no marks.
    let html: std::borrow::Cow<'_, str> = if html.contains(SENTINELS) {
        html.replace(SENTINELS, "").into()
    } else {
        html.into()
    };
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(&*html);
    let mut rules: Vec<String> = Vec::new();
    let mut add_rule = |rule: &str| {
        if !rules.iter().any(|r| r == rule) {
            rules.push(rule.to_string());
        }
    };

    // Links become their text and images go (the rendering would bracket
    // them, and a logo's alt text is no part of the reply): each parent's
    // children are rebuilt once, so this stays linear.
    let mut stack: Vec<Handle> = vec![dom.document.clone()];
    while let Some(node) = stack.pop() {
        flatten_links(&node);
        for child in node.children.borrow().iter().rev() {
            stack.push(child.clone());
        }
    }

    // Elements in document order (explicit stack: no recursion on deep
    // documents), whether each is inside a blockquote, and which hold one.
    let mut elements: Vec<(Handle, bool)> = Vec::new();
    let mut stack: Vec<(Handle, bool)> = vec![(dom.document.clone(), false)];
    while let Some((node, in_quote)) = stack.pop() {
        let quote = element_name(&node) == "blockquote";
        if matches!(node.data, NodeData::Element { .. }) {
            elements.push((node.clone(), in_quote));
        }
        for child in node.children.borrow().iter().rev() {
            stack.push((child.clone(), in_quote || quote));
        }
    }
    let mut holds_quote: HashSet<*const Node> = HashSet::new();
    for (element, _) in elements.iter().rev() {
        let holds = element.children.borrow().iter().any(|c| {
            element_name(c) == "blockquote" || holds_quote.contains(&std::rc::Rc::as_ptr(c))
        });
        if holds {
            holds_quote.insert(std::rc::Rc::as_ptr(element));
        }
    }

    // Attributions are looked for before the first quotes only, and Outlook
    // separators among the first rules: real mail has a few, and each look
    // scans siblings.
    let mut quotes_seen = 0;
    let mut rules_seen = 0;
    let mut history_marked = false;
    let mut signatures: Vec<Handle> = Vec::new();
    for (element, inside_quote) in &elements {
        let inside_quote = *inside_quote;
        let name = element_name(element);
        let class = attr(element, "class").to_ascii_lowercase();
        let id = attr(element, "id").to_ascii_lowercase();
        if !inside_quote
            && signatures.len() < MAX_LOOKS
            && let Some(marker) = signature_marker(element)
            && !holds_quote.contains(&std::rc::Rc::as_ptr(element))
            && !signatures.iter().any(|s| is_ancestor(s, element))
            && text_of(element, MAX_SIGNATURE_CHARS).chars().count() < MAX_SIGNATURE_CHARS
        {
            signatures.push(element.clone());
            add_rule(&format!("signature {marker}"));
        }
        if name == "blockquote" {
            let rule = if class.contains("gmail_quote") {
                "blockquote.gmail_quote"
            } else if class.contains("protonmail_quote") {
                "blockquote.protonmail_quote"
            } else if attr(element, "type").eq_ignore_ascii_case("cite") {
                "blockquote type=cite"
            } else {
                "blockquote"
            };
            add_rule(rule);
            if !inside_quote && quotes_seen < MAX_LOOKS {
                quotes_seen += 1;
                mark_attribution_before(element, &mut add_rule);
            }
            continue;
        }
        if ATTRIBUTION_CLASSES.iter().any(|c| class.contains(c)) && !inside_quote {
            if quotes_seen >= MAX_LOOKS {
                continue;
            }
            quotes_seen += 1;
            if text_len(element) <= MAX_ATTRIBUTION_CHARS && !has_attribution_mark(element) {
                wrap_attribution(element);
                add_rule(&format!("div.{}", first_match(&class, ATTRIBUTION_CLASSES)));
            }
            continue;
        }
        if history_marked || inside_quote {
            continue;
        }
        let history_class = HISTORY_CLASSES
            .iter()
            .find(|c| class.split_ascii_whitespace().any(|k| k.contains(*c)));
        if let Some(class) = history_class {
            if holds_quote.contains(&std::rc::Rc::as_ptr(element)) {
                // The quote inside is found as such; inline answers
                // written next to it in the container stay.
                continue;
            }
            prepend_text(element, &HISTORY.to_string());
            add_rule(&format!("div.{class}"));
            history_marked = true;
            continue;
        }
        // GMX, WEB.DE and mail.com: `<div name="quote">` holding the
        // header lines and the unquoted earlier message.
        if name == "div" && attr(element, "name").eq_ignore_ascii_case("quote") {
            prepend_text(element, &HISTORY.to_string());
            add_rule("div[name=quote]");
            history_marked = true;
            continue;
        }
        if let Some(id) = HISTORY_IDS.iter().find(|i| id.contains(*i)) {
            prepend_text(element, &HISTORY.to_string());
            add_rule(&format!("#{id}"));
            history_marked = true;
            continue;
        }
        if name == "div" && border_top_box(element) && starts_with_header_line(element) {
            prepend_text(element, &HISTORY.to_string());
            add_rule("border-top box with From:");
            history_marked = true;
            continue;
        }
        if name == "hr" && rules_seen < MAX_LOOKS && {
            rules_seen += 1;
            header_box_follows(element)
        } {
            insert_before(element, &HISTORY.to_string());
            add_rule("<hr> before From:");
            history_marked = true;
        }
    }

    // Wrapped last: the marks above read the text of these elements.
    for signature in &signatures {
        let mut children = signature.children.borrow_mut();
        children.insert(0, text_node(&SIG_START.to_string()));
        children.push(text_node(&SIG_END.to_string()));
    }

    let mut bytes = Vec::with_capacity(html.len());
    let opts = SerializeOpts {
        traversal_scope: TraversalScope::ChildrenOnly(None),
        ..Default::default()
    };
    html5ever::serialize(
        &mut bytes,
        &SerializableHandle::from(dom.document.clone()),
        opts,
    )
    .ok()?;
    let text = html2text::config::plain_no_decorate()
        .link_footnotes(false)
        .no_table_borders()
        .allow_width_overflow()
        .string_from_read(bytes.as_slice(), 10_000)
        .ok()?;
    let decisive = rules.iter().any(|r| r != "blockquote");
    Some(Marked {
        text,
        rules,
        decisive,
    })
}

/// Whether an `id`, a class or a `name` value names the writer's
/// signature: it contains "signature" (`Signature`, `x_Signature`,
/// `ms-outlook-mobile-signature`, `gmail_signature`, `moz-signature`,
/// `protonmail_signature_block`, `messageSignatureSection`,
/// `composer_signature`, ...), or it is Zoho's `Zm-_Id_-Sgn` (its
/// `Zm-_Id_-Sgn1` is the attribution of the quoted email, not a signature).
pub(crate) fn names_signature(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    lower.contains("signature") || lower == "zm-_id_-sgn"
}

/// Elements whose whole content can be a signature block: blocks that
/// hold it, not inline or void elements (Apple's `<br
/// id="lineBreakAtBeginningOfSignature">` marks no extent) nor table
/// parts (cells render side by side).
const SIGNATURE_ELEMENTS: &[&str] = &["div", "p", "pre", "section", "article", "aside", "footer"];

/// How `element` is marked as a signature (`"#signature"`,
/// `".gmail_signature"`, `"[name=messagesignaturesection]"`), if it is.
fn signature_marker(element: &Handle) -> Option<String> {
    let name = element_name(element);
    if !SIGNATURE_ELEMENTS.contains(&name.as_str()) {
        return None;
    }
    let id = attr(element, "id");
    if names_signature(&id) {
        return Some(format!("#{}", id.trim().to_ascii_lowercase()));
    }
    if let Some(class) = attr(element, "class")
        .split_ascii_whitespace()
        .find(|c| names_signature(c))
    {
        return Some(format!(".{}", class.to_ascii_lowercase()));
    }
    let value = attr(element, "name");
    names_signature(&value).then(|| format!("[name={}]", value.trim().to_ascii_lowercase()))
}

/// Whether `ancestor` is `node` or one of its ancestors.
fn is_ancestor(ancestor: &Handle, node: &Handle) -> bool {
    let mut current = Some(node.clone());
    while let Some(n) = current {
        if std::rc::Rc::ptr_eq(&n, ancestor) {
            return true;
        }
        current = parent(&n);
    }
    false
}

fn first_match<'a>(class: &str, names: &[&'a str]) -> &'a str {
    names
        .iter()
        .find(|n| class.contains(*n))
        .copied()
        .unwrap_or_default()
}

fn lower(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn element_name(node: &Handle) -> String {
    match &node.data {
        NodeData::Element { name, .. } => lower(&name.local),
        _ => String::new(),
    }
}

fn attr(node: &Handle, wanted: &str) -> String {
    match &node.data {
        NodeData::Element { attrs, .. } => attrs
            .borrow()
            .iter()
            .find(|a| lower(&a.name.local) == wanted)
            .map(|a| a.value.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn parent(node: &Handle) -> Option<Handle> {
    let weak = node.parent.take();
    let parent = weak.as_ref().and_then(std::rc::Weak::upgrade);
    node.parent.set(weak);
    parent
}

/// The visible text of `node` (text nodes only, no separators).
fn text_of(node: &Handle, limit: usize) -> String {
    let mut out = String::new();
    let mut stack = vec![node.clone()];
    // Bounded: element-only subtrees can be large.
    let mut visits = 0;
    while let Some(n) = stack.pop() {
        visits += 1;
        if visits > 4 * limit + 64 {
            break;
        }
        match &n.data {
            NodeData::Text { contents } => {
                out.push_str(&contents.borrow());
                if out.len() > limit {
                    break;
                }
            }
            NodeData::Element { name, .. } => {
                let tag = lower(&name.local);
                if matches!(tag.as_str(), "style" | "script" | "title") {
                    continue;
                }
                if matches!(tag.as_str(), "br" | "div" | "p") {
                    out.push('\n');
                }
                for child in n.children.borrow().iter().rev() {
                    stack.push(child.clone());
                }
            }
            _ => {}
        }
    }
    out
}

fn text_len(node: &Handle) -> usize {
    text_of(node, MAX_ATTRIBUTION_CHARS * 4)
        .trim()
        .chars()
        .count()
}

fn has_attribution_mark(node: &Handle) -> bool {
    text_of(node, MAX_ATTRIBUTION_CHARS * 4).contains(ATTR_START)
}

fn text_node(text: &str) -> Handle {
    Node::new(NodeData::Text {
        contents: RefCell::new(StrTendril::from(text)),
    })
}

fn prepend_text(node: &Handle, text: &str) {
    node.children.borrow_mut().insert(0, text_node(text));
}

/// Replaces the `a` children of `node` by their children and drops its
/// `img` children (repeatedly, for links inside links).
fn flatten_links(node: &Handle) {
    let is_link_or_image = |c: &Handle| matches!(element_name(c).as_str(), "a" | "img");
    for _ in 0..8 {
        if !node.children.borrow().iter().any(is_link_or_image) {
            return;
        }
        let old: Vec<Handle> = node.children.borrow_mut().drain(..).collect();
        let mut new = Vec::with_capacity(old.len());
        for child in old {
            match element_name(&child).as_str() {
                "img" => {}
                "a" => {
                    for grandchild in child.children.borrow_mut().drain(..) {
                        grandchild.parent.set(Some(std::rc::Rc::downgrade(node)));
                        new.push(grandchild);
                    }
                }
                _ => new.push(child),
            }
        }
        *node.children.borrow_mut() = new;
    }
}

/// Inserts a text node before `node` (for void elements such as `<hr>`).
fn insert_before(node: &Handle, text: &str) {
    let Some(parent) = parent(node) else {
        return;
    };
    let mut children = parent.children.borrow_mut();
    let at = children
        .iter()
        .position(|c| std::rc::Rc::ptr_eq(c, node))
        .unwrap_or(0);
    children.insert(at, text_node(&format!("\n{text}\n")));
}

fn wrap_attribution(node: &Handle) {
    let mut children = node.children.borrow_mut();
    children.insert(0, text_node(&ATTR_START.to_string()));
    children.push(text_node(&ATTR_END.to_string()));
}

/// Whether the (whitespace-normalised) text before a quote reads as its
/// attribution line: short, at most three lines, ending with a colon (or
/// Zoho's `wrote ---`), with a digit or an address in it.
fn reads_as_attribution(text: &str) -> bool {
    let t = text.trim();
    if t.is_empty() || t.chars().count() > MAX_ATTRIBUTION_CHARS {
        return false;
    }
    if t.lines().filter(|l| !l.trim().is_empty()).count() > 3 {
        return false;
    }
    let end = t.trim_end_matches(['-', ' ', '\u{a0}']);
    let colon = end.ends_with(':') || end.ends_with('：') || t.ends_with("---");
    // An address, or a date: a time or a year (not any number, so that
    // "My order 4711:" before a quote of the customer's own stays).
    let evidence = t.contains('@') || crate::trim::has_time(t) || crate::trim::has_year(t);
    colon && evidence && !t.contains(ATTR_START)
}

/// Marks the attribution right before the quote `quote`, if there is one:
/// the previous element sibling, or the run of inline nodes since the last
/// block or double line break.
fn mark_attribution_before(quote: &Handle, add_rule: &mut impl FnMut(&str)) {
    let Some(parent) = parent(quote) else {
        return;
    };
    let children = parent.children.borrow().clone();
    let Some(at) = children.iter().position(|c| std::rc::Rc::ptr_eq(c, quote)) else {
        return;
    };
    // Skip blank text and line breaks right before the quote.
    let mut k = at;
    while k > 0 && is_blank_inline(&children[k - 1]) {
        k -= 1;
    }
    if k == 0 {
        // Apple Mail's <div><br><blockquote>: the attribution is before
        // the parent.
        if matches!(element_name(&parent).as_str(), "div" | "span" | "font")
            && text_of(&parent, 10).trim().is_empty()
        {
            mark_attribution_before(&parent, add_rule);
        }
        return;
    }
    let previous = &children[k - 1];
    if is_block(previous) {
        if has_attribution_mark(previous) {
            return;
        }
        let text = text_of(previous, MAX_ATTRIBUTION_CHARS * 4);
        if reads_as_attribution(&text) {
            wrap_attribution(previous);
            add_rule("attribution before quote");
        }
        return;
    }
    // A run of inline nodes (text, links, bold names, single <br>s).
    let end = k;
    let mut start = k;
    while start > 0 {
        let node = &children[start - 1];
        if is_block(node) {
            break;
        }
        if element_name(node) == "br" && start >= 2 && element_name(&children[start - 2]) == "br" {
            break;
        }
        start -= 1;
    }
    let mut text = String::new();
    for node in &children[start..end] {
        if element_name(node) == "br" {
            text.push('\n');
        } else {
            text.push_str(&text_of(node, MAX_ATTRIBUTION_CHARS * 4));
        }
    }
    // Only the lines after the last blank one.
    if reads_as_attribution(&text) {
        drop(children);
        let mut kids = parent.children.borrow_mut();
        kids.insert(end, text_node(&ATTR_END.to_string()));
        kids.insert(start, text_node(&format!("\n{ATTR_START}")));
        add_rule("attribution before quote");
    }
}

fn is_blank_inline(node: &Handle) -> bool {
    match &node.data {
        NodeData::Text { contents } => contents
            .borrow()
            .chars()
            .all(|c| c.is_whitespace() || c == '\u{a0}'),
        NodeData::Comment { .. } => true,
        NodeData::Element { .. } => {
            let name = element_name(node);
            name == "br"
                || (matches!(name.as_str(), "div" | "p" | "span" | "font")
                    && !contains_element(node, &["img", "blockquote", "table"])
                    && text_of(node, 10)
                        .chars()
                        .all(|c| c.is_whitespace() || c == '\u{a0}'))
        }
        _ => false,
    }
}

fn contains_element(node: &Handle, names: &[&str]) -> bool {
    let mut stack: Vec<Handle> = node.children.borrow().clone();
    while let Some(n) = stack.pop() {
        if names.contains(&element_name(&n).as_str()) {
            return true;
        }
        stack.extend(n.children.borrow().iter().cloned());
    }
    false
}

fn is_block(node: &Handle) -> bool {
    matches!(
        element_name(node).as_str(),
        "div"
            | "p"
            | "table"
            | "ul"
            | "ol"
            | "pre"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "hr"
            | "blockquote"
            | "center"
            | "section"
            | "article"
            | "header"
            | "footer"
    )
}

/// Outlook desktop's separator: a `div` whose style draws a top border.
fn border_top_box(node: &Handle) -> bool {
    let style = attr(node, "style").to_ascii_lowercase().replace(' ', "");
    style.contains("border-top:solid")
        || (style.contains("border-top:") && style.contains("solid"))
        || style.contains("border-top-style:solid")
}

/// Whether the text of `node` starts with a header line (`From:`, `Von:`,
/// `De :`, ...).
fn starts_with_header_line(node: &Handle) -> bool {
    let text = text_of(node, 400);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    crate::trim::is_from_header_line(first)
}

/// An `<hr>` followed by a block that starts with a `From:` line.
fn header_box_follows(hr: &Handle) -> bool {
    let Some(parent) = parent(hr) else {
        return false;
    };
    let children = parent.children.borrow();
    let Some(at) = children.iter().position(|c| std::rc::Rc::ptr_eq(c, hr)) else {
        return false;
    };
    children[at + 1..]
        .iter()
        .find(|c| !is_blank_inline(c))
        .is_some_and(starts_with_header_line)
}
