//! Departments with routing, agents' availability and automatic assignment, end to end:
//! emails delivered to the real Dovecot are assigned by round robin as the reader brings them
//! in, and an agent's event stream hears what they were given.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{AGENT_PASSWORD, Db, EventLog, TestApp, email, eventually, spawn_app};

async fn set_availability(app: &TestApp, token: &str, status: &str) -> Value {
    let (code, user) = app
        .put(
            token,
            "/api/v1/me/availability",
            &json!({ "status": status }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{user}");
    assert_eq!(user["availability"], status);
    user
}

/// The availability of user `id` as `GET /users` shows it.
async fn availability_of(app: &TestApp, id: i64) -> String {
    let (status, body) = app.get(&app.admin, "/api/v1/users").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id)
        .map(|u| u["availability"].as_str().unwrap().to_owned())
        .unwrap()
}

/// The conversations of the support inbox, oldest first (by id), once there are `count`.
async fn conversations_when(
    app: &TestApp,
    count: usize,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    eventually(&format!("{count} conversations"), || async {
        let mut all = app.conversations(&app.admin, "").await;
        all.sort_by_key(|c| c["id"].as_i64());
        (all.len() == count && all.iter().all(&done)).then_some(all)
    })
    .await
}

async fn round_robin_assigns_arriving_emails_alternately_and_tells_the_agent(db: Db) {
    let app = spawn_app(db).await;
    let ann = app.user("ann", &["agent"]).await;
    let bob = app.user("bob", &["agent"]).await;
    let department = app
        .inbox_in_new_department(
            &json!({ "name": "Support", "agent_ids": [bob, ann], "routing": "round_robin" }),
        )
        .await;
    let (_, listed) = app.get(&app.admin, "/api/v1/departments").await;
    let listed = &listed["departments"][0];
    assert_eq!(listed["id"], department);
    assert_eq!(listed["agent_ids"], json!([ann, bob]));
    assert_eq!(listed["routing"], "round_robin");
    assert_eq!(listed["max_chats_per_agent"], Value::Null);

    let ann_token = app.login("ann", AGENT_PASSWORD).await;
    let bob_token = app.login("bob", AGENT_PASSWORD).await;
    assert_eq!(availability_of(&app, ann).await, "offline");
    set_availability(&app, &ann_token, "available").await;
    set_availability(&app, &bob_token, "available").await;
    let ann_events = EventLog::open(&app, &ann_token).await;

    for n in 1..=3 {
        app.deliver(&email(
            &format!("q{n}@customers.test"),
            &format!("c{n}@customers.test"),
            &format!("Question {n}"),
            "Hello?",
            "",
        ))
        .await;
    }
    let all = conversations_when(&app, 3, |c| c["status"] == "open").await;
    let assignees: Vec<_> = all
        .iter()
        .map(|c| c["assignee_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        assignees,
        vec![ann, bob, ann],
        "in arrival order, each in turn"
    );
    let first = all[0]["id"].as_i64().unwrap();
    let lines: Vec<_> = app
        .messages(&ann_token, first)
        .await
        .into_iter()
        .filter(|m| m["kind"] == "system")
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines, vec!["Assigned to @ann by round robin"]);
    // Her screen heard each of hers as it was given to her.
    for c in [&all[0], &all[2]] {
        let id = c["id"].as_i64().unwrap();
        let taken = eventually("conversation_taken on ann's stream", || async {
            ann_events.find("conversation_taken", id)
        })
        .await;
        assert_eq!(taken["assignee_id"], ann);
    }
    // Bob's is in his Chats in Progress, not hers.
    let bobs = app.conversations(&bob_token, "status=open").await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["id"], all[1]["id"]);
}

