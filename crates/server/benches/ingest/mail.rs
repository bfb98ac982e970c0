//! Talking to the mail servers: loading a Dovecot mailbox fast, the bare IMAP fetch baseline,
//! and delivery over LMTP (to Dovecot) or SMTP (to postdesk's SMTP ingress).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use futures::TryStreamExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::TcpStream;

/// Emails per MULTIAPPEND command when loading a mailbox.
const MULTIAPPEND_BATCH: usize = 250;

async fn read_line(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let n = reader.read_until(b'\n', &mut buf).await?;
    ensure!(n > 0, "the server closed the connection");
    Ok(String::from_utf8_lossy(&buf).trim_end().to_owned())
}

async fn tagged(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    tag: &str,
) -> anyhow::Result<String> {
    let prefix = format!("{tag} ");
    loop {
        let line = read_line(reader).await?;
        if line.starts_with(&prefix) {
            ensure!(
                line.starts_with(&format!("{tag} OK")),
                "IMAP command {tag} failed: {line}"
            );
            return Ok(line);
        }
    }
}

/// Appends every email to `INBOX` of `user` over ONE IMAP connection. With LITERAL+ (RFC 7888)
/// the APPENDs are pipelined without waiting for continuations, and with MULTIAPPEND (RFC 3502)
/// each command carries [`MULTIAPPEND_BATCH`] emails (Dovecot has both); without LITERAL+ each
/// APPEND waits for the server's continuation.
pub async fn append_all(
    port: u16,
    user: &str,
    password: &str,
    emails: &[&[u8]],
) -> anyhow::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .context("connect to Dovecot IMAP")?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut writer = BufWriter::with_capacity(256 * 1024, write);
    ensure!(
        read_line(&mut reader).await?.starts_with("* OK"),
        "no IMAP greeting"
    );
    writer
        .write_all(format!("l1 LOGIN \"{user}\" \"{password}\"\r\n").as_bytes())
        .await?;
    writer.flush().await?;
    tagged(&mut reader, "l1").await?;
    writer.write_all(b"l2 CAPABILITY\r\n").await?;
    writer.flush().await?;
    let (mut literal_plus, mut multiappend) = (false, false);
    loop {
        let line = read_line(&mut reader).await?;
        if line.starts_with("* CAPABILITY") {
            literal_plus = line.split(' ').any(|c| c.eq_ignore_ascii_case("LITERAL+"));
            multiappend = line
                .split(' ')
                .any(|c| c.eq_ignore_ascii_case("MULTIAPPEND"));
        }
        if line.starts_with("l2 ") {
            break;
        }
    }
    if literal_plus {
        // With MULTIAPPEND, one command (one mailbox transaction) stores many emails.
        let per_command = if multiappend { MULTIAPPEND_BATCH } else { 1 };
        let commands = emails.len().div_ceil(per_command);
        let writing = async {
            for (i, chunk) in emails.chunks(per_command).enumerate() {
                writer
                    .write_all(format!("a{i} APPEND INBOX").as_bytes())
                    .await?;
                for raw in chunk {
                    writer
                        .write_all(format!(" {{{}+}}\r\n", raw.len()).as_bytes())
                        .await?;
                    writer.write_all(raw).await?;
                }
                writer.write_all(b"\r\n").await?;
                writer.flush().await?;
            }
            Ok::<_, anyhow::Error>(())
        };
        let reading = async {
            for i in 0..commands {
                tagged(&mut reader, &format!("a{i}")).await?;
            }
            Ok::<_, anyhow::Error>(())
        };
        tokio::try_join!(writing, reading)?;
    } else {
        for (i, raw) in emails.iter().enumerate() {
            let tag = format!("a{i}");
            writer
                .write_all(format!("{tag} APPEND INBOX {{{}}}\r\n", raw.len()).as_bytes())
                .await?;
            writer.flush().await?;
            let line = read_line(&mut reader).await?;
            if !line.starts_with('+') {
                bail!("APPEND refused: {line}");
            }
            writer.write_all(raw).await?;
            writer.write_all(b"\r\n").await?;
            writer.flush().await?;
            tagged(&mut reader, &tag).await?;
        }
    }
    writer.write_all(b"z LOGOUT\r\n").await?;
    writer.flush().await?;
    Ok(())
}

