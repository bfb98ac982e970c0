//! Secrets never reach the log: the real binary at `POSTDESK_LOG=trace` signs in to a real
//! Dovecot, and its log holds the IMAP conversation but not the password, in the human format
//! and in JSON (`POSTDESK_LOG_FORMAT=json`), where every line is a JSON object.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::crash::{login, start_with};
use crate::helpers::{SUPPORT, SUPPORT_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_log_never_holds_the_mailbox_password() {
    mailbox_password_stays_out_of_the_log(false).await;
}

/// The same in JSON, every line an event with its level, target and fields; with the metrics
/// on, which the binary then serves without sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_trace_log_never_holds_the_mailbox_password_and_every_line_is_json() {
    mailbox_password_stays_out_of_the_log(true).await;
}

async fn mailbox_password_stays_out_of_the_log(json: bool) {
    postdesk_testkit::init();
    let dovecot = postdesk_testkit::Dovecot::start().await.unwrap();
    dovecot.add_user(SUPPORT, SUPPORT_PASSWORD).unwrap();
    let smtp = postdesk_testkit::SmtpCapture::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("trace.log");
    let env: &[(&str, &str)] = if json {
        &[("POSTDESK_LOG_FORMAT", "json"), ("POSTDESK_METRICS", "1")]
    } else {
        &[]
    };
    let mut server = start_with(&data.path().join("data"), None, "trace", Some(&log), env).await;
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
    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    // POSTDESK_METRICS=1 (a boolish value, as operators write it) opens them.
    let expected = if json {
        reqwest::StatusCode::OK
    } else {
        reqwest::StatusCode::NOT_FOUND
    };
    assert_eq!(metrics.status(), expected);
    server.child.kill().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    if json {
        let messages = every_line_is_a_json_event(&text);
        assert!(
            messages.iter().any(|m| m.contains("encode")
                && m.contains(&format!("LOGIN \\\"{SUPPORT}\\\" \\\"[redacted]"))),
            "the IMAP sign-in is logged in a message field, its credential cut out: {:?}",
            messages
                .iter()
                .filter(|m| m.contains("LOGIN"))
                .collect::<Vec<_>>()
        );
    }
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

/// Asserts that each line of `log` is one JSON object with a timestamp, a level, a target and
/// fields; returns the events' messages.
fn every_line_is_a_json_event(log: &str) -> Vec<String> {
    let mut messages = Vec::new();
    for line in log.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(event[field].is_string(), "no {field}: {line}");
        }
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&event["level"].as_str().unwrap()),
            "{line}"
        );
        assert!(event["fields"].is_object(), "no fields: {line}");
        if let Some(message) = event["fields"]["message"].as_str() {
            messages.push(message.to_owned());
        }
    }
    assert!(
        messages.len() > 10,
        "a trace log of {} events",
        messages.len()
    );
    messages
}

/// The same for mailbox OAuth2: the client secret, the access and refresh tokens and the SASL
/// responses that carry them stay out of the trace log of a reader and an outbox signing in
/// with XOAUTH2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_log_never_holds_an_oauth2_secret_or_token() {
    oauth2_secrets_stay_out_of_the_log(false).await;
}

/// The same in JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_trace_log_never_holds_an_oauth2_secret_or_token() {
    oauth2_secrets_stay_out_of_the_log(true).await;
}

