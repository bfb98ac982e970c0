//! Sender authenticity end to end: emails signed here with mail-auth's DKIM signer (keys made
//! by the test), records published by a real DNS server (dnsmasq on loopback), read over IMAP
//! from Dovecot or received over the SMTP ingress, and the verdicts as the API shows them, on
//! SQLite and PostgreSQL; `postdesk inspect` with and without DNS.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lettre::address::Envelope;
use lettre::transport::smtp::client::Tls;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::DkimSigner;
use postdesk_testkit::DnsServer;
use serde_json::{Value, json};

use crate::helpers::{Db, PATIENCE, SUPPORT, TestApp, email, eventually, spawn_app_with};

/// The keys of the test's domains, made fresh for each run.
struct Keys {
    /// PKCS#1 DER of good.test's RSA key.
    rsa: Vec<u8>,
    /// PKCS#8 DER of edge.test's Ed25519 key.
    ed25519: Vec<u8>,
    /// PKCS#1 DER of the RSA key wrongkey.test signs with (DNS publishes another).
    wrong: Vec<u8>,
    /// The RSA key wrongkey.test publishes.
    published: Vec<u8>,
}

/// A 2048-bit RSA key as PKCS#1 DER (what `openssl genpkey` writes as DER), from openssl: ring
/// signs with RSA but cannot make keys.
fn rsa_key() -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-outform",
            "DER",
        ])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn rsa(der: &[u8]) -> RsaKey<Sha256> {
    RsaKey::<Sha256>::from_key_der(rustls::pki_types::PrivateKeyDer::Pkcs1(der.to_vec().into()))
        .expect("an RSA key")
}

impl Keys {
    fn new() -> Keys {
        Keys {
            rsa: rsa_key(),
            ed25519: Ed25519Key::generate_pkcs8().unwrap(),
            wrong: rsa_key(),
            published: rsa_key(),
        }
    }

    /// The DNS records of the test's domains.
    fn records(&self) -> Vec<(String, String)> {
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
        let ed = Ed25519Key::from_pkcs8_der(&self.ed25519).unwrap();
        vec![
            // good.test: signs with RSA, sends from 203.0.113.5 and (over the SMTP ingress of
            // the test) from 127.0.0.1, rejects what fails DMARC.
            (
                "s1._domainkey.good.test".into(),
                format!("v=DKIM1; k=rsa; p={}", b64(rsa(&self.rsa).public_key())),
            ),
            (
                "good.test".into(),
                "v=spf1 ip4:203.0.113.5 ip4:127.0.0.1 -all".into(),
            ),
            ("_dmarc.good.test".into(), "v=DMARC1; p=reject".into()),
            // edge.test: Ed25519 (RFC 8463), no SPF, no DMARC.
            (
                "e1._domainkey.edge.test".into(),
                format!("v=DKIM1; k=ed25519; p={}", b64(ed.public_key())),
            ),
            // wrongkey.test publishes a key it does not sign with.
            (
                "w1._domainkey.wrongkey.test".into(),
                format!(
                    "v=DKIM1; k=rsa; p={}",
                    b64(rsa(&self.published).public_key())
                ),
            ),
            // bank.test: only 192.0.2.1 sends its mail, and it rejects the rest.
            ("bank.test".into(), "v=spf1 ip4:192.0.2.1 -all".into()),
            ("_dmarc.bank.test".into(), "v=DMARC1; p=reject".into()),
        ]
    }
}

async fn dns(keys: &Keys) -> DnsServer {
    let records = keys.records();
    let txt: Vec<(&str, &str)> = records
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    DnsServer::start(&txt).await.expect("dnsmasq starts")
}

/// `raw` with a DKIM-Signature of `domain`/`selector` on top.
fn signed(key: impl SigningKey, domain: &str, selector: &str, raw: &str) -> String {
    let signature = DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(["From", "To", "Subject", "Date", "Message-ID"])
        .sign(raw.as_bytes())
        .expect("signs");
    format!("{}{raw}", signature.to_header())
}

/// The trace fields a receiving mail server puts on top: the client and MAIL FROM.
fn received(client: &str, helo: &str, mail_from: &str) -> String {
    format!(
        "Return-Path: <{mail_from}>\r\nReceived: from {helo} ({helo} [{client}])\r\n\tby mx.example.test (Postfix) with ESMTPS id 4AbC\r\n\tfor <{SUPPORT}>; Tue, 24 Nov 2026 09:59:59 +0000\r\n"
    )
}

/// The inbound email with `subject` and its conversation, once processed.
async fn find(app: &TestApp, subject: &str) -> (Value, Value) {
    eventually(&format!("the email {subject:?}"), || async {
        for conversation in app.conversations(&app.admin, "").await {
            if conversation["subject"] == subject {
                let id = conversation["id"].as_i64().unwrap();
                let message = app.messages(&app.admin, id).await.into_iter().next()?;
                return Some((message, conversation));
            }
        }
        None
    })
    .await
}

