//! Tags and full-text search end to end: emails delivered to the real Dovecot are found by
//! the words of their subject, body and sender, with a highlighted snippet; an agent finds
//! only what they may open; tags are set by whoever may write, and filter the lists.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, email, eventually, spawn_app};

/// The hits of a search as `(conversation id, message_id, snippet)`.
async fn search(app: &TestApp, token: &str, query: &str) -> Vec<(i64, Option<i64>, String)> {
    let (status, body) = app.get(token, &format!("/api/v1/search?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| {
            (
                hit["conversation"]["id"].as_i64().unwrap(),
                hit["message_id"].as_i64(),
                hit["snippet"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn q(text: &str) -> String {
    format!("q={}", urlencoding(text))
}

fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The id of the queued conversation with `subject`, once it has arrived.
async fn arrived(app: &TestApp, subject: &str) -> i64 {
    eventually(
        &format!("the email {subject:?} in Queued Chats"),
        || async {
            app.conversations(&app.admin, "status=queued")
                .await
                .iter()
                .find(|c| c["subject"] == subject)
                .and_then(|c| c["id"].as_i64())
        },
    )
    .await
}

async fn emails_are_found_by_their_words_and_tags_filter_the_lists(db: Db) {
    let app = spawn_app(db).await;
    let ana = app.agent("ana").await;
    let bob = app.agent("bob").await;
    app.deliver(&email(
        "espresso@customer.test",
        "pat@customer.test",
        "Broken espresso machine",
        "The grinder makes a <script>alert(1)</script> noise since Tuesday.",
        "",
    ))
    .await;
    app.deliver(&email(
        "invoice@customer.test",
        "quinn@shop.test",
        "Invoice question",
        "Please resend invoice 4711 for the espresso beans & the cups.",
        "",
    ))
    .await;
    let machine = arrived(&app, "Broken espresso machine").await;
    let invoice = arrived(&app, "Invoice question").await;

    // Found by subject (first), body and sender, with the match marked and the rest escaped.
    let hits = search(&app, &ana, &q("Espresso")).await;
    assert_eq!(
        hits.iter().map(|h| h.0).collect::<Vec<_>>(),
        [machine, invoice],
        "{hits:?}"
    );
    assert_eq!(hits[0].1, None, "the subject matched");
    assert!(
        hits[0].2.contains("Broken <mark>espresso</mark> machine"),
        "{hits:?}"
    );
    assert!(hits[1].1.is_some(), "a message matched");
    assert!(
        hits[1]
            .2
            .contains("<mark>espresso</mark> beans &amp; the cups"),
        "{hits:?}"
    );
    let grinder = search(&app, &ana, &q("grinder noise")).await;
    assert_eq!(grinder.len(), 1);
    assert_eq!(grinder[0].0, machine);
    assert!(
        grinder[0].2.contains("&lt;script&gt;") && !grinder[0].2.contains("<script"),
        "{grinder:?}"
    );
    assert_eq!(search(&app, &ana, &q("4711")).await[0].0, invoice);
    assert_eq!(
        search(&app, &ana, &q("quinn@shop.test")).await[0].0,
        invoice
    );
    assert_eq!(
        search(&app, &ana, &format!("{}&status=closed", q("espresso"))).await,
        []
    );
    assert_eq!(
        search(
            &app,
            &ana,
            &format!("{}&inbox_id={}&limit=1", q("espresso"), app.inbox_id)
        )
        .await
        .len(),
        1
    );

    // Input with full-text syntax is only words; punctuation alone finds nothing.
    for hostile in [
        "\"",
        "*",
        "NEAR(a b)",
        "a OR b",
        "col:value",
        "'; DROP TABLE messages; --",
        "(!&|<->:*)",
        "\"unclosed",
        "🙂",
        "\\",
    ] {
        search(&app, &ana, &q(hostile)).await;
    }
    assert_eq!(search(&app, &ana, &q("!!! ...")).await, []);
    for (query, status) in [
        ("", StatusCode::UNPROCESSABLE_ENTITY),
        ("q=", StatusCode::UNPROCESSABLE_ENTITY),
        ("q=%20%20", StatusCode::UNPROCESSABLE_ENTITY),
        (
            &*format!("q={}", "a".repeat(501)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("q=espresso&limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("q=espresso&limit=101", StatusCode::UNPROCESSABLE_ENTITY),
        ("q=espresso&status=bogus", StatusCode::BAD_REQUEST),
    ] {
        let (got, body) = app.get(&ana, &format!("/api/v1/search?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }

    // Ana takes the machine and writes an internal note: Bob no longer finds it.
    app.take(&ana, machine).await;
    let (status, note) = app
        .post(
            &ana,
            &format!("/api/v1/conversations/{machine}/messages"),
            &json!({ "text": "Walrus plan: send a new grinder" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    let walrus = search(&app, &ana, &q("walrus")).await;
    assert_eq!(walrus.len(), 1);
    assert_eq!((walrus[0].0, walrus[0].1), (machine, note["id"].as_i64()));
    assert_eq!(
        search(&app, &bob, &q("walrus")).await,
        [],
        "not Bob's conversation"
    );
    assert_eq!(
        search(&app, &bob, &q("espresso"))
            .await
            .iter()
            .map(|h| h.0)
            .collect::<Vec<_>>(),
        [invoice],
        "Bob finds the queued one only"
    );
    assert_eq!(search(&app, &app.admin, &q("walrus")).await.len(), 1);

    // Tags: set by whoever may write, replaced, shown on every conversation, filtering lists.
    let machine_tags = format!("/api/v1/conversations/{machine}/tags");
    let (status, tagged) = app
        .put(
            &ana,
            &machine_tags,
            &json!({ "tags": [" Hardware ", "VIP", "vip"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tagged}");
    assert_eq!(tagged["tags"], json!(["Hardware", "VIP"]));
    assert_eq!(tagged["id"], machine);
    let (status, _) = app
        .get(&ana, &format!("/api/v1/conversations/{machine}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = app.conversations(&ana, "tag=vip").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], machine);
    assert_eq!(listed[0]["tags"], json!(["Hardware", "VIP"]));
    assert_eq!(
        app.conversations(&ana, "tag=VIP&status=queued").await,
        Vec::<Value>::new()
    );
    assert_eq!(
        app.conversations(&bob, "tag=vip").await,
        Vec::<Value>::new(),
        "only what Bob may see"
    );
    let (status, body) = app.get(&ana, "/api/v1/tags").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["tags"].as_array().unwrap().len(), 2, "{body}");
    let (_, body) = app.get(&bob, "/api/v1/tags").await;
    assert_eq!(
        body["tags"],
        json!([]),
        "Bob sees no conversation with tags"
    );
    let (status, body) = app
        .put(&ana, &machine_tags, &json!({ "tags": ["Hardware"] }))
        .await;
    assert_eq!(
        (status, body["tags"].clone()),
        (StatusCode::OK, json!(["Hardware"]))
    );
    assert_eq!(
        app.conversations(&ana, "tag=vip").await,
        Vec::<Value>::new(),
        "replaced"
    );

    for (body, status) in [
        (
            json!({ "tags": ["x".repeat(41)] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "tags": ["  "] }), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({ "tags": ["a\nb"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({ "tags": "vip" }), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({ "tags": [], "colour": "red" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, answer) = app.put(&ana, &machine_tags, &body).await;
        assert!(
            got == status
                || (status == StatusCode::UNPROCESSABLE_ENTITY
                    && got == StatusCode::BAD_REQUEST
                    && body["tags"].is_string()),
            "{body}: {got} {answer}"
        );
    }
    // Bob may not write to Ana's conversation; nobody tags a queued or closed one.
    let (status, _) = app
        .put(&bob, &machine_tags, &json!({ "tags": ["x"] }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .put(
            &ana,
            &format!("/api/v1/conversations/{invoice}/tags"),
            &json!({ "tags": ["x"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "Take it! first");
    let (status, _) = app
        .post(
            &ana,
            &format!("/api/v1/conversations/{machine}/close"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .put(&ana, &machine_tags, &json!({ "tags": ["x"] }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "closed is read-only");
    // Tagging is quiet: no line in the conversation.
    let lines: Vec<String> = app
        .messages(&ana, machine)
        .await
        .iter()
        .filter(|m| m["kind"] == "system")
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(lines.iter().all(|l| !l.contains("tag")), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_are_found_by_their_words_and_tags_filter_the_lists_on_sqlite() {
    emails_are_found_by_their_words_and_tags_filter_the_lists(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_are_found_by_their_words_and_tags_filter_the_lists_on_postgres() {
    emails_are_found_by_their_words_and_tags_filter_the_lists(Db::Postgres).await;
}
