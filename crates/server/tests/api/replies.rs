//! Replying like a mail client, end to end against the real Dovecot (the contacts' emails)
//! and the real SMTP server (what is sent: envelope and headers), on SQLite and PostgreSQL:
//! recipients and reply all, Bcc, answering a particular email, formatted replies with the
//! inbox's signature and the quoted history, refused addresses, the send-time collision
//! check and presence.

use mail_parser::{MessageParser, MimeHeaders as _};
use postdesk_testkit::CapturedMail;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    EventLog, SUPPORT, SUPPORT_PASSWORD, TestApp, email, eventually, on_both_databases,
};

on_both_databases! {
    recipients_flow =>
        reply_all_bcc_and_answering_a_cc_participant_on_sqlite,
        reply_all_bcc_and_answering_a_cc_participant_on_postgres;
    refused_flow =>
        malformed_and_own_addresses_are_refused_and_nothing_is_sent_on_sqlite,
        malformed_and_own_addresses_are_refused_and_nothing_is_sent_on_postgres;
    formatted_flow =>
        a_markdown_reply_goes_as_text_and_html_with_signature_and_quote_on_sqlite,
        a_markdown_reply_goes_as_text_and_html_with_signature_and_quote_on_postgres;
    collision_flow =>
        a_reply_after_unseen_emails_is_stopped_and_one_of_two_racing_sends_on_sqlite,
        a_reply_after_unseen_emails_is_stopped_and_one_of_two_racing_sends_on_postgres;
}

fn messages_path(id: i64) -> String {
    format!("/api/v1/conversations/{id}/messages")
}

/// An email from carol to support and erin, with dave in Cc; taken by a new agent. Returns
/// the agent's token, the conversation and carol's message.
async fn taken_with_colleagues(app: &TestApp) -> (String, i64, i64) {
    app.deliver(&email(
        "first@c.test",
        "carol@c.test",
        "Printer on fire",
        "Hello\nIt burns.",
        "Cc: Dave Doe <dave@d.test>, support@example.test\r\n",
    ))
    .await;
    let token = app.agent("alice").await;
    let conversation = app.first_queued(&token).await;
    app.take(&token, conversation).await;
    let first = app.messages(&token, conversation).await[0]["id"]
        .as_i64()
        .unwrap();
    (token, conversation, first)
}

/// Posts a Reply via Email with `fields` added; returns the status and answer.
async fn reply(
    app: &TestApp,
    token: &str,
    conversation: i64,
    fields: Value,
) -> (StatusCode, Value) {
    let mut body = json!({ "text": "On it", "via": "email" });
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    app.post(token, &messages_path(conversation), &body).await
}

/// Waits for the `n`th email at the SMTP server and returns it.
async fn sent(app: &TestApp, n: usize) -> CapturedMail {
    let all = app
        .smtp
        .wait_for(n, std::time::Duration::from_secs(30))
        .await
        .expect("the email reaches the SMTP server");
    all[n - 1].clone()
}

/// The addresses of one header of a sent email, lowercase, in order.
fn header_addresses(mail: &CapturedMail, header: &str) -> Vec<String> {
    let message = MessageParser::default().parse(&mail.data).unwrap();
    let list = match header {
        "To" => message.to(),
        "Cc" => message.cc(),
        "Bcc" => message.bcc(),
        other => panic!("{other}"),
    };
    list.map(|l| {
        l.iter()
            .filter_map(|a| a.address())
            .map(str::to_lowercase)
            .collect()
    })
    .unwrap_or_default()
}

fn addresses(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap().to_lowercase())
        .collect()
}

