//! `GET /api/v1/events`: Server-Sent Events. Each event is `id: N`, `event: <kind>`, `data:
//! {json}`; a reconnecting client sends `Last-Event-ID` and gets what it missed, or a `resync`
//! event when that is no longer kept. A comment every 15 s keeps proxies from closing the stream.
//!
//! A user hears what the access policy lets them read, plus the queue events of their
//! departments. The facts an event is judged by are looked up once per event and shared by
//! all listeners ([`crate::bus::Envelope::scope`]), and so is what the event carries beyond
//! ids: the conversation as the lists show it, and the message ([`crate::bus::Envelope::data`]),
//! so that a client patches its lists instead of fetching them again. A stream ends when its session does
//! (logout, revocation, password change or reset, deactivation: at once on this node, and
//! within one heartbeat on any node), and each user may have only so many open.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};
use postdesk_core::access::{self, Action, Actor, Rule};
use postdesk_core::event::Event;
use postdesk_core::ids::{SessionId, UserId};
use postdesk_core::model::Role;
use postdesk_store::Store;
use serde_json::json;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::conversations::{ConversationOut, MessageOut};
use super::error::ErrorBody;
use super::limits::StreamSlot;
use super::policy::Route;
use super::session::Ended;
use super::{ApiError, AppState, AuthUser};
use crate::bus::Envelope;

/// Interval of the keep-alive comment, and of the check that the session is still valid.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/events", Rule::SignedIn, events)]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(events))]
pub(super) struct Api;

/// The event as sent: its fields, plus what changed, so a client patches its lists instead of
/// fetching them: `conversation` (as `GET /conversations` shows it; null when it no longer
/// exists) for an event about a conversation, and `message` for one about a message. Looked
/// up once per event, by the first listener that hears it ([`Envelope::data`]).
async fn sse(store: &Store, envelope: &Envelope) -> SseEvent {
    let data = envelope
        .data
        .get_or_init(|| async {
            let mut data = serde_json::to_value(&envelope.event).unwrap_or_else(|_| json!({}));
            // A presence names its conversation by id alone: it is repeated every few
            // seconds, and looking the conversation up each time would cost for nothing.
            if let Some(id) = envelope
                .event
                .conversation_id()
                .filter(|_| !matches!(envelope.event, Event::Presence { .. }))
            {
                let conversation = store.find_conversation(id).await.ok().flatten();
                data["conversation"] = json!(conversation.as_ref().map(ConversationOut::from));
            }
            if let Event::MessageCreated { message_id, .. }
            | Event::DeliveryUpdated { message_id, .. } = &envelope.event
            {
                let message = store.find_message(*message_id).await.ok().flatten();
                data["message"] = json!(message.as_ref().map(MessageOut::from));
            }
            data.to_string()
        })
        .await;
    SseEvent::default()
        .id(envelope.id.to_string())
        .event(envelope.event.kind())
        .data(data.as_str())
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
    actor: Actor,
}

impl Audience {
    async fn hears(&self, envelope: &Envelope) -> bool {
        let event = &envelope.event;
        if event.is_internal() {
            return false;
        }
        let Some(conversation) = event.conversation_id() else {
            return match event {
                Event::InboxStatus { .. } => {
                    self.actor.is(Role::Admin) || self.actor.is(Role::Manager)
                }
                _ => true,
            };
        };
        let scope = envelope
            .scope
            .get_or_init(|| async {
                self.store
                    .conversation_scope(conversation)
                    .await
                    .ok()
                    .flatten()
            })
            .await;
        let Some(scope) = scope else {
            return false;
        };
        // The queue of one's departments: hear it arrive and leave (a transfer into a
        // department's queue is heard by that department's agents).
        let queue_event = matches!(
            event,
            Event::ConversationQueued { .. }
                | Event::ConversationTaken { .. }
                | Event::ConversationTransferred { .. }
        );
        // Whoever had a transferred conversation hears it leave, though they may no longer
        // read it.
        let handed_over = matches!(
            event,
            Event::ConversationTransferred { previous_assignee_id: Some(previous), .. }
                if *previous == self.actor.id
        );
        access::decide(&self.actor, Action::Read, scope).is_ok()
            || (queue_event && self.actor.covers(scope.department))
            || handed_over
    }
}

