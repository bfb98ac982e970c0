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
//! A reader runs only while this node holds the inbox's lease ([`crate::cluster`]): every
//! [`crate::cluster::HEARTBEAT`] the node renews its leases (a reader whose lease was not
//! renewed stops) and claims the free ones of active inboxes (and starts their readers), so
//! exactly one node reads each inbox and another takes over within
//! `LEASE + HEARTBEAT` when it dies. An inbox changed on any node reaches the node that reads
//! it as an `inbox_changed` event; a push from the mail server to any node, as `inbox_wake`.
//! On SQLite the one node holds every lease. Stopping hands the node's leases over at once.

mod sent;
mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postdesk_core::event::Event;
use postdesk_core::ids::InboxId;
use postdesk_core::model::InboxState;
use postdesk_store::{HeldLease, NodeInfo, Store};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::bus::Bus;
use crate::cluster::{HEARTBEAT, LEASE, Lease, SAFETY_MARGIN};
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
    /// The lease the reader reads under (each reader has its own; unfenced elsewhere).
    pub lease: Lease,
}

struct Running {
    stop: watch::Sender<bool>,
    /// Ends the reader's IDLE (or poll wait) at once, for a push from the mail server.
    wake: Arc<tokio::sync::Notify>,
    handle: JoinHandle<()>,
    lease: Lease,
}

/// The running readers of this node, by inbox. A tokio mutex: starting and stopping await
/// the task.
#[derive(Clone)]
pub struct Readers {
    ctx: ReaderContext,
    node: Arc<NodeInfo>,
    running: Arc<Mutex<HashMap<InboxId, Running>>>,
}

/// A claim or renewal's answer, as leases valid on this node from `sent` on.
fn leases(node: &NodeInfo, held: &[HeldLease], sent: Instant) -> Vec<(InboxId, Lease)> {
    held.iter()
        .map(|l| {
            let lease = Lease::held(l.inbox_id, &node.id, l.epoch, sent + LEASE - SAFETY_MARGIN);
            (l.inbox_id, lease)
        })
        .collect()
}

impl Readers {
    /// No readers yet; this node is `node`.
    #[must_use]
    pub fn new(ctx: ReaderContext, node: NodeInfo) -> Self {
        Self {
            ctx,
            node: Arc::new(node),
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// This node.
    #[must_use]
    pub fn node(&self) -> &NodeInfo {
        &self.node
    }

    /// Adds this node to the cluster (on SQLite, taking over its predecessors' leases).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn join(&self) -> anyhow::Result<()> {
        self.ctx.store.join_cluster(&self.node).await?;
        Ok(())
    }

    /// Keeps this node's share of the readers until `stop` turns true: every
    /// [`HEARTBEAT`] renews its leases, stops the readers whose lease was lost, claims the
    /// free leases and starts their readers; follows inbox changes and pushes made on other
    /// nodes. Then stops every reader and hands the leases over at once.
    pub async fn run_until_stopped(self, mut stop: watch::Receiver<bool>) {
        let (_, mut events) = self.ctx.bus.subscribe(None);
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tick.tick() => self.keep().await,
                got = events.recv() => match got {
                    Ok(envelope) => self.hear(&envelope.event).await,
                    // Missed some: the heartbeat's claims catch up with what matters.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = stop.changed() => {}
            }
        }
        self.leave().await;
    }

    /// One heartbeat: renew, drop what was lost, claim what is free.
    async fn keep(&self) {
        let mut running = self.running.lock().await;
        let sent = Instant::now();
        match self
            .ctx
            .store
            .heartbeat(&self.node, crate::cluster::lease_ms())
            .await
        {
            Ok(held) => {
                let renewed: HashMap<InboxId, i64> =
                    held.iter().map(|l| (l.inbox_id, l.epoch)).collect();
                let lost: Vec<InboxId> = running
                    .iter()
                    .filter(|(inbox, reader)| renewed.get(inbox) != reader.lease.epoch().as_ref())
                    .map(|(inbox, _)| *inbox)
                    .collect();
                for inbox in lost {
                    if let Some(reader) = running.remove(&inbox) {
                        tracing::info!(%inbox, "This node no longer holds the inbox's lease: its reader stops");
                        reader.lease.lose();
                        stop(reader).await;
                    }
                }
                for reader in running.values() {
                    reader.lease.renewed(sent);
                }
                // Held but not read here (its reader stopped by itself while the lease held):
                // read again.
                for (inbox, lease) in leases(&self.node, &held, sent) {
                    if running.get(&inbox).is_none_or(|r| r.handle.is_finished()) {
                        self.adopt(&mut running, inbox, lease).await;
                    }
                }
            }
            Err(e) => {
                // The leases lapse by themselves meanwhile (this node's clock).
                tracing::warn!(
                    "The heartbeat failed; this node's leases lapse unless the next one succeeds: {e}"
                );
            }
        }
        // Readers whose lease lapsed (the renewals failed) or that ended.
        let ended: Vec<InboxId> = running
            .iter()
            .filter(|(_, r)| !r.lease.is_valid() || r.handle.is_finished())
            .map(|(inbox, _)| *inbox)
            .collect();
        for inbox in ended {
            if let Some(reader) = running.remove(&inbox) {
                stop(reader).await;
            }
        }
        self.claim(&mut running, None).await;
    }