async fn recipients_flow(db: crate::helpers::Db) {
    let app = crate::helpers::spawn_app(db).await;
    let (token, conversation, first) = taken_with_colleagues(&app).await;

    // Every email message shows From, To and Cc.
    let carol = &app.messages(&token, conversation).await[0];
    assert_eq!(addresses(&carol["email"]["to"]), [SUPPORT]);
    assert_eq!(addresses(&carol["email"]["cc"]), ["dave@d.test", SUPPORT]);

    // Left out, the recipients are reply all: carol in To, dave in Cc, never our inbox; the
    // composer is offered the same.
    let (status, offered) = app
        .get(
            &token,
            &format!("/api/v1/conversations/{conversation}/recipients"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{offered}");
    assert_eq!(offered["in_reply_to_message_id"], first);
    assert_eq!(addresses(&offered["to"]), ["carol@c.test"]);
    assert_eq!(addresses(&offered["cc"]), ["dave@d.test"]);
    assert_eq!(offered["subject"], "Re: Printer on fire");
    let (status, ours) = reply(&app, &token, conversation, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{ours}");
    assert_eq!(addresses(&ours["email"]["to"]), ["carol@c.test"]);
    assert_eq!(addresses(&ours["email"]["cc"]), ["dave@d.test"]);
    let mail = sent(&app, 1).await;
    assert_eq!(mail.rcpt_to, ["carol@c.test", "dave@d.test"]);
    assert_eq!(header_addresses(&mail, "To"), ["carol@c.test"]);
    assert_eq!(header_addresses(&mail, "Cc"), ["dave@d.test"]);

    // Chosen recipients, with a Bcc: in the envelope, in no header, shown to the agents.
    let (status, blind) = reply(
        &app,
        &token,
        conversation,
        json!({ "to": ["Carol Customer <carol@c.test>"], "cc": ["Frank Füller <frank@f.test>"],
                "bcc": ["boss@example.org"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{blind}");
    assert_eq!(addresses(&blind["email"]["bcc"]), ["boss@example.org"]);
    let mail = sent(&app, 2).await;
    assert_eq!(
        mail.rcpt_to,
        ["carol@c.test", "frank@f.test", "boss@example.org"]
    );
    assert!(header_addresses(&mail, "Bcc").is_empty());
    let raw = String::from_utf8_lossy(&mail.data).to_lowercase();
    assert!(
        !raw.contains("boss@example.org"),
        "Bcc leaked into the email:\n{raw}"
    );
    assert!(
        raw.contains("=?utf-8?"),
        "a non-ASCII name is RFC 2047 encoded:\n{raw}"
    );

    // Dave (in Cc) answers our first email: his reply joins the conversation.
    let our_id = ours["email"]["message_id"].as_str().unwrap().to_owned();
    app.deliver(&email(
        "dave-1@d.test",
        "dave@d.test",
        "Re: Printer on fire",
        "Dave here: unplug it.",
        &format!(
            "In-Reply-To: <{our_id}>\r\nCc: carol@c.test, support@example.test\r\nReply-To: Dave Doe <dave@d.test>\r\n"
        ),
    ))
    .await;
    let dave = eventually("dave's email in the conversation", || async {
        app.messages(&token, conversation)
            .await
            .into_iter()
            .find(|m| m["email"]["message_id"] == "dave-1@d.test")
    })
    .await;

    // Answering carol's first email explicitly: it threads under that email.
    let (status, _) = reply(
        &app,
        &token,
        conversation,
        json!({ "in_reply_to_message_id": first, "to": ["carol@c.test"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mail = sent(&app, 3).await;
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert_eq!(parsed.in_reply_to().as_text(), Some("first@c.test"));

    // Answering dave's email with every default: to dave, carol in Cc (ours left out).
    let (status, to_dave) = reply(
        &app,
        &token,
        conversation,
        json!({ "in_reply_to_message_id": dave["id"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{to_dave}");
    let mail = sent(&app, 4).await;
    assert_eq!(header_addresses(&mail, "To"), ["dave@d.test"]);
    assert_eq!(header_addresses(&mail, "Cc"), ["carol@c.test"]);
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert_eq!(parsed.in_reply_to().as_text(), Some("dave-1@d.test"));
    let references: Vec<String> = parsed
        .references()
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(references.contains(&our_id), "{references:?}");
}

async fn refused_flow(db: crate::helpers::Db) {
    let app = crate::helpers::spawn_app(db).await;
    let (token, conversation, _) = taken_with_colleagues(&app).await;
    let refused = [
        json!({ "to": ["carol@c.test\r\nBcc: evil@x.test"] }),
        json!({ "to": ["Carol\n <carol@c.test>"] }),
        json!({ "cc": ["not an address"] }),
        json!({ "cc": ["a@x.test, b@y.test"] }),
        json!({ "bcc": ["<carol@c.test"] }),
        json!({ "cc": [SUPPORT.to_uppercase()] }),
        json!({ "in_reply_to_message_id": 999_999 }),
    ];
    for fields in refused {
        let (status, body) = reply(&app, &token, conversation, fields.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fields}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.len() > 10),
            "{fields}: {body}"
        );
    }
    // Email fields on an internal note, and fields the route does not know.
    let (status, body) = app
        .post(
            &token,
            &messages_path(conversation),
            &json!({ "text": "note", "cc": ["x@y.test"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = reply(
        &app,
        &token,
        conversation,
        json!({ "reply_to": ["x@y.test"] }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("reply_to"),
        "{body}"
    );

    // Nothing was stored or sent.
    let kinds: Vec<Value> = app
        .messages(&token, conversation)
        .await
        .iter()
        .map(|m| m["kind"].clone())
        .filter(|k| k != "system")
        .collect();
    assert_eq!(kinds, [json!("email_in")]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(app.smtp.messages().is_empty());
}

async fn formatted_flow(db: crate::helpers::Db) {
    let app = crate::helpers::spawn_app(db).await;
    let mut inbox = app.inbox_body(SUPPORT_PASSWORD);
    inbox["signature"] = json!("Kind regards,\n**{{agent.name}}**, {{inbox.name}}");
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    let (status, body) = app.put(&app.admin, &path, &inbox).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["quote_history"], true, "quoting is on by default");
    let (token, conversation, _) = taken_with_colleagues(&app).await;

    let text = "Hello **Carol**,\n\n- unplug it\n- call us\n\n<script>alert(1)</script>\n\n[site](javascript:alert(2)) [docs](https://example.org/docs)";
    let (status, ours) = reply(
        &app,
        &token,
        conversation,
        json!({ "text": text, "format": "markdown" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ours}");
    let shown = ours["html"]
        .as_str()
        .expect("the agents see the formatted reply");
    assert!(shown.contains("<strong>Carol</strong>"), "{shown}");
    assert!(
        !shown.contains("It burns"),
        "the timeline shows no quoted history: {shown}"
    );

    let mail = sent(&app, 1).await;
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert!(
        parsed
            .content_type()
            .is_some_and(|c| c.ctype() == "multipart" && c.subtype() == Some("alternative")),
        "{:?}",
        parsed.content_type()
    );
    let plain = parsed.body_text(0).unwrap().to_string();
    let html = parsed.body_html(0).unwrap().to_string();
    assert!(
        html.contains("<strong>Carol</strong>")
            && html.contains("<li>")
            && html.contains("href=\"https://example.org/docs\""),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("href=\"javascript"),
        "{html}"
    );
    // The signature, once, with its variables filled, in both parts.
    assert_eq!(plain.matches("Kind regards").count(), 1, "{plain}");
    assert!(
        plain.contains("ALICE") && plain.contains("Support"),
        "{plain}"
    );
    assert!(html.contains("<strong>ALICE</strong>"), "{html}");
    // The quoted history of carol's email, below.
    assert!(plain.contains("> It burns."), "{plain}");
    assert!(
        plain.find("Kind regards") < plain.find("> It burns."),
        "{plain}"
    );
    assert!(
        html.contains("blockquote") && html.contains("It burns."),
        "{html}"
    );

    // An inbox that does not quote, and a plain reply: no quote, no HTML; signature kept.
    inbox["quote_history"] = json!(false);
    let (status, body) = app.put(&app.admin, &path, &inbox).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = reply(
        &app,
        &token,
        conversation,
        json!({ "text": "Plain *words*" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mail = sent(&app, 2).await;
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert!(
        parsed
            .content_type()
            .is_some_and(|c| c.ctype() == "text" && c.subtype() == Some("plain")),
        "{:?}",
        parsed.content_type()
    );
    let plain = parsed.body_text(0).unwrap().to_string();
    assert!(
        plain.contains("Plain *words*") && plain.contains("Kind regards"),
        "{plain}"
    );
    assert!(!plain.contains("It burns."), "{plain}");
}

async fn collision_flow(db: crate::helpers::Db) {
    let app = crate::helpers::spawn_app(db).await;
    let (token, conversation, first) = taken_with_colleagues(&app).await;
    let bob = app.agent("bob").await;
    let (status, body) = app
        .post(
            &token,
            &format!("/api/v1/conversations/{conversation}/commands"),
            &json!({ "command": "/invite @bob" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Presence: alice opens and types; bob hears it live and sees it when he opens.
    let bobs_events = EventLog::open(&app, &bob).await;
    let presence = format!("/api/v1/conversations/{conversation}/presence");
    let (status, _) = app
        .post(&token, &presence, &json!({ "state": "typing" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let heard = eventually("bob hears alice typing", || async {
        bobs_events.find("presence", conversation)
    })
    .await;
    assert_eq!(heard["state"], "typing");
    let (_, now) = app.get(&bob, &presence).await;
    assert_eq!(now["presence"][0]["state"], "typing", "{now}");
    let (status, _) = app
        .post(&token, &presence, &json!({ "state": "left" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, now) = app.get(&bob, &presence).await;
    assert_eq!(now["presence"], json!([]), "{now}");
    let (status, _) = app
        .post(&token, &presence, &json!({ "state": "dancing" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Carol writes again while alice composes an answer to her first email.
    app.deliver(&email(
        "second@c.test",
        "carol@c.test",
        "Re: Printer on fire",
        "Never mind, the fire brigade came.",
        "In-Reply-To: <first@c.test>\r\n",
    ))
    .await;
    let second = eventually("carol's second email", || async {
        app.messages(&token, conversation)
            .await
            .into_iter()
            .find(|m| m["email"]["message_id"] == "second@c.test")
            .and_then(|m| m["id"].as_i64())
    })
    .await;
    let draft = format!("/api/v1/conversations/{conversation}/draft");
    let (status, _) = app
        .put(&token, &draft, &json!({ "text": "On it", "via": "email" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = reply(
        &app,
        &token,
        conversation,
        json!({ "seen_message_id": first }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["new_messages"][0]["id"], second, "{body}");
    assert!(
        body["new_messages"][0]["reply_text"]
            .as_str()
            .unwrap()
            .contains("fire brigade")
    );
    let emails = app
        .messages(&token, conversation)
        .await
        .iter()
        .filter(|m| m["kind"] == "email_out")
        .count();
    assert_eq!(emails, 0, "nothing stored");
    let (_, kept) = app.get(&token, &draft).await;
    assert_eq!(
        kept["draft"]["text"], "On it",
        "a refused send keeps the draft"
    );

    // Alice and bob both answer the newest email at the same moment: exactly one sends.
    let (one, two) = tokio::join!(
        reply(
            &app,
            &token,
            conversation,
            json!({ "seen_message_id": second, "text": "From alice" })
        ),
        reply(
            &app,
            &bob,
            conversation,
            json!({ "seen_message_id": second, "text": "From bob" })
        ),
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::CONFLICT],
        "{one:?} {two:?}"
    );
    let loser = if one.0 == StatusCode::CONFLICT {
        &one.1
    } else {
        &two.1
    };
    assert_eq!(
        loser["new_messages"].as_array().unwrap().len(),
        1,
        "{loser}"
    );
    assert_eq!(loser["new_messages"][0]["kind"], "email_out");
    let (_, after) = app.get(&token, &draft).await;
    if one.0 == StatusCode::CREATED {
        assert_eq!(
            after["draft"],
            Value::Null,
            "the sent reply's draft is gone"
        );
    } else {
        assert_eq!(after["draft"]["text"], "On it", "{after}");
    }
    sent(&app, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.smtp.messages().len(), 1, "one email sent");
}