/// One open stream and everything that can end it.
struct Listener {
    receiver: broadcast::Receiver<Arc<Envelope>>,
    ends: broadcast::Receiver<Ended>,
    audience: Audience,
    session: SessionId,
    user: UserId,
    check: tokio::time::Interval,
    /// Holds the user's place among their open streams until the stream is dropped.
    _slot: StreamSlot,
}

impl Listener {
    async fn still_valid(&self) -> bool {
        // Fails closed: a stream whose session cannot be checked ends, and the browser
        // reconnects (signing in again if it must).
        self.audience
            .store
            .session_is_valid(self.session)
            .await
            .unwrap_or(false)
    }

    /// The next event to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            tokio::select! {
                got = self.receiver.recv() => match got {
                    Ok(envelope) => {
                        if self.audience.hears(&envelope).await {
                            return Some(sse(&self.audience.store, &envelope).await);
                        }
                    }
                    Err(RecvError::Lagged(missed)) => return Some(resync(missed)),
                    Err(RecvError::Closed) => return None,
                },
                ended = self.ends.recv() => match ended {
                    Ok(Ended::Session(id)) if id == self.session => return None,
                    Ok(Ended::User(user)) if user == self.user && !self.still_valid().await => {
                        return None;
                    }
                    Err(RecvError::Lagged(_)) if !self.still_valid().await => return None,
                    Err(RecvError::Closed) => return None,
                    _ => {}
                },
                _ = self.check.tick() => {
                    if !self.still_valid().await {
                        return None;
                    }
                }
            }
        }
    }
}

/// One event of the stream, by its Server-Sent Events fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Sent by `sse`, described here.
struct StreamEvent {
    /// `conversation_queued`, `message_created`, … `resync` (`docs/api.md`, Events).
    event: String,
    /// Its number, for `Last-Event-ID` (none on `resync`).
    #[schema(nullable = false)]
    id: Option<String>,
    /// The event as a JSON object: its `kind`, the ids it names, and `conversation` and
    /// `message` as the other calls show them.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The live events a user may hear, as Server-Sent Events: each with an `id`, an `event`
/// name and JSON `data` (`docs/api.md`, Events). Send `Last-Event-ID` to receive what was
/// missed; a comment every 15 s keeps the stream open. It ends when the session does.
#[utoipa::path(get, path = "/events",
    params(("Last-Event-ID" = Option<u64>, Header, description = "The last event received, to resume from")),
    responses(
        (status = 200, description = "The stream; the schema is that of each event", content_type = "text/event-stream", body = StreamEvent),
        (status = 429, description = "Too many streams open for this user", body = ErrorBody),
    ))]
