//! Delivery reports of many mail systems, standard and not: one fixture per
//! server family (tests/fixtures/bounces, written for these tests after each
//! system's documented notice format, texts our own, example domains).

mod common;

use postdesk_mail::{ParsedEmail, parse};

fn email(name: &str) -> ParsedEmail {
    parse(&common::fixture(&format!("bounces/{name}"))).expect("fixture parses")
}

/// `(fixture, kind, recipients, status)`; every failure and delay here is
/// about our reply `reply-77.ab12@support.example.com` where the notice
/// returns it.
const CASES: &[(&str, &str, &[&str], Option<&str>)] = &[
    (
        "exchange2003.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.1.1"),
    ),
    (
        "office365_html.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.1.10"),
    ),
    (
        "exim_delayed.eml",
        "delayed",
        &["jane@customer.example"],
        Some("4.7.1"),
    ),
    (
        "postfix_plain.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.1.1"),
    ),
    (
        "sendmail_old.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.1.1"),
    ),
    ("domino.eml", "failed", &["jane@customer.example"], None),
    ("groupwise.eml", "failed", &["jane@customer.example"], None),
    (
        "communigate.eml",
        "failed",
        &["jane@customer.example"],
        None,
    ),
    (
        "yahoo.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.7.9"),
    ),
    ("aol.eml", "failed", &["jane@customer.example"], None),
    ("hotmail.eml", "failed", &["jane@customer.example"], None),
    (
        "google_delayed.eml",
        "delayed",
        &["jane@customer.example"],
        Some("4.3.0"),
    ),
    (
        "listserv.eml",
        "failed",
        &["SUPPORT-L@LISTS.EXAMPLE.ORG"],
        None,
    ),
    (
        "qmail_old.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.1.1"),
    ),
    (
        "nested_report.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.2.2"),
    ),
    (
        "dsn_delayed_only.eml",
        "delayed",
        &["jane@customer.example"],
        Some("4.4.7"),
    ),
    (
        "unnamed_sender.eml",
        "failed",
        &["jane@customer.example"],
        None,
    ),
    // Mailing lists refusing a post: the list is the failed recipient, not
    // the manager's own addresses named in the notice.
    (
        "list_mailman3_rejected.eml",
        "failed",
        &["friends@lists.example.net"],
        None,
    ),
    (
        "list_sympa_rejected.eml",
        "failed",
        &["team@lists.example.com"],
        None,
    ),
    // A DSN passed on inside an attached message: by a relay (automatic
    // sender), and by a gateway about a message its addressee sent.
    (
        "attached_dsn_relay.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.1.1"),
    ),
    (
        "attached_dsn_about_us.eml",
        "failed",
        &["jane@customer.example"],
        Some("5.1.1"),
    ),
    // The same notice with a bounce address as its envelope sender.
    (
        "unnamed_sender_bounce_path.eml",
        "failed",
        &["jane@customer.example"],
        None,
    ),
    (
        "exchange_delayed_german.eml",
        "delayed",
        &["jane@customer.example"],
        None,
    ),
    (
        "mdn_read_receipt.eml",
        "receipt",
        &["jane@customer.example"],
        None,
    ),
    (
        "arf_abuse.eml",
        "feedback",
        &["jane@customer.example"],
        None,
    ),
];

