use std::sync::Arc;
use std::time::{Duration, Instant};

use postdesk_testkit::{Dovecot, init};
use tokio::net::TcpStream;

use crate::Client;

const MESSAGE: &[u8] = b"From: Ann <ann@example.test>\r\n\
To: desk@example.test\r\n\
Subject: Harness check\r\n\
Message-ID: <harness-1@example.test>\r\n\
\r\n\
Hello from the testkit.\r\n\
.a line starting with a dot\r\n";

async fn imap_login(dovecot: &Dovecot, user: &str, password: &str) -> Client<TcpStream> {
    let stream = TcpStream::connect((dovecot.host(), dovecot.imap_port()))
        .await
        .expect("connect to IMAP");
    let mut client = Client::new(stream);
    let greeting = client.line().await;
    assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
    let login = client
        .imap("l1", &format!("LOGIN \"{user}\" \"{password}\""))
        .await;
    assert!(
        login.last().unwrap().starts_with("l1 OK"),
        "login failed: {login:?}\n{}",
        dovecot.log()
    );
    client
}

/// `* N EXISTS` from a SELECT response.
fn exists(lines: &[String]) -> u32 {
    lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" EXISTS\r\n")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no EXISTS in {lines:?}"))
}

async fn fetch_body(client: &mut Client<TcpStream>, seq: u32) -> Vec<u8> {
    client.send(format!("f1 FETCH {seq} BODY.PEEK[]\r\n")).await;
    let head = client.line().await;
    let len: usize = head
        .trim_end()
        .rsplit_once('{')
        .and_then(|(_, n)| n.strip_suffix('}')?.parse().ok())
        .unwrap_or_else(|| panic!("no literal in {head:?}"));
    let body = client.exact(len).await;
    loop {
        let line = client.line().await;
        if line.starts_with("f1 ") {
            assert!(line.starts_with("f1 OK"), "{line}");
            return body;
        }
    }
}

