//! One IMAP session: connect (TLS, STARTTLS or plain), log in, select, sync, IDLE.

use std::time::Duration;

use anyhow::Context as _;
use async_imap::extensions::idle::IdleResponse;
use futures::TryStreamExt as _;
use postdesk_core::ids::InboxId;
use postdesk_core::model::{InboxState, Security};
use postdesk_store::StoreFetched;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{FIRST_BACKOFF, IDLE_TIMEOUT, ReaderContext, record_state};
use crate::ingest;
use crate::metrics::Via;

/// Time allowed to connect, greet and log in.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed for one command (a fetch of a batch included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Most UIDs fetched per `UID FETCH` (and stored per transaction): big enough to amortise
/// round trips and commits, small enough that a crash loses little work.
const FETCH_BATCH: usize = 200;

/// Most bytes fetched per `UID FETCH` (one larger email is still fetched alone), so memory
/// stays bounded however large the backlog's emails are.
const FETCH_BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// UIDs whose sizes are asked per `UID FETCH (RFC822.SIZE)`.
const SIZE_BATCH: usize = 1000;

/// Anything an IMAP session can run over.
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ImapIo for T {}

pub(super) type Session = async_imap::Session<Box<dyn ImapIo>>;
type Client = async_imap::Client<Box<dyn ImapIo>>;

/// How to reach and log in to an IMAP server.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// tls, starttls or none.
    pub security: Security,
    /// Verify the certificate.
    pub tls_verify: bool,
    /// Login (for OAuth2: the mailbox, the `user` of XOAUTH2).
    pub username: String,
    /// Password (decrypted); empty with OAuth2.
    pub password: String,
    /// With OAuth2: where the access token comes from (else the password signs in).
    pub bearer: Option<BearerSource>,
    /// Folder to read.
    pub mailbox: String,
    /// Folder to move emails to once they are stored (`None`: they stay).
    pub move_to: Option<String>,
    /// The Sent folder (`None`: the one flagged `\Sent`; `Some("")`: none).
    pub sent_mailbox: Option<String>,
    /// The lease the connection works under: once it lapses, nothing more is sent or read
    /// ([`crate::cluster::Fenced`]). Unfenced but for the readers.
    pub lease: crate::cluster::Lease,
}

/// Where an OAuth2 inbox's access token comes from.
#[derive(Debug, Clone)]
pub struct BearerSource {
    /// The tokens.
    pub oauth: crate::mail_oauth::MailOAuth,
    /// Whose.
    pub inbox: InboxId,
}

/// The IMAP server refused an OAuth2 access token (`NO` to `AUTHENTICATE`): the token is
/// refreshed and tried once more.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BearerRefused(String);

async fn tls_wrap<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    verify: bool,
) -> anyhow::Result<tokio_rustls::client::TlsStream<S>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .with_context(|| format!("{host:?} is not a valid TLS server name"))?;
    tokio_rustls::TlsConnector::from(crate::tls::client_config(verify))
        .connect(name, stream)
        .await
        .context("TLS handshake failed")
}

/// Whether a greeting (or any response) announces `OAUTHBEARER` but not `XOAUTH2`, the one
/// case where OAUTHBEARER (RFC 7628) is used. Gmail and Microsoft 365 announce nothing in
/// their greeting and take XOAUTH2.
fn oauthbearer_only(response: &async_imap::imap_proto::Response<'_>) -> bool {
    use async_imap::imap_proto::{Capability, Response, ResponseCode};
    let Response::Data { outcome, .. } = response else {
        return false;
    };
    let Some(ResponseCode::Capabilities(caps)) = &outcome.code else {
        return false;
    };
    let offers = |name: &str| {
        caps.iter()
            .any(|c| matches!(c, Capability::Auth(a) if a.eq_ignore_ascii_case(name)))
    };
    offers("OAUTHBEARER") && !offers("XOAUTH2")
}

/// Reads the server's greeting (async-imap does not); true when it asks for OAUTHBEARER.
async fn greeting<T>(client: &mut async_imap::Client<T>) -> anyhow::Result<bool>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug,
{
    let response = client
        .read_response()
        .await
        .context("Failed to read the server greeting")?
        .context("The server closed the connection before greeting")?;
    Ok(oauthbearer_only(response.parsed()))
}

