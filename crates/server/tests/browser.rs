//! The web app in a real Chromium (Debian's `chromium`, driven by Playwright's `playwright-core`
//! from `tests/browser/`), against a real postdesk with a real Dovecot, a real SMTP server and a
//! real OpenID Connect provider (single sign-on, and the OAuth2 server of a mailbox that
//! signs in with XOAUTH2 at a second Dovecot). The browser steps live in
//! `tests/browser/flow.mjs`; this test starts the servers, runs it,
//! and then checks the bytes the SMTP server received.
//!
//! Screenshots go to `target/browser-screenshots/`; with `UPDATE_SCREENSHOTS=1` they are also
//! copied to `docs/screenshots/` (committed, shown in the README).

use std::path::{Path, PathBuf};
use std::time::Duration;

use postdesk::{Application, Settings};
use postdesk_testkit::dovecot::{DovecotOptions, OAuth2Passdb};
use postdesk_testkit::oidc::OidcConfig;
use postdesk_testkit::{DnsServer, Dovecot, OidcProvider, SmtpCapture};
use serde_json::{Value, json};

const SUPPORT: &str = "support@example.test";
const SUPPORT_PASSWORD: &str = "mailbox-secret";
const ADMIN_PASSWORD: &str = "tangerine-obelisk-harbor-42";
/// The mailbox that signs in with OAuth2 only.
const OAUTH_MAILBOX: &str = "ana@example.test";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

