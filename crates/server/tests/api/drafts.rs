//! Drafts end to end on SQLite and PostgreSQL: each agent's own in each conversation, never
//! seen by another agent and never sent, deleted by an empty save or on demand, with their
//! limits.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, email, on_both_databases, spawn_app};

on_both_databases! {
    drafts_flow =>
        a_draft_is_its_agents_alone_and_never_sent_on_sqlite,
        a_draft_is_its_agents_alone_and_never_sent_on_postgres;
    limits_flow =>
        a_draft_over_its_limits_or_with_unknown_fields_is_refused_on_sqlite,
        a_draft_over_its_limits_or_with_unknown_fields_is_refused_on_postgres;
}

fn path(conversation: i64) -> String {
    format!("/api/v1/conversations/{conversation}/draft")
}

async fn draft_of(app: &TestApp, token: &str, conversation: i64) -> Value {
    let (status, body) = app.get(token, &path(conversation)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["draft"].clone()
}

/// Two conversations from carol and dan, both taken by a new agent ann; ann's token and
/// the ids (the first email of carol's too).
async fn arrange(app: &TestApp) -> (String, i64, i64, i64) {
    let ann = app.agent("ann").await;
    app.deliver(&email("d1@c.test", "carol@c.test", "First", "Hello", ""))
        .await;
    let first = app.first_queued(&ann).await;
    app.take(&ann, first).await;
    app.deliver(&email("d2@c.test", "dan@c.test", "Second", "Hi", ""))
        .await;
    let second = app.first_queued(&ann).await;
    app.take(&ann, second).await;
    let carols_email = app.messages(&ann, first).await[0]["id"].as_i64().unwrap();
    (ann, first, second, carols_email)
}

async fn drafts_flow(db: Db) {
    let app = spawn_app(db).await;
    let (ann, first, second, carols_email) = arrange(&app).await;
    let bob = app.agent("bob").await;
    let (status, invited) = app
        .post(
            &ann,
            &format!("/api/v1/conversations/{first}/commands"),
            &json!({ "command": "/invite @bob" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invited}");
    let messages_before = app.messages(&ann, first).await.len();
    assert_eq!(draft_of(&app, &ann, first).await, Value::Null);

    // Ann writes a reply; the draft holds the composer as it was.
    let composer = json!({
        "text": "Dear Carol,\n\nthanks",
        "via": "email",
        "to": ["Carol <carol@c.test>", "not yet an address"],
        "cc": null,
        "bcc": [],
        "in_reply_to_message_id": carols_email,
        "format": "text",
    });
    let (status, saved) = app.put(&ann, &path(first), &composer).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let draft = &saved["draft"];
    for field in [
        "text",
        "via",
        "to",
        "cc",
        "bcc",
        "in_reply_to_message_id",
        "format",
    ] {
        assert_eq!(draft[field], composer[field], "{field}: {saved}");
    }
    assert!(
        draft["updated_at"].as_str().unwrap().ends_with('Z'),
        "{saved}"
    );
    assert_eq!(draft_of(&app, &ann, first).await, saved["draft"]);

    // Left out: email, markdown, default recipients.
    let (status, minimal) = app
        .put(&ann, &path(second), &json!({ "text": "Note to self" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{minimal}");
    assert_eq!(
        minimal["draft"],
        json!({ "text": "Note to self", "via": "email", "to": null, "cc": null, "bcc": null,
                "in_reply_to_message_id": null, "format": "markdown",
                "updated_at": minimal["draft"]["updated_at"] })
    );

    // Bob, a member too, sees none of it and keeps his own.
    assert_eq!(draft_of(&app, &bob, first).await, Value::Null);
    let (status, _) = app
        .put(
            &bob,
            &path(first),
            &json!({ "text": "Bob's idea", "via": "internal" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(draft_of(&app, &bob, first).await["text"], "Bob's idea");
    assert_eq!(draft_of(&app, &ann, first).await, saved["draft"]);
    // Not a member of the second: he may not open it, nor keep a draft in it.
    let (status, _) = app.get(&bob, &path(second)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Nothing was posted or sent.
    assert_eq!(app.messages(&ann, first).await.len(), messages_before);
    assert!(app.smtp.messages().is_empty(), "a draft is never sent");

    // Empty text and no recipients: the draft is deleted.
    let (status, emptied) = app
        .put(
            &ann,
            &path(first),
            &json!({ "text": " ", "to": [], "cc": null }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{emptied}");
    assert_eq!(emptied, json!({ "draft": null }));
    assert_eq!(draft_of(&app, &ann, first).await, Value::Null);
    // Recipients alone are still a draft.
    let (status, only_to) = app
        .put(
            &ann,
            &path(first),
            &json!({ "text": "", "to": ["x@y.test"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(only_to["draft"]["to"], json!(["x@y.test"]));

    // DELETE: 204, whether there was one or not; others' stay.
    for _ in 0..2 {
        let (status, _) = app.delete(&ann, &path(first)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(draft_of(&app, &ann, first).await, Value::Null);
    assert_eq!(draft_of(&app, &bob, first).await["text"], "Bob's idea");
    assert_eq!(draft_of(&app, &ann, second).await["text"], "Note to self");
}

async fn limits_flow(db: Db) {
    let app = spawn_app(db).await;
    let (ann, first, second, carols_email) = arrange(&app).await;
    let dans_email = app.messages(&ann, second).await[0]["id"].as_i64().unwrap();

    let (status, refused) = app
        .put(&ann, &path(first), &json!({ "text": "x".repeat(100_001) }))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{refused}");
    let (status, _) = app
        .put(&ann, &path(first), &json!({ "text": "x".repeat(100_000) }))
        .await;
    assert_eq!(status, StatusCode::OK, "as long as a message may be");

    let many: Vec<String> = (0..101).map(|n| format!("a{n}@c.test")).collect();
    let long = format!("{}@c.test", "a".repeat(500));
    for (body, what) in [
        (json!({ "text": "x", "cc": many }), "101 addresses"),
        (
            json!({ "text": "x", "bcc": [long] }),
            "an address over 500 characters",
        ),
        (
            json!({ "text": "x", "in_reply_to_message_id": dans_email }),
            "an email of another conversation",
        ),
        (
            json!({ "text": "x", "in_reply_to_message_id": 999_999 }),
            "an unknown email",
        ),
    ] {
        let (status, refused) = app.put(&ann, &path(first), &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {refused}"
        );
    }
    for (body, what) in [
        (
            json!({ "text": "x", "seen_message_id": 1 }),
            "an unknown field",
        ),
        (json!({ "text": "x", "via": "sms" }), "an unknown via"),
        (
            json!({ "text": "x", "format": "html" }),
            "an unknown format",
        ),
        (json!({ "via": "email" }), "no text"),
    ] {
        let (status, refused) = app.put(&ann, &path(first), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {refused}");
    }
    let (_, kept) = app.get(&ann, &path(first)).await;
    assert_eq!(
        kept["draft"]["text"].as_str().map(str::len),
        Some(100_000),
        "a refused save changes nothing"
    );
    let (status, _) = app
        .put(
            &ann,
            &path(first),
            &json!({ "text": "x", "in_reply_to_message_id": carols_email }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "an email of this conversation");
}
