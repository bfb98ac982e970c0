//! Parsing hand-written fixtures.

mod common;

use chrono::{TimeZone, Utc};
use common::{fixture, fixture_b64};
use postdesk_mail::{Mailbox, ParseError, ParsedEmail, parse};

fn parse_fixture(name: &str) -> ParsedEmail {
    parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn plain_text_email_all_fields() {
    let email = parse_fixture("plain.eml");

    assert_eq!(email.message_id, "CAF=plain-0001@mail.customer.example");
    assert!(!email.message_id_synthetic);
    // In-Reply-To lists two ids: the first one is the parent.
    assert_eq!(
        email.in_reply_to.as_deref(),
        Some("reply-parent@example.com")
    );
    // References is folded over three lines (space and tab continuation).
    assert_eq!(
        email.references,
        [
            "root@example.com",
            "middle@example.com",
            "reply-parent@example.com"
        ]
    );
    assert_eq!(
        email.from,
        Some(Mailbox::named("Jane Customer", "jane@customer.example"))
    );
    assert_eq!(
        email.to,
        [
            Mailbox::named("Support Team", "support@example.com"),
            Mailbox::new("billing@example.com"),
        ]
    );
    // Quoted display name with a comma; the address keeps its case.
    assert_eq!(
        email.cc,
        [Mailbox::named("Doe, John", "John.Doe@Customer.Example")]
    );
    assert_eq!(email.cc[0].normalized_email(), "john.doe@customer.example");
    assert_eq!(
        email.reply_to,
        [Mailbox::named("Jane at home", "jane.home@customer.example")]
    );
    // Folded subject is unfolded to one line.
    assert_eq!(email.subject, "Cannot log in after password reset");
    // 10:30 +0100 is 09:30 UTC.
    assert_eq!(
        email.date,
        Some(Utc.with_ymd_and_hms(2024, 1, 15, 9, 30, 0).unwrap())
    );
    assert_eq!(
        email.text,
        "Hello,\n\nI reset my password yesterday and now I cannot log in – the page says \"invalid token\".\n\nThanks,\nJane\n"
    );
    assert_eq!(email.html, None);
    assert!(!email.remote_images);
    assert!(email.attachments.is_empty());
    assert!(!email.auto_reply);
    assert_eq!(email.bounce, None);
}

#[test]
fn missing_message_id_gets_stable_synthetic_id() {
    let raw = fixture("no_message_id.eml");
    let first = parse(&raw).unwrap();
    let again = parse(&raw.clone()).unwrap();
    assert!(first.message_id_synthetic);
    assert_eq!(first.message_id, again.message_id);
    assert!(
        first.message_id.ends_with("@postdesk.invalid"),
        "{}",
        first.message_id
    );
    let local = first.message_id.split('@').next().unwrap();
    assert_eq!(local.len(), 32);
    assert!(local.bytes().all(|b| b.is_ascii_hexdigit()));

    // One byte more in the body: a different id.
    let mut other = raw.clone();
    other.extend_from_slice(b"!");
    let other = parse(&other).unwrap();
    assert!(other.message_id_synthetic);
    assert_ne!(other.message_id, first.message_id);

    // CRLF fixture: line endings are normalised in the text.
    assert_eq!(first.text, "Body without a Message-ID.\n");
    assert_eq!(first.subject, "No id here");
}

#[test]
fn empty_message_id_header_is_synthetic() {
    let raw = b"From: a@example.org\nMessage-ID:   \nSubject: x\n\nbody\n";
    let email = parse(raw).unwrap();
    assert!(email.message_id_synthetic);
    assert!(email.message_id.ends_with("@postdesk.invalid"));
}

#[test]
fn message_id_without_angle_brackets_is_kept() {
    let raw = b"From: a@example.org\nMessage-ID: bare-id@example.org\nIn-Reply-To: <p@example.org>\n\nbody\n";
    let email = parse(raw).unwrap();
    assert_eq!(email.message_id, "bare-id@example.org");
    assert!(!email.message_id_synthetic);
    assert_eq!(email.in_reply_to.as_deref(), Some("p@example.org"));
}

#[test]
fn alternative_html_is_sanitised() {
    let email = parse_fixture("alternative.eml");
    let html = email.html.as_deref().expect("html body");

    for bad in [
        "<script",
        "document.cookie",
        "onload",
        "onerror",
        "onmouseover",
        "javascript:",
        "JaVaScRiPt",
        "alert",
        "<style",
        "background: url",
        "<link",
        "<meta",
        "refresh",
        "<iframe",
        "<form",
        "<input",
        "style=",
        "Newsletter title",
        "evil.example",
    ] {
        assert!(!html.contains(bad), "{bad:?} survived in {html}");
    }
    assert!(html.contains("<p>Hello <b>agent</b>"), "{html}");
    assert!(
        html.contains(r#"<a href="https://docs.example.com/guide""#),
        "{html}"
    );
    assert!(
        html.contains("<ul><li>first</li><li>second</li></ul>"),
        "{html}"
    );
    assert!(
        html.contains(r#"<img src="https://track.example/pixel.gif""#),
        "{html}"
    );
    assert!(email.remote_images);
    // The text/plain alternative is the text, not a rendering of the HTML.
    assert_eq!(
        email.text,
        "Hello agent, please see the guide: https://docs.example.com/guide"
    );
    // -0500
    assert_eq!(
        email.date,
        Some(Utc.with_ymd_and_hms(2024, 1, 17, 17, 0, 0).unwrap())
    );
}

#[test]
fn html_only_email_gets_text_rendering() {
    let email = parse_fixture("html_only.eml");
    let html = email.html.as_deref().unwrap();
    assert!(!html.contains("script"), "{html}");
    assert!(html.contains("<h1>Order #1234</h1>"), "{html}");
    assert!(!email.remote_images);
    let text = &email.text;
    assert!(text.contains("Order #1234"), "{text}");
    assert!(text.contains("Where is my order?"), "{text}");
    assert!(text.contains("https://shop.example/orders/1234"), "{text}");
    assert!(!text.contains('<'), "{text}");
    assert!(!text.contains("alert"), "{text}");
}

#[test]
fn mixed_attachments_and_inline_image() {
    let raw = fixture("mixed.eml");
    let email = parse(&raw).unwrap();

    let html = email.html.as_deref().unwrap();
    assert!(
        html.contains(r#"src="cid:screenshot.1@customer.example""#),
        "{html}"
    );
    assert!(!email.remote_images);
    assert_eq!(
        email.text,
        "See the screenshot below and the invoice attached."
    );

    let names: Vec<&str> = email
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "screenshot.png",
            "invoice-2024-001.pdf",
            "passwd",
            "evilname[31m.exe",
            "attachment.gif"
        ]
    );

    // Inline image referenced by cid: (no Content-Disposition at all).
    let png = &email.attachments[0];
    assert_eq!(png.content_type, "image/png");
    assert_eq!(
        png.content_id.as_deref(),
        Some("screenshot.1@customer.example")
    );
    assert!(png.inline);
    let expected_png = fixture_b64("png.b64");
    assert_eq!(png.bytes, expected_png);
    assert_eq!(png.size, expected_png.len());
    assert!(png.bytes.starts_with(b"\x89PNG\r\n\x1a\n"));

    // PDF: bytes decoded exactly (includes every byte value 0..=255).
    let pdf = &email.attachments[1];
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.content_id, None);
    assert!(!pdf.inline);
    let expected_pdf = fixture_b64("pdf.b64");
    assert!(expected_pdf.starts_with(b"%PDF-1.4"));
    assert_eq!(pdf.bytes, expected_pdf);
    assert_eq!(pdf.size, expected_pdf.len());
    // The fixture really carries that base64 text.
    let b64 = String::from_utf8(fixture("pdf.b64")).unwrap();
    assert!(
        String::from_utf8_lossy(&raw).contains(b64.trim()),
        "fixture out of sync"
    );

    // Path traversal and control characters are neutralised.
    let passwd = &email.attachments[2];
    assert_eq!(passwd.content_type, "text/plain");
    assert_eq!(passwd.bytes, b"root:x:0:0:root:/root:/bin/bash");
    assert!(!passwd.inline);
    let exe = &email.attachments[3];
    assert!(exe.filename.chars().all(|c| !c.is_control()));
    assert!(!exe.filename.contains('/'));
    assert_eq!(exe.bytes, b"MZ fake exe");

    // Content-Disposition: inline without a name: fallback from the type.
    let gif = &email.attachments[4];
    assert!(gif.inline);
    assert_eq!(gif.content_type, "image/gif");
    assert_eq!(gif.bytes, b"GIF89a fake");
}

#[test]
fn encoded_words_and_rfc2231_filenames() {
    let email = parse_fixture("encoded.eml");
    // UTF-8 B-encoded, continued by a Q-encoded word on a folded line.
    assert_eq!(email.subject, "Problème avec la facture € n° 42");
    // ISO-8859-1 Q-encoded display name.
    assert_eq!(
        email.from,
        Some(Mailbox::named(
            "François Müller",
            "francois@customer.example"
        ))
    );
    assert_eq!(email.to[0].name.as_deref(), Some("Support ✔"));
    // ISO-8859-1 quoted-printable body.
    assert_eq!(
        email.text,
        "Bonjour, la facture est jointe. Merci, François"
    );

    let pdf = &email.attachments[0];
    // RFC 2231 UTF-8 extended value.
    assert_eq!(pdf.filename, "Rechnung € März.pdf");
    assert_eq!(pdf.bytes, b"%PDF-1.4 euro");

    // RFC 2231 continuations, ISO-8859-1 first segment.
    let csv = &email.attachments[1];
    assert_eq!(csv.filename, "données clients.csv");
    assert_eq!(csv.content_type, "text/csv");
    // Text attachments keep their bytes: Latin-1, not transcoded to UTF-8.
    let latin1: Vec<u8> = "name;city\nJosé;Zürich\n"
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    assert_eq!(csv.bytes, latin1);
    assert_eq!(csv.size, latin1.len());
}

#[test]
fn attached_message_and_text_attachments() {
    let raw = b"From: a@example.org\n\
Subject: fwd\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b\"\n\
\n\
--b\n\
Content-Type: text/plain\n\
\n\
see attached\n\
--b\n\
Content-Type: message/rfc822\n\
\n\
From: inner@example.org\n\
Subject: Inner: report / Q1\n\
\n\
inner body\n\
--b\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Disposition: attachment; filename=notes.txt\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
caf=C3=A9 =3D ok\n\
--b--\n";
    let email = parse(raw).unwrap();
    assert_eq!(email.text, "see attached");
    assert_eq!(email.attachments.len(), 2);
    let inner = &email.attachments[0];
    assert_eq!(inner.content_type, "message/rfc822");
    assert_eq!(inner.filename, "Inner_ report - Q1.eml");
    assert!(String::from_utf8_lossy(&inner.bytes).contains("inner body"));
    let notes = &email.attachments[1];
    assert_eq!(notes.filename, "notes.txt");
    assert_eq!(notes.bytes, "café = ok".as_bytes());
}

#[test]
fn bounce_report_is_detected() {
    let email = parse_fixture("bounce.eml");
    let bounce = email.bounce.expect("delivery-status report");
    assert!(bounce.is_bounce);
    assert!(bounce.permanent);
    assert_eq!(bounce.recipients, ["nobody@customer.example"]);
    assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
    assert!(
        bounce
            .diagnostic
            .as_deref()
            .unwrap()
            .contains("User unknown")
    );
    // DSNs carry Auto-Submitted.
    assert!(email.auto_reply);
    assert!(email.text.contains("could not be delivered"));
}

#[test]
fn auto_reply_detection() {
    let cases: &[(&str, bool)] = &[
        ("Subject: Question", false),
        ("Auto-Submitted: no\nSubject: Question", false),
        ("Auto-Submitted: auto-replied\nSubject: Question", true),
        ("Auto-Submitted: auto-generated; owner-email=x@y.z", true),
        ("auto-submitted: AUTO-NOTIFIED", true),
        ("X-Autoreply: yes", true),
        ("X-Autorespond: vacation", true),
        ("X-Autoreply: no", false),
        ("Precedence: bulk", true),
        ("Precedence: junk", true),
        ("Precedence: list", true),
        ("Precedence: auto_reply", true),
        ("Precedence: first-class", false),
        ("X-Auto-Response-Suppress: All", true),
        ("X-Auto-Response-Suppress: OOF, AutoReply", true),
        ("X-Auto-Response-Suppress:", false),
        ("Subject: Out of Office: back on Monday", true),
        ("Subject: OUT OF OFFICE", true),
        ("Subject: Automatic reply: Your ticket", true),
        ("Subject: Auto: I'm away", true),
        ("Subject: Re: Out of office plans", false),
        ("Subject: Automation question", false),
    ];
    for (headers, expected) in cases {
        let raw = format!("From: a@example.org\nTo: support@example.com\n{headers}\n\nbody\n");
        let email = parse(raw.as_bytes()).unwrap();
        assert_eq!(email.auto_reply, *expected, "headers {headers:?}");
    }
}

#[test]
fn groups_and_odd_addresses() {
    let raw = b"From: \"Only Name\" <>\n\
To: undisclosed-recipients:;\n\
Cc: Team: a@example.org, B <b@example.org>;, c@example.org\n\
Subject: x\n\nbody\n";
    let email = parse(raw).unwrap();
    assert_eq!(email.from, None);
    assert!(email.to.is_empty());
    let cc: Vec<&str> = email.cc.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(cc, ["a@example.org", "b@example.org", "c@example.org"]);
    assert_eq!(email.cc[1].name.as_deref(), Some("B"));
}

#[test]
fn missing_and_invalid_fields() {
    let raw = b"X-Note: nothing else\n\nbody\n";
    let email = parse(raw).unwrap();
    assert_eq!(email.subject, "");
    assert_eq!(email.from, None);
    assert_eq!(email.date, None);
    assert_eq!(email.in_reply_to, None);
    assert!(email.references.is_empty());
    assert_eq!(email.text, "body\n");

    let raw = b"From: a@example.org\nDate: not a date at all\n\nbody\n";
    assert_eq!(parse(raw).unwrap().date, None);

    // Headers only, no body.
    let email = parse(b"From: a@example.org\nSubject: hi").unwrap();
    assert_eq!(email.subject, "hi");
    assert_eq!(email.text, "");
}

#[test]
fn not_an_email() {
    for input in [
        &b""[..],
        b"   \r\n\t\n",
        b"hello world",
        b"just some text\nwith: a colon on line two\n",
        b"\x00\x01\x02\x03\xff\xfe",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n",
        b"<html><body>hi</body></html>",
        b": no name\n\nbody",
    ] {
        match parse(input) {
            Err(ParseError::NotAnEmail(reason)) => assert!(!reason.is_empty()),
            Ok(email) => panic!("{input:?} parsed as {email:?}"),
        }
    }
}

#[test]
fn mbox_from_line_is_skipped() {
    let raw = b"From jane@customer.example Mon Jan 15 10:30:00 2024\nFrom: jane@customer.example\nSubject: mbox\n\nbody\n";
    let email = parse(raw).unwrap();
    assert_eq!(email.subject, "mbox");
    assert_eq!(email.from, Some(Mailbox::new("jane@customer.example")));
}

/// Every prefix of every fixture, and a few mangled variants, parse without
/// panicking; a prefix that starts with a header field always parses.
#[test]
fn truncated_and_mangled_inputs_never_fail_hard() {
    for name in [
        "plain.eml",
        "no_message_id.eml",
        "alternative.eml",
        "mixed.eml",
        "encoded.eml",
        "html_only.eml",
        "bounce.eml",
    ] {
        let raw = fixture(name);
        for end in 0..=raw.len() {
            let prefix = &raw[..end];
            match parse(prefix) {
                Ok(_) => {}
                Err(ParseError::NotAnEmail(reason)) => {
                    assert!(end < 20, "{name}[..{end}] rejected: {reason}")
                }
            }
        }
        // Boundaries and encodings broken in various ways.
        let text = String::from_utf8_lossy(&raw).into_owned();
        for mangled in [
            text.replace("--", "-"),
            text.replace("boundary=", "boundary"),
            text.replace("base64", "quoted-printable"),
            text.replace("quoted-printable", "base64"),
            text.replace('\n', "\r"),
            text.replace(':', ""),
            text.replace('=', "=\u{0}"),
        ] {
            let _ = parse(mangled.as_bytes());
            let _ = postdesk_mail::inspect(mangled.as_bytes());
        }
    }
}

#[test]
fn format_flowed_text_has_its_soft_line_breaks_joined() {
    // Thunderbird's form (RFC 3676): soft line breaks end with a space,
    // quotes keep their depth, the signature separator stays.
    let email = parse_fixture("flowed/thunderbird.eml");
    assert_eq!(
        email.text,
        "Thanks, the export went through after the restart and the file has all 1,204 rows.\n\
         \n\
         Pat\n\
         \n\
         On 04/03/2024 08:12, Support wrote:\n\
         > Could you restart the export and tell us whether the file is complete?\n\
         >\n\
         >> Earlier: the export stops at 50%.\n\
         -- \n\
         Pat Lee\n"
    );
    // Every reader of the text gets the joined lines: the reply trimming too.
    assert_eq!(
        postdesk_mail::trim::reply_text_of(&email.text, email.html.as_deref(), &[]),
        "Thanks, the export went through after the restart and the file has all 1,204 rows.\n\nPat"
    );

    // `delsp=yes`: the space before a soft line break was added by the
    // sender (text without spaces between words); space-stuffing removed.
    let email = parse_fixture("flowed/delsp_alternative.eml");
    assert_eq!(
        email.text,
        "請求書を受け取りました。ありがとうございます。\n\nFrom Kenji"
    );

    // Without `format=flowed`, a trailing space is no soft line break.
    let email = parse_fixture("flowed/fixed.eml");
    assert_eq!(
        email.text,
        "A line that ends with a space \nstays as it is without format=flowed.\n"
    );
}