    /// Claims the free leases (of `only`, when given) and starts their readers; answers
    /// whether one was won.
    async fn claim(&self, running: &mut HashMap<InboxId, Running>, only: Option<InboxId>) -> bool {
        let sent = Instant::now();
        let won = match self
            .ctx
            .store
            .claim_leases(&self.node.id, crate::cluster::lease_ms(), only)
            .await
        {
            Ok(won) => won,
            Err(e) => {
                tracing::warn!("Claiming inboxes to read failed: {e}");
                return false;
            }
        };
        let any = !won.is_empty();
        for (inbox, lease) in leases(&self.node, &won, sent) {
            tracing::info!(%inbox, epoch = lease.epoch(), "This node reads the inbox now");
            self.adopt(running, inbox, lease).await;
        }
        any
    }

    /// Starts the reader of `inbox` under `lease`, when the inbox is active; else gives the
    /// lease back.
    async fn adopt(&self, running: &mut HashMap<InboxId, Running>, inbox: InboxId, lease: Lease) {
        if let Some(old) = running.remove(&inbox) {
            stop(old).await;
        }
        match self.ctx.store.find_inbox(inbox).await {
            Ok(Some(found)) if found.settings.active => {
                running.insert(inbox, self.start(inbox, lease));
            }
            Ok(_) => self.release(inbox).await,
            Err(e) => {
                tracing::warn!(%inbox, "Cannot read the inbox's settings; giving its lease back: {e}");
                self.release(inbox).await;
            }
        }
    }

    async fn release(&self, inbox: InboxId) {
        if let Err(e) = self
            .ctx
            .store
            .release_leases(&self.node.id, Some(inbox))
            .await
        {
            tracing::warn!(%inbox, "Giving the inbox's lease back failed (it expires by itself): {e}");
        }
    }

    fn start(&self, inbox: InboxId, lease: Lease) -> Running {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut ctx = self.ctx.clone();
        ctx.lease = lease.clone();
        let wake = Arc::new(tokio::sync::Notify::new());
        let reader_wake = Arc::clone(&wake);
        let handle =
            tokio::spawn(async move { run_reader(ctx, inbox, stop_rx, reader_wake).await });
        Running {
            stop: stop_tx,
            wake,
            handle,
            lease,
        }
    }

    /// What another node said (this node's own events were acted on already).
    async fn hear(&self, event: &Event) {
        match event {
            Event::InboxChanged { inbox_id, node_id } if *node_id != self.node.id => {
                if let Err(e) = self.reconcile_here(*inbox_id, false).await {
                    tracing::warn!(inbox = %inbox_id, "Following a change made on another node failed: {e:#}");
                }
            }
            Event::InboxWake { inbox_id } => {
                if let Some(reader) = self.running.lock().await.get(inbox_id) {
                    reader.wake.notify_one();
                }
            }
            _ => {}
        }
    }

    /// Makes the reader of `inbox` match its stored settings, wherever it runs: here, stops
    /// the running one and starts a fresh one when the inbox is active and this node holds
    /// (or wins) its lease; on the node that reads it, the same (an `inbox_changed` event).
    /// Call after creating or changing an inbox.
    ///
    /// # Errors
    /// When the inbox cannot be read.
    pub async fn reconcile(&self, inbox: InboxId) -> anyhow::Result<()> {
        self.reconcile_here(inbox, true).await?;
        self.ctx.bus.publish(Event::InboxChanged {
            inbox_id: inbox,
            node_id: self.node.id.clone(),
        });
        Ok(())
    }

    /// [`Readers::reconcile`] on this node; `changed_here` when the change was made on this
    /// node (which then records a turned-off inbox as stopped, whoever read it).
    async fn reconcile_here(&self, inbox: InboxId, changed_here: bool) -> anyhow::Result<()> {
        let mut running = self.running.lock().await;
        let old = running.remove(&inbox);
        let held = old.as_ref().map(|r| r.lease.clone());
        if let Some(old) = old {
            stop(old).await;
        }
        let settings = self.ctx.store.find_inbox(inbox).await?;
        let active = settings.as_ref().is_some_and(|s| s.settings.active);
        if !active {
            if held.is_some() {
                self.release(inbox).await;
            }
            if settings.is_some() && (changed_here || held.is_some()) {
                self.ctx
                    .store
                    .set_inbox_status(inbox, InboxState::Stopped, None, false)
                    .await?;
                self.ctx.bus.publish(Event::InboxStatus {
                    inbox_id: inbox,
                    state: InboxState::Stopped,
                });
            }
            return Ok(());
        }
        match held.filter(Lease::is_valid) {
            Some(lease) => {
                running.insert(inbox, self.start(inbox, lease));
            }
            // Free (a new inbox, one turned on again) or read by another node.
            None => {
                self.claim(&mut running, Some(inbox)).await;
            }
        }
        Ok(())
    }

