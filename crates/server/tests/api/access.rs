//! Access: the authorization matrix over every route of the router, and the findings of the
//! security review, each as a test that failed before its fix.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    AGENT_PASSWORD, Db, TestApp, email, email_with_attachment, eventually, spawn_app,
};

/// Who asks, in the order of each row of [`EXPECTED`].
const PERSONAS: [&str; 8] = [
    "no token",
    "expired token",
    "agent member",
    "agent non-member",
    "agent of another department",
    "manager",
    "admin",
    "deactivated user",
];

/// Every route × persona: `4` is 401, `3` is 403, `+` is allowed (any other status: the
/// call got past the policy, and its answer may still be 400, 404, 409 or 422 for the
/// deliberately incomplete bodies the matrix sends). A route the router has and this table
/// lacks fails the test, and so does an entry for a route that no longer exists.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "++++++++"),
    ("GET", "/", "++++++++"),
    ("GET", "/login", "++++++++"),
    ("POST", "/login", "++++++++"),
    ("POST", "/logout", "++++++++"),
    ("GET", "/static/app.js", "++++++++"),
    ("GET", "/static/app.css", "++++++++"),
    // Admins only, unless POSTDESK_METRICS=1 opens it to everyone (metrics.rs); off, as
    // here, a caller with no token at all is told it is off (404, past the policy's
    // refusals) rather than asked to sign in.
    ("GET", "/metrics", "+43333+4"),
    ("POST", "/api/v1/login", "++++++++"),
    ("GET", "/api/v1/login/oidc", "++++++++"),
    ("GET", "/api/v1/login/oidc/callback", "++++++++"),
    ("POST", "/api/v1/logout", "44+++++4"),
    ("GET", "/api/v1/me", "44+++++4"),
    ("PUT", "/api/v1/me/password", "44+++++4"),
    ("GET", "/api/v1/me/sessions", "44+++++4"),
    ("DELETE", "/api/v1/me/sessions/{id}", "44+++++4"),
    ("PUT", "/api/v1/me/availability", "44+++++4"),
    ("POST", "/api/v1/me/totp", "44+++++4"),
    ("POST", "/api/v1/me/totp/confirm", "44+++++4"),
    ("DELETE", "/api/v1/me/totp", "44+++++4"),
    ("DELETE", "/api/v1/users/{id}/totp", "443333+4"),
    ("GET", "/api/v1/security", "443333+4"),
    ("PUT", "/api/v1/security", "443333+4"),
    ("GET", "/api/v1/users", "44+++++4"),
    ("POST", "/api/v1/users", "443333+4"),
    ("PATCH", "/api/v1/users/{id}", "443333+4"),
    ("GET", "/api/v1/users/{id}/sessions", "443333+4"),
    ("DELETE", "/api/v1/users/{id}/sessions", "443333+4"),
    ("GET", "/api/v1/departments", "44+++++4"),
    ("POST", "/api/v1/departments", "443333+4"),
    ("PATCH", "/api/v1/departments/{id}", "44333++4"),
    ("PUT", "/api/v1/departments/{id}", "44333++4"),
    (
        "PUT",
        "/api/v1/departments/{id}/members/{user_id}",
        "44333++4",
    ),
    (
        "DELETE",
        "/api/v1/departments/{id}/members/{user_id}",
        "44333++4",
    ),
    ("GET", "/api/v1/inboxes", "443333+4"),
    ("POST", "/api/v1/inboxes", "443333+4"),
    ("GET", "/api/v1/inboxes/{id}", "443333+4"),
    ("PUT", "/api/v1/inboxes/{id}", "443333+4"),
    ("POST", "/api/v1/inboxes/{id}/test", "443333+4"),
    ("GET", "/api/v1/cluster", "443333+4"),
    ("POST", "/api/v1/inboxes/{id}/oauth/start", "443333+4"),
    ("GET", "/api/v1/oauth/providers", "443333+4"),
    ("POST", "/api/v1/oauth/providers", "443333+4"),
    ("PUT", "/api/v1/oauth/providers/{id}", "443333+4"),
    ("DELETE", "/api/v1/oauth/providers/{id}", "443333+4"),
    // Public like the single sign-on callback; the state and its session are checked there.
    ("GET", "/api/v1/oauth/callback", "++++++++"),
    ("GET", "/api/v1/quarantine", "443333+4"),
    ("POST", "/api/v1/quarantine/{id}/reprocess", "443333+4"),
    ("GET", "/api/v1/quarantine/{id}/raw", "443333+4"),
    ("GET", "/api/v1/conversations", "44+++++4"),
    ("GET", "/api/v1/conversations/counts", "44+++++4"),
    ("GET", "/api/v1/conversations/{id}", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/take", "44++3++4"),
    ("GET", "/api/v1/conversations/{id}/messages", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/messages", "44+33++4"),
    ("GET", "/api/v1/conversations/{id}/recipients", "44+33++4"),
    ("GET", "/api/v1/conversations/{id}/presence", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/presence", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/uploads", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/commands", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/close", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/reopen", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/transfer", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/hold", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/resume", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/snooze", "44+33++4"),
    ("POST", "/api/v1/conversations/{id}/merge", "44+33++4"),
    ("PUT", "/api/v1/conversations/{id}/tags", "44+33++4"),
    // A draft is the caller's own: whoever may open the conversation may keep one.
    ("GET", "/api/v1/conversations/{id}/draft", "44+33++4"),
    ("PUT", "/api/v1/conversations/{id}/draft", "44+33++4"),
    ("DELETE", "/api/v1/conversations/{id}/draft", "44+33++4"),
    ("POST", "/api/v1/messages/{id}/send-email", "44+33++4"),
    ("POST", "/api/v1/messages/{id}/retry", "44+33++4"),
    ("GET", "/api/v1/messages/{id}/body.html", "44+33++4"),
    ("GET", "/api/v1/attachments/{id}", "44+33++4"),
    ("GET", "/api/v1/contacts", "44+++++4"),
    // Past the policy for everyone signed in; a contact none of whose conversations the
    // caller may see is not found (the matrix's contact does not exist).
    ("GET", "/api/v1/contacts/{id}", "44+++++4"),
    ("PATCH", "/api/v1/contacts/{id}", "44+++++4"),
    ("GET", "/api/v1/contacts/{id}/export", "443333+4"),
    ("DELETE", "/api/v1/contacts/{id}", "443333+4"),
    ("GET", "/api/v1/tags", "44+++++4"),
    ("GET", "/api/v1/search", "44+++++4"),
    // Past the policy for everyone signed in: which canned responses one sees and may change
    // is decided by their scope (the matrix's id does not exist: 404).
    ("GET", "/api/v1/canned-responses", "44+++++4"),
    ("POST", "/api/v1/canned-responses", "44+++++4"),
    ("PUT", "/api/v1/canned-responses/{id}", "44+++++4"),
    ("DELETE", "/api/v1/canned-responses/{id}", "44+++++4"),
    ("GET", "/api/v1/events", "44+++++4"),
    ("GET", "/api/v1/audit", "443333+4"),
    ("GET", "/api/v1/audit/export", "443333+4"),
    ("PUT", "/api/v1/hooks/dovecot-push", "++++++++"),
    ("POST", "/api/v1/hooks/dovecot-push", "++++++++"),
    // The API's description: public, like the login call it describes.
    ("GET", "/api/v1/openapi.json", "++++++++"),
];

/// The ids a route's placeholders stand for.
struct Ids {
    queued: i64,
    taken: i64,
    message: i64,
    attachment: i64,
    user: i64,
    inbox: i64,
    department: i64,
}

fn concrete(path: &str, ids: &Ids) -> String {
    let conversation = if path.ends_with("/take") {
        ids.queued
    } else {
        ids.taken
    };
    let id = if path.starts_with("/api/v1/conversations/") {
        conversation
    } else if path.starts_with("/api/v1/messages/") {
        ids.message
    } else if path.starts_with("/api/v1/attachments/") {
        ids.attachment
    } else if path.starts_with("/api/v1/users/") {
        ids.user
    } else if path.starts_with("/api/v1/inboxes/") {
        ids.inbox
    } else if path.starts_with("/api/v1/departments/") {
        ids.department
    } else {
        // Quarantined emails, sessions and contacts that do not exist: past the policy, a 404
        // (a real contact would be deleted, and the conversations of later rows with it).
        999_999
    };
    path.replace("{id}", &id.to_string())
        .replace("{user_id}", &ids.user.to_string())
}

/// The status of one call, without reading the body (the event stream never ends).
async fn status_of(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> StatusCode {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != Method::GET && method != Method::DELETE {
        // Deliberately incomplete: every route that takes a body refuses `{}` after the
        // policy let it through, so the matrix changes little.
        request = request.json(&json!({}));
    }
    request.send().await.unwrap().status()
}

async fn authorization_matrix(db: Db) {
    let app = spawn_app(db).await;
    let store = app.store().await;
    let far = postdesk_store::now_ms() + 3_600_000;

    // Arrange: the support inbox in department Support; everyone but olaf and the admin in it.
    let (status, support) = app
        .post(
            &app.admin,
            "/api/v1/departments",
            &json!({ "name": "Support" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{support}");
    let (_, other) = app
        .post(
            &app.admin,
            "/api/v1/departments",
            &json!({ "name": "Sales" }),
        )
        .await;
    let department = support["id"].as_i64().unwrap();
    let mut inbox = app.inbox_body(crate::helpers::SUPPORT_PASSWORD);
    inbox["department_id"] = json!(department);
    let (status, body) = app
        .put(
            &app.admin,
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &inbox,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let member = app.user("mia", &["agent"]).await;
    let nonmember = app.user("nick", &["agent"]).await;
    let outsider = app.user("olaf", &["agent"]).await;
    let manager = app.user("mona", &["manager"]).await;
    let deactivated = app.user("dave", &["agent"]).await;
    let target = app.user("tess", &["agent"]).await;
    for (user, dept) in [
        (member, department),
        (nonmember, department),
        (manager, department),
        (deactivated, department),
        (outsider, other["id"].as_i64().unwrap()),
    ] {
        let (status, body) = app
            .put(
                &app.admin,
                &format!("/api/v1/departments/{dept}/members/{user}"),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = app
        .patch(
            &app.admin,
            &format!("/api/v1/users/{deactivated}"),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // A conversation mia took (with an attachment) and one still queued.
    let mia = app.login("mia", AGENT_PASSWORD).await;
    app.deliver(&email_with_attachment(
        "m1@c.test",
        "carol@c.test",
        "Invoice",
        "See attached",
        "invoice.pdf",
        b"%PDF-1.4 x",
    ))
    .await;
    let taken = app.first_queued(&mia).await;
    app.take(&mia, taken).await;
    app.deliver(&email("m2@c.test", "dan@c.test", "Question", "Hello?", ""))
        .await;
    let queued = eventually("the second conversation", || async {
        app.conversations(&mia, "status=queued")
            .await
            .first()
            .and_then(|c| c["id"].as_i64())
    })
    .await;
    let messages = app.messages(&mia, taken).await;
    let with_file = messages
        .iter()
        .find(|m| !m["attachments"].as_array().unwrap().is_empty())
        .expect("the email with its attachment");
    let ids = Ids {
        queued,
        taken,
        message: with_file["id"].as_i64().unwrap(),
        attachment: with_file["attachments"][0]["id"].as_i64().unwrap(),
        user: target,
        inbox: app.inbox_id,
        department,
    };
    let admin = app
        .store()
        .await
        .find_user_by_username("admin")
        .await
        .unwrap()
        .unwrap()
        .id
        .0;

    // The table covers exactly the router's routes.
    let routes: Vec<(String, String)> = postdesk::web::route_list()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    for (method, path) in &routes {
        assert!(
            EXPECTED.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} has no row in the authorization matrix: add what each persona gets"
        );
    }
    for (method, path, _) in EXPECTED {
        assert!(
            routes.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is in the matrix but not in the router"
        );
    }

    // Act and assert: each call with a fresh token (a call may end its own session).
    let mut wrong = Vec::new();
    for (method, template, expected) in EXPECTED {
        let path = concrete(template, &ids);
        for (persona, want) in PERSONAS.iter().zip(expected.chars()) {
            let token = match *persona {
                "no token" => None,
                "expired token" => Some(
                    app.mint_token(&store, member, postdesk_store::now_ms() - 1000)
                        .await,
                ),
                "agent member" => Some(app.mint_token(&store, member, far).await),
                "agent non-member" => Some(app.mint_token(&store, nonmember, far).await),
                "agent of another department" => Some(app.mint_token(&store, outsider, far).await),
                "manager" => Some(app.mint_token(&store, manager, far).await),
                "admin" => Some(app.mint_token(&store, admin, far).await),
                _ => Some(app.mint_token(&store, deactivated, far).await),
            };
            let status = status_of(&app, method, &path, token.as_deref()).await;
            let ok = match want {
                '4' => status == StatusCode::UNAUTHORIZED,
                '3' => status == StatusCode::FORBIDDEN,
                _ => {
                    status != StatusCode::UNAUTHORIZED
                        && status != StatusCode::FORBIDDEN
                        && status.as_u16() < 500
                }
            };
            if !ok {
                wrong.push(format!(
                    "{method} {path} as {persona}: got {status}, expected {want}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_persona_as_the_policy_says_on_sqlite() {
    authorization_matrix(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_persona_as_the_policy_says_on_postgres() {
    authorization_matrix(Db::Postgres).await;
}

/// An agent asking for another agent's conversations gets none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_list_another_agents_conversations() {
    let app = spawn_app(Db::Sqlite).await;
    let alice = app.agent("alice").await;
    let bob_id = app.user("bob", &["agent"]).await;
    let bob = app.login("bob", AGENT_PASSWORD).await;
    app.deliver(&email(
        "s1@c.test",
        "carol@c.test",
        "Private matter",
        "Hi",
        "",
    ))
    .await;
    let conversation = app.first_queued(&bob).await;
    app.take(&bob, conversation).await;
    for query in [
        format!("member={bob_id}"),
        format!("assignee={bob_id}"),
        format!("status=open&assignee={bob_id}"),
        "status=open".to_owned(),
    ] {
        let seen = app.conversations(&alice, &query).await;
        assert!(
            seen.is_empty(),
            "?{query} showed alice bob's conversation: {seen:?}"
        );
    }
    assert_eq!(app.conversations(&bob, "member=me").await.len(), 1);
    assert_eq!(
        app.conversations(&app.admin, &format!("member={bob_id}"))
            .await
            .len(),
        1
    );
}

/// Closed is read-only until Reopen; the previous assignee of a reopened conversation that
/// someone else took can neither read nor write it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_is_read_only_and_a_previous_assignee_loses_access() {
    let app = spawn_app(Db::Sqlite).await;
    let alice = app.agent("alice").await;
    let bob = app.agent("bob").await;
    app.deliver(&email("c1@c.test", "carol@c.test", "Help", "Hi", ""))
        .await;
    let id = app.first_queued(&alice).await;
    app.take(&alice, id).await;
    let path = format!("/api/v1/conversations/{id}");
    let (status, _) = app.post(&alice, &format!("{path}/close"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);

    // Closed: no message, no reply, no upload.
    let (status, body) = app
        .post(
            &alice,
            &format!("{path}/messages"),
            &json!({ "text": "late note" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Reopen"), "{body}");
    let (status, _) = app
        .post(
            &alice,
            &format!("{path}/messages"),
            &json!({ "text": "late reply", "via": "email" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = app.upload(&alice, id, "late.pdf", b"%PDF").await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Reopen makes it writable again, in alice's Chats in Progress.
    let (status, reopened) = app
        .post(&alice, &format!("{path}/reopen"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{reopened}");
    assert_eq!(reopened["status"], "open");
    let (status, _) = app
        .post(
            &alice,
            &format!("{path}/messages"),
            &json!({ "text": "back on it" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Closed again; the contact writes; bob takes it: alice is out.
    app.post(&alice, &format!("{path}/close"), &json!({})).await;
    app.deliver(&email(
        "c2@c.test",
        "carol@c.test",
        "Re: Help",
        "Still broken",
        "In-Reply-To: <c1@c.test>\r\n",
    ))
    .await;
    eventually("the conversation back in the queue", || async {
        let (_, c) = app.get(&bob, &path).await;
        (c["status"] == "queued").then_some(())
    })
    .await;
    app.take(&bob, id).await;
    let (status, _) = app.get(&alice, &format!("{path}/messages")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the previous assignee reads no more"
    );
    let (status, _) = app
        .post(
            &alice,
            &format!("{path}/messages"),
            &json!({ "text": "me again" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor writes");
    // Unless invited.
    let (status, _) = app
        .post(
            &bob,
            &format!("{path}/commands"),
            &json!({ "command": "/invite @alice" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&alice, &format!("{path}/messages")).await;
    assert_eq!(status, StatusCode::OK);
}

/// A manager acts on their departments' conversations only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_of_another_department_can_neither_take_nor_write() {
    let app = spawn_app(Db::Sqlite).await;
    app.inbox_in_department("Support").await;
    let (_, sales) = app
        .post(
            &app.admin,
            "/api/v1/departments",
            &json!({ "name": "Sales" }),
        )
        .await;
    let manager = app.user("mona", &["manager"]).await;
    app.put(
        &app.admin,
        &format!("/api/v1/departments/{}/members/{manager}", sales["id"]),
        &json!({}),
    )
    .await;
    let mona = app.login("mona", AGENT_PASSWORD).await;
    app.deliver(&email(
        "d1@c.test",
        "carol@c.test",
        "Support only",
        "Hi",
        "",
    ))
    .await;
    let id = eventually("the conversation", || async {
        app.conversations(&app.admin, "status=queued")
            .await
            .first()
            .and_then(|c| c["id"].as_i64())
    })
    .await;
    assert!(
        app.conversations(&mona, "").await.is_empty(),
        "not in her departments' lists"
    );
    let (status, _) = app
        .post(
            &mona,
            &format!("/api/v1/conversations/{id}/take"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            &mona,
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({ "text": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&mona, &format!("/api/v1/conversations/{id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // And does not administer the system.
    let (status, _) = app.get(&mona, "/api/v1/inboxes").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A stored inbox password is never sent to a server other than the one it was given for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_an_inbox_server_needs_its_password_again() {
    let app = spawn_app(Db::Sqlite).await;
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    let mut body = app.inbox_body("unused");
    body["imap"].as_object_mut().unwrap().remove("password");
    // Same server, password left out: kept.
    let (status, answer) = app.put(&app.admin, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for (field, value) in [
        ("host", json!("127.0.0.2")),
        ("port", json!(1)),
        ("security", json!("tls")),
    ] {
        let mut moved = body.clone();
        moved["imap"][field] = value;
        let (status, answer) = app.put(&app.admin, &path, &moved).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {answer}"
        );
        assert!(
            answer["error"].as_str().unwrap().contains("password again"),
            "{answer}"
        );
    }
    let mut moved = body.clone();
    moved["imap"]["host"] = json!("127.0.0.2");
    moved["imap"]["password"] = json!("a-new-password");
    let (status, _) = app.put(&app.admin, &path, &moved).await;
    assert_eq!(status, StatusCode::OK, "with the password given again");
}

/// POSTs a JSON body of `length` bytes over a raw connection, writing it while reading the
/// answer, so that an answer that comes before the whole body was sent is read all the same
/// (an HTTP client still writing may see only the closed connection): (status, body).
async fn early_answer(app: &TestApp, token: &str, path: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let opening = b"{\"text\": \"";
        write.write_all(opening).await?;
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = length - opening.len();
        while left > 0 {
            let n = left.min(chunk.len());
            // The server may answer and close before all is sent: the rest is not needed.
            write.write_all(&chunk[..n]).await?;
            left -= n;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        read.read_to_end(&mut answer),
    )
    .await
    .expect("an answer")
    .unwrap();
    writer.abort();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

/// Message text and JSON bodies have limits, with a clear 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_with_a_clear_413() {
    let app = spawn_app(Db::Sqlite).await;
    let alice = app.agent("alice").await;
    app.deliver(&email("l1@c.test", "carol@c.test", "Hi", "Hi", ""))
        .await;
    let id = app.first_queued(&alice).await;
    app.take(&alice, id).await;
    let path = format!("/api/v1/conversations/{id}/messages");
    // A 40 MB message: refused from its Content-Length, before the body is read. Sent by hand
    // so the answer is read however early it comes (an HTTP client still writing the body
    // may see the closed connection first).
    let (status, body) = early_answer(&app, &alice, &path, 40 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("KiB"), "{body}");
    let (status, body) = app
        .post(
            &alice,
            &path,
            &json!({ "text": "y".repeat(postdesk::web::MAX_MESSAGE_CHARS + 1) }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("characters"),
        "{body}"
    );
    let (status, _) = app
        .post(&alice, &path, &json!({ "text": "z".repeat(50_000) }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "a long but reasonable note");
    // Unknown fields are refused, not ignored.
    let (status, body) = app
        .post(&alice, &path, &json!({ "text": "hi", "cc": "boss@c.test" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("cc"), "{body}");
}

/// Nothing of the data folder is readable by other users of the machine.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app(Db::Sqlite).await;
    let dir = app.data_dir();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "the data folder");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(files >= 2, "the database and the key at least");
}

fn value_of(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_default()
}

/// 50 wrong passwords in a row, then the right one: refused with 429 and a wait; every
/// attempt is in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_and_recorded() {
    let app = spawn_app(Db::Sqlite).await;
    app.agent("alice").await;
    let try_login = |password: &'static str| {
        let app = &app;
        async move {
            app.post(
                "",
                "/api/v1/login",
                &json!({ "username": "alice", "password": password }),
            )
            .await
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(try_login("wrong-guess").await.0);
    }
    assert_eq!(
        statuses[..5],
        [StatusCode::UNAUTHORIZED; 5],
        "five free failures: {statuses:?}"
    );
    assert!(
        statuses[5..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let (status, body) = try_login(AGENT_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password waits too: {body}"
    );
    assert!(value_of(&body, "retry_after") >= 1, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("try again"),
        "{body}"
    );

    // Other accounts are not locked out by alice's failures.
    app.login("admin", crate::helpers::ADMIN_PASSWORD).await;

    // Each attempt is recorded, with its outcome.
    let (status, audit) = app
        .get(&app.admin, "/api/v1/audit?actor=alice&action=sign_in")
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.iter().filter(|a| **a == "sign_in.failed").count() >= 5,
        "{actions:?}"
    );
    assert!(actions.contains(&"sign_in.throttled"), "{actions:?}");
    assert_eq!(audit["entries"][0]["ip"], "127.0.0.1");

    // After the wait, the right password works again.
    let wait = value_of(&body, "retry_after");
    tokio::time::sleep(std::time::Duration::from_secs(
        u64::try_from(wait).unwrap() + 1,
    ))
    .await;
    let (status, body) = try_login(AGENT_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
