//! Direct SMTP ingress: a small SMTP server that accepts mail for the inboxes' own addresses
//! and hands it to the same pipeline as the IMAP readers, so a mail server can forward to
//! postdesk and mail arrives with no polling at all.
//!
//! It is a final destination, not a relay: it accepts a recipient only when it is the address of
//! an active inbox (compared case-insensitively) and answers `550 5.1.1` for anything else.
//! There is no AUTH and no STARTTLS: it is meant to listen on loopback or a private network
//! behind the organisation's mail server (see `docs/smtp-ingress.md`).
//!
//! # Protocol (a subset of RFC 5321, with the choices made)
//! - Greeting `220` (§4.3.1) naming the address the client connected to as an address literal
//!   (§4.1.3), since postdesk has no configured host name.
//! - `EHLO`/`HELO` (§4.1.1.1) required before `MAIL` (§4.1.4), argument required, never checked
//!   against the peer (§4.1.4: a mismatch MUST NOT cause a refusal). `EHLO` advertises
//!   `PIPELINING` (RFC 2920), `SIZE` (RFC 1870), `8BITMIME` (RFC 6152), `ENHANCEDSTATUSCODES`
//!   (RFC 2034; every reply carries an RFC 3463 code) and `SMTPUTF8` (RFC 6531): the bytes are
//!   stored as they come, so 8-bit and UTF-8 need nothing more than accepting the parameters.
//! - `MAIL FROM:<path> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]` (§4.1.1.2); `<>` (bounces) is
//!   accepted; a declared size over the limit is refused with `552 5.3.4` (RFC 1870 §6.2);
//!   unknown parameters get `555 5.5.4` (§4.1.1.11). A source route (`<@a,@b:user@d>`) is
//!   accepted and ignored (§4.1.2, appendix C).
//! - `RCPT TO:<path>` (§4.1.1.3): `250 2.1.5` for an inbox address, `550 5.1.1` for others,
//!   `452 4.5.3` past [`SmtpLimits::max_recipients`] (100, the minimum §4.5.3.1.8 asks servers to
//!   accept; §4.5.3.1.10 names 452 for "too many recipients"), `451 4.3.0` when the inboxes
//!   cannot be read (the client tries again later).
//! - `DATA` (§4.1.1.4): `354`, then lines up to `<CRLF>.<CRLF>`. Only a `.` line that follows a
//!   CRLF and ends with CRLF ends the data (§2.3.8, §4.1.1.4): a bare LF never does, which keeps
//!   "SMTP smuggling" (a relay and postdesk disagreeing on where a message ends) out. A leading
//!   dot is removed from every other line that starts with one (§4.5.2, transparency). Line
//!   length is not limited inside data (§4.5.3.1.6 binds senders; refusing a long line would
//!   lose mail) but the message size is: past [`SmtpLimits::max_message_bytes`] the rest is read and
//!   dropped and the answer is `552 5.3.4` (§4.5.3.1.10, RFC 1870 §6.3). With nothing accepted
//!   `DATA` gets `554 5.5.1` (§3.3, RFC 2920 §3.1), out of order `503 5.5.1`.
//! - After the data the message is stored once per accepted inbox, with `Return-Path` and
//!   `Received` trace fields prepended (§4.4: a receiving server MUST add a `Received` field,
//!   and the final delivery a `Return-Path`). `250` is answered only once every copy is
//!   committed, so an acknowledged email survives a crash; when storing fails the answer is
//!   `451 4.3.0` and the sending server tries again (§4.2.5: it keeps the message). A retry
//!   after a partial failure can store a copy twice; processing drops the second one by
//!   Message-ID.
//! - `RSET` `250` (§4.1.1.5), `NOOP` `250` (§4.1.1.9), `QUIT` `221` (§4.1.1.10), `VRFY` `252`
//!   (§3.5.3: neither confirm nor deny), `HELP` `214` (§4.1.1.8); `EXPN`, `STARTTLS`, `AUTH`,
//!   `BDAT` and other known but unsupported commands `502 5.5.1`, anything else `500 5.5.2`
//!   (§4.2.4).
//! - Command lines up to [`COMMAND_LINE_MAX`] octets, more than §4.5.3.1.4's 512 to leave room
//!   for extension parameters; a longer one gets `500 5.5.2` (§4.2.2: "command line too long").
//!   Paths up to 256 octets (§4.5.3.1.3).
//! - Waiting for a command or a line of data times out after 5 minutes (§4.5.3.2.7), answered
//!   `421 4.4.2`; a client that does not read our replies is cut off after the same time.
//! - At most [`SmtpLimits::max_connections`] sessions at once; one more gets `421 4.3.2` and is
//!   closed (§3.8). After [`SmtpLimits::max_errors`] refused commands the session is closed with
//!   `421 4.7.0` (a guard against garbage and probing, as Postfix's `smtpd_hard_error_limit`).
//! - Messages are held in memory until stored; all sessions together hold at most
//!   [`SmtpLimits::memory_budget_bytes`], past which a message is read to its end and refused with
//!   `452 4.3.1` (§4.2.2 "insufficient system storage"; a temporary failure the client retries).
//! - On shutdown the listener closes; open sessions finish what they are doing and answer their
//!   next command with `421 4.3.2` (§3.8).
//!
//! Processing (parse, thread, queue) runs in one background task after `250`, not before: a
//! large email or a backlog must not keep the client waiting for its reply (it may time out
//! and send again), and one task means concurrent sessions never process the same pending
//! email twice. An email left pending by a crash is processed at the next start.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postdesk_core::ids::InboxId;
use postdesk_store::Store;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::bus::Bus;