async fn post(client: &reqwest::Client, base: &str, token: &str, path: &str, body: Value) -> Value {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let value: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_in_a_real_browser() {
    postdesk_testkit::init();
    let root = repo_root();
    let script = root.join("tests/browser/flow.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run scripts/test (it runs npm ci in tests/browser)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: run scripts/test as root to install Debian's chromium"
    );

    // Arrange: real servers and a postdesk with an inbox and three users.
    let dovecot = Dovecot::start().await.unwrap();
    dovecot.add_user(SUPPORT, SUPPORT_PASSWORD).unwrap();
    let smtp = SmtpCapture::start().await.unwrap();
    // Single sign-on: the provider must know postdesk's redirect URI, so postdesk's port is
    // chosen first.
    let port = postdesk_testkit::free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // The same provider is the OAuth2 server of a mailbox (access tokens live 5 s, so a
    // revoked grant shows within seconds).
    let mut config = OidcConfig::mailbox(&format!("{base}/api/v1/login/oidc/callback"));
    config.clients[0]
        .redirect_uris
        .push(format!("{base}/api/v1/oauth/callback"));
    config.access_token_ttl_secs = 5;
    let provider = std::sync::Arc::new(
        OidcProvider::start(config)
            .await
            .expect("the OpenID Connect provider starts"),
    );
    // Ana's mailbox signs in only with OAuth2 (IMAP and submission relaying to a capture).
    let oauth_smtp = SmtpCapture::start().await.unwrap();
    let oauth_dovecot = Dovecot::start_with(DovecotOptions {
        oauth2: Some(OAuth2Passdb::for_provider(&provider)),
        submission_relay_port: Some(oauth_smtp.port()),
    })
    .await
    .unwrap();
    oauth_dovecot.add_oauth2_user(OAUTH_MAILBOX).unwrap();
    // Sender authenticity: bank.test publishes an SPF and a DMARC p=reject policy that a
    // spoofed email fails.
    let dns = DnsServer::start(&[
        ("bank.test", "v=spf1 ip4:192.0.2.1 -all"),
        ("_dmarc.bank.test", "v=DMARC1; p=reject"),
    ])
    .await
    .expect("the DNS server starts");
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_data_dir(data.path().into());
    settings.dns = Some(dns.addr().to_string());
    settings.admin_password = Some(ADMIN_PASSWORD.into());
    settings.listen = format!("127.0.0.1:{port}").parse().unwrap();
    settings.public_url = Some(base.clone());
    settings.oidc_issuer = Some(provider.issuer());
    settings.oidc_client_id = Some(provider.client_id().to_owned());
    settings.oidc_client_secret = Some(provider.client_secret().to_owned());
    let app = Application::build(settings).await.unwrap();
    assert_eq!(app.port(), port);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let admin = login["token"].as_str().unwrap().to_owned();
    for name in ["a", "b"] {
        let body = json!({ "username": name, "name": format!("Agent {}", name.to_uppercase()), "password": format!("agent-{name}-velvet-compass-17"), "roles": ["agent"] });
        post(&client, &base, &admin, "/api/v1/users", body).await;
    }
    let inbox = json!({
        "name": "Support", "email": SUPPORT, "sender_name": "Example Support",
        "imap": { "host": dovecot.host(), "port": dovecot.imap_port(), "security": "none", "username": SUPPORT, "password": SUPPORT_PASSWORD },
        "smtp": { "host": smtp.host(), "port": smtp.port(), "security": "none" },
    });
    post(&client, &base, &admin, "/api/v1/inboxes", inbox).await;
    // When the browser has connected Ana's inbox, the user takes postdesk's access away at the
    // provider (once): the inbox must then show needs_reauth with Reconnect.
    let revoker = {
        let (client, base, admin, provider) = (
            client.clone(),
            base.clone(),
            admin.clone(),
            provider.clone(),
        );
        tokio::spawn(async move {
            loop {
                let inboxes: Value = client
                    .get(format!("{base}/api/v1/inboxes"))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let connected = inboxes["inboxes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["email"] == OAUTH_MAILBOX && i["oauth"]["connected"] == true);
                if connected {
                    return provider.revoke_grants(OAUTH_MAILBOX).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let upload_dir = tempfile::tempdir().unwrap();
    let upload = upload_dir.path().join("service-report.pdf");
    let upload_bytes: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(3000))
        .collect();
    std::fs::write(&upload, &upload_bytes).unwrap();
    let screenshots = root.join("target/browser-screenshots");

    // Act: the browser steps.
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new("node")
            .arg(&script)
            .env("POSTDESK_URL", &base)
            .env("IMAP_HOST", dovecot.host())
            .env("IMAP_PORT", dovecot.imap_port().to_string())
            .env("MAILBOX_USER", SUPPORT)
            .env("MAILBOX_PASSWORD", SUPPORT_PASSWORD)
            .env("SMTP_DIR", smtp.dir())
            .env("SMTP_PORT", smtp.port().to_string())
            .env("SCREENSHOT_DIR", &screenshots)
            .env("UPLOAD_FILE", &upload)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("OIDC_ISSUER", provider.issuer())
            .env("OAUTH_IMAP_PORT", oauth_dovecot.imap_port().to_string())
            .env(
                "OAUTH_SMTP_PORT",
                oauth_dovecot.submission_port().unwrap().to_string(),
            )
            .env("OAUTH_AUTH_URL", provider.authorization_endpoint())
            .env("OAUTH_TOKEN_URL", provider.token_endpoint())
            .env("OAUTH_CLIENT_ID", provider.client_id())
            .env("OAUTH_CLIENT_SECRET", provider.client_secret())
            .env("CHROMIUM", &chromium)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser flow finishes within 5 minutes")
    .expect("node runs");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser flow failed (screenshots in {}):\n{log}",
        screenshots.display()
    );
    assert!(log.contains("browser flow: all steps passed"), "{log}");
    assert!(
        revoker.await.unwrap() >= 1,
        "the connected mailbox's grant was revoked"
    );

    // Assert: what reached the SMTP server, byte for byte.
    let captured = smtp.messages();
    assert_eq!(
        captured.len(),
        4,
        "the reply, the file, the formatted reply all and the reply sent anyway; nothing internal"
    );
    let reply = postdesk_mail::parse(&captured[0].data).unwrap();
    assert_eq!(reply.subject, "Re: Printer on fire");
    assert_eq!(reply.in_reply_to.as_deref(), Some("printer@customer.test"));
    assert!(reply.text.contains("technician today"));
    let with_file = postdesk_mail::parse(&captured[1].data).unwrap();
    assert_eq!(with_file.attachments.len(), 1);
    assert_eq!(with_file.attachments[0].filename, "service-report.pdf");
    assert_eq!(
        with_file.attachments[0].bytes, upload_bytes,
        "the contact receives the uploaded bytes"
    );
    let reply_all = postdesk_mail::parse(&captured[2].data).unwrap();
    assert_eq!(
        reply_all.in_reply_to.as_deref(),
        Some("printer-2@customer.test")
    );
    assert_eq!(
        reply_all
            .cc
            .iter()
            .map(|m| m.email.as_str())
            .collect::<Vec<_>>(),
        ["dan@partner.test"]
    );
    assert!(
        reply_all
            .html
            .as_deref()
            .is_some_and(|h| h.contains("<strong>Thanks</strong>"))
    );
    assert!(!String::from_utf8_lossy(&captured[2].data).contains("boss@example.org"));
    assert_eq!(
        captured[2].rcpt_to,
        [
            "carol@customer.test",
            "dan@partner.test",
            "boss@example.org"
        ]
    );

    if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let docs = root.join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        for name in [
            "login",
            "workspace-queued",
            "conversation",
            "inboxes",
            "phone",
            "two-factor",
            "sessions",
            "audit",
            "sender-warning",
            "inbox-reconnect",
            "departments",
            "contact",
            "reply",
        ] {
            std::fs::copy(
                screenshots.join(format!("{name}.png")),
                docs.join(format!("{name}.png")),
            )
            .unwrap();
        }
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
