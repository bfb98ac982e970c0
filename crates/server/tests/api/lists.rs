//! The lists end to end (issue 11): Queued Chats oldest first, paged by a cursor with the true
//! total, the sidebar's counts, the contact center, and events that carry the conversation
//! and the message, so a client patches its lists instead of fetching them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, EventLog, TestApp, email, eventually, spawn_app};

/// Every page of `list` (a query string), `limit` at a time: the conversations' ids, and each
/// page's `total`.
async fn all_pages(app: &TestApp, token: &str, list: &str, limit: u32) -> (Vec<i64>, Vec<i64>) {
    let mut ids = Vec::new();
    let mut totals = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/conversations?{list}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = app.get(token, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = body["conversations"].as_array().unwrap();
        assert!(page.len() <= limit as usize);
        ids.extend(page.iter().map(|c| c["id"].as_i64().unwrap()));
        totals.push(body["total"].as_i64().unwrap());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break (ids, totals),
        }
        assert!(ids.len() < 1000, "the pages never end");
    }
}

async fn counts(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.get(token, "/api/v1/conversations/counts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn lists_page_with_a_cursor_and_a_true_total_and_events_carry_what_changed(db: Db) {
    // Arrange: ana listens; five customers write.
    let app = spawn_app(db).await;
    let ana = app.agent("ana").await;
    let (_, me) = app.get(&ana, "/api/v1/me").await;
    let ana_id = me["id"].as_i64().unwrap();
    let events = EventLog::open(&app, &ana).await;
    for n in 0..5 {
        app.deliver(&email(
            &format!("q{n}@customer.test"),
            &format!("customer{n}@customer.test"),
            &format!("Question {n}"),
            "Hello",
            "",
        ))
        .await;
    }
    eventually("five conversations in Queued Chats", || async {
        (counts(&app, &ana).await["queued"] == 5).then_some(())
    })
    .await;

    // Act: Queued Chats two at a time.
    let (queue, totals) = all_pages(&app, &ana, "status=queued", 2).await;

    // Assert: oldest first, each once, every page telling the whole count.
    let mut in_order = queue.clone();
    in_order.sort_unstable();
    in_order.dedup();
    assert_eq!(queue, in_order, "oldest first, none twice");
    assert_eq!(queue.len(), 5);
    assert_eq!(totals, vec![5, 5, 5]);

    // Ana takes two; her Chats in Progress and the badges follow.
    app.take(&ana, queue[0]).await;
    app.take(&ana, queue[1]).await;
    assert_eq!(
        counts(&app, &ana).await,
        json!({ "queued": 3, "open": 2, "on_hold": 0, "snoozed": 0 })
    );
    let (mine, totals) = all_pages(&app, &ana, "status=open&assignee=me", 1).await;
    assert_eq!(mine, vec![queue[1], queue[0]], "newest activity first");
    assert_eq!(totals, vec![2, 2]);

    // Events carry the conversation as the lists show it, and a message event the message.
    let (status, message) = app
        .post(
            &ana,
            &format!("/api/v1/conversations/{}/messages", queue[0]),
            &json!({ "text": "Looking into it" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let queued = eventually("conversation_queued with the conversation", || async {
        events.find("conversation_queued", queue[4])
    })
    .await;
    assert_eq!(queued["conversation"]["id"], queue[4]);
    assert_eq!(queued["conversation"]["subject"], "Question 4");
    assert_eq!(
        queued["inbox_id"], app.inbox_id,
        "the event's own fields stay"
    );
    let taken = eventually("conversation_taken with the conversation", || async {
        events.find("conversation_taken", queue[0])
    })
    .await;
    assert_eq!(taken["conversation"]["assignee_id"], ana_id);
    assert_eq!(taken["conversation"]["status"], "open");
    let created = eventually("message_created with the message", || async {
        events
            .all("message_created", queue[0])
            .into_iter()
            .find(|e| e["message_id"] == message["id"])
    })
    .await;
    assert_eq!(created["message"]["text"], "Looking into it");
    assert_eq!(created["message"]["id"], message["id"]);
    assert_eq!(created["conversation"]["id"], queue[0]);
}

async fn a_bad_cursor_or_limit_is_refused_in_words(db: Db) {
    let app = spawn_app(db).await;
    for n in 0..2 {
        app.deliver(&email(
            &format!("c{n}@customer.test"),
            "carol@customer.test",
            "Hi",
            "Hello",
            "",
        ))
        .await;
    }
    eventually("two queued", || async {
        (app.conversations(&app.admin, "status=queued").await.len() == 2).then_some(())
    })
    .await;
    let (_, page) = app
        .get(&app.admin, "/api/v1/conversations?status=queued&limit=1")
        .await;
    let queue_cursor = page["next_cursor"].as_str().unwrap().to_owned();

    for (path, words) in [
        ("/api/v1/conversations?cursor=not-a-cursor", "cursor"),
        (
            &format!("/api/v1/conversations?status=closed&cursor={queue_cursor}"),
            "another list",
        ),
        ("/api/v1/conversations?limit=0", "limit"),
        ("/api/v1/conversations?limit=many", "limit"),
        ("/api/v1/conversations?inbox_id=x", "inbox_id"),
        ("/api/v1/contacts?cursor=not-a-cursor", "cursor"),
    ] {
        let (status, body) = app.get(&app.admin, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(words),
            "{path}: {body}"
        );
    }
}

async fn contacts_are_paged_searched_shown_and_renamed_within_what_one_may_see(db: Db) {
    // Arrange: three customers write to the support inbox, which belongs to Support; bob is
    // in Support, olaf is not.
    let app = spawn_app(db).await;
    let support = app.inbox_in_department("Support").await;
    let bob = app.agent("bob").await;
    let olaf = app.agent("olaf").await;
    let (_, me) = app.get(&bob, "/api/v1/me").await;
    app.join_department(support, me["id"].as_i64().unwrap())
        .await;
    for (n, from) in ["pat@a.test", "quinn@b.test", "pat@a.test", "rosa@c.test"]
        .iter()
        .enumerate()
    {
        app.deliver(&email(&format!("k{n}@x.test"), from, "Hi", "Hello", ""))
            .await;
    }
    eventually("four queued", || async {
        (app.conversations(&app.admin, "status=queued").await.len() == 4).then_some(())
    })
    .await;

    // Act and assert: the list, newest contacts first, two a page.
    let (status, first) = app.get(&bob, "/api/v1/contacts?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let emails: Vec<&str> = first["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["rosa@c.test", "quinn@b.test"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&bob, &format!("/api/v1/contacts?limit=2&cursor={cursor}"))
        .await;
    let pat = &second["contacts"][0];
    assert_eq!(pat["email"], "pat@a.test");
    assert_eq!(pat["conversations"], 2);
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, found) = app.get(&bob, "/api/v1/contacts?q=QUINN").await;
    assert_eq!(found["contacts"].as_array().unwrap().len(), 1);
    assert_eq!(found["contacts"][0]["email"], "quinn@b.test");

    // Olaf, outside Support, knows none of them.
    let (_, none) = app.get(&olaf, "/api/v1/contacts").await;
    assert_eq!(none["contacts"], json!([]));
    let pat_id = pat["id"].as_i64().unwrap();
    let page = format!("/api/v1/contacts/{pat_id}");
    let (status, _) = app.get(&olaf, &page).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.patch(&olaf, &page, &json!({ "name": "Pat" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A contact's page: details and every conversation bob may see, paged.
    let (status, details) = app.get(&bob, &format!("{page}?limit=1")).await;
    assert_eq!(status, StatusCode::OK, "{details}");
    assert_eq!(details["email"], "pat@a.test");
    assert_eq!(details["total"], 2);
    assert_eq!(details["conversations"].as_array().unwrap().len(), 1);
    let cursor = details["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&bob, &format!("{page}?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(rest["conversations"].as_array().unwrap().len(), 1);
    assert_ne!(
        rest["conversations"][0]["id"],
        details["conversations"][0]["id"]
    );
    assert_eq!(rest["next_cursor"], Value::Null);

    // Renaming: refused in words when empty, too long or with an unknown field.
    for (body, expected, words) in [
        (
            json!({ "name": "  " }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty",
        ),
        (
            json!({ "name": "x".repeat(201) }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "200",
        ),
        (
            json!({ "name": "Pat", "email": "x@y.test" }),
            StatusCode::BAD_REQUEST,
            "email",
        ),
    ] {
        let (status, answer) = app.patch(&bob, &page, &body).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(words),
            "{answer}"
        );
    }
    let (status, renamed) = app
        .patch(&bob, &page, &json!({ "name": " Pat Patterson " }))
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Pat Patterson");

    // Their next email, signed "Carol Customer", keeps the name given.
    app.deliver(&email("k9@x.test", "pat@a.test", "Again", "Hello", ""))
        .await;
    let details = eventually("pat's third conversation", || async {
        let (_, details) = app.get(&bob, &page).await;
        (details["total"] == 3).then_some(details)
    })
    .await;
    assert_eq!(details["name"], "Pat Patterson");
    assert_eq!(
        details["conversations"][0]["contact"]["name"],
        "Pat Patterson"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_a_cursor_and_a_true_total_and_events_carry_what_changed_on_sqlite() {
    lists_page_with_a_cursor_and_a_true_total_and_events_carry_what_changed(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_a_cursor_and_a_true_total_and_events_carry_what_changed_on_postgres() {
    lists_page_with_a_cursor_and_a_true_total_and_events_carry_what_changed(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cursor_or_limit_is_refused_in_words_on_sqlite() {
    a_bad_cursor_or_limit_is_refused_in_words(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cursor_or_limit_is_refused_in_words_on_postgres() {
    a_bad_cursor_or_limit_is_refused_in_words(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_paged_searched_shown_and_renamed_within_what_one_may_see_on_sqlite() {
    contacts_are_paged_searched_shown_and_renamed_within_what_one_may_see(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_paged_searched_shown_and_renamed_within_what_one_may_see_on_postgres() {
    contacts_are_paged_searched_shown_and_renamed_within_what_one_may_see(Db::Postgres).await;
}
