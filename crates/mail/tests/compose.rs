//! Replies composed like a mail client's: layout (signature, quoted
//! history), Markdown to sanitised HTML, recipients typed by agents, and the
//! built emails read back by mail-parser and by Python's `email` package.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use postdesk_mail::{
    BuildError, Format, Mailbox, OutgoingAttachment, OutgoingEmail, Quoted, RecipientError,
    Rendered, ReplyBody, build, markdown_to_html, parse, parse_recipient, render_reply,
    reply_subject, trim,
};

/// [`render_reply`] of a reply typed in `format`.
fn render(
    text: &str,
    format: Format,
    signature: Option<&str>,
    quote: Option<Quoted<'_>>,
) -> Rendered {
    render_reply(&ReplyBody {
        text,
        format,
        signature,
        quote,
    })
}

fn ann() -> Mailbox {
    Mailbox::named("Ann Lee", "ann@example.com")
}

fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap()
}

const ATTRIBUTION: &str = "On Mon, 7 Dec 2026 at 10:00, Ann Lee <ann@example.com> wrote:";

const CUSTOMER_TEXT: &str = "I cannot log in.\n\nSince Monday.\n> what I tried before\n";

fn quote(from: &Mailbox) -> Quoted<'_> {
    Quoted {
        from: Some(from),
        date: Some(monday()),
        text: CUSTOMER_TEXT,
        html: Some(
            "<p>I cannot <b>log in</b>.</p><p onclick=\"steal()\">Since Monday.</p>\
             <script>alert(1)</script>",
        ),
    }
}

// --- layout ---------------------------------------------------------------------

#[test]
fn text_reply_with_signature_and_quote() {
    let from = ann();
    let rendered = render(
        "Hi Ann,\r\n\r\nplease try again.\r\n",
        Format::Text,
        Some("Bob\nSupport Team\n"),
        Some(quote(&from)),
    );
    assert_eq!(
        rendered.shown_text,
        "Hi Ann,\n\nplease try again.\n\n-- \nBob\nSupport Team"
    );
    assert_eq!(
        rendered.text,
        format!(
            "Hi Ann,\n\nplease try again.\n\n-- \nBob\nSupport Team\n\n{ATTRIBUTION}\n\
             > I cannot log in.\n>\n> Since Monday.\n>> what I tried before\n"
        )
    );
    // Plain text replies have no HTML, even with a quote that has some.
    assert_eq!(rendered.html, None);
    assert_eq!(rendered.shown_html, None);
}

#[test]
fn text_reply_alone_is_sent_as_typed() {
    let typed = "Done.\n\n  * indented **not markdown** <b>\n";
    let rendered = render(typed, Format::Text, None, None);
    assert_eq!(
        rendered,
        Rendered {
            text: typed.to_string(),
            html: None,
            shown_text: typed.to_string(),
            shown_html: None,
        }
    );
}

#[test]
fn signature_is_added_once() {
    let signature = "Bob\nSupport Team";
    for (format, typed) in [
        (Format::Text, "Thanks!\n\n-- \nBob\nSupport Team\n"),
        (
            Format::Text,
            "Thanks!\r\n\r\nBob  \r\n  Support Team\r\n\r\n",
        ),
        (Format::Markdown, "Thanks!\n\nBob\nSupport Team"),
    ] {
        let rendered = render(typed, format, Some(signature), None);
        assert_eq!(
            rendered.text.matches("Support Team").count(),
            1,
            "{typed:?}: {}",
            rendered.text
        );
        if let Some(html) = &rendered.html {
            assert_eq!(html.matches("Support Team").count(), 1, "{html}");
            assert!(!html.contains("postdesk-signature"), "{html}");
        }
    }

    // Blank signatures are none.
    for signature in [Some(""), Some("  \n\t\n"), None] {
        let rendered = render("Thanks!", Format::Markdown, signature, None);
        assert_eq!(rendered.text, "Thanks!");
        assert_eq!(rendered.html.as_deref(), Some("<p>Thanks!</p>"));
    }

    // A signature that only shares its last words with the reply is added.
    let rendered = render(
        "Ask the Support Team",
        Format::Text,
        Some("Support Team"),
        None,
    );
    assert_eq!(rendered.text, "Ask the Support Team\n\n-- \nSupport Team");
}

