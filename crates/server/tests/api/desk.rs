//! The team desk's actions end to end: transfer, On Hold, snooze, merge, against the real
//! Dovecot (the contact's emails) on SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    AGENT_PASSWORD, Db, EventLog, TestApp, email, eventually, on_both_databases, spawn_app,
};

on_both_databases! {
    transfer_flow =>
        a_transfer_reaches_the_new_agent_and_ends_the_old_ones_access_on_sqlite,
        a_transfer_reaches_the_new_agent_and_ends_the_old_ones_access_on_postgres;
    hold_flow =>
        a_conversation_on_hold_is_resumed_by_the_contacts_email_on_sqlite,
        a_conversation_on_hold_is_resumed_by_the_contacts_email_on_postgres;
    snooze_flow =>
        a_snooze_ends_by_itself_at_its_time_on_sqlite,
        a_snooze_ends_by_itself_at_its_time_on_postgres;
    merge_flow =>
        a_reply_to_a_merged_conversation_lands_in_the_survivor_on_sqlite,
        a_reply_to_a_merged_conversation_lands_in_the_survivor_on_postgres;
}

fn path(id: i64, action: &str) -> String {
    format!("/api/v1/conversations/{id}/{action}")
}

/// A new email from carol, taken by `token`'s agent; its conversation id.
async fn taken(app: &TestApp, token: &str, message_id: &str, subject: &str) -> i64 {
    app.deliver(&email(message_id, "carol@c.test", subject, "Hello", ""))
        .await;
    let id = eventually(&format!("the conversation of {message_id}"), || async {
        app.conversations(&app.admin, "status=queued")
            .await
            .iter()
            .find(|c| c["subject"] == subject)
            .and_then(|c| c["id"].as_i64())
    })
    .await;
    app.take(token, id).await;
    id
}