async fn events(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let max = state.settings.max_event_streams;
    let slot = state.streams.open(auth.user.id, max).ok_or_else(|| ApiError::TooManyRequests {
        message: format!(
            "You already have {max} live connections open (postdesk tabs or windows): close one to open another"
        ),
        retry_after: None,
    })?;
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let ends = state.ends.subscribe();
    let (replay, receiver) = state.bus.subscribe(last_seen);
    let audience = Audience {
        store: state.store.clone(),
        actor: auth.actor(),
    };
    let mut head: Vec<SseEvent> = Vec::new();
    match replay {
        Some(missed) => {
            for envelope in missed {
                if audience.hears(&envelope).await {
                    head.push(sse(&audience.store, &envelope).await);
                }
            }
        }
        // Too far behind to replay: the client refetches everything.
        None => head.push(resync(0)),
    }
    let mut check = tokio::time::interval(HEARTBEAT);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.reset();
    let listener = Listener {
        receiver,
        ends,
        audience,
        session: auth.session.id,
        user: auth.user.id,
        check,
        _slot: slot,
    };
    let live = futures::stream::unfold(listener, |mut listener| async move {
        listener.next().await.map(|event| (event, listener))
    });
    let mut stopping = state.stopping.subscribe();
    let stopped = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let stream = futures::stream::iter(head)
        .chain(live)
        .take_until(stopped)
        .map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

#[cfg(test)]
mod tests {
    use postdesk_core::access::ConversationScope;
    use postdesk_core::ids::{ConversationId, DepartmentId, MessageId};
    use postdesk_core::model::ConversationStatus;
    use serde_json::Value;

    use super::*;

    fn actor(id: i64, departments: &[i64]) -> Actor {
        Actor {
            id: UserId(id),
            roles: vec![Role::Agent],
            departments: departments.iter().copied().map(DepartmentId).collect(),
        }
    }

    /// A store with nothing in it (and the folder that keeps it).
    async fn empty_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        (dir, store)
    }

    /// Event `id`: message 9 was added to conversation 7 (neither exists).
    fn message_created(id: u64) -> Envelope {
        Envelope::new(
            id,
            Event::MessageCreated {
                conversation_id: ConversationId(7),
                message_id: MessageId(9),
            },
        )
    }

    #[tokio::test]
    async fn an_events_facts_are_looked_up_once_for_every_listener() {
        let (_dir, store) = empty_store().await;
        let envelope = message_created(1);
        // The first listener's lookup: conversation 7 does not exist, so nobody hears it.
        let first = Audience {
            store: store.clone(),
            actor: actor(1, &[1]),
        };
        assert!(!first.hears(&envelope).await);
        assert_eq!(envelope.scope.get(), Some(&None), "looked up and kept");

        // Facts kept on the envelope; the database gone: a thousand more listeners decide
        // from what is kept, none of them asks the database (it would fail).
        let envelope = Envelope {
            id: 2,
            event: envelope.event.clone(),
            scope: tokio::sync::OnceCell::new_with(Some(Some(ConversationScope {
                status: ConversationStatus::Open,
                department: Some(DepartmentId(1)),
                assignee: Some(UserId(1)),
                invited: vec![UserId(2)],
            }))),
            data: tokio::sync::OnceCell::new(),
        };
        store.close().await;
        let mut heard = 0;
        for listener in 0..1000 {
            let who = actor(listener % 4, &[1]);
            let audience = Audience {
                store: store.clone(),
                actor: who,
            };
            if audience.hears(&envelope).await {
                heard += 1;
            }
        }
        assert_eq!(
            heard, 500,
            "the assignee (1) and the invited agent (2) of every four"
        );
    }

    #[tokio::test]
    async fn what_an_event_carries_is_looked_up_once_for_every_listener() {
        let (_dir, store) = empty_store().await;
        let envelope = message_created(3);
        // The first listener looks up the conversation and the message: both gone.
        let _ = sse(&store, &envelope).await;
        let data: Value = serde_json::from_str(envelope.data.get().unwrap()).unwrap();
        assert_eq!(
            data,
            json!({
                "kind": "message_created",
                "conversation_id": 7,
                "message_id": 9,
                "conversation": null,
                "message": null,
            })
        );

        // The database gone, a thousand more listeners send what was kept (a lookup would
        // fail, and the data would differ).
        let kept = envelope.data.get().unwrap().clone();
        store.close().await;
        for _ in 0..1000 {
            let _ = sse(&store, &envelope).await;
        }
        assert_eq!(envelope.data.get(), Some(&kept));

        // An event about no conversation carries its own fields only.
        let status = Envelope::new(
            4,
            Event::InboxStatus {
                inbox_id: postdesk_core::ids::InboxId(1),
                state: postdesk_core::model::InboxState::Idle,
            },
        );
        let _ = sse(&store, &status).await;
        let data: Value = serde_json::from_str(status.data.get().unwrap()).unwrap();
        assert!(data.get("conversation").is_none(), "{data}");
    }
}
