//! Quoted history in HTML replies, found in the HTML's structure: one
//! fixture per mail client and quote format (tests/fixtures/html_replies,
//! written for these tests after each client's documented markup, texts our
//! own). Each reply is trimmed both as it arrives and as it is stored
//! (sanitised), and must come out as exactly the new text.

mod common;

use postdesk_mail::{sanitize_html, trim};

fn html(name: &str) -> String {
    String::from_utf8(common::fixture(&format!("html_replies/{name}"))).unwrap()
}

/// Non-blank lines, whitespace collapsed (the rendering's blank lines and
/// non-breaking spaces are not what is tested).
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            l.split(|c: char| c.is_whitespace() || c == '\u{a0}')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn check(name: &str, expected: &[&str], rule: &str) {
    let raw = html(name);
    let (clean, _) = sanitize_html(&raw);
    for (label, body) in [("raw", raw.as_str()), ("sanitised", clean.as_str())] {
        let trimmed = trim::explain("", Some(body), &[]);
        assert_eq!(
            lines(&trimmed.text),
            expected,
            "{name} ({label}): {:?}\n{}",
            trimmed.rules,
            trimmed.text
        );
        assert_eq!(trimmed.source, "html", "{name} ({label})");
        // `a|b`: either rule (a sanitised body has lost its styles).
        assert!(
            rule.split('|')
                .any(|rule| trimmed.rules.iter().any(|r| r.contains(rule))),
            "{name} ({label}): no rule {rule:?} in {:?}",
            trimmed.rules
        );
    }
}

#[test]
fn gmail() {
    check(
        "gmail.html",
        &["Thanks, the new password works.", "Maria"],
        "blockquote.gmail_quote",
    );
}

#[test]
fn gmail_inline_answers_are_kept() {
    check(
        "gmail_inline.html",
        &[
            "Answers below.",
            "> Which version do you run?",
            "Version 4.2.",
            "> And which browser?",
            "Firefox on Linux.",
        ],
        "attribution (html) removed",
    );
}

#[test]
fn gmail_attributions_in_other_languages() {
    check(
        "gmail_german.html",
        &["Danke, jetzt klappt es."],
        "div.gmail_attr",
    );
    check(
        "gmail_russian.html",
        &["Спасибо, всё работает."],
        "div.gmail_attr",
    );
    check(
        "gmail_chinese.html",
        &["谢谢，问题已经解决了。"],
        "div.gmail_attr",
    );
    check(
        "japanese.html",
        &["ありがとうございます。解決しました。"],
        "div.gmail_attr",
    );
}

#[test]
fn outlook_desktop_border_box() {
    check(
        "outlook_desktop.html",
        &["Hi,", "the invoice number is 4711.", "Regards, Tom"],
        "border-top box with From:|history cut at header block",
    );
    check(
        "outlook_desktop_french.html",
        &["Bonjour, voici la facture demandée."],
        "border-top box with From:|history cut at header block",
    );
}

#[test]
fn outlook_web_and_mobile() {
    check(
        "outlook_web.html",
        &["I will send the logs tomorrow."],
        "#appendonsend",
    );
    check(
        "outlook_web_spanish.html",
        &["Ya lo he probado y funciona."],
        "<hr> before From:",
    );
    check(
        "outlook_mobile.html",
        &["Sure, Thursday works for me."],
        "#mail-editor-reference-message-container",
    );
}

#[test]
fn apple_mail() {
    check(
        "apple_mail.html",
        &["The parcel arrived today, thank you!"],
        "blockquote type=cite",
    );
    check(
        "apple_mail_macos.html",
        &["We are on version 12."],
        "blockquote type=cite",
    );
}

#[test]
fn thunderbird() {
    check(
        "thunderbird.html",
        &[
            "Hello,",
            "the error happens after the upgrade only.",
            "Peter",
        ],
        "div.moz-cite-prefix",
    );
    check(
        "thunderbird_inline.html",
        &[
            "> Is the printer on?",
            "Yes, it is on.",
            "> Is it connected by cable?",
            "No, by wifi.",
        ],
        "div.moz-cite-prefix",
    );
}

#[test]
fn yahoo() {
    check(
        "yahoo.html",
        &["I paid by card last week."],
        "div.yahoo_quoted",
    );
}

#[test]
fn yandex_and_mail_ru() {
    check(
        "yandex.html",
        &["Заказ получен, спасибо."],
        "attribution before quote",
    );
    check(
        "mailru.html",
        &["Да, адрес верный."],
        "attribution before quote",
    );
}