#[tokio::test]
async fn starts_fast_and_greets_on_imap() {
    init();
    let started = Instant::now();
    let dovecot = Dovecot::start().await.expect("dovecot starts");
    let elapsed = started.elapsed();
    eprintln!("Dovecot start took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "start took {elapsed:?}");
    assert_eq!(dovecot.host(), "127.0.0.1");
    let ports = [
        dovecot.imap_port(),
        dovecot.imaps_port(),
        dovecot.lmtp_port(),
    ];
    assert!(ports.iter().all(|&p| p != 0) && ports[0] != ports[1] && ports[1] != ports[2]);

    let stream = TcpStream::connect((dovecot.host(), dovecot.imap_port()))
        .await
        .unwrap();
    let mut client = Client::new(stream);
    let greeting = client.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let caps = client.imap("c1", "CAPABILITY").await;
    assert!(caps[0].contains("STARTTLS"), "{caps:?}");
    assert!(dovecot.log().contains("starting up"), "{}", dovecot.log());
}

#[tokio::test]
async fn imaps_serves_tls_with_the_self_signed_cert() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    init();
    let dovecot = Dovecot::start().await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(dovecot.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for name in ["localhost", "127.0.0.1"] {
        let tcp = TcpStream::connect((dovecot.host(), dovecot.imaps_port()))
            .await
            .unwrap();
        let tls = connector
            .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
            .await
            .unwrap_or_else(|e| panic!("TLS handshake as {name}: {e}\n{}", dovecot.log()));
        let mut client = Client::new(tls);
        let greeting = client.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
    }
}

#[tokio::test]
async fn append_then_read_back_over_imap() {
    init();
    let dovecot = Dovecot::start().await.unwrap();
    dovecot.add_user("ann@example.test", "s3cret pass").unwrap();
    dovecot
        .append("ann@example.test", "s3cret pass", "INBOX", MESSAGE)
        .await
        .unwrap();

    let mut client = imap_login(&dovecot, "ann@example.test", "s3cret pass").await;
    let select = client.imap("s1", "SELECT INBOX").await;
    assert_eq!(exists(&select), 1, "{select:?}");
    assert_eq!(fetch_body(&mut client, 1).await, MESSAGE);

    // A mailbox that does not exist yet is created on the way ([TRYCREATE]).
    dovecot
        .append("ann@example.test", "s3cret pass", "Projects", MESSAGE)
        .await
        .unwrap();
    let status = client.imap("s2", "STATUS Projects (MESSAGES)").await;
    assert!(status[0].contains("MESSAGES 1"), "{status:?}");
    // The special-use folders are there for clients that look for them.
    let list = client.imap("s3", "LIST \"\" \"*\"").await;
    assert!(
        list.iter()
            .any(|l| l.contains("\\Sent") && l.contains("Sent")),
        "{list:?}"
    );
}

#[tokio::test]
async fn users_and_password_changes_apply_immediately() {
    init();
    let dovecot = Dovecot::start().await.unwrap();
    let err = dovecot
        .append("bob", "pw1", "INBOX", MESSAGE)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("LOGIN failed"), "{err:#}");

    dovecot.add_user("bob", "pw1").unwrap();
    dovecot
        .append("bob", "pw1", "INBOX", MESSAGE)
        .await
        .unwrap();
    dovecot.add_user("bob", "pw2").unwrap();
    let err = dovecot
        .append("bob", "pw1", "INBOX", MESSAGE)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("LOGIN failed"), "{err:#}");
    dovecot
        .append("bob", "pw2", "INBOX", MESSAGE)
        .await
        .unwrap();

    // Users added right after another user's lookup work at once (no once-a-second delay).
    for i in 0..5 {
        let user = format!("user{i}");
        let started = Instant::now();
        dovecot.add_user(&user, "pw").unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        dovecot.append(&user, "pw", "INBOX", MESSAGE).await.unwrap();
    }
    dovecot.deliver_lmtp("user4", MESSAGE).await.unwrap();

    assert!(dovecot.add_user("bad:name", "x").is_err());
    assert!(dovecot.add_user("carol", "bad:pw").is_err());
}

#[tokio::test]
async fn lmtp_delivery_lands_in_the_maildir() {
    init();
    let dovecot = Dovecot::start().await.unwrap();
    dovecot.add_user("desk@example.test", "pw").unwrap();
    dovecot
        .deliver_lmtp("desk@example.test", MESSAGE)
        .await
        .unwrap();

    let new = dovecot.maildir("desk@example.test").join("new");
    let files: Vec<_> = std::fs::read_dir(&new)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", new.display(), dovecot.log()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    // Dovecot stores LF line ends and adds trace headers; the dot line is un-stuffed.
    assert!(stored.contains("Subject: Harness check\n"), "{stored}");
    assert!(
        stored.contains("\n.a line starting with a dot\n"),
        "{stored}"
    );
    assert!(
        stored.contains("Delivered-To: desk@example.test"),
        "{stored}"
    );

    let mut client = imap_login(&dovecot, "desk@example.test", "pw").await;
    assert_eq!(exists(&client.imap("s1", "SELECT INBOX").await), 1);

    let err = dovecot
        .deliver_lmtp("nobody@example.test", MESSAGE)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("RCPT TO"), "{err:#}");
}

#[tokio::test]
async fn two_instances_run_side_by_side() {
    init();
    let (a, b) = tokio::join!(Dovecot::start(), Dovecot::start());
    let (a, b) = (a.unwrap(), b.unwrap());
    let ports_a = [a.imap_port(), a.imaps_port(), a.lmtp_port()];
    let ports_b = [b.imap_port(), b.imaps_port(), b.lmtp_port()];
    assert!(
        ports_a.iter().all(|p| !ports_b.contains(p)),
        "{ports_a:?} {ports_b:?}"
    );

    a.add_user("ann", "pw").unwrap();
    b.add_user("ann", "other").unwrap();
    a.append("ann", "pw", "INBOX", MESSAGE).await.unwrap();
    b.append("ann", "other", "INBOX", MESSAGE).await.unwrap();
    b.append("ann", "other", "INBOX", MESSAGE).await.unwrap();
    // Separate user lists and separate mail.
    assert!(a.append("ann", "other", "INBOX", MESSAGE).await.is_err());
    let mut ca = imap_login(&a, "ann", "pw").await;
    let mut cb = imap_login(&b, "ann", "other").await;
    assert_eq!(exists(&ca.imap("s", "SELECT INBOX").await), 1);
    assert_eq!(exists(&cb.imap("s", "SELECT INBOX").await), 2);
}

