//! Building replies and parsing them back.

mod common;

use chrono::{TimeZone, Utc};
use postdesk_mail::{
    BuildError, Mailbox, OutgoingAttachment, OutgoingEmail, build, new_message_id, parse,
    reply_subject,
};

fn all_bytes() -> Vec<u8> {
    (0..=255u8).cycle().take(3000).collect()
}

fn reply() -> OutgoingEmail {
    OutgoingEmail {
        from: Mailbox::named("Support Team", "support@example.com"),
        to: vec![Mailbox::named("Jane Customer", "jane@customer.example")],
        cc: vec![
            Mailbox::new("boss@customer.example"),
            Mailbox::named("Zoë Ærøskøbing", "zoe@customer.example"),
        ],
        bcc: vec![],
        subject: reply_subject("RE: Cannot log in"),
        message_id: new_message_id("example.com"),
        in_reply_to: Some("CAF=plain-0001@mail.customer.example".into()),
        references: vec![
            "root@example.com".into(),
            "<middle@example.com>".into(),
            "CAF=plain-0001@mail.customer.example".into(),
        ],
        date: Utc.with_ymd_and_hms(2024, 1, 15, 11, 0, 0).unwrap(),
        text: format!(
            "Hi Jane,\n\nplease try again — it works now.\n.\nFrom here on: {}\n\n> quoted line\nSupport\n",
            "long line ".repeat(30)
        ),
        html: None,
        attachments: vec![
            OutgoingAttachment {
                filename: "diagnostics.bin".into(),
                content_type: "application/octet-stream".into(),
                bytes: all_bytes(),
            },
            OutgoingAttachment {
                filename: "Übersicht – März €.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: b"%PDF-1.4 fake".to_vec(),
            },
        ],
    }
}

#[test]
fn round_trip() {
    let email = reply();
    let raw = build(&email).unwrap();
    let parsed = parse(&raw).unwrap();

    assert_eq!(parsed.from, Some(email.from.clone()));
    assert_eq!(parsed.to, email.to);
    assert_eq!(parsed.cc, email.cc);
    assert_eq!(parsed.subject, "Re: Cannot log in");
    assert_eq!(parsed.message_id, email.message_id);
    assert!(!parsed.message_id_synthetic);
    assert_eq!(
        parsed.in_reply_to.as_deref(),
        Some("CAF=plain-0001@mail.customer.example")
    );
    assert_eq!(
        parsed.references,
        [
            "root@example.com",
            "middle@example.com",
            "CAF=plain-0001@mail.customer.example"
        ]
    );
    assert_eq!(parsed.date, Some(email.date));
    assert_eq!(parsed.text, email.text);
    assert_eq!(parsed.html, None);

    assert_eq!(parsed.attachments.len(), 2);
    let bin = &parsed.attachments[0];
    assert_eq!(bin.filename, "diagnostics.bin");
    assert_eq!(bin.content_type, "application/octet-stream");
    assert_eq!(bin.bytes, all_bytes());
    assert!(!bin.inline);
    let pdf = &parsed.attachments[1];
    assert_eq!(pdf.filename, "Übersicht – März €.pdf");
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.bytes, b"%PDF-1.4 fake");

    let headers = common::header_lines(&raw);
    let has = |prefix: &str| headers.iter().any(|h| h.starts_with(prefix));
    assert!(has("MIME-Version: 1.0"), "{headers:#?}");
    assert!(has("Date: Mon, 15 Jan 2024 11:00:00 +0000"), "{headers:#?}");
    assert!(
        has(&format!("Message-ID: <{}>", email.message_id)),
        "{headers:#?}"
    );
    assert!(
        has("In-Reply-To: <CAF=plain-0001@mail.customer.example>"),
        "{headers:#?}"
    );
    assert!(has("Content-Type: multipart/mixed"), "{headers:#?}");
    // The non-ASCII file name is sent as an RFC 2231 parameter.
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("filename*"), "{text}");
    // The whole message is 7-bit clean with CRLF line endings.
    assert!(raw.is_ascii());
    assert!(!text.replace("\r\n", "").contains('\n'));
}

#[test]
fn reply_threads_under_parsed_message() {
    let customer = parse(&common::fixture("plain.eml")).unwrap();
    let mut references = customer.references.clone();
    references.push(customer.message_id.clone());
    let email = OutgoingEmail {
        from: Mailbox::named("Support", "support@example.com"),
        to: customer.reply_to.clone(),
        cc: vec![],
        bcc: vec![],
        subject: reply_subject(&customer.subject),
        message_id: new_message_id("example.com"),
        in_reply_to: Some(customer.message_id.clone()),
        references,
        date: Utc::now(),
        text: "Fixed.".into(),
        html: None,
        attachments: vec![],
    };
    let raw = build(&email).unwrap();
    let parsed = parse(&raw).unwrap();
    assert_eq!(parsed.in_reply_to.as_ref(), Some(&customer.message_id));
    assert_eq!(parsed.references.last(), Some(&customer.message_id));
    assert_eq!(parsed.references.len(), 4);
    assert_eq!(parsed.subject, "Re: Cannot log in after password reset");
    assert_eq!(parsed.to, customer.reply_to);
    assert_eq!(parsed.text, "Fixed.");
    assert!(parsed.attachments.is_empty());
    let headers = common::header_lines(&raw);
    assert!(
        headers
            .iter()
            .any(|h| h.starts_with("Content-Type: text/plain")),
        "{headers:#?}"
    );
}