async fn oauth2_secrets_stay_out_of_the_log(json: bool) {
    use postdesk_testkit::dovecot::{DovecotOptions, OAuth2Passdb};
    use postdesk_testkit::oidc::OidcConfig;
    const ANA: &str = "ana@example.test";
    postdesk_testkit::init();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("trace.log");
    let data_dir = data.path().join("data");
    let env: &[(&str, &str)] = if json {
        &[("POSTDESK_LOG_FORMAT", "json")]
    } else {
        &[]
    };
    let mut server = start_with(&data_dir, None, "trace", Some(&log), env).await;
    let callback = format!("{}/api/v1/oauth/callback", server.base);
    let provider = postdesk_testkit::OidcProvider::start(OidcConfig::mailbox(&callback))
        .await
        .unwrap();
    let capture = postdesk_testkit::SmtpCapture::start().await.unwrap();
    let dovecot = postdesk_testkit::Dovecot::start_with(DovecotOptions {
        oauth2: Some(OAuth2Passdb::for_provider(&provider)),
        submission_relay_port: Some(capture.port()),
    })
    .await
    .unwrap();
    dovecot.add_oauth2_user(ANA).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = login(&client, &server.base).await;
    let call = async |method: reqwest::Method, path: &str, body: serde_json::Value| {
        let answer = client
            .request(method, format!("{}/api/v1{path}", server.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    };
    let created = call(
        reqwest::Method::POST,
        "/oauth/providers",
        json!({ "name": "Example ID", "kind": "generic", "client_id": provider.client_id(),
                "client_secret": provider.client_secret(), "auth_url": provider.authorization_endpoint(),
                "token_url": provider.token_endpoint(), "scopes": ["openid", "email", "mail"] }),
    )
    .await;
    let server_of = |port: u16| {
        json!({ "host": dovecot.host(), "port": port, "security": "none", "auth": "oauth2",
                "oauth_provider_id": created["id"] })
    };
    let inbox = call(
        reqwest::Method::POST,
        "/inboxes",
        json!({ "name": "Ana", "email": ANA, "sender_name": "Ana",
                "imap": server_of(dovecot.imap_port()),
                "smtp": server_of(dovecot.submission_port().unwrap()) }),
    )
    .await;
    let id = inbox["id"].as_i64().unwrap();
    let started = call(
        reqwest::Method::POST,
        &format!("/inboxes/{id}/oauth/start"),
        json!({}),
    )
    .await;
    let back = provider
        .sign_in(
            started["authorize_url"].as_str().unwrap(),
            ANA,
            "ana-password",
        )
        .await
        .unwrap();
    let landed = client
        .get(&back)
        .header(reqwest::header::COOKIE, format!("postdesk_session={token}"))
        .send()
        .await
        .unwrap();
    let location = landed.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.contains("oauth=connected"), "{location}");

    // The reader signs in and reads an email; a reply goes out over submission.
    let raw = crate::helpers::email("log-1@c.test", "carol@c.test", "Logged", "Hi", "").replace(
        "To: Support <support@example.test>",
        &format!("To: <{ANA}>"),
    );
    dovecot.deliver_lmtp(ANA, raw.as_bytes()).await.unwrap();
    let start = Instant::now();
    let conversation = loop {
        let queued = call(
            reqwest::Method::GET,
            "/conversations?status=queued",
            json!(null),
        )
        .await;
        if let Some(id) = queued["conversations"][0]["id"].as_i64() {
            break id;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never ingested");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    call(
        reqwest::Method::POST,
        &format!("/conversations/{conversation}/take"),
        json!({}),
    )
    .await;
    call(
        reqwest::Method::POST,
        &format!("/conversations/{conversation}/messages"),
        json!({ "text": "Logged reply", "via": "email" }),
    )
    .await;
    capture
        .wait_for(1, Duration::from_secs(30))
        .await
        .expect("the reply is sent");
    server.child.kill().await.unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    if json {
        let messages = every_line_is_a_json_event(&text);
        let logged = |words: &str| messages.iter().any(|m| m.contains(words));
        assert!(
            logged("AUTHENTICATE XOAUTH2") && logged("[redacted]"),
            "the IMAP sign-in is logged in message fields, its token cut out"
        );
    }
    assert!(
        text.contains("AUTHENTICATE XOAUTH2"),
        "the trace shows the IMAP sign-in (so the test can fail)"
    );
    assert!(text.contains("[redacted]"), "…with its secret cut out");
    assert!(
        !text.contains(provider.client_secret()),
        "the client secret is in the trace log"
    );
    let store = postdesk_store::Store::connect(&format!(
        "sqlite://{}",
        data_dir.join("postdesk.db").display()
    ))
    .await
    .unwrap();
    let secrets = postdesk::secrets::Secrets::load(&data_dir, None).unwrap();
    let tokens = store
        .find_oauth_tokens(postdesk_core::ids::InboxId(id))
        .await
        .unwrap()
        .unwrap();
    for stored in [
        tokens.access_token_encrypted,
        tokens.refresh_token_encrypted,
    ] {
        let token = secrets.decrypt_string(&stored.unwrap()).unwrap();
        assert!(!text.contains(&token), "a token is in the trace log");
    }
    use base64::Engine as _;
    let sasl =
        base64::engine::general_purpose::STANDARD.encode(format!("user={ANA}\x01auth=Bearer "));
    assert!(
        !text.contains(&sasl[..20]),
        "an XOAUTH2 response is in the trace log"
    );
}
