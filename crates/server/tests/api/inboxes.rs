//! Inboxes: passwords never returned, a refused IMAP login shows as the inbox's error state,
//! changing or disabling an inbox restarts or stops its reader without a restart of postdesk,
//! and a refused email shows as failed with the server's reason.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Db, SUPPORT_PASSWORD, TestApp, email, eventually, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_imap_login_is_the_inbox_error_state_until_the_password_is_fixed() {
    let app = spawn_app(Db::Sqlite).await;
    let inbox = app.inbox().await;
    assert!(
        inbox["imap"].get("password").is_none(),
        "passwords are never returned: {inbox}"
    );
    assert_eq!(inbox["imap"]["password_set"], true);
    let text = inbox.to_string();
    assert!(!text.contains(SUPPORT_PASSWORD));

    // A wrong password: the reader reports the server's refusal and postdesk keeps serving.
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);
    let (status, body) = app
        .put(&app.admin, &path, &app.inbox_body("wrong-password"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let error = eventually("the inbox to show the login error", || async {
        let inbox = app.inbox().await;
        (inbox["status"]["state"] == "error").then(|| {
            inbox["status"]["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    })
    .await;
    assert!(error.contains("refused the login"), "{error}");
    assert!(
        error.contains("AUTHENTICATIONFAILED") || error.contains("Authentication failed"),
        "the server's own text: {error}"
    );

    // Fixed password, no restart of postdesk: it connects and ingests.
    let (status, _) = app
        .put(&app.admin, &path, &app.inbox_body(SUPPORT_PASSWORD))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.deliver(&email(
        "after-fix@customer.test",
        "carol@customer.test",
        "Hello",
        "Anyone there?",
        "",
    ))
    .await;
    eventually("the email to be ingested after the fix", || async {
        (app.conversations(&app.admin, "status=queued").await.len() == 1).then_some(())
    })
    .await;
    // The email is visible before the reader's round ends: wait for it to idle.
    let status = eventually("the reader to idle after the fix", || async {
        let status = app.inbox().await["status"].clone();
        (status["state"] == "idle").then_some(status)
    })
    .await;
    assert!(
        status["last_error"].is_null(),
        "a successful sync clears the error: {status}"
    );
    assert!(status["last_sync_at"].is_string());

    // Test connection reports each server.
    let (status, checks) = app
        .post(&app.admin, &format!("{path}/test"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(checks["imap"]["ok"], true, "{checks}");
    assert_eq!(checks["smtp"]["ok"], true, "{checks}");

    // Disabled: the reader stops, and mail waits in the mailbox.
    let mut disabled = app.inbox_body(SUPPORT_PASSWORD);
    disabled["active"] = json!(false);
    let (status, body) = app.put(&app.admin, &path, &disabled).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["state"], "stopped");
    app.deliver(&email(
        "while-off@customer.test",
        "dave@customer.test",
        "Later",
        "Hi",
        "",
    ))
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.conversations(&app.admin, "status=queued").await.len(),
        1,
        "a disabled inbox reads nothing"
    );
}

/// An agent takes the conversation of a new email (Message-ID `message_id`) and replies by
/// email while the SMTP server answers `refusal`: (agent, conversation, reply).
async fn reply_the_smtp_server_refuses(
    app: &TestApp,
    message_id: &str,
    refusal: &str,
) -> (String, i64, i64) {
    let agent = app.agent("alice").await;
    app.deliver(&email(
        message_id,
        "carol@customer.test",
        "Question",
        "Hi",
        "",
    ))
    .await;
    let conversation = app.first_queued(&agent).await;
    app.take(&agent, conversation).await;
    app.smtp.reject_with(Some(refusal));
    let (status, reply) = app
        .post(
            &agent,
            &format!("/api/v1/conversations/{conversation}/messages"),
            &json!({ "text": "Answer", "via": "email" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    (agent, conversation, reply["id"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_the_smtp_server_refuses_shows_as_failed_with_its_reason() {
    let app = spawn_app(Db::Sqlite).await;
    let (agent, conversation, id) =
        reply_the_smtp_server_refuses(&app, "q@customer.test", "550 5.1.1 No such user here").await;
    let delivery = app
        .wait_for_delivery(&agent, conversation, id, "failed")
        .await;
    assert!(
        delivery["error"]
            .as_str()
            .unwrap()
            .contains("No such user here"),
        "{delivery}"
    );
    assert!(app.smtp.messages().is_empty());

    // Retry once the server accepts again.
    app.smtp.reject_with(None);
    let (status, _) = app
        .post(&agent, &format!("/api/v1/messages/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.smtp.wait_for(1, Duration::from_secs(20)).await.unwrap();
    app.wait_for_delivery(&agent, conversation, id, "sent")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_are_verified_unless_the_inbox_opts_out() {
    let app = spawn_app(Db::Sqlite).await;
    let path = format!("/api/v1/inboxes/{}", app.inbox_id);

    // Implicit TLS to Dovecot's self-signed certificate: refused by default.
    let mut tls = app.inbox_body(SUPPORT_PASSWORD);
    tls["imap"]["port"] = json!(app.dovecot.imaps_port());
    tls["imap"]["security"] = json!("tls");
    let (status, body) = app.put(&app.admin, &path, &tls).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["imap"]["tls_verify"], true,
        "verification is on by default"
    );
    let error = eventually("the certificate to be refused", || async {
        let inbox = app.inbox().await;
        (inbox["status"]["state"] == "error").then(|| {
            inbox["status"]["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    })
    .await;
    assert!(
        error.contains("TLS handshake failed") && error.contains("using TLS"),
        "{error}"
    );

    // The explicit opt-out for a self-signed server: connects over TLS and ingests.
    tls["imap"]["tls_verify"] = json!(false);
    let (status, _) = app.put(&app.admin, &path, &tls).await;
    assert_eq!(status, StatusCode::OK);
    app.deliver(&email(
        "tls@customer.test",
        "carol@customer.test",
        "Over TLS",
        "Hi",
        "",
    ))
    .await;
    eventually("the email read over TLS", || async {
        (app.conversations(&app.admin, "status=queued").await.len() == 1).then_some(())
    })
    .await;

    // STARTTLS on the plain port, also opted out.
    let mut starttls = app.inbox_body(SUPPORT_PASSWORD);
    starttls["imap"]["security"] = json!("starttls");
    starttls["imap"]["tls_verify"] = json!(false);
    let (status, _) = app.put(&app.admin, &path, &starttls).await;
    assert_eq!(status, StatusCode::OK);
    app.deliver(&email(
        "starttls@customer.test",
        "dave@customer.test",
        "Over STARTTLS",
        "Hi",
        "",
    ))
    .await;
    eventually("the email read over STARTTLS", || async {
        (app.conversations(&app.admin, "status=queued").await.len() == 2).then_some(())
    })
    .await;
    // The reader finishes its round (the email is visible before it says so) and idles.
    eventually("the reader to idle over STARTTLS", || async {
        (app.inbox().await["status"]["state"] == "idle").then_some(())
    })
    .await;
}

/// 552 ("mailbox full") is retried, not failed: RFC 5321 §4.5.3.1.10, and the policy of
/// `postdesk_core::delivery::classify_reply` rather than the SMTP library's "every 5xx".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_552_is_retried_not_failed() {
    let app = spawn_app(Db::Sqlite).await;
    let (agent, conversation, id) =
        reply_the_smtp_server_refuses(&app, "full@customer.test", "552 5.2.2 Mailbox full").await;
    let delivery = eventually("the 552 to be recorded", || async {
        let messages = app.messages(&agent, conversation).await;
        let delivery = messages.iter().find(|m| m["id"] == id)?["email"]["delivery"].clone();
        delivery["error"].is_string().then_some(delivery)
    })
    .await;
    assert_eq!(delivery["status"], "queued", "retried later: {delivery}");
    assert!(
        delivery["error"].as_str().unwrap().contains("Mailbox full"),
        "{delivery}"
    );
}
