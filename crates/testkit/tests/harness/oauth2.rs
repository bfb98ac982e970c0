//! Mailbox sign-in with OAuth2 against the real parts: the provider's code flow with PKCE,
//! refresh-token rotation, revocation and introspection; Dovecot's `oauth2` passdb behind
//! IMAP `AUTHENTICATE XOAUTH2`/`OAUTHBEARER`; Dovecot submission with `AUTH XOAUTH2`
//! relaying to the capture server.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use postdesk_testkit::dovecot::{DovecotOptions, OAuth2Passdb};
use postdesk_testkit::oidc::{OidcConfig, TokenError, TokenSet};
use postdesk_testkit::{Dovecot, OidcProvider, SmtpCapture, init};
use tokio::net::TcpStream;

use crate::Client;

/// Never fetched: `authorize` stops at the redirect to it.
const REDIRECT: &str = "http://127.0.0.1:9/mailbox/oauth/callback";
const ANA: &str = "ana@example.test";
const MAIL: &str = "openid email mail";

const MESSAGE: &[u8] = b"From: Contact <contact@example.test>\r\n\
To: ana@example.test\r\n\
Subject: Delivered to an OAuth2 mailbox\r\n\
Message-ID: <oauth2-harness-1@example.test>\r\n\
\r\n\
Hello.\r\n";

async fn provider(access_token_ttl_secs: u64) -> OidcProvider {
    let config = OidcConfig {
        access_token_ttl_secs,
        ..OidcConfig::mailbox(REDIRECT)
    };
    OidcProvider::start(config).await.expect("provider starts")
}

async fn tokens(provider: &OidcProvider, login: &str, scope: &str) -> TokenSet {
    let password = provider.user(login).unwrap().password.clone();
    provider
        .authorize(login, &password, scope)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n--- provider log ---\n{}", provider.log()))
}

/// The provider's refusal as a [`TokenError`] (panics on success or another error).
fn token_error(result: anyhow::Result<TokenSet>) -> TokenError {
    let err = result.expect_err("the provider must refuse");
    err.downcast_ref::<TokenError>()
        .unwrap_or_else(|| panic!("not a token endpoint refusal: {err:#}"))
        .clone()
}

fn assert_invalid_grant(err: &TokenError) {
    assert_eq!(err.status, 400, "{err}");
    assert_eq!(err.error, "invalid_grant", "{err}");
    assert!(
        err.error_description
            .as_deref()
            .is_some_and(|d| !d.is_empty()),
        "{err}"
    );
}

async fn oauth2_dovecot(provider: &OidcProvider, relay: Option<u16>) -> Dovecot {
    let dovecot = Dovecot::start_with(DovecotOptions {
        oauth2: Some(OAuth2Passdb::for_provider(provider)),
        submission_relay_port: relay,
    })
    .await
    .expect("dovecot with the oauth2 passdb starts");
    dovecot.add_oauth2_user(ANA).unwrap();
    dovecot
}

/// SASL XOAUTH2 (Google's) or OAUTHBEARER (RFC 7628) initial response; any further
/// challenge (the error JSON) gets the empty response the mechanisms ask for.
struct Bearer {
    response: Option<String>,
}

impl Bearer {
    fn xoauth2(user: &str, token: &str) -> Self {
        Bearer {
            response: Some(format!("user={user}\x01auth=Bearer {token}\x01\x01")),
        }
    }

    fn oauthbearer(user: &str, token: &str) -> Self {
        Bearer {
            response: Some(format!("n,a={user},\x01auth=Bearer {token}\x01\x01")),
        }
    }
}

impl async_imap::Authenticator for Bearer {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.response.take().unwrap_or_default()
    }
}

type Session = async_imap::Session<TcpStream>;

/// `AUTHENTICATE <mechanism>` with async-imap; the error is the server's words.
async fn imap_authenticate(
    dovecot: &Dovecot,
    mechanism: &str,
    bearer: Bearer,
) -> Result<Session, String> {
    let stream = TcpStream::connect((dovecot.host(), dovecot.imap_port()))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(stream);
    let greeting = client.read_response().await.unwrap().unwrap();
    assert!(
        format!("{:?}", greeting.parsed()).contains("Ok"),
        "{greeting:?}"
    );
    tokio::time::timeout(crate::TIMEOUT, client.authenticate(mechanism, bearer))
        .await
        .expect("AUTHENTICATE answered in time")
        .map_err(|(e, _)| e.to_string())
}

async fn xoauth2(dovecot: &Dovecot, user: &str, token: &str) -> Result<Session, String> {
    imap_authenticate(dovecot, "XOAUTH2", Bearer::xoauth2(user, token)).await
}