/// What the bare client fetched.
#[derive(Debug)]
pub struct Fetched {
    pub emails: usize,
    pub bytes: usize,
    pub elapsed: Duration,
}

/// The baseline: a plain async-imap client that logs in, selects INBOX, and fetches every UID
/// with `UID FETCH a:b (UID BODY.PEEK[])` in batches of `batch`, only counting the bytes.
pub async fn bare_fetch(
    port: u16,
    user: &str,
    password: &str,
    batch: usize,
) -> anyhow::Result<Fetched> {
    let started = Instant::now();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?.context("no IMAP greeting")?;
    let mut session = client.login(user, password).await.map_err(|(e, _)| e)?;
    session.select("INBOX").await?;
    let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
    uids.sort_unstable();
    let (mut emails, mut bytes) = (0, 0);
    for chunk in uids.chunks(batch) {
        let set = match (chunk.first(), chunk.last()) {
            (Some(first), Some(last))
                if usize::try_from(last - first).ok() == Some(chunk.len() - 1) =>
            {
                format!("{first}:{last}")
            }
            _ => chunk
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
        while let Some(fetch) = stream.try_next().await? {
            if let Some(body) = fetch.body() {
                emails += 1;
                bytes += body.len();
            }
        }
    }
    let elapsed = started.elapsed();
    session.logout().await?;
    Ok(Fetched {
        emails,
        bytes,
        elapsed,
    })
}

/// The two line protocols a [`Delivery`] connection speaks. They differ only in the greeting
/// command (`LHLO` or `EHLO`) and in LMTP's one reply per recipient after the data, which with
/// the one recipient here is one reply as in SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// LMTP (RFC 2033), to Dovecot.
    Lmtp,
    /// Plain SMTP (RFC 5321) without TLS or AUTH, to postdesk's SMTP ingress.
    Smtp,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Lmtp => "LMTP",
            Protocol::Smtp => "SMTP",
        }
    }

    fn hello(self) -> &'static str {
        match self {
            Protocol::Lmtp => "LHLO",
            Protocol::Smtp => "EHLO",
        }
    }
}

/// One LMTP or SMTP connection kept open for many deliveries, one at a time.
pub struct Delivery {
    protocol: Protocol,
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Delivery {
    /// Connects to `127.0.0.1:port` and greets with `LHLO` or `EHLO`.
    pub async fn connect(protocol: Protocol, port: u16) -> anyhow::Result<Delivery> {
        let name = protocol.name();
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connect to {name} on 127.0.0.1:{port}"))?;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        let mut delivery = Delivery {
            protocol,
            reader: BufReader::new(read),
            writer,
        };
        delivery.expect("greeting", "220").await?;
        let hello = protocol.hello();
        delivery
            .writer
            .write_all(format!("{hello} bench.localhost\r\n").as_bytes())
            .await?;
        delivery.expect(hello, "250").await?;
        Ok(delivery)
    }