#[test]
fn every_server_family_is_recognised() {
    let mut failures = Vec::new();
    for (name, kind, recipients, status) in CASES {
        let email = email(name);
        let Some(bounce) = email.bounce.as_ref() else {
            failures.push(format!("{name}: not recognised"));
            continue;
        };
        let recipients: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
        let mut problems = Vec::new();
        if bounce.kind != *kind {
            problems.push(format!("kind {} (want {kind})", bounce.kind));
        }
        if bounce.is_bounce != (*kind == "failed") {
            problems.push(format!("is_bounce {}", bounce.is_bounce));
        }
        let got: Vec<String> = bounce.recipients.iter().map(|r| r.to_lowercase()).collect();
        let want: Vec<String> = recipients.iter().map(|r| r.to_lowercase()).collect();
        if got != want {
            problems.push(format!("recipients {:?}", bounce.recipients));
        }
        if let Some(status) = status
            && bounce.status.as_deref() != Some(*status)
        {
            problems.push(format!("status {:?} (want {status})", bounce.status));
        }
        if bounce.rule.is_empty() {
            problems.push("no rule".to_string());
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {} [{}]", problems.join(", "), bounce.rule));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_original_message_is_found() {
    for name in [
        "office365_html.eml",
        "postfix_plain.eml",
        "sendmail_old.eml",
        "domino.eml",
        "groupwise.eml",
        "communigate.eml",
        "yahoo.eml",
        "qmail_old.eml",
        "nested_report.eml",
        "attached_dsn_relay.eml",
        "attached_dsn_about_us.eml",
        "dsn_delayed_only.eml",
        "mdn_read_receipt.eml",
        "arf_abuse.eml",
    ] {
        let bounce = email(name).bounce.unwrap();
        assert_eq!(
            bounce.original_message_id.as_deref(),
            Some("reply-77.ab12@support.example.com"),
            "{name}"
        );
    }
}

#[test]
fn permanent_and_temporary() {
    for name in [
        "exchange2003.eml",
        "postfix_plain.eml",
        "qmail_old.eml",
        "yahoo.eml",
    ] {
        assert!(email(name).bounce.unwrap().permanent, "{name}");
    }
    for name in [
        "exim_delayed.eml",
        "google_delayed.eml",
        "dsn_delayed_only.eml",
    ] {
        let bounce = email(name).bounce.unwrap();
        assert!(!bounce.permanent && !bounce.is_bounce, "{name}");
    }
}

/// Read receipts carry the disposition.
#[test]
fn read_receipt_disposition() {
    let bounce = email("mdn_read_receipt.eml").bounce.unwrap();
    assert_eq!(bounce.feedback_type.as_deref(), Some("displayed"));
}

/// An auto-reply and a person's email about a failed delivery are no
/// reports.
#[test]
fn auto_replies_and_people_are_not_bounces() {
    let auto = email("not_autoreply.eml");
    assert!(auto.auto_reply);
    assert_eq!(auto.bounce, None);
    let human = email("not_human_quoting_bounce.eml");
    assert_eq!(human.bounce, None);
    assert!(!human.auto_reply);
}

/// A person who pastes a bounce or its DSN fields into an email of their
/// own (their own mailbox as envelope sender, no reply to anything) wrote
/// an email, not a report: mail systems send notices with a null
/// reverse-path.
#[test]
fn pasted_notices_in_a_persons_email_are_not_reports() {
    for name in ["not_human_pasted_notice.eml", "not_human_pasted_dsn.eml"] {
        let human = email(name);
        assert_eq!(human.bounce, None, "{name}");
        assert!(!human.auto_reply, "{name}");
    }
}

/// A report inside an attached message counts when the outer message is
/// automatic or the report is about a message its addressee sent; a bounce
/// a person forwards about their own email is their question.
#[test]
fn reports_inside_attached_messages() {
    let relayed = email("attached_dsn_relay.eml").bounce.unwrap();
    assert!(
        relayed.rule.starts_with("attached report: RFC 3464"),
        "{}",
        relayed.rule
    );
    assert!(relayed.permanent);
    for name in [
        "not_attached_own_bounce.eml",
        "not_attached_other_bounce.eml",
    ] {
        assert_eq!(email(name).bounce, None, "{name}");
    }
}

/// A list manager holding a post for its moderator, a digest that talks
/// about rejected mail, and a list's post under the list's own address are
/// no refusals.
#[test]
fn list_notices_that_refuse_nothing_are_not_reports() {
    for name in [
        "not_list_held.eml",
        "not_list_digest.eml",
        "not_list_post.eml",
    ] {
        assert_eq!(email(name).bounce, None, "{name}");
    }
    let refused = email("list_mailman3_rejected.eml").bounce.unwrap();
    assert!(refused.permanent);
    assert!(
        refused.rule.contains("mailing list refused the post"),
        "{}",
        refused.rule
    );
    assert_eq!(
        refused.original_message_id.as_deref(),
        Some("reply-77.ab12@support.example.com")
    );
}
