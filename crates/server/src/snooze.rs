//! Snooze wake-ups: a snoozed conversation is `open` again with its assignee when its time
//! comes ("Snooze ended"). The contact's email ends a snooze earlier (that is ingest's).
//!
//! Each node runs this task. Waking is one conditional `UPDATE` in the database
//! ([`Store::wake_snoozed`]), so with several nodes each conversation is woken exactly once,
//! by whichever node comes first. Between wake-ups the task sleeps until the earliest snooze
//! ends, and at most [`LONGEST_SLEEP`]; a snooze set on any node (a `conversation_snoozed`
//! event on the bus, which on PostgreSQL carries every node's events) makes it look again at
//! once, so an earlier end is not slept past.

use std::time::Duration;

use postdesk_core::event::Event;
use postdesk_store::{Store, StoreError, now_ms};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::bus::Bus;

/// The longest the task sleeps: the bound on how late a snooze set on another node, whose
/// own task has stopped, is woken.
pub const LONGEST_SLEEP: Duration = Duration::from_secs(60);

/// How long the task waits after the database failed, before trying again.
const RETRY: Duration = Duration::from_secs(5);

/// Wakes what is due now and publishes each wake-up. Returns how many were woken.
///
/// # Errors
/// When the database fails; nothing is woken then.
pub async fn wake_due(store: &Store, bus: &Bus) -> Result<usize, StoreError> {
    let woken = store.wake_snoozed(now_ms()).await?;
    for w in &woken {
        bus.publish(Event::ConversationResumed {
            conversation_id: w.conversation_id,
        });
        bus.publish(Event::MessageCreated {
            conversation_id: w.conversation_id,
            message_id: w.message_id,
        });
    }
    Ok(woken.len())
}

/// How long to sleep before the next wake-up.
async fn next_wait(store: &Store) -> Duration {
    match store.next_snooze_end().await {
        Ok(Some(at)) => {
            Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(LONGEST_SLEEP)
        }
        Ok(None) => LONGEST_SLEEP,
        Err(e) => {
            tracing::warn!("Snooze: cannot read when the next snooze ends: {e}");
            RETRY
        }
    }
}

/// Wakes due snoozes now and then as each ends, until `stop` turns true.
pub async fn run_until_stopped(store: Store, bus: Bus, mut stop: watch::Receiver<bool>) {
    let (_, mut events) = bus.subscribe(None);
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = match wake_due(&store, &bus).await {
            Ok(_) => next_wait(&store).await,
            Err(e) => {
                tracing::warn!("Snooze: waking the conversations due failed: {e}; trying again");
                RETRY
            }
        };
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                _ = stop.changed() => return,
                got = events.recv() => match got {
                    Ok(envelope) if matches!(envelope.event, Event::ConversationSnoozed { .. }) => break,
                    // Missed events may have held a snooze: look again.
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                    Ok(_) => {}
                },
            }
        }
    }
}
