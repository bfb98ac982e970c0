//! The whole flow of a support team (DESIGN.md §1) over the HTTP API, with real servers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Db, EventLog, SUPPORT, TestApp, email, email_with_attachment, eventually, spawn_app,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_on_sqlite() {
    the_whole_flow(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_on_postgres() {
    the_whole_flow(Db::Postgres).await;
}

/// Bytes that survive nothing but an exact copy: every byte value, twice.
fn binary_file() -> Vec<u8> {
    (0..=255u8).chain((0..=255u8).rev()).collect()
}

async fn queued_ids(app: &TestApp, token: &str) -> Vec<i64> {
    app.conversations(token, "status=queued")
        .await
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

async fn the_whole_flow(db: Db) {
    // Arrange: postdesk with a support inbox on Dovecot, two agents, an event stream.
    let app = spawn_app(db).await;
    let alice = app.agent("alice").await;
    let bob = app.agent("bob").await;
    // An admin hears every event; which agent wins Take it! is up to the race below.
    let events = EventLog::open(&app, &app.admin).await;
    let outsider = app.agent("olga").await;
    let outsider_events = EventLog::open(&app, &outsider).await;

    // A contact emails the support address, with an attachment.
    let invoice = binary_file();
    app.deliver(&email_with_attachment(
        "first@customer.test",
        "carol@customer.test",
        "Printer on fire",
        "My printer is on fire, see the invoice.",
        "invoice 2026.bin",
        &invoice,
    ))
    .await;

    // It appears in Queued Chats for every agent.
    let conversation = eventually("the email to appear in Queued Chats", || async {
        queued_ids(&app, &bob).await.first().copied()
    })
    .await;
    let queued = app.conversations(&alice, "status=queued").await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["subject"], "Printer on fire");
    assert_eq!(queued[0]["contact"]["email"], "carol@customer.test");
    assert_eq!(queued[0]["contact"]["name"], "Carol Customer");

    // Every agent can read a queued conversation, and its attachment downloads byte for byte.
    let first = app.messages(&bob, conversation).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["kind"], "email_in");
    assert!(
        first[0]["text"]
            .as_str()
            .unwrap()
            .contains("My printer is on fire")
    );
    assert_eq!(first[0]["email"]["message_id"], "first@customer.test");
    let attachment = &first[0]["attachments"][0];
    assert_eq!(attachment["filename"], "invoice 2026.bin");
    assert_eq!(attachment["size"], 512);
    let (status, headers, bytes) = app
        .get_bytes(&alice, attachment["url"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        bytes, invoice,
        "the inbound attachment downloads byte for byte"
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );

    // Take it!: two agents at once, exactly one wins, the other gets 409.
    let take = format!("/api/v1/conversations/{conversation}/take");
    let empty = json!({});
    let (a, b) = tokio::join!(
        app.post(&alice, &take, &empty),
        app.post(&bob, &take, &empty)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "alice: {a:?}, bob: {b:?}"
    );
    let (owner, other, other_name) = if a.0 == StatusCode::OK {
        (&alice, &bob, "bob")
    } else {
        (&bob, &alice, "alice")
    };
    let loser_body = if a.0 == StatusCode::OK { &b.1 } else { &a.1 };
    assert!(
        loser_body["error"]
            .as_str()
            .unwrap()
            .contains("already taken by @"),
        "{loser_body}"
    );
    assert!(
        queued_ids(&app, &alice).await.is_empty(),
        "a taken conversation leaves Queued Chats"
    );
    let in_progress = app.conversations(owner, "status=open&assignee=me").await;
    assert_eq!(
        in_progress.len(),
        1,
        "it is in the winner's Chats in Progress"
    );
    assert!(
        app.conversations(other, "status=open&assignee=me")
            .await
            .is_empty()
    );

    // The other agent is not a member: 403 on the conversation and its attachment.
    let messages_path = format!("/api/v1/conversations/{conversation}/messages");
    let (status, body) = app.get(other, &messages_path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app
        .post(other, &messages_path, &json!({ "text": "let me in" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = app
        .get_bytes(other, attachment["url"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An internal message is stored and sends nothing.
    let (status, internal) = app
        .post(
            owner,
            &messages_path,
            &json!({ "text": "INTERNAL: customer is on the gold plan" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{internal}");
    assert_eq!(internal["kind"], "internal");
    assert!(internal["email"].is_null());

    // Reply via Email reaches the SMTP server, threaded under the contact's email.
    let (status, reply) = app
        .post(
            owner,
            &messages_path,
            &json!({ "text": "We are sending a technician.", "via": "email" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["kind"], "email_out");
    let captured = app.smtp.wait_for(1, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        captured.len(),
        1,
        "the internal message did not go out, the reply did"
    );
    let sent = &captured[0];
    assert_eq!(sent.mail_from, SUPPORT);
    assert_eq!(sent.rcpt_to, vec!["carol@customer.test".to_owned()]);
    let parsed = postdesk_mail::parse(&sent.data).unwrap();
    let from = parsed.from.clone().unwrap();
    assert_eq!(
        (from.name.as_deref(), from.email.as_str()),
        (Some("Example Support"), SUPPORT)
    );
    assert_eq!(parsed.to[0].email, "carol@customer.test");
    assert_eq!(parsed.subject, "Re: Printer on fire");
    assert!(
        parsed.message_id.ends_with("@example.test"),
        "Message-ID on the inbox's domain: {}",
        parsed.message_id
    );
    assert_eq!(parsed.message_id, reply["email"]["message_id"]);
    assert_eq!(parsed.in_reply_to.as_deref(), Some("first@customer.test"));
    assert_eq!(parsed.references, vec!["first@customer.test".to_owned()]);
    assert!(parsed.date.is_some());
    assert!(parsed.text.contains("We are sending a technician."));
    assert!(
        !String::from_utf8_lossy(&sent.data).contains("INTERNAL"),
        "no internal text in the email"
    );

    // Its delivery status turns to sent.
    let reply_id = reply["id"].as_i64().unwrap();
    app.wait_for_delivery(owner, conversation, reply_id, "sent")
        .await;

    // The contact answers our email: it joins the same conversation.
    let our_id = parsed.message_id.clone();
    app.deliver(&email(
        "second@customer.test",
        "carol@customer.test",
        "Re: Printer on fire",
        "Thanks, the fire is out now.\r\n\r\n> We are sending a technician.",
        &format!("In-Reply-To: <{our_id}>\r\nReferences: <first@customer.test> <{our_id}>\r\n"),
    ))
    .await;
    let answer = eventually("the contact's reply to join the conversation", || async {
        let messages = app.messages(owner, conversation).await;
        messages
            .into_iter()
            .find(|m| m["email"]["message_id"] == "second@customer.test")
    })
    .await;
    assert_eq!(answer["kind"], "email_in");
    assert_eq!(
        answer["reply_text"], "Thanks, the fire is out now.",
        "our own quoted reply is history"
    );
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("> We are sending a technician."),
        "the full body is kept"
    );
    assert!(
        answer["email"]["thread_reason"]
            .as_str()
            .unwrap()
            .contains(&our_id)
    );
    assert!(
        queued_ids(&app, owner).await.is_empty(),
        "no new conversation was opened"
    );

    // /invite brings the other agent in; they see the whole history.
    let commands = format!("/api/v1/conversations/{conversation}/commands");
    let (status, body) = app
        .post(owner, &commands, &json!({ "command": "/invite @nobody" }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("@nobody"));
    let (status, body) = app
        .post(owner, &commands, &json!({ "command": "/kick @bob" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown command /kick")
    );
    let (status, body) = app
        .post(
            owner,
            &commands,
            &json!({ "command": format!("/invite @{other_name}") }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen_by_invited = app.messages(other, conversation).await;
    let kinds: Vec<&str> = seen_by_invited
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "email_in",
            "system",
            "internal",
            "email_out",
            "email_in",
            "system"
        ]
    );
    assert!(
        seen_by_invited[2]["text"]
            .as_str()
            .unwrap()
            .contains("gold plan"),
        "the invited agent sees internal history"
    );
    assert_eq!(app.conversations(other, "member=me").await.len(), 1);
    let (status, _) = app
        .post(
            other,
            &messages_path,
            &json!({ "text": "Happy to help here" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the invited agent chats internally"
    );

    // A file uploaded into the conversation stays internal until Send via Email as attachment.
    let report = b"%PDF-1.7\n\x00\x01\x02 service report \xff\xfe".to_vec();
    let (status, upload) = app
        .upload(owner, conversation, "service report.pdf", &report)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    assert_eq!(upload["kind"], "internal");
    assert_eq!(upload["attachments"][0]["filename"], "service report.pdf");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.smtp.messages().len(),
        1,
        "an upload sends nothing by itself"
    );
    let (status, forwarded) = app
        .post(
            owner,
            &format!("/api/v1/messages/{}/send-email", upload["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{forwarded}");
    assert_eq!(forwarded["kind"], "email_out");
    assert_eq!(
        forwarded["attachments"][0]["filename"],
        "service report.pdf"
    );
    let captured = app.smtp.wait_for(2, Duration::from_secs(20)).await.unwrap();
    let with_file = postdesk_mail::parse(&captured[1].data).unwrap();
    assert_eq!(with_file.attachments.len(), 1);
    assert_eq!(with_file.attachments[0].filename, "service report.pdf");
    assert_eq!(
        with_file.attachments[0].bytes, report,
        "the contact receives the same bytes"
    );
    assert_eq!(
        with_file.in_reply_to.as_deref(),
        Some("second@customer.test"),
        "threads under the latest inbound email"
    );
    assert_eq!(with_file.subject, "Re: Printer on fire", "never Re: Re:");
    assert_eq!(
        with_file.references,
        vec![
            "first@customer.test".to_owned(),
            our_id.clone(),
            "second@customer.test".to_owned()
        ]
    );

    // Close.
    let (status, closed) = app
        .post(
            owner,
            &format!("/api/v1/conversations/{conversation}/close"),
            &json!({ "comment": "fixed" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");

    // The event stream told about each step.
    let events = &events;
    eventually("the events to arrive on the SSE stream", || async {
        (events.find("conversation_queued", conversation).is_some()
            && events.find("conversation_taken", conversation).is_some()
            && events.find("member_added", conversation).is_some()
            && events.find("conversation_closed", conversation).is_some()
            && events
                .find("delivery_updated", conversation)
                .is_some_and(|e: Value| e["status"] == "queued" || e["status"] == "sent"))
        .then_some(())
    })
    .await;
    // An agent outside the conversation hears the queue, not what happens inside it.
    let heard = outsider_events.kinds();
    assert!(
        heard.contains(&"conversation_queued".to_owned()),
        "{heard:?}"
    );
    assert!(
        heard.contains(&"conversation_taken".to_owned()),
        "{heard:?}"
    );
    for private in ["member_added", "delivery_updated", "conversation_closed"] {
        assert!(
            !heard.contains(&private.to_owned()),
            "{private} leaked to a non-member: {heard:?}"
        );
    }
    assert_eq!(
        heard.iter().filter(|k| *k == "message_created").count(),
        1,
        "only the email that arrived while queued: {heard:?}"
    );
    let kinds = events.kinds();
    assert!(
        kinds.iter().filter(|k| *k == "message_created").count() >= 6,
        "{kinds:?}"
    );
    let queued_at = kinds
        .iter()
        .position(|k| k == "conversation_queued")
        .unwrap();
    let taken_at = kinds
        .iter()
        .position(|k| k == "conversation_taken")
        .unwrap();
    assert!(queued_at < taken_at, "events in order: {kinds:?}");
}