async fn availability_is_set_by_the_agent_waits_for_them_and_ends_with_their_session(db: Db) {
    let app = spawn_app(db).await;
    let ann = app.user("ann", &["agent"]).await;
    app.inbox_in_new_department(&json!({ "name": "Support", "agent_ids": [ann], "routing": "load_balancing", "max_chats_per_agent": 5 }),
    )
    .await;
    let admin_events = EventLog::open(&app, &app.admin).await;
    let token = app.login("ann", AGENT_PASSWORD).await;
    let (status, body) = app
        .put(
            &token,
            "/api/v1/me/availability",
            &json!({ "status": "busy" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("available, away or offline")
    );
    let (status, body) = app
        .put(
            &token,
            "/api/v1/me/availability",
            &json!({ "status": "away", "until": "later" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("until"), "{body}");
    set_availability(&app, &token, "away").await;
    let (_, me) = app.get(&token, "/api/v1/me").await;
    assert_eq!(me["availability"], "away");

    // Away: an email waits in Queued Chats.
    app.deliver(&email(
        "w1@customers.test",
        "w@customers.test",
        "Waiting",
        "Hi",
        "",
    ))
    .await;
    let waiting = app.first_queued(&token).await;
    // Becoming available gives it to her at once.
    set_availability(&app, &token, "available").await;
    eventually("the waiting conversation to be assigned to ann", || async {
        let mine = app.conversations(&token, "status=open").await;
        mine.iter()
            .any(|c| c["id"] == waiting && c["assignee_id"] == ann)
            .then_some(())
    })
    .await;
    eventually("user_availability on the admin's stream", || async {
        let kinds = admin_events.kinds();
        kinds.iter().any(|k| k == "user_availability").then_some(())
    })
    .await;

    // Her last session ends: she is offline.
    let (status, _) = app.post(&token, "/api/v1/logout", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(availability_of(&app, ann).await, "offline");
}

async fn department_changes_are_validated_and_leaving_agents_return_their_chats(db: Db) {
    let app = spawn_app(db).await;
    let ann = app.user("ann", &["agent"]).await;
    let bob = app.user("bob", &["agent"]).await;
    let gone = app.user("gone", &["agent"]).await;
    let meg = app.user("meg", &["manager"]).await;
    let max = app.user("max", &["manager"]).await;
    let department = app
        .inbox_in_new_department(&json!({ "name": "Support", "agent_ids": [ann, bob, meg] }))
        .await;
    let (_, sales) = app
        .post(
            &app.admin,
            "/api/v1/departments",
            &json!({ "name": "Sales", "agent_ids": [max] }),
        )
        .await;
    assert_eq!(sales["routing"], "manual");
    let (status, _) = app
        .patch(
            &app.admin,
            &format!("/api/v1/users/{gone}"),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/api/v1/departments/{department}");
    let body = |agents: Value, routing: &str, limit: Value| json!({ "name": "Support", "agent_ids": agents, "routing": routing, "max_chats_per_agent": limit });
    for (wrong, says) in [
        (body(json!([ann]), "fastest", Value::Null), "round_robin"),
        (body(json!([ann]), "manual", json!(0)), "at least 1"),
        (
            body(json!([ann, 999_999]), "manual", Value::Null),
            "no user with id 999999",
        ),
        (
            body(json!([ann, gone]), "manual", Value::Null),
            "@gone is deactivated",
        ),
    ] {
        let (status, answer) = app.put(&app.admin, &path, &wrong).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{wrong}: {answer}"
        );
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let mut unknown = body(json!([ann]), "manual", Value::Null);
    unknown["priority"] = json!(1);
    let (status, answer) = app.put(&app.admin, &path, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("priority"),
        "{answer}"
    );
    let (_, found) = app.get(&app.admin, "/api/v1/departments").await;
    assert!(
        found["departments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == department && d["agent_ids"] == json!([ann, bob, meg])),
        "refused changes change nothing: {found}"
    );

    // Managers change their own department only.
    let max_token = app.login("max", AGENT_PASSWORD).await;
    let (status, _) = app
        .put(
            &max_token,
            &path,
            &body(json!([max]), "manual", Value::Null),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Ann has a conversation of Support; the manager takes her out: it returns to the queue.
    let ann_token = app.login("ann", AGENT_PASSWORD).await;
    app.deliver(&email(
        "r1@customers.test",
        "r@customers.test",
        "Refund",
        "Please",
        "",
    ))
    .await;
    let conversation = app.first_queued(&ann_token).await;
    app.take(&ann_token, conversation).await;
    let meg_token = app.login("meg", AGENT_PASSWORD).await;
    let (status, changed) = app
        .put(
            &meg_token,
            &path,
            &body(json!([bob, meg]), "load_balancing", json!(2)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["agent_ids"], json!([bob, meg]));
    assert_eq!(changed["routing"], "load_balancing");
    assert_eq!(changed["max_chats_per_agent"], 2);
    let (_, again) = app
        .get(&app.admin, &format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(again["status"], "queued", "{again}");
    assert_eq!(again["assignee_id"], Value::Null);
    let last = app.messages(&app.admin, conversation).await;
    assert_eq!(
        last.last().unwrap()["text"],
        "Returned to the queue: @ann left Support"
    );
    // Bob becomes available: routing (now load balancing) gives it to him.
    let bob_token = app.login("bob", AGENT_PASSWORD).await;
    set_availability(&app, &bob_token, "available").await;
    eventually("bob to be given the returned conversation", || async {
        let (_, c) = app
            .get(&app.admin, &format!("/api/v1/conversations/{conversation}"))
            .await;
        (c["assignee_id"] == bob && c["status"] == "open").then_some(())
    })
    .await;
    // Deactivating bob returns it again.
    let (status, _) = app
        .patch(
            &app.admin,
            &format!("/api/v1/users/{bob}"),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, c) = app
        .get(&app.admin, &format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(c["status"], "queued", "{c}");
    let last = app.messages(&app.admin, conversation).await;
    assert_eq!(
        last.last().unwrap()["text"],
        "Returned to the queue: @bob was deactivated"
    );
    assert_eq!(availability_of(&app, bob).await, "offline");
}

/// A conversation transferred into the queue of a department that routes automatically is
/// assigned by routing, as a newly arrived one is, and put on hold it frees its agent's room.
async fn a_transfer_into_a_routed_queue_is_assigned_by_routing(db: Db) {
    let app = spawn_app(db).await;
    let ann = app.user("ann", &["agent"]).await;
    let bob = app.user("bob", &["agent"]).await;
    app.inbox_in_new_department(
        &json!({ "name": "Support", "agent_ids": [ann], "routing": "manual" }),
    )
    .await;
    let (status, sales) = app
        .post(
            &app.admin,
            "/api/v1/departments",
            &json!({ "name": "Sales", "agent_ids": [bob], "routing": "load_balancing", "max_chats_per_agent": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sales}");
    let ann_token = app.login("ann", AGENT_PASSWORD).await;
    let bob_token = app.login("bob", AGENT_PASSWORD).await;
    set_availability(&app, &bob_token, "available").await;
    for n in 1..=2 {
        app.deliver(&email(
            &format!("t{n}@customers.test"),
            &format!("c{n}@customers.test"),
            &format!("Pricing {n}"),
            "How much?",
            "",
        ))
        .await;
    }
    let queued = conversations_when(&app, 2, |c| c["status"] == "queued").await;
    for c in &queued {
        let id = c["id"].as_i64().unwrap();
        let (status, body) = app
            .post(
                &ann_token,
                &format!("/api/v1/conversations/{id}/take"),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app
            .post(
                &ann_token,
                &format!("/api/v1/conversations/{id}/transfer"),
                &json!({ "department_id": sales["id"], "comment": "a sales question" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (first, second) = (
        queued[0]["id"].as_i64().unwrap(),
        queued[1]["id"].as_i64().unwrap(),
    );
    let state = |id: i64| {
        let app = &app;
        async move {
            let c = app.conversations(&app.admin, "").await;
            let c = c.iter().find(|c| c["id"] == id).unwrap().clone();
            (
                c["status"].as_str().unwrap().to_owned(),
                c["assignee_id"].as_i64(),
            )
        }
    };
    eventually("the first transferred one assigned to bob", || async {
        (state(first).await == ("open".to_owned(), Some(bob))).then_some(())
    })
    .await;
    assert_eq!(
        state(second).await,
        ("queued".to_owned(), None),
        "bob is at his limit of one: the second waits in Sales' queue"
    );
    // On hold, the first no longer counts: the second is his at once.
    let (status, body) = app
        .post(
            &bob_token,
            &format!("/api/v1/conversations/{first}/hold"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(
        "the second assigned to bob once the first is on hold",
        || async { (state(second).await == ("open".to_owned(), Some(bob))).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_into_a_routed_queue_is_assigned_by_routing_on_sqlite() {
    a_transfer_into_a_routed_queue_is_assigned_by_routing(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_into_a_routed_queue_is_assigned_by_routing_on_postgres() {
    a_transfer_into_a_routed_queue_is_assigned_by_routing(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_assigns_arriving_emails_alternately_and_tells_the_agent_on_sqlite() {
    round_robin_assigns_arriving_emails_alternately_and_tells_the_agent(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_assigns_arriving_emails_alternately_and_tells_the_agent_on_postgres() {
    round_robin_assigns_arriving_emails_alternately_and_tells_the_agent(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_set_by_the_agent_waits_for_them_and_ends_with_their_session_on_sqlite() {
    availability_is_set_by_the_agent_waits_for_them_and_ends_with_their_session(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_set_by_the_agent_waits_for_them_and_ends_with_their_session_on_postgres() {
    availability_is_set_by_the_agent_waits_for_them_and_ends_with_their_session(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_changes_are_validated_and_leaving_agents_return_their_chats_on_sqlite() {
    department_changes_are_validated_and_leaving_agents_return_their_chats(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_changes_are_validated_and_leaving_agents_return_their_chats_on_postgres() {
    department_changes_are_validated_and_leaving_agents_return_their_chats(Db::Postgres).await;
}