#[tokio::test]
async fn restart_keeps_ports_users_and_mail() {
    init();
    let mut dovecot = Dovecot::start().await.unwrap();
    dovecot.add_user("ann", "pw").unwrap();
    dovecot.append("ann", "pw", "INBOX", MESSAGE).await.unwrap();
    let mut client = imap_login(&dovecot, "ann", "pw").await;
    let before = client.imap("s1", "SELECT INBOX").await;
    let validity = |lines: &[String]| {
        lines
            .iter()
            .find(|l| l.contains("UIDVALIDITY"))
            .cloned()
            .unwrap()
    };

    let ports = (
        dovecot.imap_port(),
        dovecot.imaps_port(),
        dovecot.lmtp_port(),
    );
    let started = Instant::now();
    dovecot.restart().await.unwrap();
    eprintln!("Dovecot restart took {:?}", started.elapsed());
    assert_eq!(
        ports,
        (
            dovecot.imap_port(),
            dovecot.imaps_port(),
            dovecot.lmtp_port()
        )
    );

    // The old connection is gone with the old server.
    let rest = client.rest().await;
    assert!(
        !String::from_utf8_lossy(&rest).contains("n1 OK"),
        "{rest:?}"
    );

    dovecot.deliver_lmtp("ann", MESSAGE).await.unwrap();
    let mut client = imap_login(&dovecot, "ann", "pw").await;
    let after = client.imap("s1", "SELECT INBOX").await;
    assert_eq!(exists(&after), 2, "{after:?}");
    assert_eq!(validity(&before), validity(&after));
    assert_eq!(fetch_body(&mut client, 1).await, MESSAGE);
}

#[tokio::test]
async fn drop_stops_every_dovecot_process() {
    init();
    let dovecot = Dovecot::start().await.unwrap();
    dovecot.add_user("ann", "pw").unwrap();
    // Leave an IMAP session open so there is a mail process too.
    let _client = imap_login(&dovecot, "ann", "pw").await;
    let dir = dovecot.dir().to_path_buf();
    let port = dovecot.imap_port();
    let ours = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &dir.display().to_string()])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(!ours().is_empty(), "pgrep finds the running master");
    drop(dovecot);
    assert_eq!(ours(), "", "dovecot processes left after drop");
    assert!(!dir.exists(), "temp dir removed");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "port closed"
    );
}

