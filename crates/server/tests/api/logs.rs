//! Secrets never reach the log: the real binary at `POSTDESK_LOG=trace` signs in to a real
//! Dovecot, and its log holds the IMAP conversation but not the password.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::crash::{login, start_logging};
use crate::helpers::{SUPPORT, SUPPORT_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_log_never_holds_the_mailbox_password() {
    postdesk_testkit::init();
    let dovecot = postdesk_testkit::Dovecot::start().await.unwrap();
    dovecot.add_user(SUPPORT, SUPPORT_PASSWORD).unwrap();
    let smtp = postdesk_testkit::SmtpCapture::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("trace.log");
    let mut server = start_logging(&data.path().join("data"), None, "trace", Some(&log)).await;
    let client = reqwest::Client::new();
    let token = login(&client, &server.base).await;
    let inbox = json!({
        "name": "Support", "email": SUPPORT, "sender_name": "Example Support",
        "imap": { "host": dovecot.host(), "port": dovecot.imap_port(), "security": "none", "username": SUPPORT, "password": SUPPORT_PASSWORD },
        "smtp": { "host": smtp.host(), "port": smtp.port(), "security": "none" },
    });
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/inboxes", server.base))
        .bearer_auth(&token)
        .json(&inbox)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let start = Instant::now();
    loop {
        let inbox: serde_json::Value = client
            .get(format!("{}/api/v1/inboxes/{id}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if inbox["status"]["state"] == "idle" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the reader never signed in: {inbox}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.child.kill().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("LOGIN"),
        "the trace shows the IMAP sign-in (so the test can fail)"
    );
    assert!(text.contains("[redacted]"), "…with its secret cut out");
    assert!(
        !text.contains(SUPPORT_PASSWORD),
        "the password is in the trace log"
    );
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(SUPPORT_PASSWORD);
    assert!(
        !text.contains(&encoded),
        "the password is in the trace log as base64"
    );
}