/// The text of each system line of a conversation, as `token` reads them.
async fn lines(app: &TestApp, token: &str, id: i64) -> Vec<String> {
    app.messages(token, id)
        .await
        .iter()
        .filter(|m| m["kind"] == "system")
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the conversation's status is `status`; returns the conversation.
async fn wait_for_status(app: &TestApp, token: &str, id: i64, status: &str) -> Value {
    eventually(&format!("conversation {id} to be {status}"), || async {
        let (_, c) = app.get(token, &format!("/api/v1/conversations/{id}")).await;
        (c["status"] == status).then_some(c)
    })
    .await
}

fn words(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

async fn transfer_flow(db: Db) {
    let app = spawn_app(db).await;
    let alice = app.agent("alice").await;
    let bob_id = app.user("bob", &["agent"]).await;
    let bob = app.login("bob", AGENT_PASSWORD).await;
    let id = taken(&app, &alice, "t1@c.test", "Rechnung").await;
    let bob_hears = EventLog::open(&app, &bob).await;
    let alice_hears = EventLog::open(&app, &alice).await;

    // Act: alice hands it to bob, saying why.
    let (status, c) = app
        .post(
            &alice,
            &path(id, "transfer"),
            &json!({ "user_id": bob_id, "comment": "customer speaks German" }),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "open");
    assert_eq!(c["assignee_id"], bob_id);
    let heard = eventually("bob hears the transfer", || async {
        bob_hears.find("conversation_transferred", id)
    })
    .await;
    assert_eq!(heard["assignee_id"], bob_id);
    eventually("alice hears it leave", || async {
        alice_hears.find("conversation_transferred", id)
    })
    .await;
    let (status, _) = app
        .post(
            &bob,
            &path(id, "messages"),
            &json!({ "text": "Ich übernehme" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "bob writes");
    let (status, body) = app
        .post(
            &alice,
            &path(id, "messages"),
            &json!({ "text": "still mine?" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "alice no longer writes: {body}"
    );
    assert!(
        lines(&app, &bob, id)
            .await
            .contains(&"Transferred by @alice to @bob: customer speaks German".to_owned())
    );
    // Unless bob invites her back.
    let (status, _) = app
        .post(
            &bob,
            &path(id, "commands"),
            &json!({ "command": "/invite @alice" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(&alice, &path(id, "messages"), &json!({ "text": "thanks" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // To a department's queue: its agents hear it and may take it.
    let (_, sales) = app
        .post(
            &app.admin,
            "/api/v1/departments",
            &json!({ "name": "Sales" }),
        )
        .await;
    let carl_id = app.user("carl", &["agent"]).await;
    let (status, _) = app
        .put(
            &app.admin,
            &format!("/api/v1/departments/{}/members/{carl_id}", sales["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let carl = app.login("carl", AGENT_PASSWORD).await;
    let carl_hears = EventLog::open(&app, &carl).await;
    let (status, c) = app
        .post(
            &bob,
            &path(id, "transfer"),
            &json!({ "department_id": sales["id"], "comment": "a sales question" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "queued");
    assert_eq!(c["assignee_id"], Value::Null);
    assert_eq!(c["department_id"], sales["id"]);
    eventually("carl hears it arrive", || async {
        carl_hears.find("conversation_transferred", id)
    })
    .await;
    app.take(&carl, id).await;
    assert!(
        lines(&app, &carl, id)
            .await
            .contains(&"Transferred by @bob to the Sales queue: a sales question".to_owned())
    );
}

async fn hold_flow(db: Db) {
    let app = spawn_app(db).await;
    let alice = app.agent("alice").await;
    let id = taken(&app, &alice, "h1@c.test", "Waiting for a part").await;

    let (status, c) = app.post(&alice, &path(id, "hold"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "on_hold");
    let assignee = c["assignee_id"].clone();
    assert!(assignee.is_i64(), "{c}");
    let on_hold = app.conversations(&alice, "status=on_hold").await;
    assert_eq!(on_hold.len(), 1);
    assert_eq!(on_hold[0]["id"], id);
    let (status, body) = app.post(&alice, &path(id, "hold"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(words(&body).contains("on hold"), "{body}");

    // Act: the contact writes.
    app.deliver(&email(
        "h2@c.test",
        "carol@c.test",
        "Re: Waiting for a part",
        "Any news?",
        "In-Reply-To: <h1@c.test>\r\n",
    ))
    .await;

    // Assert: back in alice's Chats in Progress.
    let c = wait_for_status(&app, &alice, id, "open").await;
    assert_eq!(c["assignee_id"], assignee, "the same agent");
    assert!(
        lines(&app, &alice, id)
            .await
            .contains(&"Resumed by a new email from the contact".to_owned())
    );
    let (status, body) = app.post(&alice, &path(id, "resume"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(words(&body).contains("on hold or snoozed"), "{body}");
    // On hold and resumed by hand.
    app.post(&alice, &path(id, "hold"), &json!({})).await;
    let (status, c) = app.post(&alice, &path(id, "resume"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "open");
    assert_eq!(
        lines(&app, &alice, id).await.last().unwrap(),
        "Resumed by @alice"
    );
}

async fn snooze_flow(db: Db) {
    let app = spawn_app(db).await;
    let alice = app.agent("alice").await;
    let id = taken(&app, &alice, "s1@c.test", "Call me next week").await;
    let hears = EventLog::open(&app, &alice).await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(2);

    let (status, c) = app
        .post(
            &alice,
            &path(id, "snooze"),
            &json!({ "until": until.to_rfc3339() }),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "snoozed");
    assert!(c["snoozed_until"].is_string(), "{c}");
    let snoozed = app.conversations(&alice, "status=snoozed").await;
    assert_eq!(snoozed.len(), 1);
    assert!(app.conversations(&alice, "status=open").await.is_empty());
    let c = wait_for_status(&app, &alice, id, "open").await;
    assert_eq!(c["snoozed_until"], Value::Null);
    assert!(c["assignee_id"].is_i64());
    assert_eq!(
        lines(&app, &alice, id).await.last().unwrap(),
        "Snooze ended"
    );
    eventually("the wake-up event", || async {
        hears.find("conversation_resumed", id)
    })
    .await;
}

async fn merge_flow(db: Db) {
    let app = spawn_app(db).await;
    let alice = app.agent("alice").await;
    let first = taken(&app, &alice, "m1@c.test", "Printer broken").await;
    let survivor = taken(&app, &alice, "m2@c.test", "Printer still broken").await;
    let hears = EventLog::open(&app, &alice).await;

    let (status, c) = app
        .post(
            &alice,
            &path(first, "merge"),
            &json!({ "into_id": survivor }),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "closed");
    assert_eq!(c["merged_into_id"], survivor);
    for id in [first, survivor] {
        eventually("the merge event of each", || async {
            hears.find("conversation_merged", id)
        })
        .await;
    }
    assert_eq!(
        lines(&app, &alice, first).await,
        vec![format!("Merged into #{survivor} by @alice")]
    );
    // A reply to the merged conversation's email lands in the survivor.
    app.deliver(&email(
        "m3@c.test",
        "carol@c.test",
        "Re: Printer broken",
        "It smokes now",
        "In-Reply-To: <m1@c.test>\r\nReferences: <m1@c.test>\r\n",
    ))
    .await;
    eventually("the reply in the survivor", || async {
        let texts: Vec<String> = app
            .messages(&alice, survivor)
            .await
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        texts
            .iter()
            .any(|t| t.contains("It smokes now"))
            .then_some(())
    })
    .await;
    let messages = app.messages(&alice, survivor).await;
    let ids: Vec<i64> = messages.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "the timeline in order");
    assert!(
        messages
            .iter()
            .any(|m| m["text"] == format!("@alice merged #{first} into #{survivor}"))
    );
    let (_, c) = app
        .get(&alice, &format!("/api/v1/conversations/{first}"))
        .await;
    assert_eq!(c["status"], "closed", "the merged one stays closed");
}

/// Each refusal: its status and words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_actions_refuse_with_words() {
    let app = spawn_app(Db::Sqlite).await;
    let alice = app.agent("alice").await;
    let bob = app.agent("bob").await;
    let mine = taken(&app, &alice, "x1@c.test", "One").await;
    let other = taken(&app, &alice, "x2@c.test", "Two").await;
    let bobs = taken(&app, &bob, "x3@c.test", "Three").await;
    let in_a_year = (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339();
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "transfer",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Say where",
        ),
        (
            "transfer",
            json!({ "user_id": 1, "department_id": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not both",
        ),
        (
            "transfer",
            json!({ "user_id": 999 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no user #999",
        ),
        (
            "transfer",
            json!({ "department_id": 999 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no department #999",
        ),
        (
            "transfer",
            json!({ "user_id": 1, "cc": "x" }),
            StatusCode::BAD_REQUEST,
            "cc",
        ),
        (
            "snooze",
            json!({ "until": "tomorrow" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RFC 3339",
        ),
        (
            "snooze",
            json!({ "until": "2020-01-01T00:00:00Z" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "future",
        ),
        (
            "snooze",
            json!({ "until": in_a_year }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most a year",
        ),
        (
            "snooze",
            json!({ "until": "2030-01-01T00:00:00Z", "note": 1 }),
            StatusCode::BAD_REQUEST,
            "note",
        ),
        (
            "hold",
            json!({ "why": "x" }),
            StatusCode::BAD_REQUEST,
            "why",
        ),
        (
            "resume",
            json!({}),
            StatusCode::CONFLICT,
            "on hold or snoozed",
        ),
        (
            "merge",
            json!({ "into_id": mine }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "into itself",
        ),
        (
            "merge",
            json!({ "into_id": 999_999 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no conversation",
        ),
        (
            "merge",
            json!({ "into_id": bobs }),
            StatusCode::FORBIDDEN,
            "not a member",
        ),
        (
            "merge",
            json!({ "into": other }),
            StatusCode::BAD_REQUEST,
            "into",
        ),
    ];
    for (action, body, want, said) in cases {
        let (status, answer) = app.post(&alice, &path(mine, action), &body).await;
        assert_eq!(status, want, "{action} {body}: {answer}");
        assert!(words(&answer).contains(said), "{action} {body}: {answer}");
    }
    // Into a merged conversation: 422 naming where it went.
    let (status, _) = app
        .post(&alice, &path(other, "merge"), &json!({ "into_id": mine }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let third = taken(&app, &alice, "x4@c.test", "Four").await;
    let (status, answer) = app
        .post(&alice, &path(third, "merge"), &json!({ "into_id": other }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(
        words(&answer).contains(&format!("merged into #{mine}")),
        "{answer}"
    );
    let (status, answer) = app.post(&alice, &path(other, "reopen"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        words(&answer).contains(&format!("merged into #{mine}")),
        "{answer}"
    );
    // Bob, no member of alice's, cannot transfer or hold it.
    for action in ["transfer", "hold", "snooze", "merge"] {
        let (status, _) = app.post(&bob, &path(mine, action), &json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
    }
}
