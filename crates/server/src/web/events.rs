//! `GET /api/v1/events`: Server-Sent Events. Each event is `id: N`, `event: <kind>`, `data:
//! {json}`; a reconnecting client sends `Last-Event-ID` and gets what it missed, or a `resync`
//! event when that is no longer kept. A comment every 15 s keeps proxies from closing the stream.
//!
//! An agent hears what they may see: the queue's events (new, taken) and the events of
//! conversations they can read (queued ones, and those they are a member of). Admins and
//! managers hear everything.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use std::collections::HashSet;

use futures::{Stream, StreamExt as _};
use postdesk_core::event::Event;
use postdesk_core::ids::ConversationId;
use postdesk_core::model::ConversationStatus;
use postdesk_store::{Store, User};
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, AuthUser};
use crate::bus::Envelope;

/// Interval of the keep-alive comment.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

fn sse(envelope: &Envelope) -> SseEvent {
    SseEvent::default()
        .id(envelope.id.to_string())
        .event(envelope.event.kind())
        .data(serde_json::to_string(&envelope.event).unwrap_or_else(|_| "{}".into()))
}

fn resync(missed: u64) -> SseEvent {
    let event = Event::Resync { missed };
    SseEvent::default()
        .event(event.kind())
        .data(serde_json::to_string(&event).unwrap_or_default())
}

/// Decides which events one listener hears.
struct Audience {
    store: Store,
    user: User,
    /// Conversations the user is known to be a member of; membership only ever grows.
    member_of: HashSet<ConversationId>,
}

impl Audience {
    async fn hears(&mut self, event: &Event) -> bool {
        if self.user.reads_all() {
            return true;
        }
        let conversation = match event {
            Event::ConversationQueued { .. }
            | Event::ConversationTaken { .. }
            | Event::InboxStatus { .. }
            | Event::Resync { .. } => {
                return true;
            }
            Event::MemberAdded {
                conversation_id,
                user_id,
            } if *user_id == self.user.id => {
                self.member_of.insert(*conversation_id);
                return true;
            }
            other => match other.conversation_id() {
                Some(id) => id,
                None => return true,
            },
        };
        if self.member_of.contains(&conversation) {
            return true;
        }
        if self
            .store
            .is_member(conversation, self.user.id)
            .await
            .unwrap_or(false)
        {
            self.member_of.insert(conversation);
            return true;
        }
        matches!(
            self.store.find_conversation(conversation).await,
            Ok(Some(c)) if c.status == ConversationStatus::Queued
        )
    }
}

async fn events(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (replay, receiver) = state.bus.subscribe(last_seen);
    let mut audience = Audience {
        store: state.store.clone(),
        user: auth.user,
        member_of: HashSet::new(),
    };
    let mut head: Vec<SseEvent> = Vec::new();
    match replay {
        Some(missed) => {
            for envelope in missed {
                if audience.hears(&envelope.event).await {
                    head.push(sse(&envelope));
                }
            }
        }
        // Too far behind to replay: the client refetches everything.
        None => head.push(resync(0)),
    }
    let live = futures::stream::unfold(
        (receiver, audience),
        |(mut receiver, mut audience)| async move {
            loop {
                match receiver.recv().await {
                    Ok(envelope) => {
                        if audience.hears(&envelope.event).await {
                            return Some((sse(&envelope), (receiver, audience)));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        return Some((resync(missed), (receiver, audience)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let mut stopping = state.stopping.subscribe();
    let stopped = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let stream = futures::stream::iter(head)
        .chain(live)
        .take_until(stopped)
        .map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT))
}