#[test]
fn markdown_reply_with_signature_and_quote() {
    let from = ann();
    let typed = "Hi **Ann**,\nplease *try* again.";
    let rendered = render(
        typed,
        Format::Markdown,
        Some("**Bob**\n[Support](https://example.com/help)"),
        Some(quote(&from)),
    );
    // The text part is the Markdown source as typed.
    assert!(
        rendered.shown_text.starts_with(
            "Hi **Ann**,\nplease *try* again.\n\n-- \n**Bob**\n[Support](https://example.com/help)"
        ),
        "{}",
        rendered.shown_text
    );
    assert!(rendered.text.starts_with(&rendered.shown_text));
    assert!(
        rendered.text.ends_with(&format!(
            "{ATTRIBUTION}\n> I cannot log in.\n>\n> Since Monday.\n>> what I tried before\n"
        )),
        "{}",
        rendered.text
    );

    let shown = rendered.shown_html.as_deref().unwrap();
    assert!(
        shown.starts_with("<p>Hi <strong>Ann</strong>,<br>\nplease <em>try</em> again.</p>"),
        "{shown}"
    );
    assert!(
        shown.ends_with(
            "<div class=\"postdesk-signature\">-- <br><p><strong>Bob</strong><br>\n\
             <a href=\"https://example.com/help\" target=\"_blank\" rel=\"noopener noreferrer\">Support</a></p></div>"
        ),
        "{shown}"
    );
    assert!(!shown.contains("gmail_quote"), "{shown}");

    let html = rendered.html.as_deref().unwrap();
    let quote_html = html
        .strip_prefix(shown)
        .expect("html starts with the shown part");
    assert_eq!(
        quote_html,
        "<br><div class=\"gmail_quote\"><div class=\"gmail_attr\">\
         On Mon, 7 Dec 2026 at 10:00, Ann Lee &lt;ann@example.com&gt; wrote:</div>\
         <blockquote class=\"gmail_quote\" type=\"cite\" \
         style=\"margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex\">\
         <p>I cannot <b>log in</b>.</p><p>Since Monday.</p></blockquote></div>"
    );
}

#[test]
fn quote_without_html_is_escaped_text() {
    let from = Mailbox::new("ann@example.com");
    let rendered = render(
        "Sure.",
        Format::Markdown,
        None,
        Some(Quoted {
            from: Some(&from),
            date: None,
            text: "a < b & c\r\n<script>x</script>\r\n",
            html: None,
        }),
    );
    let html = rendered.html.unwrap();
    assert!(
        html.ends_with(
            "<div class=\"gmail_attr\">ann@example.com wrote:</div>\
             <blockquote class=\"gmail_quote\" type=\"cite\" \
             style=\"margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex\">\
             a &lt; b &amp; c<br>\n&lt;script&gt;x&lt;/script&gt;</blockquote></div>"
        ),
        "{html}"
    );
    assert_eq!(
        rendered.text,
        "Sure.\n\nann@example.com wrote:\n> a < b & c\n> <script>x</script>\n"
    );
}

#[test]
fn attributions() {
    let named = Mailbox::named("Ann\r\nLee", " ann@example.com ");
    let bare = Mailbox::new("ann@example.com");
    let cases = [
        (Some(&named), Some(monday()), ATTRIBUTION),
        (
            Some(&bare),
            Some(monday()),
            "On Mon, 7 Dec 2026 at 10:00, ann@example.com wrote:",
        ),
        (Some(&named), None, "Ann Lee <ann@example.com> wrote:"),
        (
            None,
            Some(monday()),
            "On Mon, 7 Dec 2026 at 10:00, the sender wrote:",
        ),
        (None, None, "The sender wrote:"),
    ];
    for (from, date, expected) in cases {
        let rendered = render(
            "",
            Format::Text,
            None,
            Some(Quoted {
                from,
                date,
                text: "x",
                html: None,
            }),
        );
        assert_eq!(rendered.text, format!("{expected}\n> x\n"));
        assert_eq!(rendered.shown_text, "");
    }
    // Dates are written in UTC.
    let date = DateTime::parse_from_rfc3339("2026-12-08T01:30:00+09:00")
        .unwrap()
        .with_timezone(&Utc);
    let rendered = render(
        "ok",
        Format::Text,
        None,
        Some(Quoted {
            from: Some(&bare),
            date: Some(date),
            text: "x",
            html: None,
        }),
    );
    assert!(
        rendered
            .text
            .contains("On Mon, 7 Dec 2026 at 16:30, ann@example.com wrote:"),
        "{}",
        rendered.text
    );
}