#[test]
fn zoho() {
    check(
        "zoho.html",
        &["Please cancel my subscription."],
        "attribution before quote",
    );
}

#[test]
fn protonmail() {
    check(
        "protonmail.html",
        &["The link works now."],
        "blockquote.protonmail_quote",
    );
}

#[test]
fn attributions_before_plain_blockquotes() {
    check(
        "french_plain_blockquote.html",
        &["Merci pour votre aide."],
        "blockquote",
    );
    check("dutch.html", &["Het werkt weer."], "blockquote type=cite");
    check("spanish.html", &["Sí, ya llegó."], "blockquote");
    check(
        "name_before_date.html",
        &["I attach the screenshot."],
        "blockquote type=cite",
    );
}

/// A quote with the customer's text below it is not history: nothing is cut.
#[test]
fn a_quote_in_the_middle_is_kept() {
    check(
        "customer_quotes_policy.html",
        &[
            "Your terms say:",
            "> Returns are accepted within 30 days.",
            "So why was my return refused?",
        ],
        "blockquote",
    );
}

/// Without quote structure, the plain text is trimmed as before.
#[test]
fn plain_text_without_html_structure() {
    let text = "Thanks!\n\nOn Mon, 1 Jan 2024 at 10:00, Support <s@example.com> wrote:\n> Hi\n";
    let trimmed = trim::explain(text, Some("<p>Thanks!</p>"), &[]);
    assert_eq!(trimmed.source, "text");
    assert_eq!(trimmed.text, "Thanks!");
    assert_eq!(trim::reply_text_of(text, None, &[]), "Thanks!");
}

/// A plain `blockquote` (no client marker, no attribution before it) does
/// not decide over a text/plain alternative; the customer's own text after
/// it is kept either way.
#[test]
fn a_bare_blockquote_does_not_override_the_text() {
    let html = "<p>See the bottom.</p><blockquote>A styled box</blockquote>";
    let text = "See the bottom.\n\nA styled box\n";
    let trimmed = trim::explain(text, Some(html), &[]);
    assert_eq!(trimmed.source, "text");
    assert_eq!(trimmed.text, "See the bottom.\n\nA styled box");
}

/// Private-use characters written by the sender are not taken for the
/// structural marks.
#[test]
fn sentinel_characters_in_mail_are_text() {
    let text =
        "First line\n\u{E000}second line\nthird \u{E001}line\u{E002}\n\u{E003}fourth\u{E004}\n";
    assert_eq!(trim::reply_text(text), text.trim_end());
    let html = "<p>First</p><p>\u{E000}second</p><p>\u{E003}third\u{E004}</p><div class=\"gmail_quote\">x</div>";
    let trimmed = trim::explain("", Some(html), &[]);
    assert_eq!(lines(&trimmed.text), ["First", "second", "third", "x"]);
}

/// Signatures the client marks in its HTML (an id, class or `name` naming
/// a signature) are removed, and only they: the history below is found by
/// its own marks, and answers written below a signature stay.
#[test]
fn signatures_marked_in_the_html() {
    check(
        "signature_outlook_web.html",
        &[
            "Hello Tom,",
            "the new invoice address is fine, thank you.",
            "Kind regards,",
            "Ruth",
        ],
        "signature (html) removed",
    );
    check(
        "signature_outlook_mobile.html",
        &["Ja, Donnerstag passt.", "Jonas"],
        "signature #ms-outlook-mobile-signature|signature #signature",
    );
    check(
        "signature_zoho.html",
        &["Hi Tom,", "The export works again."],
        "signature #zm-_id_-sgn|signature #signature",
    );
    check(
        "signature_gmail.html",
        &["Thanks, that solved it."],
        "signature .gmail_signature|signature .signature",
    );
    check(
        "signature_proton.html",
        &["Danke für die schnelle Hilfe."],
        "signature .protonmail_signature_block|signature .signature",
    );
    check(
        "signature_spark.html",
        &["Perfetto, grazie."],
        "signature [name=messagesignaturesection]|signature [name=signature]",
    );
    // A signature above the quote (Apple Mail's place for it); the answers
    // typed between the quoted questions below it stay.
    check(
        "signature_apple_inline.html",
        &[
            "Answers below.",
            "> Which plan are you on?",
            "Business.",
            "> How many seats?",
            "Twelve.",
        ],
        "signature (html) removed",
    );
}