fn auth(dkim: &str, spf: &str, dmarc: &str, from_domain: &str, aligned: bool) -> Value {
    json!({"dkim": dkim, "spf": spf, "dmarc": dmarc, "from_domain": from_domain, "aligned": aligned})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_read_over_imap_carry_their_dkim_spf_and_dmarc_verdicts_on_sqlite() {
    emails_read_over_imap_carry_their_dkim_spf_and_dmarc_verdicts(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_read_over_imap_carry_their_dkim_spf_and_dmarc_verdicts_on_postgres() {
    emails_read_over_imap_carry_their_dkim_spf_and_dmarc_verdicts(Db::Postgres).await;
}

async fn emails_read_over_imap_carry_their_dkim_spf_and_dmarc_verdicts(db: Db) {
    // Arrange: the domains' records on a real DNS server, postdesk asking it.
    let keys = Keys::new();
    let dns = dns(&keys).await;
    let app = spawn_app_with(db, |settings| settings.dns = Some(dns.addr().to_string())).await;

    // A signed email from good.test's own server: everything passes.
    let good = email(
        "good@good.test",
        "news@good.test",
        "Signed and sent right",
        "Hello.",
        "",
    );
    let good = signed(rsa(&keys.rsa), "good.test", "s1", &good);
    app.deliver(&format!(
        "{}{good}",
        received("203.0.113.5", "mail.good.test", "news@good.test")
    ))
    .await;
    // Signed with Ed25519, then its body changed on the way: the signature fails.
    let edge = email(
        "edge@edge.test",
        "ann@edge.test",
        "Changed on the way",
        "Original.",
        "",
    );
    let edge = signed(
        Ed25519Key::from_pkcs8_der(&keys.ed25519).unwrap(),
        "edge.test",
        "e1",
        &edge,
    )
    .replace("Original.", "Tampered.");
    app.deliver(&edge).await;
    // Signed with a key other than the one wrongkey.test publishes.
    let wrong = email(
        "w@wrongkey.test",
        "bo@wrongkey.test",
        "Signed with another key",
        "Hi.",
        "",
    );
    app.deliver(&signed(rsa(&keys.wrong), "wrongkey.test", "w1", &wrong))
        .await;
    // "From" bank.test (p=reject), sent from a host bank.test does not allow, unsigned.
    let spoof = email(
        "spoof@bank.test",
        "ceo@bank.test",
        "Urgent wire transfer",
        "Pay now.",
        "",
    );
    app.deliver(&format!(
        "{}{spoof}",
        received("198.51.100.7", "mail.evil.test", "ceo@bank.test")
    ))
    .await;

    // Act
    let (good_message, good_conversation) = find(&app, "Signed and sent right").await;
    let (edge_message, edge_conversation) = find(&app, "Changed on the way").await;
    let (wrong_message, _) = find(&app, "Signed with another key").await;
    let (spoof_message, spoof_conversation) = find(&app, "Urgent wire transfer").await;

    // Assert
    assert_eq!(
        good_message["email"]["auth"],
        auth("pass", "pass", "pass", "good.test", true),
        "{}",
        dns.log()
    );
    assert_eq!(good_conversation["dmarc_failed"], false);
    assert_eq!(
        edge_message["email"]["auth"],
        auth("fail", "none", "none", "edge.test", false),
        "a changed body fails DKIM; no Received field: SPF none; no policy: DMARC none"
    );
    assert_eq!(
        edge_conversation["dmarc_failed"], false,
        "no DMARC policy, no failure"
    );
    assert_eq!(
        wrong_message["email"]["auth"]["dkim"], "fail",
        "{wrong_message}"
    );
    assert_eq!(
        spoof_message["email"]["auth"],
        auth("none", "fail", "fail", "bank.test", false)
    );
    assert_eq!(
        spoof_conversation["dmarc_failed"], true,
        "the mark in Queued Chats"
    );
    let queued = app.conversations(&app.admin, "status=queued").await;
    let marked: Vec<&str> = queued
        .iter()
        .filter(|c| c["dmarc_failed"] == true)
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        marked,
        vec!["Urgent wire transfer"],
        "only the spoof is marked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_over_the_smtp_ingress_checks_the_real_client_and_mail_from_on_sqlite() {
    spf_over_the_smtp_ingress_checks_the_real_client_and_mail_from(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_over_the_smtp_ingress_checks_the_real_client_and_mail_from_on_postgres() {
    spf_over_the_smtp_ingress_checks_the_real_client_and_mail_from(Db::Postgres).await;
}

async fn spf_over_the_smtp_ingress_checks_the_real_client_and_mail_from(db: Db) {
    // Arrange: the ingress on; the test's client connects from 127.0.0.1, which good.test's SPF
    // allows and bank.test's does not.
    let keys = Keys::new();
    let dns = dns(&keys).await;
    let app = spawn_app_with(db, |settings| {
        settings.smtp_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        settings.dns = Some(dns.addr().to_string());
    })
    .await;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(app.smtp_ingress_port.unwrap())
        .tls(Tls::None)
        .hello_name(ClientId::Domain("relay.good.test".into()))
        .timeout(Some(PATIENCE))
        .build();
    let send = |from: &'static str, raw: String| {
        let mailer = mailer.clone();
        async move {
            let envelope =
                Envelope::new(Some(from.parse().unwrap()), vec![SUPPORT.parse().unwrap()]).unwrap();
            mailer
                .send_raw(&envelope, raw.as_bytes())
                .await
                .expect("accepted");
        }
    };

    // Act: an unsigned email whose MAIL FROM is good.test (SPF passes, aligned: DMARC passes
    // without DKIM), and one whose MAIL FROM and From are bank.test.
    send(
        "news@good.test",
        email(
            "smtp-good@good.test",
            "news@good.test",
            "Over SMTP from good",
            "Hi.",
            "",
        ),
    )
    .await;
    send(
        "ceo@bank.test",
        email(
            "smtp-bank@bank.test",
            "ceo@bank.test",
            "Over SMTP claiming bank",
            "Pay.",
            "",
        ),
    )
    .await;
    let (good, _) = find(&app, "Over SMTP from good").await;
    let (bank, bank_conversation) = find(&app, "Over SMTP claiming bank").await;

    // Assert
    assert_eq!(
        good["email"]["auth"],
        auth("none", "pass", "pass", "good.test", true),
        "{}",
        dns.log()
    );
    assert_eq!(
        bank["email"]["auth"],
        auth("none", "fail", "fail", "bank.test", false)
    );
    assert_eq!(bank_conversation["dmarc_failed"], true);
}

/// A UDP socket that receives queries and never answers: a DNS server that is down (its
/// queries time out, as on a real outage), on a port nothing else answers on.
fn silent_dns() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dns_down_an_email_is_still_ingested_with_temperror_on_sqlite() {
    with_dns_down_an_email_is_still_ingested_with_temperror(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_dns_down_an_email_is_still_ingested_with_temperror_on_postgres() {
    with_dns_down_an_email_is_still_ingested_with_temperror(Db::Postgres).await;
}

async fn with_dns_down_an_email_is_still_ingested_with_temperror(db: Db) {
    // Arrange
    let keys = Keys::new();
    let (_socket, addr) = silent_dns();
    let app = spawn_app_with(db, |settings| settings.dns = Some(addr.to_string())).await;
    let raw = email(
        "down@good.test",
        "news@good.test",
        "While DNS is down",
        "Hello.",
        "",
    );
    let raw = signed(rsa(&keys.rsa), "good.test", "s1", &raw);

    // Act
    let started = Instant::now();
    app.deliver(&format!(
        "{}{raw}",
        received("203.0.113.5", "mail.good.test", "news@good.test")
    ))
    .await;
    let (message, conversation) = find(&app, "While DNS is down").await;

    // Assert: stored and queued, its verdicts say "try again later", and the wait was bounded
    // by the check's time limit, not by DNS.
    assert_eq!(
        message["email"]["auth"],
        auth("temperror", "temperror", "temperror", "good.test", false)
    );
    assert_eq!(conversation["status"], "queued");
    assert_eq!(
        conversation["dmarc_failed"], false,
        "a temporary error is no failure"
    );
    assert!(
        started.elapsed() < postdesk::sender_auth::CHECK_TIMEOUT + Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_the_verdicts_and_temperror_when_dns_does_not_answer() {
    // Arrange
    postdesk_testkit::init();
    let keys = Keys::new();
    let dns = dns(&keys).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("good.eml");
    let raw = email(
        "inspect@good.test",
        "news@good.test",
        "Inspect me",
        "Hello.",
        "",
    );
    let raw = signed(rsa(&keys.rsa), "good.test", "s1", &raw);
    std::fs::write(
        &file,
        format!(
            "{}{raw}",
            received("203.0.113.5", "mail.good.test", "news@good.test")
        ),
    )
    .unwrap();
    let (_socket, silent) = silent_dns();
    let inspect = |dns: String| {
        let file = file.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
                .args(["inspect", "--dns", &dns])
                .arg(&file)
                .env_remove("POSTDESK_DNS")
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        }
    };

    // Act
    let answered = inspect(dns.addr().to_string()).await;
    let unanswered = inspect(silent.to_string()).await;

    // Assert
    assert_eq!(answered["subject"], "Inspect me");
    assert_eq!(
        answered["auth"],
        auth("pass", "pass", "pass", "good.test", true),
        "{}",
        dns.log()
    );
    assert_eq!(
        unanswered["auth"],
        auth("temperror", "temperror", "temperror", "good.test", false)
    );
}