    /// Reads one reply (all its lines) and requires `code`.
    async fn expect(&mut self, step: &str, code: &str) -> anyhow::Result<()> {
        loop {
            let line = read_line(&mut self.reader).await?;
            ensure!(
                line.starts_with(code),
                "{} {step}: expected {code}, got {line:?}",
                self.protocol.name()
            );
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }

    /// Delivers `raw` (CRLF line ends) to `rcpt`, dot-stuffed: `MAIL FROM`, `RCPT TO`, `DATA`,
    /// the data and `.`. Returns at the `250` after the final dot, i.e. when the server has
    /// stored the email (Dovecot in the mailbox, postdesk committed to its database).
    pub async fn deliver(&mut self, rcpt: &str, raw: &[u8]) -> anyhow::Result<()> {
        self.writer
            .write_all(b"MAIL FROM:<bench@localhost>\r\n")
            .await?;
        self.expect("MAIL FROM", "250").await?;
        self.writer
            .write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .await?;
        self.expect("RCPT TO", "250").await?;
        self.writer.write_all(b"DATA\r\n").await?;
        self.expect("DATA", "354").await?;
        let mut data = Vec::with_capacity(raw.len() + 8);
        for line in raw.split_inclusive(|b| *b == b'\n') {
            if line.first() == Some(&b'.') {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        if !data.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        self.writer.write_all(&data).await?;
        // SMTP answers once; LMTP once per recipient, and there is one.
        self.expect("end of DATA", "250").await
    }

    pub async fn quit(mut self) {
        let _ = self.writer.write_all(b"QUIT\r\n").await;
    }
}

/// A bare async-imap reader doing exactly the IMAP steps postdesk's reader takes per wake-up:
/// IDLE until the server reports new data, DONE, `UID SEARCH UID n:*`, `UID FETCH (UID
/// RFC822.SIZE)` and `UID FETCH (UID BODY.PEEK[])`, then IDLE again. Reports, per wake-up,
/// when IDLE woke and when the new emails' bytes were in hand.
pub struct BareReader {
    rx: tokio::sync::mpsc::UnboundedReceiver<(Instant, Instant)>,
    task: tokio::task::JoinHandle<()>,
}

impl BareReader {
    pub async fn start(port: u16, user: &str, password: &str) -> anyhow::Result<BareReader> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await?.context("no IMAP greeting")?;
        let mut session = client.login(user, password).await.map_err(|(e, _)| e)?;
        session.select("INBOX").await?;
        let mut next = session
            .uid_search("ALL")
            .await?
            .into_iter()
            .max()
            .unwrap_or(0)
            + 1;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let work = async {
                loop {
                    let mut idle = session.idle();
                    idle.init().await?;
                    let (wait, interrupt) = idle.wait_with_timeout(Duration::from_secs(600));
                    let woke = wait.await?;
                    let woke_at = Instant::now();
                    drop(interrupt);
                    session = idle.done().await?;
                    if !matches!(woke, async_imap::extensions::idle::IdleResponse::NewData(_)) {
                        continue;
                    }
                    let mut uids: Vec<u32> = session
                        .uid_search(format!("UID {next}:*"))
                        .await?
                        .into_iter()
                        .filter(|u| *u >= next)
                        .collect();
                    uids.sort_unstable();
                    let Some(&last) = uids.last() else { continue };
                    let set = uids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",");
                    let sizes: Vec<_> = session
                        .uid_fetch(&set, "(UID RFC822.SIZE)")
                        .await?
                        .try_collect()
                        .await?;
                    let bodies: Vec<_> = session
                        .uid_fetch(&set, "(UID BODY.PEEK[])")
                        .await?
                        .try_collect()
                        .await?;
                    let fetched_at = Instant::now();
                    ensure!(
                        sizes.len() == uids.len() && bodies.iter().all(|f| f.body().is_some()),
                        "the bare reader missed an email"
                    );
                    next = last + 1;
                    if tx.send((woke_at, fetched_at)).is_err() {
                        return Ok(());
                    }
                }
            };
            let outcome: anyhow::Result<()> = work.await;
            if let Err(e) = outcome {
                eprintln!("  the bare IMAP reader stopped: {e:#}");
            }
        });
        Ok(BareReader { rx, task })
    }

    /// The next wake-up: (IDLE woke, bytes in hand), or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<(Instant, Instant)> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for BareReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When one LMTP delivery happened and what postdesk did about it.
pub struct Timed {
    /// Just before the LMTP transaction.
    pub start: Instant,
    /// Dovecot's `250` (the email stored).
    pub stored: Instant,
    /// postdesk's `inbox_status: syncing` (its reader woke), if seen before the event.
    pub woke: Option<Instant>,
    /// The `message_created` event read, or `None` after 20 s.
    pub created: Option<Instant>,
}

/// Delivers `raw` to `rcpt` over `lmtp` and waits for its `message_created` (in a
/// conversation of `inbox`, when given). Events are stamped when read, so those that came
/// during the LMTP transaction (a push is sent while Dovecot saves the email) keep their times.
pub async fn deliver_timed(
    lmtp: &mut Delivery,
    events: &mut crate::server::Events,
    rcpt: &str,
    raw: &[u8],
    inbox: Option<i64>,
) -> anyhow::Result<Timed> {
    let start = Instant::now();
    lmtp.deliver(rcpt, raw).await?;
    let stored = Instant::now();
    let (woke, created) = events
        .wait_created(inbox, stored + Duration::from_secs(20))
        .await;
    Ok(Timed {
        start,
        stored,
        woke,
        created,
    })
}
