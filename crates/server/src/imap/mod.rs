//! The IMAP readers: one supervised task per active inbox.
//!
//! A reader connects, logs in, selects the inbox's mailbox and fetches every UID above the
//! stored watermark with `BODY.PEEK[]` (never depending on or changing `\Seen`). Each batch is
//! stored raw and the watermark advanced in one transaction, and processed beside the fetching.
//! Only once a batch is stored, and only when the inbox names a folder to move to, do its
//! emails leave the mailbox (`UID MOVE`, or `UID COPY` + `\Deleted` + `UID EXPUNGE`); nothing
//! else is ever changed or deleted. It
//! then waits in IDLE (re-entered every [`IDLE_TIMEOUT`], far below RFC 2177's 29 minutes) or,
//! when the server has no IDLE, polls. After every wake it fetches again from the watermark,
//! never trusting EXISTS alone. Any error drops the connection; the reader reconnects with
//! jittered exponential backoff and shows the error in the inbox's health meanwhile. It never
//! disables the inbox.
//!
//! [`Readers`] starts, restarts and stops readers as inboxes are created, changed or disabled.

mod sent;
mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postdesk_core::event::Event;
use postdesk_core::ids::InboxId;
use postdesk_core::model::InboxState;
use postdesk_store::Store;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::bus::Bus;
use crate::secrets::Secrets;

pub use sent::{Appended, append_sent_copy};
pub use session::{BearerSource, ImapSettings, check_login};

/// How long one IDLE lasts before it is re-issued. Dovecot and most servers keep an idle
/// client for 30 minutes; NAT boxes often drop silent TCP flows after 5 to 15, so 5 minutes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// First wait after a failure; doubles up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_secs(2);

/// Longest wait between reconnection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(80);

/// What every reader needs.
#[derive(Debug, Clone)]
pub struct ReaderContext {
    /// Where raw emails, watermarks and health go.
    pub store: Store,
    /// Where new conversations and messages are announced.
    pub bus: Bus,
    /// Decrypts the stored IMAP password.
    pub secrets: Secrets,
    /// Poll interval for servers without IDLE.
    pub poll_interval: Duration,
    /// Limits on processing one email.
    pub limits: crate::ingest::Limits,
    /// Checks the senders of the emails read.
    pub sender_auth: crate::sender_auth::Verifier,
    /// The access tokens of inboxes that sign in with OAuth2.
    pub oauth: crate::mail_oauth::MailOAuth,
    /// Counts the emails fetched and processed.
    pub metrics: crate::metrics::Metrics,
}

struct Running {
    stop: watch::Sender<bool>,
    /// Ends the reader's IDLE (or poll wait) at once, for a push from the mail server.
    wake: Arc<tokio::sync::Notify>,
    handle: JoinHandle<()>,
}

/// The running readers, by inbox. A tokio mutex: starting and stopping await the task.
#[derive(Clone)]
pub struct Readers {
    ctx: ReaderContext,
    running: Arc<Mutex<HashMap<InboxId, Running>>>,
}