/// A signature element with nothing of the writer's above it, or holding a
/// quote, is no signature: its text stays.
#[test]
fn signature_marks_that_hold_the_reply_are_text() {
    check(
        "signature_not_a_signature.html",
        &[
            "Hi Tom, I typed my whole answer into the signature box by mistake.",
            "Regards, Ivo",
            "Mentioned below:",
        ],
        "blockquote type=cite",
    );
}

/// With a text/plain alternative that has the signature as plain lines,
/// the HTML's marked signature decides (the line rules cannot know it).
#[test]
fn a_marked_signature_outweighs_the_text_plain_body() {
    let body = html("signature_outlook_web.html");
    let text = "Hello Tom,\n\nthe new invoice address is fine, thank you.\n\nKind regards,\nRuth\n\nRuth Bauer\nHead of Accounts | Fabrikam\n+49 30 1234567\n________________________________\nFrom: Support <help@example.com>\nSent: Monday, March 4, 2024 3:00 PM\nTo: Ruth Bauer <ruth@fabrikam.example>\nSubject: Invoice address\n\nHello Ruth,\n";
    let trimmed = trim::explain(text, Some(&body), &[]);
    assert_eq!(trimmed.source, "html", "{trimmed:?}");
    assert_eq!(
        lines(&trimmed.text),
        [
            "Hello Tom,",
            "the new invoice address is fine, thank you.",
            "Kind regards,",
            "Ruth"
        ]
    );
}

#[test]
fn gmx_and_outlook_2003() {
    check(
        "gmx.html",
        &["Hallo, die Rechnung ist bezahlt.", "Gruß Karl"],
        "div[name=quote]|history cut at header block",
    );
    check(
        "outlook2003.html",
        &["Please find the file attached."],
        "div.outlookmessageheader|<hr> before From:",
    );
}

/// A number is no date: the customer's line before their own quote stays.
#[test]
fn customer_line_before_a_quote_is_no_attribution() {
    check(
        "own_quote_with_number.html",
        &[
            "Here is what I ordered, order 4711:",
            "> 2 x blue chair",
            "Only one chair arrived.",
        ],
        "blockquote type=cite",
    );
}

/// Many quotes, links, rules and quote containers stay fast (every look at
/// siblings is bounded; the time is mostly html5ever's and html2text's, as
/// for any HTML body).
#[test]
fn hostile_shapes_stay_fast() {
    let started = std::time::Instant::now();
    let many = [
        "<blockquote>q</blockquote>".repeat(10_000),
        "<a href=\"https://x.example\">l</a>".repeat(10_000),
        "<hr><div>From: x</div>".repeat(10_000),
        "<div class=\"gmail_attr\">a 10:00:</div>".repeat(10_000),
        format!(
            "{}<blockquote>q</blockquote>{}",
            "<div class=\"yahoo_quoted\">".repeat(900),
            "</div>".repeat(900)
        ),
        format!("{}x{}", "<a href=\"h\">".repeat(900), "</a>".repeat(900)),
    ];
    for html in &many {
        let _ = trim::explain("", Some(html), &[]);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// With a text/plain body: when the line rules cut it to the same words as
/// the HTML's structure, its own layout is kept; when they miss the
/// history (here an attribution without a verb and no `>` quotes), the
/// HTML's structure decides.
#[test]
fn text_plain_alternative() {
    let body = html("gmail.html");
    let text = "Thanks, the new password works.\n\nMaria\n\nOn Tue, Mar 5, 2024 at 9:12 AM Support Team <help@example.com> wrote:\n\n> Hello Maria,\n> please try resetting your password.\n";
    let trimmed = trim::explain(text, Some(&body), &[]);
    assert_eq!(trimmed.source, "text");
    assert_eq!(trimmed.text, "Thanks, the new password works.\n\nMaria");
    assert!(
        trimmed.rules.iter().any(|r| r.contains("agrees")),
        "{trimmed:?}"
    );

    let body = html("gmail_russian.html");
    let text = "Спасибо, всё работает.\n\nвт, 5 мар. 2024 г. в 09:12, Служба поддержки:\n\nПопробуйте перезагрузить устройство.\n";
    let trimmed = trim::explain(text, Some(&body), &[]);
    assert_eq!(trimmed.source, "html", "{trimmed:?}");
    assert_eq!(lines(&trimmed.text), ["Спасибо, всё работает."]);
}
