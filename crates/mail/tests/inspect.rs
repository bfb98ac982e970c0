//! The JSON of `postdesk inspect`.

mod common;

use postdesk_mail::inspect;
use serde_json::{Value, json};

#[test]
fn garbage_gives_error_object() {
    for input in [
        &b""[..],
        b"\n\n",
        b"not an email",
        b"\xff\xfe\x00\x00garbage",
        &[0u8; 64],
    ] {
        let value = inspect(input);
        let object = value.as_object().expect("object");
        assert_eq!(object.len(), 1, "{value}");
        let error = object["error"].as_str().expect("error string");
        assert!(error.starts_with("not an email: "), "{error}");
        // Valid JSON text.
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }
}

#[test]
fn email_shape() {
    let value = inspect(&common::fixture("mixed.eml"));
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "message_id",
        "message_id_synthetic",
        "in_reply_to",
        "references",
        "from",
        "to",
        "cc",
        "reply_to",
        "subject",
        "date",
        "text",
        "reply_text",
        "html",
        "remote_images",
        "attachments",
        "auto_reply",
        "bounce",
    ] {
        assert!(keys.contains(&key), "missing {key} in {keys:?}");
    }
    assert_eq!(value["message_id"], "mixed-0001@customer.example");
    assert_eq!(value["in_reply_to"], Value::Null);
    assert_eq!(value["references"], json!([]));
    assert_eq!(
        value["from"],
        json!({"name": "Jane Customer", "email": "jane@customer.example"})
    );
    assert_eq!(
        value["to"],
        json!([{"name": null, "email": "support@example.com"}])
    );
    assert_eq!(value["cc"], json!([]));
    assert_eq!(value["date"], "2024-01-18T09:15:00+00:00");
    assert_eq!(value["bounce"], Value::Null);
    assert_eq!(value["auto_reply"], false);
    assert_eq!(
        value["attachments"][0],
        json!({
            "filename": "screenshot.png",
            "content_type": "image/png",
            "size": 70,
            "inline": true,
            "content_id": "screenshot.1@customer.example",
        })
    );
    assert_eq!(value["attachments"][1]["filename"], "invoice-2024-001.pdf");
    assert_eq!(value["attachments"][1]["content_id"], Value::Null);
    assert!(value["html"].as_str().unwrap().contains("cid:screenshot"));
}

#[test]
fn reply_text_and_bounce() {
    let raw = b"From: Jane <jane@customer.example>\n\
Message-ID: <r1@customer.example>\n\
In-Reply-To: <s1@example.com>\n\
Subject: Re: Help\n\
\n\
That worked, thanks!\n\
\n\
On Mon, 15 Jan 2024 at 11:00, Support <support@example.com> wrote:\n\
> Please try again.\n\
>\n\
> Support\n";
    let value = inspect(raw);
    assert_eq!(value["reply_text"], "That worked, thanks!");
    assert!(
        value["text"]
            .as_str()
            .unwrap()
            .contains("> Please try again.")
    );
    assert_eq!(value["in_reply_to"], "s1@example.com");
    assert_eq!(value["date"], Value::Null);

    let value = inspect(&common::fixture("bounce.eml"));
    assert_eq!(value["bounce"]["is_bounce"], true);
    assert_eq!(value["bounce"]["permanent"], true);
    assert_eq!(value["bounce"]["status"], "5.1.1");
    assert_eq!(
        value["bounce"]["recipients"],
        json!(["nobody@customer.example"])
    );
}

/// `postdesk inspect` says which rules decided the trimming and the
/// classification.
#[test]
fn rules_that_decided() {
    let html = String::from_utf8(common::fixture("html_replies/thunderbird.html")).unwrap();
    let raw = format!(
        "From: Peter <peter@customer.example>\r\nTo: support@example.com\r\nSubject: Re: Error\r\nMessage-ID: <tb-1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}"
    );
    let value = inspect(raw.as_bytes());
    assert_eq!(value["reply_source"], "html", "{value}");
    let rules: Vec<&str> = value["reply_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(rules.contains(&"html: div.moz-cite-prefix"), "{rules:?}");
    assert!(
        rules
            .iter()
            .any(|r| r.starts_with("attribution (html) removed")),
        "{rules:?}"
    );
    assert!(
        !value["reply_text"]
            .as_str()
            .unwrap()
            .contains("Does the error")
    );
    assert_eq!(value["auto_reply_rule"], Value::Null);

    let value = inspect(&common::fixture("bounces/yahoo.eml"));
    assert_eq!(value["bounce"]["kind"], "failed");
    assert!(
        value["bounce"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("non-standard notice (mail-system sender"),
        "{value}"
    );
    assert_eq!(value["auto_reply_rule"], "null Return-Path");
    let value = inspect(&common::fixture("bounces/nested_report.eml"));
    assert_eq!(
        value["bounce"]["rule"],
        "RFC 3464 delivery-status report (message/delivery-status)"
    );
}
