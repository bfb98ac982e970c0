//! Canned responses end to end on SQLite and PostgreSQL: who sees and who may change each
//! scope (agent, manager, admin, another department), the checks on a canned response's
//! words and shape, and the texts filled for a conversation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{AGENT_PASSWORD, Db, TestApp, email, on_both_databases, spawn_app};

on_both_databases! {
    access_flow =>
        each_scope_is_seen_and_changed_by_whom_the_policy_says_on_sqlite,
        each_scope_is_seen_and_changed_by_whom_the_policy_says_on_postgres;
    validation_flow =>
        a_canned_response_with_a_bad_shortcut_text_or_scope_is_refused_in_words_on_sqlite,
        a_canned_response_with_a_bad_shortcut_text_or_scope_is_refused_in_words_on_postgres;
    filled_flow =>
        the_list_fills_the_variables_for_a_conversation_the_caller_may_read_on_sqlite,
        the_list_fills_the_variables_for_a_conversation_the_caller_may_read_on_postgres;
}

const LIST: &str = "/api/v1/canned-responses";

fn one(id: i64) -> String {
    format!("{LIST}/{id}")
}

fn body(shortcut: &str, scope: &str, department: Option<i64>) -> Value {
    let mut body =
        json!({ "shortcut": shortcut, "text": format!("The {shortcut} text"), "scope": scope });
    if let Some(d) = department {
        body["department_id"] = json!(d);
    }
    body
}