#[test]
fn quote_of_html_only_email_uses_its_text() {
    let from = ann();
    let rendered = render(
        "ok",
        Format::Text,
        None,
        Some(Quoted {
            from: Some(&from),
            date: None,
            text: "  \n",
            html: Some("<p>Only <b>HTML</b> here</p>"),
        }),
    );
    assert_eq!(
        rendered.text,
        "ok\n\nAnn Lee <ann@example.com> wrote:\n> Only HTML here\n"
    );

    // Nothing to quote: no attribution either.
    let rendered = render(
        "ok",
        Format::Markdown,
        None,
        Some(Quoted {
            from: Some(&from),
            date: None,
            text: "\n \n",
            html: None,
        }),
    );
    assert_eq!(rendered.text, "ok");
    assert_eq!(rendered.html.as_deref(), Some("<p>ok</p>"));
}

/// The contact's answer to our rendered email, as their mail client writes
/// it, is trimmed back to their new text by postdesk's own trimming.
#[test]
fn contact_answer_quoting_our_reply_is_trimmed() {
    let from = ann();
    let ours = render(
        "Hi **Ann**,\n\nplease try again:\n\n1. sign out\n2. sign in\n\n> Note: clear the cache.",
        Format::Markdown,
        Some("Bob\nSupport Team"),
        Some(quote(&from)),
    );
    let our_text = ours.text.as_str();
    let our_html = ours.html.as_deref().unwrap();
    // Apple Mail and Thunderbird put "> " before every line, quoted or not.
    let quoted_text: String = our_text.lines().map(|l| format!("> {l}\n")).collect();
    let new = "Thanks, that fixed it!";

    let gmail_text = format!(
        "{new}\n\nOn Tue, Dec 8, 2026 at 9:00 AM Support Team <support@example.com> wrote:\n\n{quoted_text}"
    );
    let gmail_html = format!(
        "<div dir=\"ltr\">{new}</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">\
         On Tue, Dec 8, 2026 at 9:00 AM Support Team &lt;<a href=\"mailto:support@example.com\">\
         support@example.com</a>&gt; wrote:<br></div><blockquote class=\"gmail_quote\" \
         style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">\
         {our_html}</blockquote></div>"
    );
    let apple_html = format!(
        "<div>{new}</div><div><br><blockquote type=\"cite\"><div>On 8 Dec 2026, at 09:00, \
         Support Team &lt;support@example.com&gt; wrote:</div><br><div>{our_html}</div></blockquote></div>"
    );
    let thunderbird_text =
        format!("{new}\n\nOn 08/12/2026 09:00, Support Team wrote:\n{quoted_text}");
    let outlook_text = format!(
        "{new}\n\nFrom: Support Team <support@example.com>\nSent: Tuesday, December 8, 2026 9:00 AM\n\
         To: Ann Lee <ann@example.com>\nSubject: Re: Cannot log in\n\n{our_text}"
    );
    let cases: [(&str, &str, Option<&str>); 5] = [
        ("gmail", &gmail_text, Some(&gmail_html)),
        ("gmail text only", &gmail_text, None),
        ("apple mail", &thunderbird_text, Some(&apple_html)),
        ("thunderbird text", &thunderbird_text, None),
        ("outlook", &outlook_text, None),
    ];
    for (client, text, html) in cases {
        assert_eq!(
            trim::reply_text_of(text, html, &[]),
            new,
            "{client}:\n{text}"
        );
    }
}

// --- Markdown -------------------------------------------------------------------

