//! Two-factor sign-in (TOTP) end to end, on a clock the test moves: enrol, confirm, sign in
//! with a code, no code twice, recovery codes once, and an admin's requirement.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{AGENT_PASSWORD, Db, TestApp, spawn_app};

async fn sign_in(app: &TestApp, username: &str, totp: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({ "username": username, "password": AGENT_PASSWORD });
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    app.post("", "/api/v1/login", &body).await
}

/// Enrols `token`'s user; returns the secret and the recovery codes.
async fn enrol(app: &TestApp, token: &str) -> (Vec<u8>, Vec<String>) {
    let (status, started) = app.post(token, "/api/v1/me/totp", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert!(
        started["secret_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/postdesk:")
    );
    let secret = postdesk::totp::secret_from_base32(started["secret"].as_str().unwrap()).unwrap();
    let (status, body) = app
        .post(
            token,
            "/api/v1/me/totp/confirm",
            &json!({ "code": "000000" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong code confirms nothing: {body}"
    );
    let code = postdesk::totp::code_at(&secret, app.clock.now_seconds()).unwrap();
    let (status, confirmed) = app
        .post(token, "/api/v1/me/totp/confirm", &json!({ "code": code }))
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let codes = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

async fn two_factor_sign_in(db: Db) {
    let app = spawn_app(db).await;
    let token = app.agent("alice").await;
    let (secret, recovery) = enrol(&app, &token).await;
    assert_eq!(recovery.len(), 10);

    // The password alone is half a sign-in.
    let (status, body) = sign_in(&app, "alice", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["totp_required"], true, "{body}");
    assert!(body.get("token").is_none());

    // Ten minutes on: the code of now works, once; the one of enrolment time does not.
    let enrolled_at = app.clock.now_seconds();
    app.clock.advance(600);
    let stale = postdesk::totp::code_at(&secret, enrolled_at).unwrap();
    let (status, _) = sign_in(&app, "alice", Some(&stale)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a ten-minute-old code");
    let code = postdesk::totp::code_at(&secret, app.clock.now_seconds()).unwrap();
    let (status, body) = sign_in(&app, "alice", Some(&code)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = sign_in(&app, "alice", Some(&code)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the same code twice: {body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("already used"),
        "{body}"
    );

    // A recovery code works once, in any case.
    let (status, _) = sign_in(&app, "alice", Some(&recovery[3].to_uppercase())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = sign_in(&app, "alice", Some(&recovery[3])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Each is in the audit log with its method; wrong codes count as failed sign-ins.
    let (_, audit) = app
        .get(&app.admin, "/api/v1/audit?actor=alice&action=sign_in")
        .await;
    let entries = audit["entries"].as_array().unwrap();
    let methods: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["details"]["method"].as_str())
        .collect();
    assert!(
        methods.contains(&"password+totp") && methods.contains(&"password+recovery_code"),
        "{methods:?}"
    );
    let wrong = entries
        .iter()
        .filter(|e| e["details"]["reason"] == "wrong two-factor code")
        .count();
    assert_eq!(wrong, 3, "{audit}");

    // Turning it off needs the password; an admin can reset it for a lost phone.
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &token,
            "/api/v1/me/totp",
            &json!({ "password": "nope" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, me) = app.get(&token, "/api/v1/me").await;
    let id = me["id"].as_i64().unwrap();
    assert_eq!(me["totp_enabled"], true);
    let (status, _) = app
        .delete(&app.admin, &format!("/api/v1/users/{id}/totp"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = sign_in(&app, "alice", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "password alone again after the reset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_sign_in_on_sqlite() {
    two_factor_sign_in(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_sign_in_on_postgres() {
    two_factor_sign_in(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_admin_requires_it_nothing_works_before_enrolling() {
    let app = spawn_app(Db::Sqlite).await;
    let (status, body) = app.get(&app.admin, "/api/v1/security").await;
    assert_eq!(
        (status, body["require_totp"].as_str()),
        (StatusCode::OK, Some("off"))
    );
    let token = app.agent("alice").await;
    let (status, body) = app
        .put(
            &app.admin,
            "/api/v1/security",
            &json!({ "require_totp": "everyone" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the admin first: {body}");
    enrol(&app, &app.admin).await;
    let (status, body) = app
        .put(
            &app.admin,
            "/api/v1/security",
            &json!({ "require_totp": "everyone" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .put(
            &app.admin,
            "/api/v1/security",
            &json!({ "require_totp": "sometimes" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = app.get(&token, "/api/v1/conversations").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["totp_enrolment_required"], true, "{body}");
    let (status, me) = app.get(&token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["totp_enrolment_required"], true);
    let (status, _) = app.get(&token, "/api/v1/events").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    enrol(&app, &token).await;
    let (status, _) = app.get(&token, "/api/v1/conversations").await;
    assert_eq!(status, StatusCode::OK, "set up: everything works again");
    let (status, body) = app
        .send(
            reqwest::Method::DELETE,
            &token,
            "/api/v1/me/totp",
            &json!({ "password": AGENT_PASSWORD }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "cannot be turned off while required: {body}"
    );
    let (_, audit) = app.get(&app.admin, "/api/v1/audit?action=security").await;
    assert_eq!(audit["entries"][0]["details"]["require_totp"], "everyone");
}
