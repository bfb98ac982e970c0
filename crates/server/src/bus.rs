//! The in-process event bus. Every committed change is published here; each Server-Sent Events
//! connection subscribes. Events are numbered so a reconnecting browser can resume with
//! `Last-Event-ID` from the recent history kept here; one too far behind gets a `resync`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use postdesk_core::event::Event;
use tokio::sync::broadcast;

/// How many recent events are kept for `Last-Event-ID` resume.
const HISTORY: usize = 1024;

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

/// Fan-out of events to every listener.
#[derive(Debug, Clone)]
pub struct Bus {
    sender: broadcast::Sender<Arc<Envelope>>,
    /// The next id and the recent history, under one lock so ids and order agree. A std
    /// mutex: it is held for a push, never across an await.
    state: Arc<Mutex<(u64, VecDeque<Arc<Envelope>>)>>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus with no listeners.
    #[must_use]
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(HISTORY);
        Self {
            sender,
            state: Arc::new(Mutex::new((1, VecDeque::with_capacity(HISTORY)))),
        }
    }

    /// Publishes `event`; call only after the change is committed.
    pub fn publish(&self, event: Event) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let envelope = Arc::new(Envelope::new(state.0, event));
        state.0 += 1;
        if state.1.len() == HISTORY {
            state.1.pop_front();
        }
        state.1.push_back(envelope.clone());
        // No listener is fine: nobody is watching.
        let _ = self.sender.send(envelope);
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
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let receiver = self.sender.subscribe();
        let replay = match last_seen {
            None => Some(Vec::new()),
            Some(seen) => {
                let oldest = state.1.front().map_or(state.0, |e| e.id);
                if seen.saturating_add(1) < oldest {
                    None
                } else {
                    Some(state.1.iter().filter(|e| e.id > seen).cloned().collect())
                }
            }
        };
        (replay, receiver)
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
