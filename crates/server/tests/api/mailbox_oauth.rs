//! Mailbox sign-in with OAuth2, end to end against the real parts: the testkit's OAuth2
//! server (`oidc-provider`: code flow with PKCE, rotated refresh tokens, revocation,
//! introspection), a Dovecot whose `oauth2` passdb checks every bearer token at that server
//! (IMAP `AUTHENTICATE XOAUTH2`, submission `AUTH XOAUTH2` relaying to an SMTP capture), and
//! postdesk on a port chosen first so the provider knows its redirect URI.

use std::time::Duration;

use postdesk_core::ids::InboxId;
use postdesk_testkit::dovecot::{DovecotOptions, OAuth2Passdb};
use postdesk_testkit::oidc::OidcConfig;
use postdesk_testkit::{Dovecot, OidcProvider, SmtpCapture};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, email, eventually, spawn_app_with};

const CALLBACK: &str = "/api/v1/oauth/callback";
/// The OAuth2-only mailbox (no password at Dovecot).
const ANA: &str = "ana@example.test";
/// Access tokens live this long, so that they expire in the middle of the test.
const TOKEN_TTL_SECS: u64 = 5;

struct Mailbox {
    app: TestApp,
    provider: OidcProvider,
    dovecot: Dovecot,
    capture: SmtpCapture,
    /// Redirects are the subject here: never followed.
    http: reqwest::Client,
    inbox: i64,
    provider_id: i64,
}

