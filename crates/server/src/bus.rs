//! The event bus. Every committed change is published here; each Server-Sent Events
//! connection subscribes. Events are numbered so a reconnecting browser can resume with
//! `Last-Event-ID` from the recent history kept here; one too far behind gets a `resync`.
//!
//! On SQLite (one node) the bus is this process's alone: publishing numbers the event and
//! hands it to the listeners at once.
//!
//! On PostgreSQL (several nodes) every node hears every event, in one order with the same ids:
//! publishing queues the event for this node's writer task, which appends what is queued to
//! the database's shared event log in order and wakes every node (`NOTIFY`). Each node's
//! delivery task listens, fetches what came after the last id it delivered, in id order, and
//! hands it to its listeners. The ids are the log's, so `Last-Event-ID` resumes on any node.
//! A lost listening connection is made again and what came meanwhile is fetched (no gap); a
//! look every [`POLL`] covers a notice lost anyway. A node starts with the log's last
//! [`HISTORY`] events as its history. The writer prunes the log to the last
//! [`KEEP_EVENTS`] events of the last [`KEEP_FOR`].
//!
//! Either way publishing never waits, and happens only after the change is committed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postdesk_core::event::Event;
use postdesk_store::{Backend, StoreError, StoredEvent};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How many recent events are kept for `Last-Event-ID` resume.
pub const HISTORY: usize = 1024;

/// How often a node looks in the shared log without being woken.
pub const POLL: Duration = Duration::from_secs(5);

/// How many events the shared log keeps, at most.
pub const KEEP_EVENTS: i64 = 10_000;

/// How long the shared log keeps an event, at most.
pub const KEEP_FOR: Duration = Duration::from_secs(60 * 60);

/// How often the writer prunes the shared log.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Most events written in one transaction.
const WRITE_BATCH: usize = 500;

/// How long a failed write or listen waits before it is tried again, at most.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How long stopping waits for the queued events to be written.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A numbered event.
#[derive(Debug)]
pub struct Envelope {
    /// Increasing id, the SSE `id:`.
    pub id: u64,
    /// The event.
    pub event: Event,
    /// The access facts of the event's conversation, looked up once by the first listener
    /// that needs them and shared by every other: the cost of an event does not grow with
    /// the number of listeners beyond sending it to them.
    pub scope: tokio::sync::OnceCell<Option<postdesk_core::access::ConversationScope>>,
    /// The SSE `data` of the event: the event's fields, plus what changed (the conversation
    /// as the lists show it, the message), looked up once by the first listener that hears
    /// it and sent as it is to every other.
    pub data: tokio::sync::OnceCell<String>,
}

impl Envelope {
    /// Event `id`, with nothing looked up yet.
    #[must_use]
    pub fn new(id: u64, event: Event) -> Self {
        Self {
            id,
            event,
            scope: tokio::sync::OnceCell::new(),
            data: tokio::sync::OnceCell::new(),
        }
    }
}

/// The next id and the recent history, under one lock so ids and order agree.
#[derive(Debug)]
struct History {
    /// The id of the next event: on PostgreSQL, one above the last one delivered.
    next: u64,
    recent: VecDeque<Arc<Envelope>>,
}

/// What the writer task is handed.
#[derive(Debug)]
enum Outgoing {
    Event(Event),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// The PostgreSQL side: the writer's queue and the tasks.
#[derive(Debug)]
struct Shared {
    store: postdesk_store::Store,
    queue: mpsc::UnboundedSender<Outgoing>,
    /// The writer's end of the queue, until [`Bus::start`] hands it over.
    pending: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

#[derive(Debug)]
struct Inner {
    sender: broadcast::Sender<Arc<Envelope>>,
    /// A std mutex: it is held for a push, never across an await.
    state: Mutex<History>,
    shared: Option<Shared>,
}

/// Fan-out of events to every listener (of every node, on PostgreSQL).
#[derive(Debug, Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus of this process alone, with no listeners.
    #[must_use]
    pub fn new() -> Self {
        Self::with(None)
    }

    /// The bus for `store`: shared by every node on PostgreSQL (nothing is delivered before
    /// [`Bus::start`]), this process's alone on SQLite.
    #[must_use]
    pub fn for_store(store: &postdesk_store::Store) -> Self {
        if store.backend() != Backend::Postgres {
            return Self::new();
        }
        let (queue, pending) = mpsc::unbounded_channel();
        Self::with(Some(Shared {
            store: store.clone(),
            queue,
            pending: Mutex::new(Some(pending)),
            tasks: Mutex::new(Vec::new()),
            stop: watch::channel(false).0,
        }))
    }

