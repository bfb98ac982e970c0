use std::time::Duration;

use postdesk_testkit::{SmtpCapture, init};
use tokio::net::TcpStream;

use crate::Client;

async fn connect(capture: &SmtpCapture) -> Client<TcpStream> {
    let stream = TcpStream::connect((capture.host(), capture.port()))
        .await
        .unwrap();
    let mut client = Client::new(stream);
    let greeting = client.smtp_reply().await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    client.send("EHLO client.test\r\n").await;
    let ehlo = client.smtp_reply().await;
    assert!(ehlo.starts_with("250"), "{ehlo}");
    client
}

/// MAIL, RCPTs, DATA with `wire` (already dot-stuffed, with the final ".\r\n"); returns
/// the reply to the end of DATA.
async fn send_mail(client: &mut Client<TcpStream>, from: &str, to: &[&str], wire: &[u8]) -> String {
    client.send(format!("MAIL FROM:<{from}>\r\n")).await;
    assert!(client.smtp_reply().await.starts_with("250"));
    for rcpt in to {
        client.send(format!("RCPT TO:<{rcpt}>\r\n")).await;
        assert!(client.smtp_reply().await.starts_with("250"));
    }
    client.send("DATA\r\n").await;
    assert!(client.smtp_reply().await.starts_with("354"));
    client.send(wire).await;
    client.smtp_reply().await
}

#[tokio::test]
async fn captures_the_exact_bytes_and_envelope() {
    init();
    let capture = SmtpCapture::start().await.expect("smtp capture starts");
    assert_eq!(capture.host(), "127.0.0.1");
    assert!(capture.messages().is_empty());

    let message: &[u8] = b"From: desk@example.test\r\n\
To: Ann <ann@example.test>, bob@example.test\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Gr\xc3\xbc\xc3\x9fe, raw 8-bit body.\r\n\
.leading dot\r\n\
\ttab and trailing space \r\n";
    // The same message as it goes over the wire: dot-stuffed, then the end marker.
    let mut wire = message.replace_dot_lines();
    wire.extend_from_slice(b".\r\n");

    let mut client = connect(&capture).await;
    let reply = send_mail(
        &mut client,
        "desk@example.test",
        &["ann@example.test", "bob@example.test"],
        &wire,
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    let reply = send_mail(
        &mut client,
        "",
        &["carol@example.test"],
        b"Subject: 2\r\n\r\nsecond\r\n.\r\n",
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    client.send("QUIT\r\n").await;
    assert!(client.smtp_reply().await.starts_with("221"));

    let got = capture.wait_for(2, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].mail_from, "desk@example.test");
    assert_eq!(got[0].rcpt_to, ["ann@example.test", "bob@example.test"]);
    assert_eq!(
        got[0].data,
        message,
        "captured bytes differ:\n{}",
        String::from_utf8_lossy(&got[0].data)
    );
    assert_eq!(got[1].mail_from, "");
    assert_eq!(got[1].rcpt_to, ["carol@example.test"]);
    assert_eq!(got[1].data, b"Subject: 2\r\n\r\nsecond\r\n");
    assert_eq!(capture.messages().len(), 2);
}

trait DotStuff {
    fn replace_dot_lines(&self) -> Vec<u8>;
}

impl DotStuff for [u8] {
    fn replace_dot_lines(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in self.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(line);
        }
        out
    }
}

#[tokio::test]
async fn reject_with_answers_data_with_the_given_line() {
    init();
    let capture = SmtpCapture::start().await.unwrap();
    let mut client = connect(&capture).await;
    let wire = b"Subject: x\r\n\r\nbody\r\n.\r\n";

    capture.reject_with(Some("550 5.7.1 Rejected for test"));
    let reply = send_mail(&mut client, "a@example.test", &["b@example.test"], wire).await;
    assert_eq!(reply, "550 5.7.1 Rejected for test\r\n");

    capture.reject_with(Some("451 4.3.0 Try later"));
    let reply = send_mail(&mut client, "a@example.test", &["b@example.test"], wire).await;
    assert_eq!(reply, "451 4.3.0 Try later\r\n");
    assert!(
        capture.messages().is_empty(),
        "rejected mail must not be stored"
    );

    capture.reject_with(None);
    capture.reject_with(None); // clearing twice is fine
    let reply = send_mail(&mut client, "a@example.test", &["b@example.test"], wire).await;
    assert!(reply.starts_with("250"), "{reply}");
    let got = capture.wait_for(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"Subject: x\r\n\r\nbody\r\n");
}

#[tokio::test]
async fn auth_without_tls_is_accepted() {
    init();
    let capture = SmtpCapture::start().await.unwrap();
    let mut client = connect(&capture).await;
    // AUTH PLAIN \0user\0password
    client.send("AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=\r\n").await;
    let reply = client.smtp_reply().await;
    assert!(reply.starts_with("235"), "{reply}");
    let reply = send_mail(
        &mut client,
        "u@example.test",
        &["v@example.test"],
        b"x\r\n.\r\n",
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(
        capture.wait_for(1, Duration::from_secs(10)).await.unwrap()[0].data,
        b"x\r\n"
    );
}

#[tokio::test]
async fn wait_for_says_how_many_arrived() {
    init();
    let capture = SmtpCapture::start().await.unwrap();
    let err = capture
        .wait_for(1, Duration::from_millis(200))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected 1 message(s)") && err.contains("but 0 arrived"),
        "{err}"
    );
}

#[tokio::test]
async fn drop_stops_the_python_server() {
    init();
    let capture = SmtpCapture::start().await.unwrap();
    let port = capture.port();
    let dir = capture.dir().to_path_buf();
    drop(capture);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "port still open"
    );
    assert!(!dir.exists());
    let out = std::process::Command::new("pgrep")
        .args(["-f", &dir.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
