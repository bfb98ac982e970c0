//! Authentication, authorisation and bad input get clear errors.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, Db, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_tokens_and_input_get_clear_errors() {
    let app = spawn_app(Db::Sqlite).await;

    let (status, body) = app
        .post(
            "",
            "/api/v1/login",
            &json!({ "username": "admin", "password": "wrong" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "Wrong username or password");
    let (status, _) = app
        .post(
            "",
            "/api/v1/login",
            &json!({ "username": "ghost", "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = app.get("", "/api/v1/conversations").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = app.get("not-a-token", "/api/v1/conversations").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("", "/api/v1/events").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = app.get("", "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("ok")));

    let response = app
        .client
        .post(app.url("/api/v1/login"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        !body["error"].as_str().unwrap().is_empty(),
        "a message says what is wrong: {body}"
    );

    let (status, body) = app.get(&app.admin, "/api/v1/conversations/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app
        .post(&app.admin, "/api/v1/conversations/999999/take", &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&app.admin, "/api/v1/attachments/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&app.admin, "/api/v1/inboxes/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&app.admin, "/api/v1/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Agents cannot do admin work.
    let agent = app.agent("dana").await;
    let (status, _) = app
        .post(&agent, "/api/v1/inboxes", &app.inbox_body("x"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            &agent,
            "/api/v1/users",
            &json!({ "username": "eve", "password": "velvet-compass-meadow-17", "roles": ["admin"] }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An inbox naming a department that does not exist is refused with a reason, not a 500.
    let mut with_department = app.inbox_body("x");
    with_department["email"] = serde_json::json!("sales@example.test");
    with_department["department_id"] = serde_json::json!(7);
    let (status, body) = app
        .post(&app.admin, "/api/v1/inboxes", &with_department)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("department 7"),
        "{body}"
    );

    // Validation errors say what to fix; duplicates conflict.
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/users",
            &json!({ "username": "dana", "password": "velvet-compass-meadow-17", "roles": ["agent"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/users",
            &json!({ "username": "frank", "password": "short", "roles": ["agent"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/users",
            &json!({ "username": "frank", "password": "velvet-compass-meadow-17", "roles": ["boss"] }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("roles"), "{body}");

    // Logout ends the token.
    let (status, _) = app.post(&agent, "/api/v1/logout", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&agent, "/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