impl Readers {
    /// No readers yet.
    #[must_use]
    pub fn new(ctx: ReaderContext) -> Self {
        Self {
            ctx,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Starts a reader for every active inbox.
    ///
    /// # Errors
    /// When the inboxes cannot be read.
    pub async fn start_all(&self) -> anyhow::Result<()> {
        for inbox in self.ctx.store.list_inboxes().await? {
            self.reconcile(inbox.id).await?;
        }
        Ok(())
    }

    /// Makes the reader of `inbox` match its stored settings: stops the running one, and
    /// starts a fresh one when the inbox is active. Call after creating or changing an inbox.
    ///
    /// # Errors
    /// When the inbox cannot be read.
    pub async fn reconcile(&self, inbox: InboxId) -> anyhow::Result<()> {
        let mut running = self.running.lock().await;
        if let Some(old) = running.remove(&inbox) {
            stop(old).await;
        }
        let Some(settings) = self.ctx.store.find_inbox(inbox).await? else {
            return Ok(());
        };
        if !settings.settings.active {
            self.ctx
                .store
                .set_inbox_status(inbox, InboxState::Stopped, None, false)
                .await?;
            self.ctx.bus.publish(Event::InboxStatus {
                inbox_id: inbox,
                state: InboxState::Stopped,
            });
            return Ok(());
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let ctx = self.ctx.clone();
        let wake = Arc::new(tokio::sync::Notify::new());
        let reader_wake = Arc::clone(&wake);
        let handle =
            tokio::spawn(async move { run_reader(ctx, inbox, stop_rx, reader_wake).await });
        running.insert(
            inbox,
            Running {
                stop: stop_tx,
                wake,
                handle,
            },
        );
        Ok(())
    }

    /// Stops every reader.
    /// Wakes the readers of the active inboxes that read `folder` (any, when `None`) of the IMAP
    /// login `username` (case-insensitive): they sync now instead of when IDLE reports.
    /// Returns how many were woken.
    ///
    /// # Errors
    /// Only when the inboxes cannot be read from the database.
    pub async fn wake_login(&self, username: &str, folder: Option<&str>) -> anyhow::Result<usize> {
        let matching: Vec<InboxId> = self
            .ctx
            .store
            .list_inboxes()
            .await?
            .into_iter()
            .filter(|inbox| {
                inbox.settings.active
                    && inbox.settings.imap.username.eq_ignore_ascii_case(username)
                    && folder.is_none_or(|f| f == inbox.settings.imap_mailbox)
            })
            .map(|inbox| inbox.id)
            .collect();
        let running = self.running.lock().await;
        let mut woken = 0;
        for id in matching {
            if let Some(reader) = running.get(&id) {
                reader.wake.notify_one();
                woken += 1;
            }
        }
        Ok(woken)
    }

    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        for (_, reader) in running.drain() {
            stop(reader).await;
        }
    }
}

async fn stop(reader: Running) {
    let _ = reader.stop.send(true);
    let mut handle = reader.handle;
    if tokio::time::timeout(Duration::from_secs(10), &mut handle)
        .await
        .is_err()
    {
        handle.abort();
    }
}

pub(crate) async fn record_state(
    ctx: &ReaderContext,
    inbox: InboxId,
    state: InboxState,
    error: Option<&str>,
    synced: bool,
) {
    if let Err(e) = ctx
        .store
        .set_inbox_status(inbox, state, error, synced)
        .await
    {
        tracing::warn!(%inbox, "Failed to record the inbox status: {e:#}");
    }
    ctx.bus.publish(Event::InboxStatus {
        inbox_id: inbox,
        state,
    });
}

/// The supervisor loop of one inbox: run sessions until stopped, backing off after failures.
async fn run_reader(
    ctx: ReaderContext,
    inbox: InboxId,
    mut stop: watch::Receiver<bool>,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut backoff = BACKOFF_START;
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = tokio::select! {
            outcome = session::run_session(&ctx, inbox, &mut backoff, &wake) => outcome,
            _ = stop.changed() => break,
        };
        let error = match outcome {
            // The session ended to sign in again with a renewed OAuth2 token.
            Ok(()) => continue,
            Err(error) => error,
        };
        if let Some(
            crate::mail_oauth::TokenError::NeedsReauth(words)
            | crate::mail_oauth::TokenError::NotConnected(words),
        ) = error.downcast_ref::<crate::mail_oauth::TokenError>()
        {
            // No retrying: the provider said no. The reader waits here, its watermark kept,
            // until the inbox is connected again (which restarts it) or stopped.
            tracing::warn!(%inbox, "IMAP reader waits for the inbox to be connected again: {words}");
            record_state(&ctx, inbox, InboxState::NeedsReauth, Some(words), false).await;
            let _ = stop.changed().await;
            break;
        }
        let message = format!("{error:#}");
        tracing::warn!(%inbox, "IMAP reader failed, retrying in {}s: {message}", backoff.as_secs());
        record_state(&ctx, inbox, InboxState::Error, Some(&message), false).await;
        let wait = jittered(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
}

/// `base` plus up to a quarter more, so many readers failing together do not retry together.
fn jittered(base: Duration) -> Duration {
    use rand::Rng as _;
    base + base.mul_f64(rand::thread_rng().gen_range(0.0..0.25))
}

pub(crate) const FIRST_BACKOFF: Duration = BACKOFF_START;