#[test]
fn header_injection_is_neutralised() {
    let mut email = reply();
    email.subject = "Hello\r\nBcc: evil@x.example\r\n\r\nInjected body".into();
    email.from.name = Some("Support\r\nBcc: evil@x.example".into());
    email.to[0].name = Some("Jane\nBcc: evil@x.example".into());
    email.in_reply_to = Some("<ok@x>\r\nBcc: evil@x.example".into());
    email.references = vec![
        "fine@example.com".into(),
        "bad@x>\r\nBcc: evil@x.example".into(),
        "with space@example.com".into(),
    ];
    let raw = build(&email).unwrap();
    let headers = common::header_lines(&raw);
    assert!(
        !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("bcc")),
        "{headers:#?}"
    );
    // Invalid thread ids are left out rather than failing the reply.
    assert!(
        !headers.iter().any(|h| h.starts_with("In-Reply-To")),
        "{headers:#?}"
    );

    let parsed = parse(&raw).unwrap();
    assert_eq!(parsed.subject, "Hello Bcc: evil@x.example Injected body");
    assert_eq!(
        parsed.from.unwrap().name.as_deref(),
        Some("Support Bcc: evil@x.example")
    );
    assert_eq!(
        parsed.to[0].name.as_deref(),
        Some("Jane Bcc: evil@x.example")
    );
    assert_eq!(parsed.to.len(), 1);
    assert_eq!(parsed.in_reply_to, None);
    assert_eq!(parsed.references, ["fine@example.com"]);
    assert_eq!(parsed.text, email.text);
}

#[test]
fn invalid_addresses_and_ids_are_rejected() {
    let mut email = reply();
    email.to[0].email = "jane@customer.example\r\nBcc: evil@x".into();
    assert!(matches!(build(&email), Err(BuildError::InvalidAddress(_))));

    let mut email = reply();
    email.from.email = "not an address".into();
    assert!(matches!(build(&email), Err(BuildError::InvalidAddress(_))));

    let mut email = reply();
    email.cc.push(Mailbox::new("a@b@c"));
    assert!(matches!(build(&email), Err(BuildError::InvalidAddress(_))));

    let mut email = reply();
    email.to.clear();
    email.cc.clear();
    assert_eq!(build(&email), Err(BuildError::NoRecipients));

    let mut email = reply();
    email.message_id = "id@x\r\nBcc: evil@x".into();
    assert!(matches!(
        build(&email),
        Err(BuildError::InvalidMessageId(_))
    ));

    let mut email = reply();
    email.message_id = "  ".into();
    assert!(matches!(
        build(&email),
        Err(BuildError::InvalidMessageId(_))
    ));

    // Cc only is fine; a Message-ID given with brackets is accepted.
    let mut email = reply();
    email.to.clear();
    email.message_id = format!("<{}>", email.message_id);
    let parsed = parse(&build(&email).unwrap()).unwrap();
    assert!(parsed.to.is_empty());
    assert_eq!(parsed.cc.len(), 2);
    assert_eq!(format!("<{}>", parsed.message_id), email.message_id);
}

#[test]
fn attachment_names_and_types_are_sanitised() {
    let mut email = reply();
    email.attachments = vec![
        OutgoingAttachment {
            filename: "../../etc/passwd".into(),
            content_type: "text/plain\r\nX-Evil: 1".into(),
            bytes: b"data".to_vec(),
        },
        OutgoingAttachment {
            filename: "\"quoted\";name=x.txt".into(),
            content_type: "Text/Plain".into(),
            bytes: "naïve".as_bytes().to_vec(),
        },
        OutgoingAttachment {
            filename: String::new(),
            content_type: "image/png".into(),
            bytes: vec![0x89, b'P', b'N', b'G'],
        },
    ];
    let raw = build(&email).unwrap();
    assert!(
        !common::header_lines(&raw)
            .iter()
            .any(|h| h.starts_with("X-Evil")),
        "injected header"
    );
    assert!(!String::from_utf8_lossy(&raw).contains("X-Evil: 1\r\n"));
    let parsed = parse(&raw).unwrap();
    let names: Vec<&str> = parsed
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(names, ["passwd", "_quoted_;name=x.txt", "attachment"]);
    assert_eq!(
        parsed.attachments[0].content_type,
        "application/octet-stream"
    );
    assert_eq!(parsed.attachments[0].bytes, b"data");
    assert_eq!(parsed.attachments[1].content_type, "text/plain");
    assert_eq!(parsed.attachments[1].bytes, "naïve".as_bytes());
    assert_eq!(parsed.attachments[2].bytes, [0x89, b'P', b'N', b'G']);
}

#[test]
fn long_non_ascii_subject_round_trips() {
    let mut email = reply();
    email.subject = "Ärger mit der Rechnung für März – bitte dringend prüfen ".repeat(4);
    let raw = build(&email).unwrap();
    assert!(raw.is_ascii());
    let parsed = parse(&raw).unwrap();
    assert_eq!(parsed.subject, email.subject.trim());
}