/// Connects and reads the greeting; also says whether the server wants OAUTHBEARER.
async fn connect(s: &ImapSettings) -> anyhow::Result<(Client, bool)> {
    let how = match s.security {
        Security::Tls => "TLS",
        Security::Starttls => "STARTTLS",
        Security::None => "no encryption",
    };
    let inner = async {
        if !s.lease.is_valid() {
            anyhow::bail!("this node no longer holds the inbox's lease");
        }
        let tcp = TcpStream::connect((s.host.as_str(), s.port))
            .await
            .context("TCP connect failed")?;
        let tcp = crate::cluster::Fenced::new(tcp, s.lease.clone());
        let mut client: Client = match s.security {
            Security::None => async_imap::Client::new(Box::new(tcp)),
            Security::Tls => {
                async_imap::Client::new(Box::new(tls_wrap(tcp, &s.host, s.tls_verify).await?))
            }
            Security::Starttls => {
                let mut plain = async_imap::Client::new(tcp);
                let oauthbearer = greeting(&mut plain).await?;
                plain
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .context("STARTTLS refused")?;
                let tls = tls_wrap(plain.into_inner(), &s.host, s.tls_verify).await?;
                let client: Client = async_imap::Client::new(Box::new(tls));
                return Ok::<_, anyhow::Error>((client, oauthbearer));
            }
        };
        let oauthbearer = greeting(&mut client).await?;
        Ok((client, oauthbearer))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, inner)
        .await
        .context("timed out")
        .and_then(|r| r)
        .with_context(|| {
            format!(
                "Cannot connect to IMAP server {}:{} using {how}",
                s.host, s.port
            )
        })
}

/// Connects and signs in: with the password, or with the OAuth2 access token (refreshed
/// and tried once more when the server refuses it).
pub(super) async fn login(s: &ImapSettings) -> anyhow::Result<Session> {
    let Some(bearer) = &s.bearer else {
        return password_login(s).await;
    };
    let token = bearer.oauth.access_token(bearer.inbox, None).await?;
    match bearer_login(s, &token).await {
        Err(e) if e.is::<BearerRefused>() => {
            tracing::info!(inbox = %bearer.inbox, "The IMAP server refused the OAuth2 access token; refreshing it: {e:#}");
            let token = bearer
                .oauth
                .access_token(bearer.inbox, Some(&token))
                .await?;
            bearer_login(s, &token).await
        }
        other => other,
    }
}

/// SASL's bearer-token mechanisms.
struct Bearer {
    response: Option<String>,
}

impl async_imap::Authenticator for Bearer {
    type Response = String;

    /// The initial response, then the empty answer RFC 7628 (and Google's XOAUTH2) ask for
    /// after an error challenge, so that the server ends with its `NO`.
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.response.take().unwrap_or_default()
    }
}

/// `AUTHENTICATE XOAUTH2`, or `OAUTHBEARER` when the server offers only that.
async fn bearer_login(s: &ImapSettings, token: &str) -> anyhow::Result<Session> {
    crate::redact::register_bearer(&s.username, token);
    let (client, oauthbearer) = connect(s).await?;
    let (mechanism, response) = if oauthbearer {
        (
            "OAUTHBEARER",
            format!("n,a={},\x01auth=Bearer {token}\x01\x01", s.username),
        )
    } else {
        (
            "XOAUTH2",
            format!("user={}\x01auth=Bearer {token}\x01\x01", s.username),
        )
    };
    let bearer = Bearer {
        response: Some(response),
    };
    tokio::time::timeout(CONNECT_TIMEOUT, client.authenticate(mechanism, bearer))
        .await
        .with_context(|| format!("IMAP sign-in to {}:{} timed out", s.host, s.port))?
        .map_err(|(e, _)| match e {
            async_imap::error::Error::No(words) => anyhow::Error::new(BearerRefused(format!(
                "IMAP server {}:{} refused the OAuth2 sign-in ({mechanism}) of {:?}: {words}",
                s.host, s.port, s.username
            ))),
            other => anyhow::anyhow!(
                "IMAP server {}:{} refused the OAuth2 sign-in ({mechanism}) of {:?}: {other}",
                s.host,
                s.port,
                s.username
            ),
        })
}