async fn spawn(db: Db) -> Mailbox {
    postdesk_testkit::init();
    // Chosen before postdesk starts, so the provider can be told the redirect URI.
    let port = postdesk_testkit::free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(OidcConfig {
        access_token_ttl_secs: TOKEN_TTL_SECS,
        ..OidcConfig::mailbox(&format!("{base}{CALLBACK}"))
    })
    .await
    .expect("the OAuth2 server starts");
    let capture = SmtpCapture::start().await.expect("SMTP capture starts");
    let dovecot = Dovecot::start_with(DovecotOptions {
        oauth2: Some(OAuth2Passdb::for_provider(&provider)),
        submission_relay_port: Some(capture.port()),
    })
    .await
    .expect("Dovecot with the oauth2 passdb and submission starts");
    dovecot.add_oauth2_user(ANA).unwrap();
    let app = spawn_app_with(db, move |s| {
        s.listen = format!("127.0.0.1:{port}").parse().unwrap();
        s.public_url = Some(base);
    })
    .await;

    // Arrange: the provider, then an inbox that signs in with it for IMAP and SMTP.
    let (status, created) = app
        .post(
            &app.admin,
            "/api/v1/oauth/providers",
            &json!({
                "name": "Example ID", "kind": "generic",
                "client_id": provider.client_id(), "client_secret": provider.client_secret(),
                "auth_url": provider.authorization_endpoint(),
                "token_url": provider.token_endpoint(),
                "scopes": ["openid", "email", "mail"],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["secret_set"], true);
    assert!(
        !created.to_string().contains(provider.client_secret()),
        "the client secret is never answered: {created}"
    );
    let provider_id = created["id"].as_i64().unwrap();
    let server = |port: u16| {
        json!({ "host": dovecot.host(), "port": port, "security": "none",
                "auth": "oauth2", "oauth_provider_id": provider_id })
    };
    let (status, inbox) = app
        .post(
            &app.admin,
            "/api/v1/inboxes",
            &json!({
                "name": "Ana's desk", "email": ANA, "sender_name": "Ana Support", "active": true,
                "imap": server(dovecot.imap_port()),
                "smtp": server(dovecot.submission_port().unwrap()),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    assert_eq!(inbox["imap"]["auth"], "oauth2");
    assert_eq!(inbox["imap"]["username"], ANA, "the mailbox is the login");
    assert_eq!(inbox["smtp"]["oauth_provider_id"], provider_id);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Mailbox {
        inbox: inbox["id"].as_i64().unwrap(),
        app,
        provider,
        dovecot,
        capture,
        http,
        provider_id,
    }
}

impl Mailbox {
    async fn inbox(&self) -> Value {
        let (status, body) = self
            .app
            .get(&self.app.admin, &format!("/api/v1/inboxes/{}", self.inbox))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Turns the inbox's reader off or on, its other settings unchanged.
    async fn set_active(&self, active: bool) {
        let inbox = self.inbox().await;
        let server = |s: &Value| {
            json!({ "host": s["host"], "port": s["port"], "security": s["security"],
                    "auth": "oauth2", "oauth_provider_id": self.provider_id })
        };
        let (status, body) = self
            .app
            .put(
                &self.app.admin,
                &format!("/api/v1/inboxes/{}", self.inbox),
                &json!({
                    "name": inbox["name"], "email": inbox["email"],
                    "sender_name": inbox["sender_name"], "active": active,
                    "imap": server(&inbox["imap"]), "smtp": server(&inbox["smtp"]),
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn wait_for_state(&self, state: &str) -> Value {
        eventually(&format!("the OAuth2 inbox to be {state}"), || async {
            let inbox = self.inbox().await;
            (inbox["status"]["state"] == state).then_some(inbox)
        })
        .await
    }

    /// Connect: start, sign in at the provider like a browser, and the provider's redirect
    /// back, carrying `session` (the web app's cookie) or none; returns where postdesk sends
    /// the browser then.
    async fn connect(&self, session: Option<&str>) -> String {
        let (status, started) = self
            .app
            .post(
                &self.app.admin,
                &format!("/api/v1/inboxes/{}/oauth/start", self.inbox),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{started}");
        let authorize_url = started["authorize_url"].as_str().unwrap();
        assert!(
            authorize_url.contains("code_challenge_method=S256"),
            "{authorize_url}"
        );
        let back = self
            .provider
            .sign_in(authorize_url, ANA, "ana-password")
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n--- provider log ---\n{}", self.provider.log()));
        assert!(back.starts_with(&self.app.url(CALLBACK)), "{back}");
        self.callback(&back, session).await
    }

    async fn callback(&self, url: &str, session: Option<&str>) -> String {
        let mut request = self.http.get(url);
        if let Some(token) = session {
            request = request.header(COOKIE, format!("postdesk_session={token}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(location.ends_with("#/admin/inboxes"), "{location}");
        location
    }

    /// Delivers an email to Ana's mailbox (LMTP) and waits for its conversation.
    async fn deliver(&self, id: &str, subject: &str) -> i64 {
        let raw = email(id, "carol@c.test", subject, "Hello Ana", "").replace(
            "To: Support <support@example.test>",
            &format!("To: Ana <{ANA}>"),
        );
        self.dovecot
            .deliver_lmtp(ANA, raw.as_bytes())
            .await
            .expect("LMTP delivery");
        self.conversation(subject).await
    }

    async fn conversation(&self, subject: &str) -> i64 {
        eventually(&format!("the conversation {subject:?}"), || async {
            self.app
                .conversations(&self.app.admin, "limit=1000")
                .await
                .into_iter()
                .find(|c| c["subject"] == subject && c["inbox_id"] == self.inbox)
                .and_then(|c| c["id"].as_i64())
        })
        .await
    }

    /// Take it! and Reply via Email; returns the email's message id.
    async fn reply(&self, conversation: i64, text: &str) -> i64 {
        let (status, _) = self
            .app
            .post(
                &self.app.admin,
                &format!("/api/v1/conversations/{conversation}/take"),
                &json!({}),
            )
            .await;
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "{status}"
        );
        let (status, message) = self
            .app
            .post(
                &self.app.admin,
                &format!("/api/v1/conversations/{conversation}/messages"),
                &json!({ "text": text, "via": "email" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
        message["id"].as_i64().unwrap()
    }

    /// Waits until the capture holds an email whose text has `text`.
    async fn arrives(&self, text: &str) {
        eventually(
            &format!("an email with {text:?} at the capture"),
            || async {
                self.capture
                    .messages()
                    .iter()
                    .any(|m| String::from_utf8_lossy(&m.data).contains(text))
                    .then_some(())
            },
        )
        .await;
    }
}

async fn connect_ingest_reply_refresh_revoke_and_reconnect(db: Db) {
    let m = spawn(db).await;
    let admin = m.app.admin.clone();

    // Not connected yet: the reader waits for Connect instead of failing over and over.
    let waiting = m.wait_for_state("needs_reauth").await;
    assert!(
        waiting["status"]["last_error"]
            .as_str()
            .unwrap()
            .contains("not connected"),
        "{waiting}"
    );
    assert_eq!(waiting["oauth"]["connected"], false);

    // A state nobody issued, and a right one without the session that started it: refused.
    let forged = m
        .callback(
            &m.app.url(&format!("{CALLBACK}?code=x&state=forged")),
            Some(&admin),
        )
        .await;
    assert!(forged.contains("oauth=failed"), "{forged}");
    let stranger = m.connect(None).await;
    assert!(stranger.contains("oauth=failed"), "{stranger}");
    assert!(stranger.contains("browser%20session"), "{stranger}");
    assert_eq!(m.inbox().await["oauth"]["connected"], false);

    // Connect: the reader signs in with XOAUTH2 and ingests a delivered email.
    let connected = m.connect(Some(&admin)).await;
    assert!(connected.contains("oauth=connected"), "{connected}");
    let inbox = m.wait_for_state("idle").await;
    assert_eq!(inbox["oauth"]["connected"], true, "{inbox}");
    let first = m.deliver("oauth-1@c.test", "Hello over OAuth2").await;

    // Reply via Email goes out over submission with AUTH XOAUTH2.
    let reply = m.reply(first, "Answered over XOAUTH2").await;
    m.app.wait_for_delivery(&admin, first, reply, "sent").await;
    m.arrives("Answered over XOAUTH2").await;
    let log = m.dovecot.log();
    assert!(
        log.contains("method=XOAUTH2"),
        "signed in with XOAUTH2:\n{log}"
    );

    // The mail server refuses a token postdesk still takes for valid (revoked alone, cut
    // short): submission answers with the error challenge (334) and 535 (where lettre gives
    // up with "does not expect a challenge"), IMAP with NO. postdesk refreshes and tries once
    // more. The reader is paused so that it does not refresh first.
    m.set_active(false).await;
    let store = m.app.store().await;
    let secrets = postdesk::secrets::Secrets::load(m.app.data_dir(), None).unwrap();
    let refusals = || m.dovecot.log().matches("oauth2 failed").count();
    let spoil = async || {
        let bogus = secrets.encrypt(b"a-token-the-provider-never-issued");
        let far = postdesk_store::now_ms() + 3_600_000;
        store
            .store_refreshed_oauth(InboxId(m.inbox), &bogus, Some(far), None)
            .await
            .unwrap();
    };
    spoil().await;
    let before = refusals();
    let reply = m.reply(first, "Sent after a refused token").await;
    m.app.wait_for_delivery(&admin, first, reply, "sent").await;
    m.arrives("Sent after a refused token").await;
    assert!(
        refusals() > before,
        "the server refused the spoilt token first"
    );
    spoil().await;
    let before = refusals();
    let (status, tested) = m
        .app
        .post(
            &admin,
            &format!("/api/v1/inboxes/{}/test", m.inbox),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["imap"]["ok"], true, "{tested}");
    assert_eq!(tested["smtp"]["ok"], true, "{tested}");
    assert!(refusals() > before, "IMAP refused the spoilt token first");
    m.set_active(true).await;
    m.wait_for_state("idle").await;

    // The access token expires: refreshed in the middle of IDLE (the reader signs in again
    // before expiry) and of sending. The refresh token is rotated at every refresh, so a
    // lost rotated token would make the next refresh fail.
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_SECS + 2)).await;
    let refreshed = m.inbox().await;
    assert!(
        refreshed["oauth"]["refreshed_at"].is_string(),
        "the token was refreshed: {refreshed}"
    );
    let second = m.deliver("oauth-2@c.test", "After the token expired").await;
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_SECS + 1)).await;
    let reply = m.reply(second, "Sent after the token expired").await;
    m.app.wait_for_delivery(&admin, second, reply, "sent").await;
    m.arrives("Sent after the token expired").await;
    let before = refreshed["oauth"]["refreshed_at"].clone();
    let later = m.inbox().await;
    assert_ne!(
        later["oauth"]["refreshed_at"], before,
        "refreshed again: {later}"
    );

    // The user takes postdesk's access away at the provider: the next refresh is refused.
    let revoked = m.provider.revoke_grants(ANA).await.unwrap();
    assert!(revoked >= 1);
    let stuck = m.wait_for_state("needs_reauth").await;
    let words = stuck["status"]["last_error"].as_str().unwrap();
    assert!(
        words.contains("grant request is invalid") && words.contains("invalid_grant"),
        "the provider's own words: {stuck}"
    );
    assert_eq!(stuck["oauth"]["connected"], false);
    // Other inboxes are untouched: the password inbox still reads mail.
    m.app
        .deliver(&email(
            "pw-1@c.test",
            "dan@c.test",
            "Password inbox",
            "Hi",
            "",
        ))
        .await;
    eventually("the password inbox's email", || async {
        m.app
            .conversations(&admin, "status=queued")
            .await
            .into_iter()
            .find(|c| c["subject"] == "Password inbox")
    })
    .await;
    let (_, other) = m
        .app
        .get(&admin, &format!("/api/v1/inboxes/{}", m.app.inbox_id))
        .await;
    assert_ne!(other["status"]["state"], "needs_reauth", "{other}");

    // Mail arriving meanwhile is not lost; a reply meanwhile stays queued.
    let raw = email(
        "oauth-3@c.test",
        "carol@c.test",
        "While disconnected",
        "Still there?",
        "",
    );
    m.dovecot.deliver_lmtp(ANA, raw.as_bytes()).await.unwrap();
    let queued_reply = m.reply(second, "Queued while disconnected").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = m.app.messages(&admin, second).await;
    let queued = messages
        .iter()
        .find(|msg| msg["id"] == queued_reply)
        .unwrap();
    assert_eq!(queued["email"]["delivery"]["status"], "queued", "{queued}");
    assert!(
        queued["email"]["delivery"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("connected again"),
        "{queued}"
    );
    assert!(
        m.app
            .conversations(&admin, "limit=1000")
            .await
            .iter()
            .all(|c| c["subject"] != "While disconnected"),
        "nothing read while disconnected"
    );

    // Reconnect: the email that arrived meanwhile is ingested, exactly once.
    let reconnected = m.connect(Some(&admin)).await;
    assert!(reconnected.contains("oauth=connected"), "{reconnected}");
    m.conversation("While disconnected").await;
    m.wait_for_state("idle").await;
    // The reply that waited goes out now, not at its next retry.
    m.app
        .wait_for_delivery(&admin, second, queued_reply, "sent")
        .await;
    m.arrives("Queued while disconnected").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = m.app.conversations(&admin, "limit=1000").await;
    assert_eq!(
        all.iter()
            .filter(|c| c["subject"] == "While disconnected")
            .count(),
        1,
        "ingested exactly once"
    );
    assert_eq!(
        all.iter()
            .filter(|c| c["subject"] == "Hello over OAuth2")
            .count(),
        1,
        "nothing ingested twice after reconnecting"
    );

    // No secret in any answer.
    let (_, providers) = m.app.get(&admin, "/api/v1/oauth/providers").await;
    let (_, inboxes) = m.app.get(&admin, "/api/v1/inboxes").await;
    let (_, audit) = m.app.get(&admin, "/api/v1/audit?limit=1000").await;
    for answer in [&providers, &inboxes, &audit] {
        let text = answer.to_string();
        assert!(!text.contains(m.provider.client_secret()), "{text}");
        assert!(!text.contains("refresh_token\":\""), "{text}");
        assert!(!text.contains("access_token\":\""), "{text}");
    }
    assert!(
        audit.to_string().contains("inbox.oauth_connect"),
        "connecting is in the audit log"
    );

    // A provider in use is not deleted.
    let (status, body) = m
        .app
        .delete(
            &admin,
            &format!("/api/v1/oauth/providers/{}", m.provider_id),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ingest_reply_refresh_revoke_and_reconnect_on_sqlite() {
    connect_ingest_reply_refresh_revoke_and_reconnect(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ingest_reply_refresh_revoke_and_reconnect_on_postgres() {
    connect_ingest_reply_refresh_revoke_and_reconnect(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_fill_in_google_and_microsoft_and_never_answer_the_secret() {
    let app = spawn_app_with(Db::Sqlite, |_| {}).await;
    let (status, google) = app
        .post(
            &app.admin,
            "/api/v1/oauth/providers",
            &json!({ "name": "Google", "kind": "google", "client_id": "id.apps.googleusercontent.com",
                     "client_secret": "GOCSPX-very-secret" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{google}");
    assert_eq!(
        google["auth_url"],
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(google["token_url"], "https://oauth2.googleapis.com/token");
    assert_eq!(google["scopes"], json!(["https://mail.google.com/"]));
    let (status, microsoft) = app
        .post(
            &app.admin,
            "/api/v1/oauth/providers",
            &json!({ "name": "Microsoft", "kind": "microsoft", "client_id": "c1",
                     "client_secret": "ms-very-secret", "tenant": "contoso.onmicrosoft.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{microsoft}");
    assert_eq!(
        microsoft["token_url"],
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert!(
        microsoft["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access"))
    );
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/oauth/providers",
            &json!({ "name": "Other", "kind": "generic", "client_id": "c", "client_secret": "s" }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "generic needs endpoints: {body}"
    );
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v1/oauth/providers",
            &json!({ "name": "Google", "kind": "google", "client_id": "x", "client_secret": "y" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // An inbox with Google: the authorize URL asks for offline access with PKCE.
    let google_id = google["id"].as_i64().unwrap();
    let mut inbox = app.inbox_body("unused");
    inbox["email"] = json!("help@example.test");
    inbox["imap"] = json!({ "host": "imap.gmail.com", "port": 993, "security": "tls",
                            "auth": "oauth2", "oauth_provider_id": google_id });
    inbox["smtp"] = json!({ "host": "smtp.gmail.com", "port": 465, "security": "tls",
                            "auth": "oauth2", "oauth_provider_id": google_id });
    inbox["active"] = json!(false);
    let (status, created) = app.post(&app.admin, "/api/v1/inboxes", &inbox).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, started) = app
        .post(
            &app.admin,
            &format!("/api/v1/inboxes/{}/oauth/start", created["id"]),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let url = started["authorize_url"].as_str().unwrap();
    for part in [
        "https://accounts.google.com/o/oauth2/v2/auth?",
        "access_type=offline",
        "prompt=consent",
        "code_challenge_method=S256",
        "scope=https%3A%2F%2Fmail.google.com%2F",
        "login_hint=help%40example.test",
        "redirect_uri=http%3A%2F%2F127.0.0.1",
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let (status, _) = app
        .post(
            &app.admin,
            &format!("/api/v1/inboxes/{}/oauth/start", app.inbox_id),
            &json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a password inbox has nothing to connect"
    );

    let (_, listed) = app.get(&app.admin, "/api/v1/oauth/providers").await;
    let text = listed.to_string();
    assert!(
        !text.contains("GOCSPX-very-secret") && !text.contains("ms-very-secret"),
        "{text}"
    );
    assert_eq!(listed["providers"].as_array().unwrap().len(), 2);
}

/// Many refreshes asked at once on two nodes (two token services on one PostgreSQL database):
/// exactly one reaches the provider. The provider rotates refresh tokens and revokes the whole
/// grant when a used one comes again, so a second refresh with the same token would leave
/// the inbox disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refresh_at_a_time_across_nodes() {
    let m = spawn(Db::Postgres).await;
    let connected = m.connect(Some(&m.app.admin)).await;
    assert!(connected.contains("oauth=connected"), "{connected}");
    let store = m.app.store().await;
    let secrets = postdesk::secrets::Secrets::load(m.app.data_dir(), None).unwrap();
    let nodes = [
        postdesk::mail_oauth::MailOAuth::new(store.clone(), secrets.clone()).unwrap(),
        postdesk::mail_oauth::MailOAuth::new(store.clone(), secrets.clone()).unwrap(),
    ];
    let inbox = InboxId(m.inbox);
    let stale = nodes[0].access_token(inbox, None).await.unwrap();

    // Everyone was refused the same token at once and asks for a new one.
    let mut asks = Vec::new();
    for i in 0..8 {
        let node = nodes[i % 2].clone();
        let stale = stale.clone();
        asks.push(tokio::spawn(async move {
            node.access_token(inbox, Some(&stale)).await
        }));
    }
    let mut tokens = Vec::new();
    for ask in asks {
        tokens.push(ask.await.unwrap().expect("a new access token"));
    }
    let fresh = tokens[0].clone();
    assert_ne!(fresh, stale);
    assert!(
        tokens.iter().all(|t| *t == fresh),
        "one refresh, one new token for all"
    );
    let introspected = m.provider.introspect(&fresh).await.unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");

    // The grant still stands: the rotated refresh token was kept and works.
    let next = nodes[1].access_token(inbox, Some(&fresh)).await.unwrap();
    assert_ne!(next, fresh);
    assert_eq!(m.provider.introspect(&next).await.unwrap()["active"], true);
    let log = m.provider.log();
    assert!(
        !log.contains("already used"),
        "no refresh token was presented twice:\n{log}"
    );
}

/// An IMAP server that offers OAUTHBEARER (RFC 7628) and not XOAUTH2 gets OAUTHBEARER.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imap_server_offering_only_oauthbearer_is_signed_in_with_it() {
    let mut m = spawn(Db::Sqlite).await;
    m.dovecot
        .reconfigure("auth_mechanisms = plain login oauthbearer")
        .await
        .unwrap();
    let connected = m.connect(Some(&m.app.admin)).await;
    assert!(connected.contains("oauth=connected"), "{connected}");
    m.wait_for_state("idle").await;
    m.deliver("bearer-1@c.test", "Over OAUTHBEARER").await;
    let log = m.dovecot.log();
    assert!(log.contains("method=OAUTHBEARER"), "{log}");
    assert!(!log.contains("method=XOAUTH2"), "{log}");
}

/// Two real processes on one PostgreSQL database (this test's postdesk and the `postdesk`
/// binary) sign in to the same OAuth2 mailbox (one reads it, both test it) while its access
/// tokens expire every few seconds: each renewal is one refresh, under the lease in the database, so no rotated
/// refresh token is ever presented twice (the provider would revoke the whole grant) and the
/// inbox stays connected; an email delivered meanwhile is in postdesk once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_renew_one_grant_without_breaking_it() {
    let m = spawn(Db::Postgres).await;
    let connected = m.connect(Some(&m.app.admin)).await;
    assert!(connected.contains("oauth=connected"), "{connected}");
    m.wait_for_state("idle").await;

    // The second node: the real binary on the same database, with the same secret key.
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(
        m.app.data_dir().join("secret.key"),
        data.path().join("secret.key"),
    )
    .unwrap();
    let log = data.path().join("node.log");
    let node =
        crate::crash::start_logging(data.path(), m.app.database_url(), "info", Some(&log)).await;
    let client = reqwest::Client::new();
    let token = crate::crash::login(&client, &node.base).await;

    // The node that reads the inbox signs in again before each token expires; on top, both
    // test the connection (an IMAP and an SMTP sign-in each) at the same moments.
    let test = format!("/api/v1/inboxes/{}/test", m.inbox);
    let empty = json!({});
    for round in 0..4 {
        tokio::time::sleep(Duration::from_secs(TOKEN_TTL_SECS)).await;
        let here = m.app.post(&m.app.admin, &test, &empty);
        let there = async {
            let response = client
                .post(format!("{}{test}", node.base))
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        };
        let ((s1, b1), (s2, b2)) = tokio::join!(here, there);
        for (status, body) in [(s1, b1), (s2, b2)] {
            assert_eq!(status, StatusCode::OK, "round {round}: {body}");
            assert_eq!(body["imap"]["ok"], true, "round {round}: {body}");
            assert_eq!(body["smtp"]["ok"], true, "round {round}: {body}");
        }
    }
    let conversation = m.deliver("two-nodes@c.test", "Read by two nodes").await;
    let (_, list) = m
        .app
        .get(&m.app.admin, "/api/v1/conversations?status=queued")
        .await;
    let same: Vec<&Value> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["subject"] == "Read by two nodes")
        .collect();
    assert_eq!(same.len(), 1, "{list}");
    assert_eq!(same[0]["id"], conversation);
    // Still connected (the reader records its state: idle once it is done).
    m.wait_for_state("idle").await;
    let provider_log = m.provider.log();
    assert!(
        !provider_log.contains("already used"),
        "no refresh token was presented twice:\n{provider_log}"
    );
    // The test is about refreshes: several happened (the code exchange is one token request).
    let token_requests = provider_log.matches("POST /token -> 200").count();
    assert!(
        token_requests >= 3,
        "{token_requests} token requests:\n{provider_log}"
    );
    // One of the two nodes reads the mailbox (the other only tested it).
    let cluster = crate::crash::get_json(&client, &node.base, &token, "/api/v1/cluster").await;
    let nodes = cluster["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{cluster}");
    let readers = nodes
        .iter()
        .filter(|n| {
            n["inboxes"]
                .as_array()
                .is_some_and(|read| read.contains(&json!(m.inbox)))
        })
        .count();
    assert_eq!(readers, 1, "{cluster}");
}
