//! Proves the testkit harness itself against the real servers: Dovecot, the aiosmtpd
//! capture, PostgreSQL, the OIDC provider, and mailbox OAuth2 across them. One test binary (modules below) to keep link
//! times down.

mod dovecot;
mod oauth2;
mod oidc;
mod postgres;
mod smtp;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Conversation timeout for the hand-written clients below.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A minimal line client for hand-written IMAP/SMTP conversations in tests.
pub struct Client<S> {
    io: BufReader<S>,
}

impl<S: tokio::io::AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Self {
        Client {
            io: BufReader::new(stream),
        }
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io
            .get_mut()
            .write_all(bytes.as_ref())
            .await
            .expect("write");
        self.io.get_mut().flush().await.expect("flush");
    }

    pub async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(TIMEOUT, self.io.read_until(b'\n', &mut buf))
            .await
            .expect("server answered in time")
            .expect("read");
        assert!(n > 0, "server closed the connection");
        String::from_utf8_lossy(&buf).into_owned()
    }

    pub async fn exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(TIMEOUT, self.io.read_exact(&mut buf))
            .await
            .expect("server answered in time")
            .expect("read");
        buf
    }

    /// Everything until the server closes the connection (which must happen in time).
    pub async fn rest(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, self.io.read_to_end(&mut buf))
            .await
            .expect("server closed the connection in time");
        buf
    }

    /// Sends an IMAP command and returns every line up to and including the tagged one.
    pub async fn imap(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(format!("{tag} {command}\r\n")).await;
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Reads one (multi-line) SMTP reply.
    pub async fn smtp_reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let line = self.line().await;
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
}