/// Longest command line accepted, CRLF included.
pub const COMMAND_LINE_MAX: usize = 2048;

/// Longest reverse- or forward-path, brackets included (RFC 5321 §4.5.3.1.3).
const PATH_MAX: usize = 256;

/// How long open sessions get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Wait before processing again after the database failed.
const RETRY_PROCESSING: Duration = Duration::from_secs(5);

/// Memory is accounted in steps of this many bytes.
const MEMORY_STEP: usize = 1 << 20;

/// The limits of the SMTP ingress.
#[derive(Debug, Clone)]
pub struct SmtpLimits {
    /// Largest message accepted, in bytes (advertised as `SIZE`).
    pub max_message_bytes: usize,
    /// Most accepted recipients in one transaction.
    pub max_recipients: usize,
    /// Most sessions at once.
    pub max_connections: usize,
    /// Most message bytes held in memory by all sessions together while they are received
    /// (storing a message briefly needs one more copy of it).
    pub memory_budget_bytes: usize,
    /// How long a command, a line of data or the sending of a reply may take.
    pub timeout: Duration,
    /// Refused commands after which a session is closed.
    pub max_errors: usize,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 20,
            max_recipients: 100,
            max_connections: 100,
            memory_budget_bytes: 512 << 20,
            timeout: Duration::from_secs(5 * 60),
            max_errors: 20,
        }
    }
}

/// The SMTP ingress: accepts sessions and stores what they deliver. Cheap to clone.
#[derive(Clone)]
pub struct SmtpIngress {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    bus: Bus,
    limits: SmtpLimits,
    connections: Arc<Semaphore>,
    /// Permits of [`MEMORY_STEP`] bytes.
    memory: Arc<Semaphore>,
    /// Inboxes with newly stored emails, for the processing task.
    stored: Mutex<BTreeSet<InboxId>>,
    wake: Notify,
    /// The limits of processing one email, and the check of its sender.
    processing: crate::ingest::Processing,
}

/// Serves SMTP on `listener` until `stop` turns true, in a task of its own.
pub fn spawn(
    listener: TcpListener,
    store: Store,
    bus: Bus,
    processing: crate::ingest::Processing,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let ingress = SmtpIngress::new(store, bus, processing, SmtpLimits::default());
    tokio::spawn(ingress.serve(listener, stop))
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: nobody can ask to stop any more, so stop now.
    let _ = stop.wait_for(|s| *s).await;
}