/// Messages in INBOX, read over the authenticated session.
async fn inbox_count(session: &mut Session) -> u32 {
    session.select("INBOX").await.unwrap().exists
}

/// Whether `LOGIN user password` succeeds (raw socket).
async fn login_works(dovecot: &Dovecot, user: &str, password: &str) -> bool {
    let stream = TcpStream::connect((dovecot.host(), dovecot.imap_port()))
        .await
        .unwrap();
    let mut client = Client::new(stream);
    assert!(client.line().await.starts_with("* OK"));
    let reply = client
        .imap("l1", &format!("LOGIN \"{user}\" \"{password}\""))
        .await;
    reply.last().unwrap().starts_with("l1 OK")
}

#[tokio::test]
async fn oauth2_code_flow_refresh_rotation_revocation_and_introspection() {
    init();
    let provider = provider(3600).await;
    let discovery: serde_json::Value = reqwest::get(provider.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["introspection_endpoint"],
        provider.introspection_endpoint().as_str()
    );
    assert_eq!(
        discovery["revocation_endpoint"],
        provider.revocation_endpoint().as_str()
    );
    assert!(
        discovery["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "mail"),
        "{discovery}"
    );

    // The mail scope brings a refresh token; the access token introspects to the mailbox.
    let first = tokens(&provider, ANA, MAIL).await;
    assert_eq!(first.token_type, "Bearer");
    assert_eq!(first.expires_in, 3600);
    assert!(first.scope.split(' ').any(|s| s == "mail"), "{first:?}");
    assert!(first.id_token.is_some());
    let rt1 = first.refresh_token.clone().expect("a refresh token");
    let info = provider.introspect(&first.access_token).await.unwrap();
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["username"], ANA, "{info}");
    assert_eq!(info["sub"], "ana", "{info}");
    assert_eq!(info["client_id"], provider.client_id(), "{info}");
    assert!(
        info["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "mail"),
        "{info}"
    );
    let garbage = provider.introspect("not-a-token").await.unwrap();
    assert_eq!(garbage, serde_json::json!({"active": false}));
    // Introspection needs a client's credentials.
    let anonymous = reqwest::Client::new()
        .post(provider.introspection_endpoint())
        .form(&[("token", first.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 400);
    let anonymous: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(anonymous["error"], "invalid_request", "{anonymous}");

    // Plain sign-in scopes (single sign-on) bring no refresh token.
    let sso = tokens(&provider, ANA, "openid email").await;
    assert_eq!(sso.refresh_token, None, "{sso:?}");

    // Every refresh rotates the refresh token and gives a new access token.
    let second = provider.refresh(&rt1).await.unwrap();
    let rt2 = second
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    assert_ne!(rt2, rt1);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.expires_in, 3600);
    let info = provider.introspect(&second.access_token).await.unwrap();
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["username"], ANA, "{info}");
    let third = provider.refresh(&rt2).await.unwrap();
    let rt3 = third.refresh_token.clone().unwrap();
    assert!(rt3 != rt2 && rt3 != rt1);

    // A used refresh token is refused, and its reuse revokes the whole grant.
    assert_invalid_grant(&token_error(provider.refresh(&rt1).await));
    assert_invalid_grant(&token_error(provider.refresh(&rt3).await));
    let info = provider.introspect(&third.access_token).await.unwrap();
    assert_eq!(info["active"], false, "{info}");

    // RFC 7009 revocation by the client: the refresh token and its access tokens die.
    let connected = tokens(&provider, ANA, MAIL).await;
    provider
        .revoke(connected.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_invalid_grant(&token_error(
        provider
            .refresh(connected.refresh_token.as_deref().unwrap())
            .await,
    ));
    let info = provider.introspect(&connected.access_token).await.unwrap();
    assert_eq!(info["active"], false, "{info}");

    // The user (or an admin) removes every grant at the provider.
    let a = tokens(&provider, ANA, MAIL).await;
    let b = tokens(&provider, ANA, MAIL).await;
    let root = tokens(&provider, "root@example.test", MAIL).await;
    let revoked = provider.revoke_grants(ANA).await.unwrap();
    assert!(revoked >= 1, "{revoked}");
    for set in [&a, &b] {
        let err = token_error(
            provider
                .refresh(set.refresh_token.as_deref().unwrap())
                .await,
        );
        assert_invalid_grant(&err);
        let info = provider.introspect(&set.access_token).await.unwrap();
        assert_eq!(info["active"], false, "{info}");
    }
    // Another account's grant is untouched.
    let still = provider
        .refresh(root.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        provider.introspect(&still.access_token).await.unwrap()["username"],
        "root@example.test"
    );
    assert!(provider.revoke_grants("nobody@example.test").await.is_err());
}

#[tokio::test]
async fn oauth2_imap_xoauth2_and_oauthbearer_through_dovecot_introspection() {
    init();
    let provider = provider(3600).await;
    let dovecot = oauth2_dovecot(&provider, None).await;
    assert_eq!(dovecot.submission_port(), None);
    // LMTP knows the OAuth2-only user.
    dovecot.deliver_lmtp(ANA, MESSAGE).await.unwrap();

    let set = tokens(&provider, ANA, MAIL).await;
    let mut session = xoauth2(&dovecot, ANA, &set.access_token)
        .await
        .unwrap_or_else(|e| panic!("XOAUTH2 refused: {e}\n{}", dovecot.log()));
    assert_eq!(inbox_count(&mut session).await, 1);
    session.logout().await.unwrap();

    let mut session = imap_authenticate(
        &dovecot,
        "OAUTHBEARER",
        Bearer::oauthbearer(ANA, &set.access_token),
    )
    .await
    .unwrap_or_else(|e| panic!("OAUTHBEARER refused: {e}\n{}", dovecot.log()));
    assert_eq!(inbox_count(&mut session).await, 1);
    session.logout().await.unwrap();

    // Refused: a garbage token, either mechanism; another account's token; a token
    // without the mail scope; passwords and even the token itself as a password.
    let refused = xoauth2(&dovecot, ANA, "garbage").await.unwrap_err();
    assert!(refused.contains("AUTHENTICATIONFAILED"), "{refused}");
    assert!(
        imap_authenticate(&dovecot, "OAUTHBEARER", Bearer::oauthbearer(ANA, "garbage"))
            .await
            .is_err()
    );
    let root = tokens(&provider, "root@example.test", MAIL).await;
    assert!(xoauth2(&dovecot, ANA, &root.access_token).await.is_err());
    let sso = tokens(&provider, ANA, "openid email").await;
    assert_eq!(
        provider.introspect(&sso.access_token).await.unwrap()["active"],
        true
    );
    assert!(xoauth2(&dovecot, ANA, &sso.access_token).await.is_err());
    assert!(!login_works(&dovecot, ANA, "ana-password").await);
    assert!(!login_works(&dovecot, ANA, &set.access_token).await);

    // And the good token still works afterwards (no lockout, no penalty).
    let mut session = xoauth2(&dovecot, ANA, &set.access_token).await.unwrap();
    assert_eq!(inbox_count(&mut session).await, 1);

    // Password users of the same instance keep their passwords.
    dovecot.add_user("desk@example.test", "pw").unwrap();
    assert!(login_works(&dovecot, "desk@example.test", "pw").await);
    // Each refusal for its own reason, in Dovecot's words.
    let log = dovecot.log();
    for reason in [
        "oauth2 failed: Introspection failed: Provided token is not valid",
        "Username 'ana@example.test' did not match 'root@example.test'",
        "Token is not valid for scope 'mail'",
        "method=OAUTHBEARER",
    ] {
        assert!(log.contains(reason), "{reason:?} not in the log:\n{log}");
    }
}

#[tokio::test]
async fn oauth2_imap_refuses_expired_and_revoked_tokens() {
    init();
    const TTL: u64 = 4;
    let provider = provider(TTL).await;
    let dovecot = oauth2_dovecot(&provider, None).await;

    let set = tokens(&provider, ANA, MAIL).await;
    let issued = Instant::now();
    assert_eq!(set.expires_in, TTL);
    xoauth2(&dovecot, ANA, &set.access_token)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dovecot.log()));

    // Past its lifetime the access token is refused (Dovecot asks every time).
    tokio::time::sleep((issued + Duration::from_millis(TTL * 1000 + 1200)) - Instant::now()).await;
    assert_eq!(
        provider.introspect(&set.access_token).await.unwrap()["active"],
        false
    );
    let refused = xoauth2(&dovecot, ANA, &set.access_token).await.unwrap_err();
    assert!(refused.contains("AUTHENTICATIONFAILED"), "{refused}");

    // A refreshed one works.
    let fresh = provider
        .refresh(set.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    xoauth2(&dovecot, ANA, &fresh.access_token)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dovecot.log()));

    // Revoked at the provider: the live access token is refused at once, and the refresh
    // token cannot get another.
    provider.revoke_grants(ANA).await.unwrap();
    assert!(xoauth2(&dovecot, ANA, &fresh.access_token).await.is_err());
    assert_invalid_grant(&token_error(
        provider
            .refresh(fresh.refresh_token.as_deref().unwrap())
            .await,
    ));
}

