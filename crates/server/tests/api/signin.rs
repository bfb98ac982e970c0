//! Sign-in and sessions: the first admin's password, sessions listed and revoked, every
//! session and event stream ended on logout, password change or reset and deactivation,
//! a bound on event streams, and the HTTP timeouts.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{
    AGENT_PASSWORD, Db, EventLog, TestApp, eventually, spawn_app, spawn_app_with,
};

async fn stream_ends(log: &EventLog, what: &str) {
    eventually(what, || async { log.ended().then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_password_must_meet_the_policy() {
    postdesk_testkit::init();
    for weak in ["", "x", "password123"] {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = postdesk::Settings::for_data_dir(dir.path().into());
        settings.admin_password = Some(weak.into());
        let error = match postdesk::Application::build(settings).await {
            Ok(_) => panic!("{weak:?} was accepted as the first admin's password"),
            Err(e) => format!("{e:#}"),
        };
        assert!(error.contains("POSTDESK_ADMIN_PASSWORD"), "{error}");
    }
    // Generated, it meets the policy and signs in.
    let dir = tempfile::tempdir().unwrap();
    let app = postdesk::Application::build(postdesk::Settings::for_data_dir(dir.path().into()))
        .await
        .unwrap();
    let generated = app
        .first_admin_password
        .clone()
        .expect("a generated password");
    assert_eq!(
        postdesk::password::check_policy(&generated, &["admin"]),
        Ok(())
    );
}

async fn logins(app: &TestApp, username: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for _ in 0..n {
        tokens.push(app.login(username, AGENT_PASSWORD).await);
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_revoked_by_their_user_and_by_admins() {
    let app = spawn_app(Db::Sqlite).await;
    let alice_id = app.user("alice", &["agent"]).await;
    let tokens = logins(&app, "alice", 3).await;

    let (status, mine) = app.get(&tokens[0], "/api/v1/me/sessions").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let sessions = mine["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{mine}");
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert!(
        sessions
            .iter()
            .all(|s| s.get("token").is_none() && s.get("token_hash").is_none())
    );

    // Ending another of one's sessions: its token stops working, and its event stream ends.
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_i64()
        .unwrap();
    let other_token = {
        // Which token is it? The one that no longer works after the delete.
        let stream_logs =
            futures::future::join_all(tokens.iter().map(|t| EventLog::open(&app, t))).await;
        let (status, _) = app
            .delete(&tokens[0], &format!("/api/v1/me/sessions/{other}"))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let mut ended = None;
        for (i, token) in tokens.iter().enumerate() {
            if app.get(token, "/api/v1/me").await.0 == StatusCode::UNAUTHORIZED {
                ended = Some(i);
            }
        }
        let ended = ended.expect("one token ended");
        stream_ends(
            &stream_logs[ended],
            "the revoked session's event stream to end",
        )
        .await;
        for (i, log) in stream_logs.iter().enumerate() {
            if i != ended {
                assert!(!log.ended(), "stream {i} of a live session ended too");
            }
        }
        ended
    };
    assert_ne!(other_token, 0, "the current session was kept");

    // Someone else's session id is not found.
    let bob = app.agent("bob").await;
    let (status, _) = app
        .delete(&bob, &format!("/api/v1/me/sessions/{other}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An admin sees and ends them all.
    let (status, listed) = app
        .get(&app.admin, &format!("/api/v1/users/{alice_id}/sessions"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);
    let log = EventLog::open(&app, &tokens[0]).await;
    let (status, ended) = app
        .delete(&app.admin, &format!("/api/v1/users/{alice_id}/sessions"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["ended"], 2);
    assert_eq!(
        app.get(&tokens[0], "/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    stream_ends(&log, "the stream after an admin ended every session").await;
    let (_, audit) = app.get(&app.admin, "/api/v1/audit?action=user").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.sessions_end"), "{actions:?}");
    assert!(actions.contains(&"user.create"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_by_an_admin_ends_every_session_and_stream() {
    let app = spawn_app(Db::Sqlite).await;
    let alice_id = app.user("alice", &["agent"]).await;
    let tokens = logins(&app, "alice", 2).await;
    let log = EventLog::open(&app, &tokens[0]).await;
    let (status, body) = app
        .patch(
            &app.admin,
            &format!("/api/v1/users/{alice_id}"),
            &json!({ "password": "short" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reset meets the policy too: {body}"
    );
    let (status, _) = app
        .patch(
            &app.admin,
            &format!("/api/v1/users/{alice_id}"),
            &json!({ "password": "ochre-walrus-sonata-58" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for token in &tokens {
        assert_eq!(
            app.get(token, "/api/v1/me").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    stream_ends(&log, "the event stream after the reset").await;
    let (status, _) = app
        .post(
            "",
            "/api/v1/login",
            &json!({ "username": "alice", "password": "ochre-walrus-sonata-58" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_ones_password_keeps_this_session_and_ends_the_others() {
    let app = spawn_app(Db::Postgres).await;
    app.user("alice", &["agent"]).await;
    let tokens = logins(&app, "alice", 2).await;
    let other_stream = EventLog::open(&app, &tokens[1]).await;
    let this_stream = EventLog::open(&app, &tokens[0]).await;
    let (status, body) = app
        .put(
            &tokens[0],
            "/api/v1/me/password",
            &json!({ "current_password": "not-it", "new_password": "ochre-walrus-sonata-58" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .put(
            &tokens[0],
            "/api/v1/me/password",
            &json!({ "current_password": AGENT_PASSWORD, "new_password": "alice12345" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .put(&tokens[0], "/api/v1/me/password", &json!({ "current_password": AGENT_PASSWORD, "new_password": "ochre-walrus-sonata-58" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.get(&tokens[0], "/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(
        app.get(&tokens[1], "/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    stream_ends(&other_stream, "the other session's stream").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!this_stream.ended(), "this session's stream goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_deactivation_end_open_event_streams() {
    let app = spawn_app(Db::Sqlite).await;
    let alice_id = app.user("alice", &["agent"]).await;
    let token = app.login("alice", AGENT_PASSWORD).await;
    let log = EventLog::open(&app, &token).await;
    let (status, _) = app.post(&token, "/api/v1/logout", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    stream_ends(&log, "the stream after logout").await;

    let token = app.login("alice", AGENT_PASSWORD).await;
    let log = EventLog::open(&app, &token).await;
    let (status, _) = app
        .patch(
            &app.admin,
            &format!("/api/v1/users/{alice_id}"),
            &json!({ "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    stream_ends(&log, "the stream after deactivation").await;
    let (status, _) = app
        .post(
            "",
            "/api/v1/login",
            &json!({ "username": "alice", "password": AGENT_PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_may_open_only_so_many_event_streams() {
    let app = spawn_app_with(Db::Sqlite, |s| s.max_event_streams = 2).await;
    let token = app.agent("alice").await;
    let first = EventLog::open(&app, &token).await;
    let _second = EventLog::open(&app, &token).await;
    let (status, body) = app.get(&token, "/api/v1/events").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("close one"),
        "{body}"
    );
    // Others are not affected; closing one frees its place.
    let _admins = EventLog::open(&app, &app.admin).await;
    drop(first);
    eventually("a place for a new stream", || async {
        let response = app
            .client
            .get(app.url("/api/v1/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
}

/// Reads until the server closes the connection; what it sent.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    let mut all = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&all).into_owned(),
            Ok(n) => all.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_and_idle_connections_are_closed() {
    let app = spawn_app_with(Db::Sqlite, |s| s.http_header_timeout_seconds = 1).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Generous: the setting is 1 s; this bounds "closed at all", not a speed.
    let bound = Duration::from_secs(20);

    // 200 requests whose headers never end.
    let mut half_sent = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        half_sent.push(stream);
    }
    for mut stream in half_sent {
        tokio::time::timeout(bound, read_until_closed(&mut stream))
            .await
            .expect("a half-sent request is closed by the server");
    }

    // A finished request on a keep-alive connection, then silence.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = tokio::time::timeout(bound, read_until_closed(&mut stream))
        .await
        .expect("an idle keep-alive connection is closed by the server");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A normal client is unaffected.
    let (status, _) = app.get("", "/healthz").await;
    assert_eq!(status, StatusCode::OK);
}