impl SmtpIngress {
    /// An ingress storing into `store`, processing within `processing` and announcing on
    /// `bus`.
    #[must_use]
    pub fn new(
        store: Store,
        bus: Bus,
        processing: crate::ingest::Processing,
        limits: SmtpLimits,
    ) -> Self {
        let memory_steps = (limits.memory_budget_bytes / MEMORY_STEP).max(1);
        Self {
            inner: Arc::new(Inner {
                store,
                bus,
                connections: Arc::new(Semaphore::new(limits.max_connections)),
                memory: Arc::new(Semaphore::new(memory_steps)),
                limits,
                stored: Mutex::new(BTreeSet::new()),
                wake: Notify::new(),
                processing,
            }),
        }
    }

    /// Accepts sessions on `listener` until `stop` turns true, then lets open sessions finish
    /// (for up to 10 s) and stops processing.
    pub async fn serve(self, listener: TcpListener, mut stop: watch::Receiver<bool>) {
        let processing = tokio::spawn(self.clone().process_stored(stop.clone()));
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                () = stopped(&mut stop) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let permit = self.inner.connections.clone().try_acquire_owned().ok();
                        let session = self.clone().session(stream, peer, permit, stop.clone());
                        sessions.spawn(session);
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!("SMTP ingress: accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        drop(listener);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            sessions.abort_all();
        }
        let mut processing = processing;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut processing)
            .await
            .is_err()
        {
            processing.abort();
        }
    }

    /// One connection, from greeting to close.
    async fn session(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        permit: Option<OwnedSemaphorePermit>,
        stop: watch::Receiver<bool>,
    ) {
        let local = stream.local_addr().ok();
        let (read, write) = stream.into_split();
        let mut session = Session {
            ingress: &self,
            reader: BufReader::new(read),
            writer: BufWriter::new(write),
            stop,
            peer,
            local: local.map_or_else(|| "[unknown]".to_owned(), |a| address_literal(a.ip())),
            helo: None,
            esmtp: false,
            transaction: None,
            errors: 0,
        };
        let result = if permit.is_some() {
            session.run().await
        } else {
            tracing::warn!(%peer, "SMTP ingress: too many connections, refusing one");
            // Briefly: a flood of connections must not pile up waiting tasks.
            let refuse = session.reply_now(421, "4.3.2 Too many connections, try again later");
            tokio::time::timeout(Duration::from_secs(10), refuse)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "SMTP session ended: {e}");
        }
        drop(permit);
    }

    /// The inbox an address belongs to: an active inbox with that email, compared
    /// case-insensitively.
    async fn inbox_for(&self, address: &str) -> postdesk_store::Result<Option<InboxId>> {
        let wanted = address.to_lowercase();
        let inboxes = self.inner.store.list_inboxes().await?;
        Ok(inboxes
            .into_iter()
            .find(|i| i.settings.active && i.settings.email.to_lowercase() == wanted)
            .map(|i| i.id))
    }

    /// Marks `inbox` as having new emails, for the processing task.
    fn stored(&self, inbox: InboxId) {
        self.lock_stored().insert(inbox);
        self.inner.wake.notify_one();
    }

    fn lock_stored(&self) -> std::sync::MutexGuard<'_, BTreeSet<InboxId>> {
        // The set stays valid whatever panicked while holding it.
        self.inner
            .stored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Processes the inboxes that received emails, one at a time, until `stop`.
    async fn process_stored(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = stopped(&mut stop) => return,
                () = self.inner.wake.notified() => {}
            }
            let inboxes = std::mem::take(&mut *self.lock_stored());
            let mut failed = false;
            for inbox in inboxes {
                match crate::ingest::process_pending(
                    &self.inner.store,
                    &self.inner.bus,
                    Some(inbox),
                    self.inner.processing.limits,
                    &self.inner.processing.sender_auth,
                    &self.inner.processing.metrics,
                )
                .await
                {
                    Ok(report) => {
                        tracing::debug!(%inbox, ?report, "Processed emails received over SMTP")
                    }
                    Err(e) => {
                        tracing::warn!(%inbox, "Processing emails received over SMTP failed, retrying: {e}");
                        self.lock_stored().insert(inbox);
                        failed = true;
                    }
                }
            }
            if failed {
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(RETRY_PROCESSING) => self.inner.wake.notify_one(),
                }
            }
        }
    }
}