    fn with(shared: Option<Shared>) -> Self {
        let (sender, _) = broadcast::channel(HISTORY);
        Self {
            inner: Arc::new(Inner {
                sender,
                state: Mutex::new(History {
                    next: 1,
                    recent: VecDeque::with_capacity(HISTORY),
                }),
                shared,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, History> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// On PostgreSQL: starts listening to the shared log (from its end, with its last events
    /// as history) and writing to it. Nothing on SQLite. Call once.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn start(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let Some(shared) = &self.inner.shared else {
            return Ok(());
        };
        let Some(pending) = lock(&shared.pending).take() else {
            return Ok(());
        };
        // Listening first: what is added after the log's end is read below is heard.
        let listener = shared
            .store
            .listen_for_events()
            .await
            .context("Cannot listen for the other nodes' events")?;
        let (latest, last) = shared
            .store
            .latest_events(HISTORY)
            .await
            .context("Cannot read the shared event log")?;
        {
            let mut state = self.state();
            for stored in latest {
                if let Some(envelope) = envelope_of(stored) {
                    state.recent.push_back(Arc::new(envelope));
                }
            }
            state.next = id_of(last) + 1;
        }
        let (wake, woken) = mpsc::channel(1);
        let listening = tokio::spawn(listen(listener, wake, shared.stop.subscribe()));
        let delivery = tokio::spawn(self.clone().deliver(woken, shared.stop.subscribe()));
        let writer = tokio::spawn(write(
            shared.store.clone(),
            pending,
            shared.stop.subscribe(),
        ));
        lock(&shared.tasks).extend([listening, delivery, writer]);
        Ok(())
    }

    /// Writes what is queued (waiting at most [`FLUSH_TIMEOUT`]) and stops the tasks of
    /// [`Bus::start`]. Nothing on SQLite.
    pub async fn stop(&self) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        if tokio::time::timeout(FLUSH_TIMEOUT, self.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                "Events not written to the database within {} s are lost",
                FLUSH_TIMEOUT.as_secs()
            );
        }
        let _ = shared.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = lock(&shared.tasks).drain(..).collect();
        for mut task in tasks {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Waits until every event published so far is written to the shared log (at once on
    /// SQLite, and when the writer is not running).
    pub async fn flush(&self) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        if lock(&shared.tasks).is_empty() {
            return;
        }
        let (done, written) = oneshot::channel();
        if shared.queue.send(Outgoing::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }

    /// Publishes `event`; call only after the change is committed.
    pub fn publish(&self, event: Event) {
        if let Some(shared) = &self.inner.shared {
            if shared.queue.send(Outgoing::Event(event)).is_err() {
                tracing::warn!("An event was published after the event writer stopped");
            }
            return;
        }
        let mut state = self.state();
        let envelope = Arc::new(Envelope::new(state.next, event));
        state.next += 1;
        self.remember(&mut state, envelope);
    }

    /// Keeps `envelope` in the history and hands it to the listeners.
    fn remember(&self, state: &mut History, envelope: Arc<Envelope>) {
        if state.recent.len() == HISTORY {
            state.recent.pop_front();
        }
        state.recent.push_back(envelope.clone());
        // No listener is fine: nobody is watching.
        let _ = self.inner.sender.send(envelope);
    }

    /// Subscribes, first replaying what came after `last_seen` (when still in the history).
    /// Returns the replay, and `None` in place of it when `last_seen` is too old to resume.
    #[must_use]
    pub fn subscribe(
        &self,
        last_seen: Option<u64>,
    ) -> (
        Option<Vec<Arc<Envelope>>>,
        broadcast::Receiver<Arc<Envelope>>,
    ) {
        let state = self.state();
        let receiver = self.inner.sender.subscribe();
        let replay = match last_seen {
            None => Some(Vec::new()),
            Some(seen) => {
                let oldest = state.recent.front().map_or(state.next, |e| e.id);
                if seen.saturating_add(1) < oldest {
                    None
                } else {
                    Some(
                        state
                            .recent
                            .iter()
                            .filter(|e| e.id > seen)
                            .cloned()
                            .collect(),
                    )
                }
            }
        };
        (replay, receiver)
    }

    /// The delivery task (PostgreSQL): hands every event of the shared log to this node's
    /// listeners, in id order, until stopped: when `woken`, and every [`POLL`].
    async fn deliver(self, mut woken: mpsc::Receiver<()>, mut stop: watch::Receiver<bool>) {
        let Some(shared) = &self.inner.shared else {
            return;
        };
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(e) = self.catch_up(&shared.store).await {
                tracing::warn!("Reading the shared event log failed (trying again): {e}");
            }
            tokio::select! {
                _ = woken.recv() => {}
                _ = poll.tick() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Delivers what the shared log holds after the last event delivered.
    async fn catch_up(&self, store: &postdesk_store::Store) -> Result<(), StoreError> {
        loop {
            let after = i64::try_from(self.state().next.saturating_sub(1)).unwrap_or(i64::MAX);
            let page = store.events_after(after, WRITE_BATCH).await?;
            let full = page.len() == WRITE_BATCH;
            let mut state = self.state();
            for stored in page {
                let id = id_of(stored.id);
                if id < state.next {
                    continue;
                }
                state.next = id + 1;
                if let Some(envelope) = envelope_of(stored) {
                    self.remember(&mut state, Arc::new(envelope));
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn id_of(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

/// The stored event, or `None` (logged) when this version cannot read it: one written by a
/// newer node during an upgrade is skipped, not stopping the others.
fn envelope_of(stored: StoredEvent) -> Option<Envelope> {
    match serde_json::from_str::<Event>(&stored.event) {
        Ok(event) => Some(Envelope::new(id_of(stored.id), event)),
        Err(e) => {
            tracing::warn!(
                id = stored.id,
                "Skipping an event this version cannot read: {e}"
            );
            None
        }
    }
}

/// The listening task (PostgreSQL): wakes the delivery task at every notice, and when the
/// connection was lost and made again (notices may have been missed), until stopped. A task of
/// its own, so that waiting for a notice is never cut short by anything else.
async fn listen(
    mut listener: postdesk_store::EventListener,
    wake: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry = Duration::from_millis(100);
    loop {
        tokio::select! {
            woken = listener.wait() => match woken {
                Ok(notice) => {
                    if !notice {
                        tracing::info!("Listening for the other nodes' events again after a lost connection");
                    }
                    retry = Duration::from_millis(100);
                    // A wake already waiting covers this one.
                    let _ = wake.try_send(());
                }
                Err(e) => {
                    tracing::warn!("Cannot listen for the other nodes' events (trying again in {} ms): {e}", retry.as_millis());
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        _ = stop.changed() => return,
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// The writer task (PostgreSQL): appends the queued events to the shared log in the order
/// published, as many at a time as are waiting, trying again while the database fails; and
/// prunes the log now and then.
async fn write(
    store: postdesk_store::Store,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            got = queue.recv() => match got {
                Some(first) => first,
                None => return,
            },
            _ = prune.tick() => {
                let keep_for = i64::try_from(KEEP_FOR.as_millis()).unwrap_or(i64::MAX);
                if let Err(e) = store.prune_events(KEEP_EVENTS, keep_for).await {
                    tracing::warn!("Pruning the shared event log failed: {e}");
                }
                continue;
            }
            _ = stop.changed() => return,
        };
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for item in batch {
            match item {
                Outgoing::Event(event) => match serde_json::to_string(&event) {
                    Ok(json) => events.push(json),
                    Err(e) => tracing::warn!("An event cannot be written: {e}"),
                },
                Outgoing::Flush(done) => flushes.push(done),
            }
        }
        let mut retry = Duration::from_millis(100);
        while let Err(e) = store.append_events(&events).await {
            tracing::warn!(
                "Writing {} event(s) to the database failed (trying again in {} ms): {e}",
                events.len(),
                retry.as_millis()
            );
            tokio::select! {
                () = tokio::time::sleep(retry) => {}
                _ = stop.changed() => return,
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postdesk_core::ids::ConversationId;

    fn closed(id: i64) -> Event {
        Event::ConversationClosed {
            conversation_id: ConversationId(id),
        }
    }

    #[tokio::test]
    async fn listeners_get_events_in_order_and_can_resume() {
        let bus = Bus::new();
        let (_, mut live) = bus.subscribe(None);
        bus.publish(closed(1));
        bus.publish(closed(2));
        assert_eq!(live.recv().await.unwrap().id, 1);
        assert_eq!(live.recv().await.unwrap().id, 2);
        let (replay, _) = bus.subscribe(Some(1));
        let replay = replay.unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].event, closed(2));
    }

    #[test]
    fn a_listener_too_far_behind_is_told_to_resync() {
        let bus = Bus::new();
        for i in 0..(HISTORY as i64 + 10) {
            bus.publish(closed(i));
        }
        assert!(bus.subscribe(Some(3)).0.is_none());
        assert_eq!(bus.subscribe(Some(HISTORY as u64 + 5)).0.unwrap().len(), 5);
    }
}