async fn password_login(s: &ImapSettings) -> anyhow::Result<Session> {
    let (client, _) = connect(s).await?;
    let session = tokio::time::timeout(CONNECT_TIMEOUT, client.login(&s.username, &s.password))
        .await
        .with_context(|| format!("IMAP login to {}:{} timed out", s.host, s.port))?
        .map_err(|(e, _)| {
            anyhow::anyhow!(
                "IMAP server {}:{} refused the login of {:?}: {e}",
                s.host,
                s.port,
                s.username
            )
        })?;
    Ok(session)
}

/// Connects and logs in, then logs out: the "Test connection" check.
///
/// # Errors
/// The server's own error text, with the step that failed.
pub async fn check_login(s: &ImapSettings) -> anyhow::Result<()> {
    let mut session = login(s).await?;
    session
        .examine(&s.mailbox)
        .await
        .with_context(|| format!("Cannot open the mailbox {:?}", s.mailbox))?;
    let _ = session.logout().await;
    Ok(())
}

impl ImapSettings {
    /// How to read `inbox`: its stored password decrypted with `secrets`, or with OAuth2
    /// its access token from `oauth` (fetched when signing in).
    ///
    /// # Errors
    /// The stored password cannot be decrypted (another secret key).
    pub fn of(
        inbox: &postdesk_store::Inbox,
        secrets: &crate::secrets::Secrets,
        oauth: &crate::mail_oauth::MailOAuth,
    ) -> anyhow::Result<Self> {
        let imap = &inbox.settings.imap;
        let (password, bearer) = match imap.auth {
            postdesk_core::model::MailAuth::OAuth2 => (
                String::new(),
                Some(BearerSource {
                    oauth: oauth.clone(),
                    inbox: inbox.id,
                }),
            ),
            postdesk_core::model::MailAuth::Password => {
                let password = secrets.decrypt_string(&imap.password_encrypted)?;
                crate::redact::register_credentials(&imap.username, &password);
                (password, None)
            }
        };
        Ok(Self {
            host: imap.host.clone(),
            port: imap.port,
            security: imap.security,
            tls_verify: imap.tls_verify,
            username: imap.username.clone(),
            password,
            bearer,
            mailbox: inbox.settings.imap_mailbox.clone(),
            move_to: inbox.settings.imap_move_to.clone(),
            sent_mailbox: inbox.settings.imap_sent_mailbox.clone(),
            lease: crate::cluster::Lease::unfenced(),
        })
    }
}

async fn settings_of(ctx: &ReaderContext, inbox: InboxId) -> anyhow::Result<ImapSettings> {
    let stored = ctx
        .store
        .find_inbox(inbox)
        .await?
        .context("The inbox no longer exists")?;
    let mut settings = ImapSettings::of(&stored, &ctx.secrets, &ctx.oauth)?;
    settings.lease = ctx.lease.clone();
    Ok(settings)
}

pub(super) async fn timed<T, E: Into<anyhow::Error>>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, fut)
        .await
        .with_context(|| format!("{what} timed out"))?
        .map_err(Into::into)
        .with_context(|| format!("{what} failed"))
}

