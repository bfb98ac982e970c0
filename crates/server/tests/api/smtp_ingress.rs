//! The SMTP ingress: mail sent straight to postdesk over SMTP lands in Queued Chats, on SQLite
//! and PostgreSQL; recipients that are no inbox are refused for good; and the protocol details
//! (pipelining, dot-unstuffing, where data ends, size, recipient and connection limits, a
//! storage failure, shutdown) hold on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use postdesk::bus::Bus;
use postdesk::smtp_ingress::{SmtpIngress, SmtpLimits};
use postdesk_core::ids::{InboxId, RawEmailId};
use postdesk_core::model::Security;
use postdesk_store::{InboxSettings, ServerSettings, Store};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::{Db, PATIENCE, SUPPORT, TestApp, email, eventually, spawn_app_with};

async fn spawn_with_smtp(db: Db) -> TestApp {
    let app = spawn_app_with(db, |settings| {
        settings.smtp_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    assert!(app.smtp_ingress_port.is_some(), "the SMTP ingress listens");
    app
}

fn mailer(port: u16) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .tls(Tls::None)
        .timeout(Some(PATIENCE))
        .build()
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope::new(
        Some(from.parse().unwrap()),
        to.iter().map(|a| a.parse().unwrap()).collect(),
    )
    .unwrap()
}

async fn queued(app: &TestApp) -> Vec<serde_json::Value> {
    app.conversations(&app.admin, "status=queued").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_sent_over_smtp_appears_in_queued_chats_on_sqlite() {
    an_email_sent_over_smtp_appears_in_queued_chats(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_sent_over_smtp_appears_in_queued_chats_on_postgres() {
    an_email_sent_over_smtp_appears_in_queued_chats(Db::Postgres).await;
}

async fn an_email_sent_over_smtp_appears_in_queued_chats(db: Db) {
    let app = spawn_with_smtp(db).await;
    let raw = email(
        "smtp-1@customer.test",
        "carol@customer.test",
        "Straight over SMTP",
        "No IMAP involved.",
        "",
    );

    // The envelope recipient in another case still is the inbox (compared case-insensitively).
    let response = mailer(app.smtp_ingress_port.unwrap())
        .send_raw(
            &envelope("carol@customer.test", &["Support@Example.TEST"]),
            raw.as_bytes(),
        )
        .await
        .expect("the ingress accepts mail for the inbox address");
    assert_eq!(response.code().to_string(), "250");

    let conversation = eventually("the SMTP email to appear in Queued Chats", || async {
        queued(&app).await.into_iter().next()
    })
    .await;
    assert_eq!(conversation["subject"], "Straight over SMTP");
    assert_eq!(conversation["contact"]["email"], "carol@customer.test");
    let messages = app
        .messages(&app.admin, conversation["id"].as_i64().unwrap())
        .await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["kind"], "email_in");
    assert_eq!(messages[0]["email"]["message_id"], "smtp-1@customer.test");
    assert!(
        messages[0]["text"]
            .as_str()
            .unwrap()
            .contains("No IMAP involved."),
        "{}",
        messages[0]
    );
    let inbox = app.inbox().await;
    assert_eq!(inbox["status"]["backlog"], 0, "{inbox}");
    assert_eq!(inbox["status"]["quarantined"], 0, "{inbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_that_is_no_inbox_is_refused_for_good_and_nothing_is_stored() {
    let app = spawn_with_smtp(Db::Sqlite).await;
    let port = app.smtp_ingress_port.unwrap();
    let stray = email(
        "stray@customer.test",
        "carol@customer.test",
        "Not for us",
        "Wrong address.",
        "",
    );
    let error = mailer(port)
        .send_raw(
            &envelope("carol@customer.test", &["sales@example.test"]),
            stray.as_bytes(),
        )
        .await
        .expect_err("an address that is no inbox is refused");
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(
        error.status().map(|c| c.to_string()).as_deref(),
        Some("550")
    );
    assert!(error.to_string().contains("no such inbox here"), "{error}");

    // An email accepted afterwards is processed by the same task, after anything before it: once
    // it is in the queue, a stored stray email would be there too.
    let next = email(
        "after@customer.test",
        "carol@customer.test",
        "For us",
        "Right address.",
        "",
    );
    mailer(port)
        .send_raw(
            &envelope("carol@customer.test", &[SUPPORT]),
            next.as_bytes(),
        )
        .await
        .unwrap();
    eventually("the accepted email to be queued", || async {
        (!queued(&app).await.is_empty()).then_some(())
    })
    .await;
    let subjects: Vec<_> = queued(&app)
        .await
        .iter()
        .map(|c| c["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects, vec!["For us"]);
    let inbox = app.inbox().await;
    assert_eq!(inbox["status"]["backlog"], 0, "{inbox}");
    assert_eq!(inbox["status"]["quarantined"], 0, "{inbox}");
}

/// A line-by-line SMTP client that checks the server's every reply.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(port: u16) -> (Client, String) {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (read, writer) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    async fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes()).await;
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// One reply, all its lines (a multi-line reply has "-" after the code).
    async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(PATIENCE, self.reader.read_line(&mut line))
                .await
                .expect("a reply in time")
                .unwrap();
            assert!(read > 0, "the server closed the connection; got {reply:?}");
            assert!(line.ends_with("\r\n"), "replies end with CRLF: {line:?}");
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Whether the server closed the connection (after everything it sent was read).
    async fn closed(&mut self) -> bool {
        let mut rest = String::new();
        matches!(
            tokio::time::timeout(PATIENCE, self.reader.read_line(&mut rest)).await,
            Ok(Ok(0))
        )
    }
}

/// Asserts the reply's code (of every line of a multi-line reply).
fn expect(reply: &str, code: &str) {
    assert!(
        !reply.is_empty()
            && reply
                .lines()
                .all(|l| l.starts_with(&format!("{code} ")) || l.starts_with(&format!("{code}-"))),
        "expected {code}, got {reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_and_dot_stuffed_lines_over_a_raw_connection() {
    let app = spawn_with_smtp(Db::Sqlite).await;
    let (mut client, greeting) = Client::connect(app.smtp_ingress_port.unwrap()).await;
    expect(&greeting, "220");
    let ehlo = client.command("EHLO client.test").await;
    for extension in ["PIPELINING", "SIZE ", "8BITMIME", "ENHANCEDSTATUSCODES"] {
        assert!(
            ehlo.contains(&format!("250-{extension}"))
                || ehlo.contains(&format!("250 {extension}")),
            "{extension} in {ehlo:?}"
        );
    }
    assert!(
        !ehlo.contains("AUTH") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );

    // One write, four commands (RFC 2920): each gets its own reply, in order.
    client
        .send(&format!(
            "MAIL FROM:<carol@customer.test>\r\nRCPT TO:<{SUPPORT}>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n"
        ))
        .await;
    expect(&client.reply().await, "250");
    expect(&client.reply().await, "250");
    let refused = client.reply().await;
    expect(&refused, "550");
    assert!(
        refused.contains("5.1.1 <nobody@example.test>: no such inbox here"),
        "{refused}"
    );
    expect(&client.reply().await, "354");

    let raw = email(
        "dots@customer.test",
        "carol@customer.test",
        "Dots",
        "First line\r\n..leading dot\r\n...two dots\r\n..\r\nlast line",
        "",
    );
    client.send(&raw).await;
    client.send(".\r\n").await;
    expect(&client.reply().await, "250");
    client.send("RSET\r\nNOOP\r\nQUIT\r\n").await;
    expect(&client.reply().await, "250");
    expect(&client.reply().await, "250");
    expect(&client.reply().await, "221");
    assert!(client.closed().await, "QUIT closes the connection");

    let conversation = eventually("the raw SMTP email to be queued", || async {
        queued(&app).await.into_iter().next()
    })
    .await;
    let messages = app
        .messages(&app.admin, conversation["id"].as_i64().unwrap())
        .await;
    let text = messages[0]["text"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    assert!(lines.contains(&".leading dot"), "{text:?}");
    assert!(lines.contains(&"..two dots"), "{text:?}");
    assert!(lines.contains(&"."), "{text:?}");
    assert!(!text.contains("..leading"), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_size_over_the_limit_is_refused_at_mail() {
    let app = spawn_with_smtp(Db::Sqlite).await;
    let (mut client, _) = Client::connect(app.smtp_ingress_port.unwrap()).await;
    let ehlo = client.command("EHLO client.test").await;
    let limit: u64 = ehlo
        .lines()
        .find_map(|l| l.strip_prefix("250-SIZE ").or(l.strip_prefix("250 SIZE ")))
        .expect("SIZE advertised")
        .trim()
        .parse()
        .unwrap();
    let refused = client
        .command(&format!(
            "MAIL FROM:<carol@customer.test> SIZE={}",
            limit + 1
        ))
        .await;
    expect(&refused, "552");
    assert!(refused.contains("5.3.4"), "{refused}");
    expect(
        &client
            .command(&format!(
                "MAIL FROM:<carol@customer.test> SIZE={limit} BODY=8BITMIME"
            ))
            .await,
        "250",
    );
}

// The protocol on an ingress of its own, with small limits and the store at hand.

struct Standalone {
    port: u16,
    store: Store,
    inbox: InboxId,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn standalone(limits: SmtpLimits) -> Standalone {
    postdesk_testkit::init();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/postdesk.db", dir.path().display()))
        .await
        .unwrap();
    let server = |host: &str| ServerSettings {
        host: host.into(),
        port: 1,
        security: Security::None,
        username: SUPPORT.into(),
        password_encrypted: Vec::new(),
        tls_verify: true,
        auth: postdesk_core::model::MailAuth::Password,
    };
    let inbox = store
        .create_inbox(&InboxSettings {
            name: "Support".into(),
            email: SUPPORT.into(),
            sender_name: "Support".into(),
            department_id: None,
            active: true,
            imap: server("imap.invalid"),
            imap_mailbox: "INBOX".into(),
            imap_move_to: None,
            imap_sent_mailbox: None,
            smtp: server("smtp.invalid"),
            reopen_days: 30,
            retention_days: None,
            oauth_provider_id: None,
            signature: String::new(),
            quote_history: true,
        })
        .await
        .unwrap()
        .id;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = watch::channel(false);
    let ingress = SmtpIngress::new(store.clone(), Bus::new(), Default::default(), limits);
    let task = tokio::spawn(ingress.serve(listener, stopped));
    Standalone {
        port,
        store,
        inbox,
        stop,
        task,
        _dir: dir,
    }
}

/// EHLO, MAIL and RCPT to the support inbox, and DATA: ready for the message.
async fn start_message(client: &mut Client) {
    expect(&client.command("EHLO client.test").await, "250");
    expect(
        &client.command("MAIL FROM:<carol@customer.test>").await,
        "250",
    );
    expect(
        &client.command(&format!("RCPT TO:<{SUPPORT}>")).await,
        "250",
    );
    expect(&client.command("DATA").await, "354");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_crlf_dot_crlf_ends_the_data_and_the_bytes_are_stored_exactly() {
    let ingress = standalone(SmtpLimits::default()).await;
    let (mut client, _) = Client::connect(ingress.port).await;
    start_message(&mut client).await;
    // A "." line ended by a bare LF, or after a bare LF, is not the end (no SMTP smuggling):
    // the text after it is message content, not a second transaction.
    let sent: &[u8] = b"Subject: exact\r\n\r\n..one\r\n.\nMAIL FROM:<eve@evil.test>\r\nbare\n.\r\n\xff binary\r\n";
    client.send_bytes(sent).await;
    client.send(".\r\n").await;
    let accepted = client.reply().await;
    expect(&accepted, "250");
    expect(&client.command("QUIT").await, "221");

    let raw = ingress
        .store
        .find_raw(RawEmailId(1))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(raw.inbox_id, ingress.inbox);
    let expected_body: &[u8] =
        b"Subject: exact\r\n\r\n.one\r\n\nMAIL FROM:<eve@evil.test>\r\nbare\n.\r\n\xff binary\r\n";
    assert!(
        raw.bytes.ends_with(expected_body),
        "{:?}",
        String::from_utf8_lossy(&raw.bytes)
    );
    let head = String::from_utf8_lossy(&raw.bytes[..raw.bytes.len() - expected_body.len()]);
    assert!(
        head.starts_with(
            "Return-Path: <carol@customer.test>\r\nReceived: from client.test ([127.0.0.1])\r\n"
        ),
        "{head:?}"
    );
    assert!(head.contains(&format!("for <{SUPPORT}>; ")), "{head:?}");
    assert!(
        ingress
            .store
            .find_raw(RawEmailId(2))
            .await
            .unwrap()
            .is_none(),
        "one message, one row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_over_the_size_limit_gets_552_and_the_session_goes_on() {
    let ingress = standalone(SmtpLimits {
        max_message_bytes: 1000,
        ..SmtpLimits::default()
    })
    .await;
    let (mut client, _) = Client::connect(ingress.port).await;
    start_message(&mut client).await;
    let line = format!("{}\r\n", "x".repeat(98));
    client.send("Subject: big\r\n\r\n").await;
    for _ in 0..30 {
        client.send(&line).await;
    }
    client.send(".\r\n").await;
    let refused = client.reply().await;
    expect(&refused, "552");
    assert!(refused.contains("5.3.4"), "{refused}");

    // The rest of the big message was read and dropped: the next one goes through.
    expect(
        &client.command("MAIL FROM:<carol@customer.test>").await,
        "250",
    );
    expect(
        &client.command(&format!("RCPT TO:<{SUPPORT}>")).await,
        "250",
    );
    expect(&client.command("DATA").await, "354");
    client.send("Subject: small\r\n\r\nfits\r\n.\r\n").await;
    expect(&client.reply().await, "250");

    let first = ingress
        .store
        .find_raw(RawEmailId(1))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&first.bytes).contains("Subject: small"),
        "only the small message is stored"
    );
    assert!(
        ingress
            .store
            .find_raw(RawEmailId(2))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_connection_and_error_limits() {
    let ingress = standalone(SmtpLimits {
        max_recipients: 2,
        max_connections: 1,
        max_errors: 3,
        ..SmtpLimits::default()
    })
    .await;
    let (mut client, greeting) = Client::connect(ingress.port).await;
    expect(&greeting, "220");

    // One connection at a time: the second is told to come back later.
    let (mut second, refused) = Client::connect(ingress.port).await;
    expect(&refused, "421");
    assert!(second.closed().await);

    expect(&client.command("EHLO client.test").await, "250");
    expect(&client.command("MAIL FROM:<>").await, "250");
    expect(
        &client.command(&format!("RCPT TO:<{SUPPORT}>")).await,
        "250",
    );
    expect(
        &client.command("RCPT TO:<support@EXAMPLE.test>").await,
        "250",
    );
    let too_many = client.command(&format!("RCPT TO:<{SUPPORT}>")).await;
    expect(&too_many, "452");
    assert!(too_many.contains("4.5.3"), "{too_many}");
    expect(&client.command("VRFY support").await, "252");

    // Refused commands add up; the third closes the session.
    expect(&client.command("AUTH PLAIN AGFiYwBkZWY=").await, "502");
    expect(&client.command("MAIL FROM:<a@b.test>").await, "503");
    expect(&client.command("FOO").await, "500");
    let closing = client.reply().await;
    expect(&closing, "421");
    assert!(closing.contains("4.7.0"), "{closing}");
    assert!(client.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_is_a_temporary_451() {
    let ingress = standalone(SmtpLimits::default()).await;
    let (mut client, _) = Client::connect(ingress.port).await;
    start_message(&mut client).await;
    ingress.store.close().await;
    client.send("Subject: later\r\n\r\nbody\r\n.\r\n").await;
    let deferred = client.reply().await;
    expect(&deferred, "451");
    assert!(deferred.contains("4.3.0"), "{deferred}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_answers_421_and_ends_the_server() {
    let ingress = standalone(SmtpLimits::default()).await;
    let (mut client, _) = Client::connect(ingress.port).await;
    expect(&client.command("EHLO client.test").await, "250");
    ingress.stop.send(true).unwrap();
    let bye = client.reply().await;
    expect(&bye, "421");
    assert!(client.closed().await);
    tokio::time::timeout(Duration::from_secs(15), ingress.task)
        .await
        .expect("the ingress stops")
        .unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", ingress.port))
            .await
            .is_err(),
        "the listener is closed"
    );
}