/// A test process that dies without running destructors (killed, `exit`, a leaked
/// instance) must not leave Dovecot behind: the watchdog stops it.
#[tokio::test]
async fn watchdog_stops_dovecot_when_the_test_process_exits() {
    init();
    if std::env::var_os("POSTDESK_TESTKIT_ORPHAN").is_some() {
        let dovecot = Dovecot::start().await.unwrap();
        println!("\nORPHAN-DIR {}", dovecot.dir().display());
        std::process::exit(0); // no Drop
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "dovecot::watchdog_stops_dovecot_when_the_test_process_exits",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("POSTDESK_TESTKIT_ORPHAN", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout
        .lines()
        .find_map(|l| l.split_once("ORPHAN-DIR ").map(|(_, dir)| dir.trim()))
        .unwrap_or_else(|| {
            panic!(
                "child printed no dir:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .to_string();
    let running = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &dir])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !running().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(running(), "", "dovecot outlived its test process");
    // Without Drop the temp dir stays; clean it up here.
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn open_sessions_and_logins_are_counted_on_the_dovecot_side() {
    init();
    let dovecot = Dovecot::start().await.unwrap();
    dovecot.add_user("ann@example.test", "pw-ann").unwrap();
    dovecot.add_user("bob@example.test", "pw-bob").unwrap();
    assert_eq!(dovecot.imap_sessions("ann@example.test").unwrap(), 0);
    assert_eq!(dovecot.imap_logins("ann@example.test"), 0);
    let first = imap_login(&dovecot, "ann@example.test", "pw-ann").await;
    let second = imap_login(&dovecot, "ann@example.test", "pw-ann").await;
    let _bob = imap_login(&dovecot, "bob@example.test", "pw-bob").await;
    let counted = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = dovecot.imap_sessions("ann@example.test").unwrap();
            if now == n || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(counted(2), 2, "{}", dovecot.log());
    assert_eq!(
        dovecot.imap_logins("ann@example.test"),
        2,
        "{}",
        dovecot.log()
    );
    assert_eq!(dovecot.imap_logins("bob@example.test"), 1);
    drop(first);
    assert_eq!(counted(1), 1, "a closed connection is no longer counted");
    drop(second);
    assert_eq!(counted(0), 0);
    assert_eq!(
        dovecot.imap_logins("ann@example.test"),
        2,
        "logins stay counted"
    );
}

/// Sends `LOGIN` on a new connection and answers the tagged reply, or `None` when none came
/// within `wait` (or the connection closed first).
async fn try_login(dovecot: &Dovecot, user: &str, wait: Duration) -> Option<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = TcpStream::connect((dovecot.host(), dovecot.imap_port()))
        .await
        .expect("connect to IMAP");
    let mut io = BufReader::new(stream);
    let attempt = async {
        let mut line = String::new();
        io.read_line(&mut line).await.ok()?;
        io.get_mut()
            .write_all(format!("l1 LOGIN \"{user}\" \"pw\"\r\n").as_bytes())
            .await
            .ok()?;
        loop {
            line.clear();
            if io.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            if line.starts_with("l1 ") {
                return Some(line.trim_end().to_owned());
            }
        }
    };
    tokio::time::timeout(wait, attempt).await.ok().flatten()
}

#[tokio::test]
async fn allow_imap_sessions_sets_how_many_may_be_open_at_once() {
    init();
    let mut dovecot = Dovecot::start().await.unwrap();
    let users: Vec<String> = (0..6).map(|i| format!("u{i}@example.test")).collect();
    for user in &users {
        dovecot.add_user(user, "pw").unwrap();
    }
    dovecot.allow_imap_sessions(5).await.unwrap();
    let mut open = Vec::new();
    for user in &users[..5] {
        let mut client = imap_login(&dovecot, user, "pw").await;
        let idle = client.imap("s1", "SELECT INBOX").await;
        assert!(idle.last().unwrap().starts_with("s1 OK"), "{idle:?}");
        client.send("i1 IDLE\r\n").await;
        assert!(client.line().await.starts_with('+'), "IDLE is entered");
        open.push(client);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while dovecot.all_imap_sessions().unwrap() != 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dovecot.all_imap_sessions().unwrap(), 5, "{}", dovecot.log());
    assert_eq!(dovecot.imap_sessions(&users[0]).unwrap(), 1);
    // A sixth session is not served while five are open...
    let sixth = try_login(&dovecot, &users[5], Duration::from_secs(3)).await;
    assert!(
        sixth
            .as_deref()
            .is_none_or(|reply| !reply.starts_with("l1 OK")),
        "a sixth session was served: {sixth:?}"
    );
    // ...and is once one of them ends.
    drop(open.pop());
    let later = try_login(&dovecot, &users[5], Duration::from_secs(10)).await;
    assert!(
        later
            .as_deref()
            .is_some_and(|reply| reply.starts_with("l1 OK")),
        "{later:?}\n{}",
        dovecot.log()
    );
}