#[test]
fn markdown_renders_what_mail_needs() {
    let cases = [
        (
            "**bold** and *italics*",
            "<p><strong>bold</strong> and <em>italics</em></p>",
        ),
        ("line one\nline two", "<p>line one<br>\nline two</p>"),
        ("hard  \nbreak", "<p>hard<br>\nbreak</p>"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
        (
            "[docs](https://example.com/a?b=1&c=2)",
            "<p><a href=\"https://example.com/a?b=1&amp;c=2\" target=\"_blank\" rel=\"noopener noreferrer\">docs</a></p>",
        ),
        (
            "<https://example.com>",
            "<p><a href=\"https://example.com\" target=\"_blank\" rel=\"noopener noreferrer\">https://example.com</a></p>",
        ),
        (
            "> quoted\n> more",
            "<blockquote>\n<p>quoted<br>\nmore</p>\n</blockquote>",
        ),
        ("run `ls <dir>`", "<p>run <code>ls &lt;dir&gt;</code></p>"),
        (
            "```sh\necho \"<hi>\"\n```",
            "<pre><code>echo \"&lt;hi&gt;\"\n</code></pre>",
        ),
        ("~~old~~ new", "<p><del>old</del> new</p>"),
        ("a & b < c", "<p>a &amp; b &lt; c</p>"),
        ("", ""),
    ];
    for (markdown, expected) in cases {
        assert_eq!(markdown_to_html(markdown), expected, "{markdown:?}");
    }
}

/// The `<...>` tags of an HTML fragment (escaped text has none).
fn tags(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map_or(rest.len(), |e| start + e + 1);
        out.push(rest[start..end].to_ascii_lowercase());
        rest = &rest[end..];
    }
    out
}

#[test]
fn markdown_hostile_input_is_never_markup() {
    let hostile = [
        "<script>alert(1)</script>",
        "hi <script>alert(1)</script> there",
        "<img src=x onerror=alert(1)>",
        "text <img src=\"https://t.example/p.gif\" onerror=\"alert(1)\"> text",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1) )",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<a href=\"http://x\" onclick=\"steal()\">x</a>",
        "<div\nonmouseover=\"x()\">block</div>",
        "* item <span onmouseover=\"x()\">y</span>",
        "![img](javascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "<style>body{display:none}</style>",
        "<!-- comment --><b>bold</b>",
        "[ref]\n\n[ref]: javascript:alert(1)",
    ];
    for markdown in hostile {
        let html = markdown_to_html(markdown);
        for tag in tags(&html) {
            let name: String = tag
                .trim_start_matches(['<', '/'])
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            assert!(
                ["p", "br", "a", "ul", "li", "img"].contains(&name.as_str()),
                "{markdown:?} gave tag {tag} in {html}"
            );
            assert!(!tag.contains(" on"), "{markdown:?} gave {tag}");
            assert!(!tag.contains("javascript"), "{markdown:?} gave {tag}");
            assert!(!tag.contains("data:"), "{markdown:?} gave {tag}");
            assert!(!tag.contains("style"), "{markdown:?} gave {tag}");
            if name == "a" && !tag.starts_with("</") {
                assert!(tag.contains("rel=\"noopener noreferrer\""), "{tag}");
            }
        }
        assert!(!html.contains("<script"), "{markdown:?}: {html}");
        assert!(!html.contains("<iframe"), "{markdown:?}: {html}");
    }
    // Raw HTML stays visible as the text that was typed.
    assert_eq!(
        markdown_to_html("<script>alert(1)</script>"),
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    );
    assert_eq!(
        markdown_to_html("<a href=\"http://x\" onclick=\"steal()\">x</a>"),
        "<p>&lt;a href=\"http://x\" onclick=\"steal()\"&gt;x&lt;/a&gt;</p>"
    );
    assert_eq!(
        markdown_to_html("<div>\nblock\n</div>\n\npara"),
        "<p>&lt;div&gt;<br>\nblock<br>\n&lt;/div&gt;</p>\n<p>para</p>"
    );
}

// --- recipients -----------------------------------------------------------------