/// One session, from connect until an error (returned), until its OAuth2 token is due for
/// renewal (`Ok`: sign in again at once), or forever.
pub(super) async fn run_session(
    ctx: &ReaderContext,
    inbox: InboxId,
    backoff: &mut Duration,
    wake: &tokio::sync::Notify,
) -> anyhow::Result<()> {
    record_state(ctx, inbox, InboxState::Connecting, None, false).await;
    let s = settings_of(ctx, inbox).await?;
    let mut session = login(&s).await?;
    *backoff = FIRST_BACKOFF;
    let selected = timed("SELECT", session.select(&s.mailbox)).await?;
    let validity = selected
        .uid_validity
        .context("The server did not report UIDVALIDITY")?;
    let capabilities = timed("CAPABILITY", session.capabilities()).await?;
    let idle_supported = capabilities.has_str("IDLE");
    let move_to = match &s.move_to {
        Some(folder) => {
            // Make sure the folder exists; CREATE fails harmlessly when it already does, and
            // any real problem shows when the first move fails.
            if let Err(e) = timed("CREATE", session.create(folder)).await {
                tracing::debug!(%inbox, folder, "CREATE of the move folder: {e:#}");
            }
            Some(MoveTo {
                folder: folder.as_str(),
                move_command: capabilities.has_str("MOVE"),
            })
        }
        None => None,
    };
    // Emails colleagues send from their own client into a conversation join it.
    let sent_folder = super::sent::watched_sent_folder(&mut session, s.sent_mailbox.as_deref())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(%inbox, "Cannot find the Sent folder: {e:#}");
            None
        })
        .filter(|folder| !folder.eq_ignore_ascii_case(&s.mailbox));
    tracing::info!(%inbox, host = %s.host, mailbox = %s.mailbox, idle_supported, sent_folder = ?sent_folder, "IMAP reader connected");
    // With OAuth2 the session is renewed before its access token expires: Microsoft 365 ends
    // a session whose token expired ("Session invalidated - AccessTokenExpired"), and signing
    // in again is when a refresh shows whether the grant still stands.
    let renew_at = match &s.bearer {
        Some(b) => b.oauth.renew_at(inbox).await?,
        None => None,
    };
    let until_renewal = || {
        renew_at.map(|at| {
            Duration::from_millis(u64::try_from(at - postdesk_store::now_ms()).unwrap_or(0))
        })
    };
    loop {
        if until_renewal().is_some_and(|left| left.is_zero()) {
            tracing::debug!(%inbox, "Signing in again with a renewed OAuth2 access token");
            let _ = timed("LOGOUT", session.logout()).await;
            return Ok(());
        }
        record_state(ctx, inbox, InboxState::Syncing, None, false).await;
        sync(ctx, inbox, &s.mailbox, validity, move_to, &mut session).await?;
        if let Some(folder) = &sent_folder
            && super::sent::sync_sent(ctx, inbox, &mut session, folder, &s.mailbox, validity)
                .await?
        {
            // The Sent folder was selected for a while: look at the mailbox again.
            continue;
        }
        record_state(ctx, inbox, InboxState::Idle, None, true).await;
        // The server may have announced new mail in the middle of the sync (an EXISTS
        // riding on a FETCH response, which async-imap queues aside); it will not announce it
        // again, so look before idling and sync again at once.
        let unsolicited = session.unsolicited_responses.clone();
        if announces_new_mail(|| unsolicited.try_recv().ok()) {
            continue;
        }
        if idle_supported {
            let mut idle = session.idle();
            timed("IDLE", idle.init()).await?;
            // Mail that arrived just before IDLE is announced with the IDLE's first response.
            if !announces_new_mail(|| unsolicited.try_recv().ok()) {
                let timeout = until_renewal().map_or(IDLE_TIMEOUT, |left| left.min(IDLE_TIMEOUT));
                let (wait, interrupt) = idle.wait_with_timeout(timeout);
                // `interrupt` must live while waiting: dropping it ends the IDLE at once, which
                // a push from the mail server does.
                let mut interrupt = Some(interrupt);
                tokio::pin!(wait);
                let woke = loop {
                    tokio::select! {
                        woke = &mut wait => break woke.context("IDLE failed")?,
                        () = wake.notified(), if interrupt.is_some() => {
                            tracing::debug!(%inbox, "Woken by a push");
                            interrupt = None;
                        }
                    }
                };
                drop(interrupt);
                if let IdleResponse::NewData(data) = &woke {
                    tracing::debug!(%inbox, response = ?data.parsed(), "IDLE woke");
                }
            }
            session = timed("IDLE DONE", idle.done()).await?;
        } else {
            let poll =
                until_renewal().map_or(ctx.poll_interval, |left| left.min(ctx.poll_interval));
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = wake.notified() => tracing::debug!(%inbox, "Woken by a push"),
            }
            timed("NOOP", session.noop()).await?;
        }
    }
}

