//! The whole inbound pipeline over one raw message, shared by the `inbound`
//! fuzz target (`fuzz/fuzz_targets/inbound.rs`) and the regression tests
//! (`crates/mail/tests/fuzz_regressions.rs`), which include this file with
//! `#[path]` so that a crash input replays exactly what the fuzzer ran.
//!
//! It only uses `postdesk-mail` (the mail crate's tests cannot depend on
//! `postdesk-core`); the threading step is passed in by the caller.
//!
//! Every `assert!` here is a documented guarantee of the mail crate that
//! follows directly from its code: a failing one is a bug, never noise.

use postdesk_mail::{
    MAX_ATTACHMENTS, Mailbox, OutgoingAttachment, OutgoingEmail, ParsedEmail, build, inspect,
    parse, reply_subject, rewrite_cid_sources, sanitize_html, trim,
};

/// Replies "we" sent earlier, for `reply_text_with_history`.
pub const OUR_MESSAGES: &[&str] = &[
    "Thanks for reaching out, we are looking into it.",
    "Could you send us a screenshot of the error message?",
    "Hi Jane,\n\nyour refund has been issued.\n\nBest regards,\nSupport Team",
    "ok",
];

/// Message-ID of the reply built in the round trip.
pub const REPLY_ID: &str = "fuzz-reply@postdesk.invalid";

/// Attachments of the original carried into the built reply, at most.
const MAX_REPLY_ATTACHMENTS: usize = 3;

/// What one run produced, for the regression tests to check.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `parse` succeeded.
    pub email: Option<ParsedEmail>,
    /// `reply_text` of the body.
    pub reply_text: Option<String>,
    /// Bytes of the reply built from the parsed fields (`build` succeeded).
    pub built: Option<Vec<u8>>,
    /// Those bytes parsed again.
    pub reparsed: Option<ParsedEmail>,
}

/// Runs parse (which classifies and sanitises), trim, sanitise, cid
/// rewriting, reply subject, inspect, the caller's threading step and a
/// build/parse round trip over `data`. Panics only when a guarantee is
/// broken (or the code under test panics).
///
/// `reply_references(parent_references, parent_id)` gives the References of
/// a reply (`postdesk_core::thread::reply_references` in the fuzz target).
pub fn run(data: &[u8], reply_references: &dyn Fn(&[String], &str) -> Vec<String>) -> Outcome {
    let parsed = parse(data);

    // inspect always gives a JSON object, with "error" exactly when parse fails.
    let report = inspect(data);
    assert!(report.is_object(), "inspect gave {report}");
    assert_eq!(
        report.get("error").is_some(),
        parsed.is_err(),
        "inspect and parse disagree"
    );
    let _ = report.to_string();

    let Ok(email) = parsed else {
        return Outcome::default();
    };
    assert_eq!(
        report.get("message_id").and_then(|v| v.as_str()),
        Some(email.message_id.as_str())
    );
    assert!(!email.message_id.is_empty());
    assert!(!email.text.contains('\r'), "text keeps a CR");
    assert!(email.attachments.len() <= MAX_ATTACHMENTS);
    for a in &email.attachments {
        assert!(!a.filename.is_empty(), "empty attachment filename");
        assert_eq!(a.size, a.bytes.len());
    }

    // Trimming: never hides a message entirely.
    let reply = trim::reply_text(&email.text);
    let with_history = trim::reply_text_with_history(&email.text, OUR_MESSAGES);
    if !email.text.trim().is_empty() {
        assert!(!reply.trim().is_empty(), "reply_text hid the whole message");
        assert!(
            !with_history.trim().is_empty(),
            "reply_text_with_history hid the whole message"
        );
    }

    // Trimming with the HTML's quote structure (the stored, sanitised HTML,
    // and the text taken as raw HTML): never hides a message either.
    let with_html = trim::explain(&email.text, email.html.as_deref(), OUR_MESSAGES);
    if !email.text.trim().is_empty() {
        assert!(
            !with_html.text.trim().is_empty(),
            "reply_text_of hid the whole message ({:?})",
            with_html.rules
        );
    }
    let _ = trim::explain("", Some(&email.text), OUR_MESSAGES);

    // Sanitising arbitrary text as HTML.
    let (clean, _remote) = sanitize_html(&email.text);
    assert!(
        !clean.to_ascii_lowercase().contains("<script"),
        "sanitize_html kept a script element"
    );

    // Inline images: rewrite cid: sources to attachment URLs, and sanitise
    // the already sanitised HTML again.
    if let Some(html) = &email.html {
        let _ = rewrite_cid_sources(html, |cid| {
            email
                .cid_attachment(cid)
                .map(|i| format!("/api/v1/attachments/{i}?a=1&b=\"2\""))
        });
        let _ = sanitize_html(html);
    }

    let subject = reply_subject(&email.subject);
    assert!(subject.starts_with("Re: "), "reply subject {subject:?}");

    // Build a reply-like message from the parsed fields and parse it back.
    let references = reply_references(&email.references, &email.message_id);
    let outgoing = OutgoingEmail {
        from: email
            .from
            .clone()
            .unwrap_or_else(|| Mailbox::named("Support", "support@example.com")),
        to: if email.to.is_empty() {
            vec![Mailbox::new("customer@example.org")]
        } else {
            email.to.clone()
        },
        cc: email.cc.clone(),
        bcc: vec![],
        subject: email.subject.clone(),
        message_id: REPLY_ID.to_string(),
        in_reply_to: Some(email.message_id.clone()),
        references,
        date: email.date.unwrap_or_default(),
        text: email.text.clone(),
        html: None,
        attachments: email
            .attachments
            .iter()
            .take(MAX_REPLY_ATTACHMENTS)
            .map(|a| OutgoingAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                bytes: a.bytes.clone(),
            })
            .collect(),
    };
    let mut outcome = Outcome {
        reply_text: Some(reply),
        ..Outcome::default()
    };
    if let Ok(bytes) = build(&outgoing) {
        let again = parse(&bytes).expect("a message built by postdesk parses");
        // The subject's visible content survives. Literal `=?` text in a
        // subject is written as is and then read as an encoded word, so such
        // subjects are not compared.
        if !email.subject.contains("=?") {
            assert_eq!(
                visible(&again.subject),
                visible(&email.subject),
                "subject changed in the round trip"
            );
        }
        outcome.built = Some(bytes);
        outcome.reparsed = Some(again);
    }
    outcome.email = Some(email);
    outcome
}

/// The characters of `s` other than whitespace and controls.
pub fn visible(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect()
}