/// `[1.2.3.4]` or `[IPv6:…]` (RFC 5321 §4.1.3).
fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{v6}]"),
        },
    }
}

/// A mail transaction in progress (RFC 5321 §3.3).
struct Transaction {
    /// The reverse-path, without brackets (empty for `<>`).
    from: String,
    /// `SMTPUTF8` was given.
    utf8: bool,
    /// Accepted recipients: (address as given, inbox).
    recipients: Vec<(String, InboxId)>,
}

/// What reading a message's data ended with.
enum Data {
    /// The message, and the memory it is accounted with (released when it is dropped).
    Complete(Vec<u8>, Option<OwnedSemaphorePermit>),
    TooBig,
    NoMemory,
}

/// One line as read: its full length, and how it ended.
struct Line {
    len: usize,
    lf: bool,
    crlf: bool,
}

/// Reads through the next LF (or to EOF), appending at most `keep` bytes of the line to `out`;
/// the rest of the line is read and dropped. `len` is 0 at EOF.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    keep: usize,
) -> io::Result<Line> {
    let mut line = Line {
        len: 0,
        lf: false,
        crlf: false,
    };
    let mut kept = 0;
    let mut last = 0u8;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(line);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let take = chunk.len().min(keep - kept);
        out.extend_from_slice(&chunk[..take]);
        kept += take;
        if done {
            let before = if chunk.len() >= 2 {
                chunk[chunk.len() - 2]
            } else {
                last
            };
            line.lf = true;
            line.crlf = before == b'\r';
        }
        last = chunk[chunk.len() - 1];
        line.len += chunk.len();
        let n = chunk.len();
        reader.consume(n);
        if done {
            return Ok(line);
        }
    }
}

/// A path of `MAIL FROM:` or `RCPT TO:` and what follows it.
fn parse_path(rest: &str) -> Result<(String, &str), &'static str> {
    let rest = rest.trim_start();
    let (path, after) = if let Some(inner) = rest.strip_prefix('<') {
        // The closing bracket, skipping quoted strings ("a>b"@x is a valid local part).
        let mut quoted = false;
        let mut escaped = false;
        let mut end = None;
        for (i, c) in inner.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '>' if !quoted => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("the path has no closing >")?;
        (&inner[..end], &inner[end + 1..])
    } else {
        // Not RFC 5321, but sent by some old clients: a bare address.
        let end = rest.find(' ').unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    if !after.is_empty() && !after.starts_with(' ') {
        return Err("unexpected text after the path");
    }
    if path.len() + 2 > PATH_MAX {
        return Err("the path is too long");
    }
    if path.chars().any(char::is_control) {
        return Err("the path contains control characters");
    }
    // A source route "@a,@b:user@d" is accepted and ignored (RFC 5321 §4.1.2, appendix C).
    let address = match path.strip_prefix('@') {
        Some(route) => route
            .split_once(':')
            .map(|(_, a)| a)
            .ok_or("a malformed source route")?,
        None => path,
    };
    Ok((address.to_owned(), after.trim()))
}

/// `KEY=VALUE` parameters of `MAIL` and `RCPT` (RFC 5321 §4.1.2 esmtp-param).
fn parameters(text: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    text.split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        })
}

/// Printable ASCII only, for the `Received` field.
fn printable(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if clean.is_empty() {
        "unknown".to_owned()
    } else {
        clean
    }
}