/// Empties the queue of responses the server sent unasked (`next` takes one); true when one
/// said the mailbox grew (EXISTS or RECENT).
fn announces_new_mail(
    mut next: impl FnMut() -> Option<async_imap::types::UnsolicitedResponse>,
) -> bool {
    use async_imap::types::UnsolicitedResponse;
    let mut grew = false;
    while let Some(response) = next() {
        grew |= matches!(
            response,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    grew
}

/// Fetches every UID from the watermark on, storing each batch raw with the watermark, and
/// processes what is stored as it goes; returns once everything fetched is processed.
/// Where stored emails are moved, and whether the server has `MOVE` (RFC 6851).
#[derive(Debug, Clone, Copy)]
struct MoveTo<'a> {
    folder: &'a str,
    move_command: bool,
}

/// Moves the emails `set` (UIDs) to `to.folder`: with `UID MOVE`, or else `UID COPY`, then
/// `\Deleted` and `UID EXPUNGE` of just those UIDs.
async fn move_emails(session: &mut Session, set: &str, to: MoveTo<'_>) -> anyhow::Result<()> {
    if to.move_command {
        return timed("UID MOVE", session.uid_mv(set, to.folder)).await;
    }
    timed("UID COPY", session.uid_copy(set, to.folder)).await?;
    timed("UID STORE", async {
        let responses: Vec<_> = session
            .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect()
            .await?;
        drop(responses);
        Ok::<_, async_imap::error::Error>(())
    })
    .await?;
    timed("UID EXPUNGE", async {
        let responses: Vec<_> = session.uid_expunge(set).await?.try_collect().await?;
        drop(responses);
        Ok::<_, async_imap::error::Error>(())
    })
    .await
}

async fn sync(
    ctx: &ReaderContext,
    inbox: InboxId,
    mailbox: &str,
    validity: u32,
    move_to: Option<MoveTo<'_>>,
    session: &mut Session,
) -> anyhow::Result<usize> {
    let next_uid = match ctx.store.find_sync_state(inbox, mailbox).await? {
        Some((stored, next)) if stored == validity => next,
        previous => {
            if let Some((stored, _)) = previous {
                tracing::warn!(%inbox, mailbox, old = stored, new = validity, "UIDVALIDITY changed: resyncing from the start; stored Message-IDs prevent duplicates");
            }
            ctx.store.reset_sync_state(inbox, mailbox, validity).await?;
            1
        }
    };
    // `n:*` always matches the highest UID even when it is below n (RFC 3501 §6.4.8), so
    // filter what the search returns.
    let mut uids: Vec<u32> = timed(
        "UID SEARCH",
        session.uid_search(format!("UID {next_uid}:*")),
    )
    .await?
    .into_iter()
    .filter(|uid| *uid >= next_uid)
    .collect();
    uids.sort_unstable();
    let mut sizes: Vec<(u32, u64)> = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(SIZE_BATCH) {
        let set = uid_set(chunk);
        let known: std::collections::HashMap<u32, u64> = timed("UID FETCH RFC822.SIZE", async {
            let stream = session.uid_fetch(&set, "(UID RFC822.SIZE)").await?;
            let fetches: Vec<_> = stream.try_collect().await?;
            Ok::<_, async_imap::error::Error>(
                fetches
                    .iter()
                    .filter_map(|f| Some((f.uid?, u64::from(f.size?))))
                    .collect(),
            )
        })
        .await?;
        sizes.extend(
            chunk
                .iter()
                .map(|uid| (*uid, known.get(uid).copied().unwrap_or(0))),
        );
    }
    // Fetching and processing overlap: the fetch loop stores each batch raw and wakes the
    // processing loop, which works through what is stored while the next batch is fetched.
    let stored = tokio::sync::Notify::new();
    let fetched_all = std::sync::atomic::AtomicBool::new(false);
    let fetching = async {
        let mut fetched = 0;
        for batch in batches(&sizes) {
            let set = uid_set(&batch);
            let started = std::time::Instant::now();
            let emails: Vec<StoreFetched> = timed("UID FETCH", async {
                let mut stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
                let mut emails = Vec::with_capacity(batch.len());
                // Copy each email's bytes out and drop its response at once, so the batch is
                // not held twice.
                while let Some(f) = stream.try_next().await? {
                    if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                        emails.push(StoreFetched {
                            uid,
                            bytes: body.to_vec(),
                        });
                    }
                }
                Ok::<_, async_imap::error::Error>(emails)
            })
            .await?;
            let highest = batch.last().copied().unwrap_or(next_uid);
            let count = emails.len();
            fetched += count;
            ctx.metrics.fetched(inbox, Via::Imap, count);
            let fetch_time = started.elapsed();
            // The bytes move into the store, which drops them once written.
            ctx.store
                .store_fetched_fenced(
                    ctx.lease.fence(),
                    inbox,
                    mailbox,
                    validity,
                    emails,
                    highest.saturating_add(1),
                )
                .await?;
            tracing::debug!(
                %inbox,
                emails = count,
                fetch_ms = fetch_time.as_millis(),
                store_ms = (started.elapsed() - fetch_time).as_millis(),
                "Fetched a batch and stored it raw"
            );
            stored.notify_one();
            // Only once stored (committed) does an email leave the mailbox. A crash between
            // the two leaves it there, stored: the watermark keeps it from being fetched again.
            if let Some(to) = move_to {
                move_emails(session, &set, to).await?;
            }
        }
        fetched_all.store(true, std::sync::atomic::Ordering::Release);
        stored.notify_one();
        Ok::<usize, anyhow::Error>(fetched)
    };
    let processing = async {
        loop {
            let last = fetched_all.load(std::sync::atomic::Ordering::Acquire);
            // Also picks up emails left pending by an earlier crash or a reprocess request.
            ingest::process_pending(
                &ctx.store,
                &ctx.bus,
                Some(inbox),
                ctx.limits,
                &ctx.sender_auth,
                &ctx.metrics,
            )
            .await?;
            if last {
                return Ok::<(), anyhow::Error>(());
            }
            stored.notified().await;
        }
    };
    let (fetched, ()) = tokio::try_join!(fetching, processing)?;
    Ok(fetched)
}