    /// Wakes the readers of the active inboxes that read `folder` (any, when `None`) of the IMAP
    /// login `username` (case-insensitive): they sync now instead of when IDLE reports. A
    /// reader on another node is woken through an `inbox_wake` event. Returns how many were
    /// woken.
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
        for id in &matching {
            match running.get(id) {
                Some(reader) => reader.wake.notify_one(),
                None => self.ctx.bus.publish(Event::InboxWake { inbox_id: *id }),
            }
        }
        Ok(matching.len())
    }

    /// Stops every reader of this node, hands its leases over at once (telling the other
    /// nodes, which claim them without waiting for the heartbeat) and leaves the cluster.
    async fn leave(&self) {
        let released: Vec<InboxId> = {
            let mut running = self.running.lock().await;
            let mut released = Vec::new();
            for (inbox, reader) in running.drain() {
                reader.lease.lose();
                stop(reader).await;
                released.push(inbox);
            }
            released
        };
        if let Err(e) = self.ctx.store.leave_cluster(&self.node.id).await {
            tracing::warn!(
                "Handing this node's inboxes over failed (their leases expire within {} s): {e}",
                LEASE.as_secs()
            );
            return;
        }
        for inbox in released {
            self.ctx.bus.publish(Event::InboxChanged {
                inbox_id: inbox,
                node_id: self.node.id.clone(),
            });
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
    // A reader that lost its lease records nothing: another node reads the inbox.
    if !ctx.lease.is_valid() {
        return;
    }
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

/// Waits until the provider refuses `inbox`'s sign-in (heard from whichever part of this node
/// asked for a token); the provider's words.
async fn refused(
    refusals: &mut tokio::sync::broadcast::Receiver<(InboxId, String)>,
    inbox: InboxId,
) -> String {
    loop {
        match refusals.recv().await {
            Ok((id, words)) if id == inbox => return words,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The supervisor loop of one inbox: run sessions until stopped or the lease lapses, backing
/// off after failures.
async fn run_reader(
    ctx: ReaderContext,
    inbox: InboxId,
    mut stop: watch::Receiver<bool>,
    wake: Arc<tokio::sync::Notify>,
) {
    let lease = ctx.lease.clone();
    let mut backoff = BACKOFF_START;
    let mut refusals = ctx.oauth.refusals();
    loop {
        if *stop.borrow() {
            break;
        }
        // Checked first: a lapsed lease ends the session before it takes another step.
        let outcome = tokio::select! {
            biased;
            () = lease.lapsed() => break,
            _ = stop.changed() => break,
            words = refused(&mut refusals, inbox) => Err(anyhow::Error::new(
                crate::mail_oauth::TokenError::NeedsReauth(words),
            )),
            outcome = session::run_session(&ctx, inbox, &mut backoff, &wake) => outcome,
        };
        let error = match outcome {
            // The session ended to sign in again with a renewed OAuth2 token.
            Ok(()) => continue,
            Err(error) => error,
        };
        if matches!(
            error.downcast_ref::<postdesk_store::StoreError>(),
            Some(postdesk_store::StoreError::LeaseLost(_))
        ) {
            lease.lose();
        }
        if !lease.is_valid() {
            break;
        }
        if let Some(
            crate::mail_oauth::TokenError::NeedsReauth(words)
            | crate::mail_oauth::TokenError::NotConnected(words),
        ) = error.downcast_ref::<crate::mail_oauth::TokenError>()
        {
            // No retrying: the provider said no. The reader waits here, its watermark kept,
            // until the inbox is connected again (which restarts it) or stopped.
            tracing::warn!(%inbox, "IMAP reader waits for the inbox to be connected again: {words}");
            record_state(&ctx, inbox, InboxState::NeedsReauth, Some(words), false).await;
            tokio::select! {
                () = lease.lapsed() => {}
                _ = stop.changed() => {}
            }
            break;
        }
        let message = format!("{error:#}");
        tracing::warn!(%inbox, "IMAP reader failed, retrying in {}s: {message}", backoff.as_secs());
        record_state(&ctx, inbox, InboxState::Error, Some(&message), false).await;
        let wait = jittered(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = lease.lapsed() => break,
            _ = stop.changed() => break,
        }
    }
    if !lease.is_valid() {
        tracing::info!(%inbox, "This node's lease of the inbox lapsed: its reader stopped");
    }
}

/// `base` plus up to a quarter more, so many readers failing together do not retry together.
fn jittered(base: Duration) -> Duration {
    use rand::Rng as _;
    base + base.mul_f64(rand::thread_rng().gen_range(0.0..0.25))
}

pub(crate) const FIRST_BACKOFF: Duration = BACKOFF_START;