/// The verb and the rest of a command line.
fn split_command(line: &str) -> (String, &str) {
    match line.split_once(' ') {
        Some((verb, rest)) => (verb.to_ascii_uppercase(), rest),
        None => (line.to_ascii_uppercase(), ""),
    }
}

/// Strips `prefix` (ASCII, any case) from `text`.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

struct Session<'a> {
    ingress: &'a SmtpIngress,
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    stop: watch::Receiver<bool>,
    peer: SocketAddr,
    /// Our address, as an address literal.
    local: String,
    /// The EHLO/HELO argument.
    helo: Option<String>,
    esmtp: bool,
    transaction: Option<Transaction>,
    errors: usize,
}

/// Whether the session goes on after a command.
enum Next {
    Continue,
    Close,
}

impl Session<'_> {
    fn limits(&self) -> &SmtpLimits {
        &self.ingress.inner.limits
    }

    /// Queues a reply; it is sent when the client has nothing more in flight (RFC 2920 §3.2:
    /// replies to a pipelined group go out together) or by [`Self::flush`].
    async fn reply(&mut self, code: u16, text: &str) -> io::Result<()> {
        self.write(format!("{code} {text}\r\n").as_bytes()).await
    }

    /// Writes (buffered), giving up on a client that does not read its replies.
    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let timeout = self.limits().timeout;
        tokio::time::timeout(timeout, self.writer.write_all(bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
    }

    async fn flush(&mut self) -> io::Result<()> {
        let timeout = self.limits().timeout;
        tokio::time::timeout(timeout, self.writer.flush())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))?
    }

    async fn reply_now(&mut self, code: u16, text: &str) -> io::Result<()> {
        self.reply(code, text).await?;
        self.flush().await
    }

    /// A refused command: counts towards the error limit.
    async fn refuse(&mut self, code: u16, text: &str) -> io::Result<Next> {
        self.errors += 1;
        if self.errors >= self.limits().max_errors {
            self.reply(code, text).await?;
            self.reply_now(421, "4.7.0 Too many errors, closing the connection")
                .await?;
            return Ok(Next::Close);
        }
        self.reply(code, text).await?;
        Ok(Next::Continue)
    }

    async fn run(&mut self) -> io::Result<()> {
        let greeting = format!("{} ESMTP postdesk ready", self.local);
        self.reply_now(220, &greeting).await?;
        let timeout = self.limits().timeout;
        let mut line = Vec::new();
        loop {
            if self.reader.buffer().is_empty() {
                self.flush().await?;
            }
            if *self.stop.borrow() {
                return self.reply_now(421, "4.3.2 Service shutting down").await;
            }
            line.clear();
            let read = tokio::select! {
                read = tokio::time::timeout(timeout, read_line(&mut self.reader, &mut line, COMMAND_LINE_MAX)) => read,
                () = stopped(&mut self.stop) => {
                    return self.reply_now(421, "4.3.2 Service shutting down").await;
                }
            };
            let Ok(read) = read else {
                return self
                    .reply_now(421, "4.4.2 Timeout waiting for a command, closing")
                    .await;
            };
            let read = read?;
            if read.len == 0 {
                return Ok(());
            }
            let next = if read.len > COMMAND_LINE_MAX || !read.lf {
                self.refuse(500, "5.5.2 Line too long").await?
            } else {
                // The command without its line ending (a bare LF is tolerated here; in data
                // it is not, see the module documentation).
                let text = line
                    .strip_suffix(b"\n")
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                    .unwrap_or(&line);
                match std::str::from_utf8(text) {
                    Ok(text) => {
                        let text = text.to_owned();
                        self.command(&text).await?
                    }
                    Err(_) => {
                        self.refuse(500, "5.5.2 The command is not valid UTF-8")
                            .await?
                    }
                }
            };
            if let Next::Close = next {
                return self.flush().await;
            }
        }
    }

    async fn command(&mut self, line: &str) -> io::Result<Next> {
        let (verb, rest) = split_command(line);
        match verb.as_str() {
            "EHLO" | "HELO" => self.hello(&verb, rest.trim()).await,
            "MAIL" => self.mail(rest).await,
            "RCPT" => self.rcpt(rest).await,
            "DATA" => self.data(rest).await,
            "RSET" => {
                if !rest.trim().is_empty() {
                    return self.refuse(501, "5.5.4 RSET takes no parameters").await;
                }
                self.transaction = None;
                self.reply(250, "2.0.0 OK").await?;
                Ok(Next::Continue)
            }
            "NOOP" => {
                self.reply(250, "2.0.0 OK").await?;
                Ok(Next::Continue)
            }
            "QUIT" => {
                self.reply_now(221, "2.0.0 Bye").await?;
                Ok(Next::Close)
            }
            "VRFY" => {
                self.reply(
                    252,
                    "2.5.0 Cannot VRFY, but mail for an inbox address will be accepted",
                )
                .await?;
                Ok(Next::Continue)
            }
            "HELP" => {
                self.reply(
                    214,
                    "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
                )
                .await?;
                Ok(Next::Continue)
            }
            "EXPN" | "STARTTLS" | "AUTH" | "BDAT" | "ETRN" | "TURN" | "ATRN" | "SEND" | "SOML"
            | "SAML" => self.refuse(502, "5.5.1 Command not implemented").await,
            _ => self.refuse(500, "5.5.2 Command unrecognized").await,
        }
    }

    async fn hello(&mut self, verb: &str, domain: &str) -> io::Result<Next> {
        if domain.is_empty() {
            return self
                .refuse(501, &format!("5.5.4 Syntax: {verb} hostname"))
                .await;
        }
        // EHLO/HELO starts over (RFC 5321 §4.1.4).
        self.transaction = None;
        self.helo = Some(domain.to_owned());
        self.esmtp = verb == "EHLO";
        let greeting = format!("{} Hello {}", self.local, printable(domain, 255));
        if !self.esmtp {
            self.reply(250, &greeting).await?;
            return Ok(Next::Continue);
        }
        let mut text = String::new();
        for line in [
            greeting.as_str(),
            "PIPELINING",
            &format!("SIZE {}", self.limits().max_message_bytes),
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
        ] {
            let _ = write!(text, "250-{line}\r\n");
        }
        text.push_str("250 SMTPUTF8\r\n");
        self.write(text.as_bytes()).await?;
        Ok(Next::Continue)
    }

    async fn mail(&mut self, rest: &str) -> io::Result<Next> {
        if self.helo.is_none() {
            return self.refuse(503, "5.5.1 Send EHLO or HELO first").await;
        }
        if self.transaction.is_some() {
            return self.refuse(503, "5.5.1 Nested MAIL command").await;
        }
        let Some(path) = strip_prefix_ignore_case(rest, "FROM:") else {
            return self.refuse(501, "5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        let (from, params) = match parse_path(path) {
            Ok(parsed) => parsed,
            Err(why) => {
                return self
                    .refuse(501, &format!("5.1.7 Bad sender address: {why}"))
                    .await;
            }
        };
        let mut utf8 = false;
        for (key, value) in parameters(params) {
            match (key.as_str(), value) {
                ("SIZE", Some(size)) if self.esmtp => match size.parse::<u64>() {
                    Ok(size)
                        if size
                            > u64::try_from(self.limits().max_message_bytes)
                                .unwrap_or(u64::MAX) =>
                    {
                        return self
                            .refuse(552, "5.3.4 Message size exceeds fixed maximum message size")
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.refuse(501, "5.5.4 Bad SIZE parameter").await,
                },
                ("BODY", Some(body))
                    if self.esmtp
                        && (body.eq_ignore_ascii_case("7BIT")
                            || body.eq_ignore_ascii_case("8BITMIME")) => {}
                ("SMTPUTF8", None) if self.esmtp => utf8 = true,
                _ => {
                    return self
                        .refuse(
                            555,
                            "5.5.4 MAIL parameter not recognized or not implemented",
                        )
                        .await;
                }
            }
        }
        if !utf8 && !from.is_ascii() {
            return self
                .refuse(553, "5.6.7 A non-ASCII address needs SMTPUTF8")
                .await;
        }
        self.transaction = Some(Transaction {
            from,
            utf8,
            recipients: Vec::new(),
        });
        self.reply(250, "2.1.0 OK").await?;
        Ok(Next::Continue)
    }

    async fn rcpt(&mut self, rest: &str) -> io::Result<Next> {
        let Some(transaction) = &self.transaction else {
            return self.refuse(503, "5.5.1 Need MAIL before RCPT").await;
        };
        let utf8 = transaction.utf8;
        let count = transaction.recipients.len();
        let Some(path) = strip_prefix_ignore_case(rest, "TO:") else {
            return self.refuse(501, "5.5.4 Syntax: RCPT TO:<address>").await;
        };
        let (address, params) = match parse_path(path) {
            Ok(parsed) => parsed,
            Err(why) => {
                return self
                    .refuse(501, &format!("5.1.3 Bad recipient address: {why}"))
                    .await;
            }
        };
        if !params.is_empty() {
            return self
                .refuse(
                    555,
                    "5.5.4 RCPT parameters not recognized or not implemented",
                )
                .await;
        }
        if address.is_empty() {
            return self.refuse(501, "5.1.3 Bad recipient address: empty").await;
        }
        if !utf8 && !address.is_ascii() {
            return self
                .refuse(553, "5.6.7 A non-ASCII address needs SMTPUTF8")
                .await;
        }
        if count >= self.limits().max_recipients {
            self.reply(452, "4.5.3 Too many recipients").await?;
            return Ok(Next::Continue);
        }
        match self.ingress.inbox_for(&address).await {
            Ok(Some(inbox)) => {
                if let Some(transaction) = &mut self.transaction {
                    transaction.recipients.push((address.clone(), inbox));
                }
                self.reply(250, &format!("2.1.5 <{address}> OK")).await?;
            }
            Ok(None) => {
                tracing::info!(peer = %self.peer, %address, "SMTP ingress: refused a recipient that is no inbox");
                self.reply(550, &format!("5.1.1 <{address}>: no such inbox here"))
                    .await?;
            }
            Err(e) => {
                tracing::warn!("SMTP ingress: cannot read the inboxes: {e}");
                self.reply(451, "4.3.0 Temporary failure, try again later")
                    .await?;
            }
        }
        Ok(Next::Continue)
    }

    async fn data(&mut self, rest: &str) -> io::Result<Next> {
        if !rest.trim().is_empty() {
            return self.refuse(501, "5.5.4 DATA takes no parameters").await;
        }
        let Some(transaction) = self.transaction.take() else {
            return self.refuse(503, "5.5.1 Need MAIL before DATA").await;
        };
        if transaction.recipients.is_empty() {
            // Nothing accepted (also the answer a pipelining client relies on, RFC 2920 §3.1).
            self.transaction = Some(transaction);
            return self.refuse(554, "5.5.1 No valid recipients").await;
        }
        self.reply_now(354, "End data with <CR><LF>.<CR><LF>")
            .await?;
        match self.read_data().await? {
            Data::TooBig => {
                self.reply(552, "5.3.4 Message size exceeds fixed maximum message size")
                    .await?;
            }
            Data::NoMemory => {
                tracing::warn!("SMTP ingress: memory budget exhausted, deferring a message");
                self.reply(452, "4.3.1 Insufficient system storage, try again later")
                    .await?;
            }
            Data::Complete(message, memory) => {
                let (code, text) = self.deliver(&transaction, &message).await;
                drop((message, memory));
                self.reply(code, &text).await?;
            }
        }
        Ok(Next::Continue)
    }

    /// Reads the data up to `<CRLF>.<CRLF>`, unstuffing dots, within the size and memory limits.
    async fn read_data(&mut self) -> io::Result<Data> {
        let max = self.limits().max_message_bytes;
        let timeout = self.limits().timeout;
        let memory = self.ingress.inner.memory.clone();
        let mut held: Option<OwnedSemaphorePermit> = None;
        let mut held_steps = 0usize;
        let mut message = Vec::new();
        let mut size = 0usize;
        let mut too_big = false;
        let mut no_memory = false;
        // The DATA command line ended with a line break, so the first line starts a line.
        let mut after_crlf = true;
        loop {
            let start = message.len();
            // Enough of the line to see ".\r\n" even when the rest is being dropped.
            let keep = if too_big || no_memory {
                3
            } else {
                max - size + 3
            };
            let line =
                tokio::time::timeout(timeout, read_line(&mut self.reader, &mut message, keep))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timeout in DATA"))??;
            if line.len == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed in DATA",
                ));
            }
            let dotted = after_crlf && message.get(start) == Some(&b'.');
            if dotted && line.crlf && line.len == 3 {
                message.truncate(start);
                break;
            }
            if dotted {
                message.remove(start);
            }
            after_crlf = line.crlf;
            size = size.saturating_add(line.len - usize::from(dotted));
            if too_big || no_memory {
                message.truncate(start);
                continue;
            }
            if size > max {
                too_big = true;
                message = Vec::new();
                continue;
            }
            let steps = message.len().div_ceil(MEMORY_STEP);
            if steps > held_steps {
                let more = u32::try_from(steps - held_steps).unwrap_or(u32::MAX);
                match memory.clone().try_acquire_many_owned(more) {
                    Ok(permit) => {
                        match &mut held {
                            Some(held) => held.merge(permit),
                            None => held = Some(permit),
                        }
                        held_steps = steps;
                    }
                    Err(_) => {
                        no_memory = true;
                        message = Vec::new();
                    }
                }
            }
        }
        Ok(if too_big {
            Data::TooBig
        } else if no_memory {
            Data::NoMemory
        } else {
            Data::Complete(message, held)
        })
    }

    /// Stores the message once per accepted inbox; the reply to give.
    async fn deliver(&mut self, transaction: &Transaction, message: &[u8]) -> (u16, String) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut inboxes: Vec<(InboxId, &str)> = Vec::new();
        for (address, inbox) in &transaction.recipients {
            if !inboxes.iter().any(|(i, _)| i == inbox) {
                inboxes.push((*inbox, address));
            }
        }
        let protocol = match (self.esmtp, transaction.utf8) {
            (_, true) => "UTF8SMTP",
            (true, false) => "ESMTP",
            (false, false) => "SMTP",
        };
        let helo = printable(self.helo.as_deref().unwrap_or_default(), 255);
        let peer = address_literal(self.peer.ip());
        let date = chrono::Utc::now().to_rfc2822();
        let mut stored = Vec::new();
        for (inbox, address) in inboxes {
            let mut bytes = format!(
                "Return-Path: <{}>\r\nReceived: from {helo} ({peer})\r\n\tby {} (postdesk) with {protocol} id {id}\r\n\tfor <{address}>; {date}\r\n",
                transaction.from, self.local
            )
            .into_bytes();
            bytes.extend_from_slice(message);
            match self.ingress.inner.store.store_received(inbox, &bytes).await {
                Ok(raw) => {
                    let metrics = &self.ingress.inner.processing.metrics;
                    metrics.fetched(inbox, crate::metrics::Via::Smtp, 1);
                    stored.push(raw.to_string());
                    self.ingress.stored(inbox);
                }
                Err(e) => {
                    tracing::error!(%inbox, peer = %self.peer, "SMTP ingress: storing a received email failed, the sender will retry: {e}");
                    return (
                        451,
                        "4.3.0 Temporary failure storing the message, try again later".to_owned(),
                    );
                }
            }
        }
        tracing::info!(peer = %self.peer, from = %transaction.from, raw_emails = ?stored, "SMTP ingress: received an email");
        (250, format!("2.0.0 OK: queued as {id}"))
    }
}