#[test]
fn parse_recipient_accepts() {
    let cases: [(&str, Option<&str>, &str); 12] = [
        ("ann@example.com", None, "ann@example.com"),
        ("  ann@example.com  ", None, "ann@example.com"),
        ("Ann.Lee+tag@Example.COM", None, "Ann.Lee+tag@Example.COM"),
        (
            "Ann Lee <ann@example.com>",
            Some("Ann Lee"),
            "ann@example.com",
        ),
        (
            " Ann Lee   < ann@example.com > ",
            Some("Ann Lee"),
            "ann@example.com",
        ),
        ("<ann@example.com>", None, "ann@example.com"),
        ("\"\" <ann@example.com>", None, "ann@example.com"),
        (
            "\"Lee, Ann\" <ann@example.com>",
            Some("Lee, Ann"),
            "ann@example.com",
        ),
        (
            r#""Ann \"The Boss\" Lee" <ann@example.com>"#,
            Some("Ann \"The Boss\" Lee"),
            "ann@example.com",
        ),
        (
            "\"A <b>\" <ann@example.com>",
            Some("A <b>"),
            "ann@example.com",
        ),
        (
            "\"ann@example.com\" <ann@example.com>",
            Some("ann@example.com"),
            "ann@example.com",
        ),
        (
            "Zoë Ærøskøbing <zoe@example.com>",
            Some("Zoë Ærøskøbing"),
            "zoe@example.com",
        ),
    ];
    for (input, name, email) in cases {
        let mailbox = parse_recipient(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(mailbox.name.as_deref(), name, "{input:?}");
        assert_eq!(mailbox.email, email, "{input:?}");
    }
}

#[test]
fn parse_recipient_refuses() {
    use RecipientError as E;
    let control = |s: &str| E::ControlCharacter(s.to_string());
    let multiple = |s: &str| E::MultipleAddresses(s.to_string());
    let invalid = |s: &str| E::InvalidAddress(s.to_string());
    let brackets = |s: &str| E::UnbalancedBrackets(s.to_string());
    let cases = [
        ("", E::Empty),
        ("  \u{a0} ", E::Empty),
        ("a@b.c\r\nBcc: evil@x", control("a@b.c\r\nBcc: evil@x")),
        ("Name\n <a@b.c>", control("Name\n <a@b.c>")),
        (
            "Ann <a@b.c>\r\nBcc: evil@x",
            control("Ann <a@b.c>\r\nBcc: evil@x"),
        ),
        ("a@b.c\n", control("a@b.c\n")),
        ("\ra@b.c", control("\ra@b.c")),
        ("Ann\t<a@b.c>", control("Ann\t<a@b.c>")),
        ("a@b.c\u{0}", control("a@b.c\u{0}")),
        ("Ann\u{2028}<a@b.c>", control("Ann\u{2028}<a@b.c>")),
        ("\"Ann\nLee\" <a@b.c>", control("\"Ann\nLee\" <a@b.c>")),
        ("a@x, b@y", multiple("a@x, b@y")),
        ("a@x; b@y", multiple("a@x; b@y")),
        ("a@x b@y", multiple("a@x b@y")),
        ("Ann <a@x>, Bob <b@y>", multiple("Ann <a@x>, Bob <b@y>")),
        ("a@x <b@y>", multiple("a@x <b@y>")),
        ("Ann", invalid("Ann")),
        ("Ann <>", invalid("Ann <>")),
        ("Ann <not an address>", invalid("Ann <not an address>")),
        ("a@", invalid("a@")),
        ("@b.c", invalid("@b.c")),
        ("a b@c.d", invalid("a b@c.d")),
        ("a@b.", invalid("a@b.")),
        ("\"a\"@b.c", invalid("\"a\"@b.c")),
        ("\"Ann <a@b.c>", E::UnbalancedQuotes("\"Ann <a@b.c>".into())),
        ("Ann\" <a@b.c>", E::UnbalancedQuotes("Ann\" <a@b.c>".into())),
        ("Ann <a@b.c", brackets("Ann <a@b.c")),
        ("Ann a@b.c>", brackets("Ann a@b.c>")),
        ("Ann >a@b.c<", brackets("Ann >a@b.c<")),
        ("<<a@b.c>>", brackets("<<a@b.c>>")),
        (
            "Ann <a@b.c> (work)",
            E::TextAfterAddress("Ann <a@b.c> (work)".into()),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_recipient(input), Err(expected), "{input:?}");
    }

    // The messages name the input, line breaks visible.
    let message = parse_recipient("a@b.c\r\nBcc: evil@x")
        .unwrap_err()
        .to_string();
    assert!(message.contains(r#""a@b.c\r\nBcc: evil@x""#), "{message}");
    assert!(message.contains("line break"), "{message}");
    let message = parse_recipient("a@x, b@y").unwrap_err().to_string();
    assert!(message.contains("\"a@x, b@y\""), "{message}");
    assert!(message.contains("one recipient at a time"), "{message}");
    assert!(
        parse_recipient(" ")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
}

// --- built emails ---------------------------------------------------------------

const BCC_ADDRESS: &str = "hidden-boss@secret.example";

/// A Markdown reply to Ann, Cc'd to Zoë, blind-copied to a manager.
fn outgoing(rendered: &Rendered, attachments: Vec<OutgoingAttachment>) -> OutgoingEmail {
    OutgoingEmail {
        from: Mailbox::named("Support Team", "support@example.com"),
        to: vec![ann()],
        cc: vec![Mailbox::named("Zoë Ærøskøbing", "zoe@example.com")],
        bcc: vec![Mailbox::named("Hidden Boss", BCC_ADDRESS)],
        subject: reply_subject("Cannot log in – bitte prüfen"),
        message_id: "reply-1@example.com".into(),
        in_reply_to: Some("customer-1@example.com".into()),
        references: vec!["root@example.com".into(), "customer-1@example.com".into()],
        date: Utc.with_ymd_and_hms(2026, 12, 7, 11, 0, 0).unwrap(),
        text: rendered.text.clone(),
        html: rendered.html.clone(),
        attachments,
    }
}

fn markdown_reply() -> Rendered {
    let from = ann();
    render(
        "Hi **Ann**,\nplease try again.",
        Format::Markdown,
        Some("Bob"),
        Some(quote(&from)),
    )
}

fn pdf() -> OutgoingAttachment {
    OutgoingAttachment {
        filename: "Übersicht.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: b"%PDF-1.4 fake".to_vec(),
    }
}

/// The MIME tree: `multipart/mixed(multipart/alternative(text/plain,text/html),application/pdf)`.
fn structure(raw: &[u8]) -> String {
    fn walk(message: &mail_parser::Message<'_>, id: u32, out: &mut String) {
        let part = message.part(id).unwrap();
        let content_type = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .unwrap_or_else(|| "text/plain".into());
        out.push_str(&content_type);
        if let PartType::Multipart(children) = &part.body {
            out.push('(');
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                walk(message, *child, out);
            }
            out.push(')');
        }
    }
    let message = MessageParser::default().parse(raw).unwrap();
    let mut out = String::new();
    walk(&message, 0, &mut out);
    out
}

/// The value of header `name` in the output of [`common::header_lines`].
fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| {
        let (n, v) = h.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn headers_of_built_reply() {
    let raw = build(&outgoing(&markdown_reply(), vec![])).unwrap();
    let headers = common::header_lines(&raw);
    assert_eq!(
        header(&headers, "From"),
        Some("\"Support Team\" <support@example.com>")
    );
    assert_eq!(
        header(&headers, "To"),
        Some("\"Ann Lee\" <ann@example.com>")
    );
    // Non-ASCII display names and subjects are RFC 2047 encoded words.
    let cc = header(&headers, "Cc").unwrap();
    assert!(cc.starts_with("=?utf-8?"), "{cc}");
    assert!(cc.ends_with("?= <zoe@example.com>"), "{cc}");
    assert!(header(&headers, "Subject").unwrap().contains("=?utf-8?"));
    assert_eq!(
        header(&headers, "In-Reply-To"),
        Some("<customer-1@example.com>")
    );
    assert_eq!(
        header(&headers, "References"),
        Some("<root@example.com> <customer-1@example.com>")
    );
    assert_eq!(
        header(&headers, "Message-ID"),
        Some("<reply-1@example.com>")
    );
    // Bcc: no header, and the address is nowhere in the bytes.
    assert_eq!(header(&headers, "Bcc"), None);
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains(BCC_ADDRESS), "{text}");
    assert!(!text.contains("Hidden Boss"), "{text}");
    assert!(raw.is_ascii());

    let parsed = parse(&raw).unwrap();
    assert_eq!(
        parsed.cc,
        [Mailbox::named("Zoë Ærøskøbing", "zoe@example.com")]
    );
    assert_eq!(parsed.to, [ann()]);
    assert_eq!(parsed.subject, "Re: Cannot log in – bitte prüfen");
}

#[test]
fn bcc_is_checked_and_may_stand_alone() {
    let rendered = render("FYI", Format::Text, None, None);
    let mut email = outgoing(&rendered, vec![]);
    email
        .bcc
        .push(Mailbox::new("evil@x.example\r\nTo: y@z.example"));
    assert!(matches!(build(&email), Err(BuildError::InvalidAddress(_))));

    // Bcc only: allowed, and no recipient header at all.
    let mut email = outgoing(&rendered, vec![]);
    email.to.clear();
    email.cc.clear();
    assert_eq!(email.envelope_recipients(), [BCC_ADDRESS]);
    let raw = build(&email).unwrap();
    let headers = common::header_lines(&raw);
    for name in ["To", "Cc", "Bcc"] {
        assert_eq!(header(&headers, name), None, "{headers:#?}");
    }
    assert!(!String::from_utf8_lossy(&raw).contains(BCC_ADDRESS));

    email.bcc.clear();
    assert_eq!(build(&email), Err(BuildError::NoRecipients));

    let email = outgoing(&rendered, vec![]);
    assert_eq!(
        email.envelope_recipients(),
        ["ann@example.com", "zoe@example.com", BCC_ADDRESS]
    );
}

#[test]
fn mime_structure() {
    let markdown = markdown_reply();
    let text_only = render("Plain.", Format::Text, None, None);
    let cases = [
        (
            &markdown,
            vec![],
            "multipart/alternative(text/plain,text/html)",
        ),
        (
            &markdown,
            vec![pdf()],
            "multipart/mixed(multipart/alternative(text/plain,text/html),application/pdf)",
        ),
        (&text_only, vec![], "text/plain"),
        (
            &text_only,
            vec![pdf()],
            "multipart/mixed(text/plain,application/pdf)",
        ),
    ];
    for (rendered, attachments, expected) in cases {
        let email = outgoing(rendered, attachments);
        let raw = build(&email).unwrap();
        assert_eq!(structure(&raw), expected);
        let parsed = parse(&raw).unwrap();
        assert_eq!(parsed.text.trim_end(), rendered.text.trim_end());
        match &rendered.html {
            Some(html) => {
                let parsed_html = parsed.html.as_deref().unwrap();
                assert!(
                    parsed_html.contains("<strong>Ann</strong>"),
                    "{parsed_html}"
                );
                assert!(parsed_html.contains("gmail_quote"), "{parsed_html}");
                assert!(html.contains("<strong>Ann</strong>"));
            }
            None => assert_eq!(parsed.html, None),
        }
        assert_eq!(parsed.attachments.len(), email.attachments.len());
    }

    // A blank HTML body is no HTML body.
    let mut email = outgoing(&text_only, vec![]);
    email.html = Some(" \n".into());
    assert_eq!(structure(&build(&email).unwrap()), "text/plain");
}

// --- Python's email package ------------------------------------------------------

/// Reads each file given as an argument with Python's `email` package (the
/// modern policy) and prints what it found as JSON.
const PYTHON_READER: &str = r#"
import email, email.policy, json, sys

def addresses(msg, name):
    header = msg[name]
    if header is None:
        return None
    return [{"name": a.display_name, "address": a.addr_spec} for a in header.addresses]

out = []
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        msg = email.message_from_bytes(f.read(), policy=email.policy.default)
    defects = [type(d).__name__ for part in msg.walk() for d in part.defects]
    for name in ("from", "to", "cc", "subject"):
        if msg[name] is not None:
            defects += [type(d).__name__ for d in msg[name].defects]
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    out.append({
        "header_names": [k.lower() for k in msg.keys()],
        "from": addresses(msg, "from"),
        "to": addresses(msg, "to"),
        "cc": addresses(msg, "cc"),
        "bcc": None if msg["bcc"] is None else str(msg["bcc"]),
        "subject": str(msg["subject"]),
        "in_reply_to": str(msg["in-reply-to"]),
        "references": str(msg["references"]),
        "content_types": [p.get_content_type() for p in msg.walk()],
        "text": None if text is None else text.get_content(),
        "html": None if html is None else html.get_content(),
        "attachments": [
            {"filename": p.get_filename(), "content_type": p.get_content_type()}
            for p in msg.iter_attachments()
        ],
        "defects": defects,
    })
print(json.dumps(out))
"#;

/// Runs [`PYTHON_READER`] over `emails`; fails (never skips) when Python is
/// missing.
fn read_with_python(emails: &[Vec<u8>]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = emails
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let path = dir.path().join(format!("{i}.eml"));
            std::fs::write(&path, raw).unwrap();
            path
        })
        .collect();
    let python = std::env::var("POSTDESK_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(PYTHON_READER)
        .args(&paths)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run {python:?} ({e}): install Python 3 or set POSTDESK_PYTHON")
        });
    assert!(
        output.status.success(),
        "{python} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

#[test]
fn python_email_package_reads_built_replies() {
    let markdown = markdown_reply();
    let text_only = render("Plain reply – grüße.", Format::Text, Some("Bob"), None);
    let emails = [
        outgoing(&markdown, vec![]),
        outgoing(&markdown, vec![pdf()]),
        outgoing(&text_only, vec![]),
    ];
    let raw: Vec<Vec<u8>> = emails.iter().map(|e| build(e).unwrap()).collect();
    let read = read_with_python(&raw);
    assert_eq!(read.len(), 3);

    let expected_types = [
        serde_json::json!(["multipart/alternative", "text/plain", "text/html"]),
        serde_json::json!([
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "text/html",
            "application/pdf"
        ]),
        serde_json::json!(["text/plain"]),
    ];
    for (i, (email, read)) in emails.iter().zip(&read).enumerate() {
        assert_eq!(read["defects"], serde_json::json!([]), "email {i}: {read}");
        assert_eq!(read["content_types"], expected_types[i], "email {i}");
        assert_eq!(
            read["from"],
            serde_json::json!([{"name": "Support Team", "address": "support@example.com"}])
        );
        assert_eq!(
            read["to"],
            serde_json::json!([{"name": "Ann Lee", "address": "ann@example.com"}])
        );
        assert_eq!(
            read["cc"],
            serde_json::json!([{"name": "Zoë Ærøskøbing", "address": "zoe@example.com"}])
        );
        assert_eq!(read["bcc"], serde_json::Value::Null);
        let names = read["header_names"].as_array().unwrap();
        assert!(!names.contains(&serde_json::json!("bcc")), "{names:?}");
        assert!(!read.to_string().contains(BCC_ADDRESS));
        assert_eq!(read["subject"], "Re: Cannot log in – bitte prüfen");
        assert_eq!(read["in_reply_to"], "<customer-1@example.com>");
        assert_eq!(
            read["references"],
            "<root@example.com> <customer-1@example.com>"
        );

        let text = read["text"].as_str().unwrap().replace("\r\n", "\n");
        assert_eq!(text.trim_end(), email.text.trim_end(), "email {i}");
        match &email.html {
            Some(html) => {
                let read_html = read["html"].as_str().unwrap().replace("\r\n", "\n");
                assert_eq!(read_html.trim_end(), html.trim_end(), "email {i}");
            }
            None => assert_eq!(read["html"], serde_json::Value::Null),
        }
    }
    assert_eq!(
        read[1]["attachments"],
        serde_json::json!([{"filename": "Übersicht.pdf", "content_type": "application/pdf"}])
    );
    assert!(
        read[2]["text"]
            .as_str()
            .unwrap()
            .contains("grüße.\n\n-- \nBob")
    );
}