/// `1,2,3` for a `UID FETCH`.
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits `(uid, size)` into fetch batches of at most [`FETCH_BATCH`] emails and
/// [`FETCH_BATCH_BYTES`] bytes, in UID order; an email larger than the byte bound is a batch
/// of its own.
fn batches(sizes: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        if !current.is_empty() && (current.len() >= FETCH_BATCH || bytes + size > FETCH_BATCH_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes += size;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer_only_when_the_greeting_offers_it_and_not_xoauth2() {
        let cases = [
            (
                &b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=OAUTHBEARER] ready\r\n"[..],
                true,
                "only OAUTHBEARER",
            ),
            (
                b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready\r\n",
                false,
                "both: XOAUTH2",
            ),
            (
                b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
                false,
                "neither: XOAUTH2",
            ),
            (
                b"* OK Gimap ready for requests\r\n",
                false,
                "Gmail announces nothing: XOAUTH2",
            ),
        ];
        for (greeting, expected, what) in cases {
            let (_, response) = async_imap::imap_proto::Response::parse(greeting).unwrap();
            assert_eq!(oauthbearer_only(&response), expected, "{what}");
        }
    }

    #[test]
    fn fetch_batches_bound_count_and_bytes() {
        let small: Vec<(u32, u64)> = (1..=450).map(|uid| (uid, 1000)).collect();
        let got = batches(&small);
        assert_eq!(
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![200, 200, 50]
        );
        assert_eq!(got[2][0], 401, "UID order kept");

        let mb = 1024 * 1024;
        let mixed = vec![
            (1, 40 * mb),
            (2, 20 * mb),
            (3, 10 * mb),
            (4, 100 * mb),
            (5, 1),
            (6, 31 * mb),
            (7, 5 * mb),
        ];
        assert_eq!(
            batches(&mixed),
            vec![vec![1], vec![2, 3], vec![4], vec![5, 6], vec![7]]
        );
        assert!(batches(&[]).is_empty());
    }
}