/// One hand-written SMTP `AUTH <mechanism>` exchange with `response` as the initial
/// response; returns the EHLO reply and the final AUTH reply.
async fn smtp_auth_raw(port: u16, mechanism: &str, response: &str) -> (String, String) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut client = Client::new(stream);
    let greeting = client.smtp_reply().await;
    assert!(greeting.starts_with("220"), "{greeting}");
    client.send("EHLO client.test\r\n").await;
    let ehlo = client.smtp_reply().await;
    let initial = STANDARD.encode(response);
    client.send(format!("AUTH {mechanism} {initial}\r\n")).await;
    let mut reply = client.smtp_reply().await;
    if reply.starts_with("334") {
        // The error details (base64 JSON); the client answers with an empty line.
        client.send("\r\n").await;
        reply = client.smtp_reply().await;
    }
    (ehlo, reply)
}

async fn smtp_xoauth2_raw(port: u16, user: &str, token: &str) -> (String, String) {
    let response = format!("user={user}\x01auth=Bearer {token}\x01\x01");
    smtp_auth_raw(port, "XOAUTH2", &response).await
}

#[tokio::test]
async fn oauth2_submission_auth_xoauth2_relays_to_the_capture() {
    init();
    let capture = SmtpCapture::start().await.unwrap();
    let provider = provider(3600).await;
    let dovecot = oauth2_dovecot(&provider, Some(capture.port())).await;
    let port = dovecot.submission_port().expect("a submission port");
    let set = tokens(&provider, ANA, MAIL).await;

    let (ehlo, reply) = smtp_xoauth2_raw(port, ANA, &set.access_token).await;
    assert!(
        ehlo.lines()
            .any(|l| l.contains("AUTH") && l.contains("XOAUTH2") && l.contains("OAUTHBEARER")),
        "{ehlo}"
    );
    assert!(reply.starts_with("235"), "{reply}\n{}", dovecot.log());
    let (_, reply) = smtp_xoauth2_raw(port, ANA, "garbage").await;
    assert!(reply.starts_with("535"), "{reply}");
    let bearer = |token: &str| format!("n,a={ANA},\x01auth=Bearer {token}\x01\x01");
    let (_, reply) = smtp_auth_raw(port, "OAUTHBEARER", &bearer(&set.access_token)).await;
    assert!(reply.starts_with("235"), "{reply}");
    let (_, reply) = smtp_auth_raw(port, "OAUTHBEARER", &bearer("garbage")).await;
    assert!(reply.starts_with("535"), "{reply}");

    // lettre, as postdesk sends: AUTH XOAUTH2, the message relayed byte for byte.
    let transport = |token: &str| {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .authentication(vec![Mechanism::Xoauth2])
            .credentials(Credentials::new(ANA.to_string(), token.to_string()))
            .timeout(Some(crate::TIMEOUT))
            .build()
    };
    let envelope = Envelope::new(
        Some(ANA.parse::<Address>().unwrap()),
        vec!["contact@example.test".parse::<Address>().unwrap()],
    )
    .unwrap();
    let email: &[u8] = b"From: ana@example.test\r\n\
To: contact@example.test\r\n\
Subject: Sent with an OAuth2 token\r\n\
Message-ID: <oauth2-submission@example.test>\r\n\
\r\n\
Hello through Dovecot submission.\r\n\
.a line starting with a dot\r\n";
    transport(&set.access_token)
        .send_raw(&envelope, email)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dovecot.log()));
    let got = capture.wait_for(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, ANA);
    assert_eq!(got[0].rcpt_to, ["contact@example.test"]);
    // Dovecot prepends its Received header (ESMTPA: authenticated); lettre ends DATA
    // with CRLF "." CRLF even after a final CRLF, hence one more empty line.
    let data = String::from_utf8(got[0].data.clone()).unwrap();
    let sent = format!("{}\r\n", String::from_utf8_lossy(email));
    let received = data
        .strip_suffix(&sent)
        .unwrap_or_else(|| panic!("the relayed message differs:\n{data}"));
    assert!(received.starts_with("Received: from "), "{received}");
    assert!(received.contains(" with ESMTPA\r\n"), "{received}");
    assert!(
        received.contains("(envelope-from <ana@example.test>)"),
        "{received}"
    );
    assert!(
        received
            .split("\r\n")
            .skip(1)
            .all(|l| l.is_empty() || l.starts_with('\t')),
        "one folded header only: {received}"
    );

    // A bad token: refused, nothing relayed.
    let err = transport("garbage")
        .send_raw(&envelope, email)
        .await
        .expect_err("a garbage token must be refused");
    // lettre 0.11's XOAUTH2 cannot answer the server's error challenge (334 + base64
    // JSON): it gives up with a client error before the 535 comes, so the server's words
    // are not in the error. The code under test has to cope with that (see the raw
    // exchange above for what the server says).
    assert_eq!(err.status(), None, "{err}");
    assert!(
        err.to_string().contains("does not expect a challenge"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(capture.messages().len(), 1);
}