fn words(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// Adds a canned response as `token`, asserting it was created; its id.
async fn add(app: &TestApp, token: &str, body: &Value) -> i64 {
    let (status, created) = app.post(token, LIST, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}: {created}");
    created["id"].as_i64().unwrap()
}

/// The shortcuts `token`'s user sees, in the list's order.
async fn shortcuts(app: &TestApp, token: &str) -> Vec<String> {
    let (status, list) = app.get(token, LIST).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["canned_responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["shortcut"].as_str().unwrap().to_owned())
        .collect()
}

/// A user with `roles` in `department` (if any), signed in.
async fn member(
    app: &TestApp,
    name: &str,
    roles: &[&str],
    department: Option<i64>,
) -> (i64, String) {
    let id = app.user(name, roles).await;
    if let Some(d) = department {
        app.join_department(d, id).await;
    }
    (id, app.login(name, AGENT_PASSWORD).await)
}

async fn department(app: &TestApp, name: &str) -> i64 {
    let (status, d) = app
        .post(&app.admin, "/api/v1/departments", &json!({ "name": name }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d["id"].as_i64().unwrap()
}

async fn access_flow(db: Db) {
    let app = spawn_app(db).await;
    let support = department(&app, "Support").await;
    let sales = department(&app, "Sales").await;
    let (ann_id, ann) = member(&app, "ann", &["agent"], Some(support)).await;
    let (_, bob) = member(&app, "bob", &["agent"], Some(sales)).await;
    let (_, mona) = member(&app, "mona", &["manager"], Some(support)).await;
    let admin = app.admin.clone();

    // Global: admins only.
    let (status, hello) = app.post(&admin, LIST, &body("hello", "global", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{hello}");
    assert_eq!(hello["scope"], "global");
    assert_eq!(hello["department_id"], Value::Null);
    assert_eq!(hello["user_id"], Value::Null);
    assert_eq!(hello["text"], "The hello text");
    assert!(
        hello["created_at"].as_str().unwrap().ends_with('Z'),
        "{hello}"
    );
    assert_eq!(hello["created_at"], hello["updated_at"]);
    let hello = hello["id"].as_i64().unwrap();
    for token in [&ann, &mona] {
        let (status, refused) = app.post(token, LIST, &body("hi", "global", None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        assert_eq!(
            words(&refused),
            "Only an admin can add, change or delete global canned responses"
        );
    }

    // A department's: admins and its managers.
    let (status, refused) = app
        .post(&ann, LIST, &body("refund", "department", Some(support)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        words(&refused).contains("manager of this department"),
        "{refused}"
    );
    let refund = add(&app, &mona, &body("refund", "department", Some(support))).await;
    let (status, _) = app
        .post(&mona, LIST, &body("deal", "department", Some(sales)))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a manager of another department"
    );
    let deal = add(&app, &admin, &body("deal", "department", Some(sales))).await;

    // A user's own: anyone, for themselves.
    let (status, mine) = app.post(&ann, LIST, &body("mine", "user", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["user_id"], ann_id);
    let mine = mine["id"].as_i64().unwrap();
    add(&app, &bob, &body("bobs", "user", None)).await;

    // Who sees what: global, their departments' (an admin: all), their own.
    assert_eq!(shortcuts(&app, &ann).await, ["hello", "mine", "refund"]);
    assert_eq!(shortcuts(&app, &bob).await, ["bobs", "deal", "hello"]);
    assert_eq!(shortcuts(&app, &mona).await, ["hello", "refund"]);
    assert_eq!(shortcuts(&app, &admin).await, ["deal", "hello", "refund"]);

    // Changing: the same rules, for the old owner and the new.
    let (status, _) = app
        .put(
            &ann,
            &one(refund),
            &body("refund", "department", Some(support)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an agent, her department's");
    let mut changed = body("refund", "department", Some(support));
    changed["text"] = json!("We refunded you");
    let (status, updated) = app.put(&mona, &one(refund), &changed).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["text"], "We refunded you");
    assert_eq!(updated["id"], refund);
    let (status, _) = app
        .put(
            &mona,
            &one(refund),
            &body("refund", "department", Some(sales)),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "moved into a department he does not manage"
    );
    let (status, _) = app
        .put(&ann, &one(mine), &body("mine", "global", None))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "her own made global");
    let (status, refused) = app
        .put(&admin, &one(mine), &body("mine", "user", None))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(words(&refused).contains("another user's own"), "{refused}");
    let (status, updated) = app
        .put(&ann, &one(mine), &body("mine.2", "user", None))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["user_id"], ann_id);
    let (status, _) = app
        .put(&admin, &one(999_999), &body("x", "global", None))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deleting: the same, and an admin may delete anyone's own.
    for (token, id, who) in [
        (&bob, mine, "an agent, another's own"),
        (&mona, mine, "a manager, an agent's own"),
        (&ann, hello, "an agent, a global one"),
        (&bob, refund, "an agent of another department"),
    ] {
        let (status, _) = app.delete(token, &one(id)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}");
    }
    let (status, _) = app.delete(&admin, &one(mine)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(shortcuts(&app, &ann).await, ["hello", "refund"]);
    let (status, _) = app.delete(&admin, &one(deal)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&admin, &one(deal)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(shortcuts(&app, &bob).await, ["bobs", "hello"]);
}

async fn validation_flow(db: Db) {
    let app = spawn_app(db).await;
    let admin = app.admin.clone();
    let support = department(&app, "Support").await;
    let long = "x".repeat(41);
    let cases = [
        (body("", "global", None), "empty shortcut"),
        (body("two words", "global", None), "a space"),
        (body("!hi", "global", None), "the composer's !"),
        (body(&long, "global", None), "41 characters"),
        (body("a/b", "global", None), "a slash"),
        (
            json!({ "shortcut": "blank", "text": " \n ", "scope": "global" }),
            "a blank text",
        ),
        (
            json!({ "shortcut": "long", "text": "y".repeat(20_001), "scope": "global" }),
            "a text over 20,000 characters",
        ),
        (body("team", "team", None), "an unknown scope"),
        (
            body("dept", "department", None),
            "a department's without department_id",
        ),
        (
            body("glob", "global", Some(support)),
            "a global one with a department_id",
        ),
        (
            body("own", "user", Some(support)),
            "a user's own with a department_id",
        ),
        (
            body("nowhere", "department", Some(999_999)),
            "an unknown department",
        ),
    ];
    for (sent, what) in &cases {
        let (status, refused) = app.post(&admin, LIST, sent).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {refused}"
        );
        assert!(!words(&refused).is_empty(), "{what}: {refused}");
    }
    let (_, refused) = app.post(&admin, LIST, &body("!hi", "global", None)).await;
    assert!(words(&refused).contains("without the '!'"), "{refused}");
    let (_, refused) = app
        .post(&admin, LIST, &body("x", "department", Some(999_999)))
        .await;
    assert_eq!(words(&refused), "There is no department with id 999999");

    // At the limits, and letters beyond ASCII.
    add(&app, &admin, &body(&"x".repeat(40), "global", None)).await;
    add(
        &app,
        &admin,
        &json!({ "shortcut": "max", "text": "y".repeat(20_000), "scope": "global" }),
    )
    .await;
    let greeting = add(&app, &admin, &body("Grüße_1.a-b", "global", None)).await;

    // Fields the call does not know: 400 naming them.
    let mut unknown = body("colour", "global", None);
    unknown["colour"] = json!("red");
    let (status, refused) = app.post(&admin, LIST, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(words(&refused).contains("colour"), "{refused}");
    let (status, _) = app
        .post(&admin, LIST, &json!({ "shortcut": "x", "scope": "global" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "text is required");

    // One shortcut per scope and owner, whatever its case.
    let (status, refused) = app
        .post(&admin, LIST, &body("GRÜSSE_1.A-B", "global", None))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "ß is not ss: another shortcut: {refused}"
    );
    let (status, refused) = app
        .post(&admin, LIST, &body("grüße_1.A-B", "global", None))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        words(&refused)
            .starts_with("A canned response !grüße_1.A-B already exists among the global ones"),
        "{refused}"
    );
    add(
        &app,
        &admin,
        &body("grüße_1.a-b", "department", Some(support)),
    )
    .await;
    add(&app, &admin, &body("grüße_1.a-b", "user", None)).await;
    let other = add(&app, &admin, &body("other", "global", None)).await;
    let (status, refused) = app
        .put(&admin, &one(other), &body("GRÜßE_1.a-b", "global", None))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (status, renamed) = app
        .put(&admin, &one(greeting), &body("GRÜßE_1.a-b", "global", None))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "its own shortcut in another case: {renamed}"
    );
    assert_eq!(renamed["shortcut"], "GRÜßE_1.a-b");
}

async fn filled_flow(db: Db) {
    let app = spawn_app(db).await;
    let support = app.inbox_in_department("Support").await;
    let (_, ann) = member(&app, "ann", &["agent"], Some(support)).await;
    let (_, bob) = member(&app, "bob", &["agent"], Some(support)).await;
    let text = "Hi {{contact.name}} ({{ contact.email }}), {{agent.name}} of {{inbox.name}} here. {{ticket.id}}";
    add(
        &app,
        &app.admin,
        &json!({ "shortcut": "greet", "text": text, "scope": "global" }),
    )
    .await;
    app.deliver(&email("f1@c.test", "carol@c.test", "Filled", "Hello", ""))
        .await;
    let conversation = app.first_queued(&ann).await;
    app.take(&ann, conversation).await;

    // Filled for the asker (ann's name is ANN) in this conversation; unknown names stay.
    let (status, list) = app
        .get(&ann, &format!("{LIST}?conversation_id={conversation}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let greet = &list["canned_responses"][0];
    assert_eq!(greet["text"], text, "the text itself is unchanged");
    assert_eq!(
        greet["filled_text"],
        "Hi Carol Customer (carol@c.test), ANN of Support here. {{ticket.id}}"
    );
    let (_, plain) = app.get(&ann, LIST).await;
    assert!(
        plain["canned_responses"][0].get("filled_text").is_none(),
        "{plain}"
    );

    // Only for a conversation the asker may read, as its own routes decide.
    let query = format!("{LIST}?conversation_id={conversation}");
    let (status, refused) = app.get(&bob, &query).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(words(&refused).contains("not a member"), "{refused}");
    let (status, _) = app.get(&app.admin, &query).await;
    assert_eq!(status, StatusCode::OK, "an admin reads every conversation");
    let (status, _) = app
        .get(&ann, &format!("{LIST}?conversation_id=999999"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, refused) = app
        .get(&ann, &format!("{LIST}?conversation_id=first"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
}
