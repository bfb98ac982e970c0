//! `GET /api/v1/events`: Server-Sent Events. Each event is `id: N`, `event: <kind>`, `data:
//! {json}`; a reconnecting client sends `Last-Event-ID` and gets what it missed, or a `resync`
//! event when that is no longer kept. A comment every 15 s keeps proxies from closing the stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt as _};
use postdesk_core::event::Event;
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

async fn events(
    State(state): State<AppState>,
    _auth: AuthUser,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (replay, receiver) = state.bus.subscribe(last_seen);
    let head: Vec<SseEvent> = match replay {
        Some(missed) => missed.iter().map(|e| sse(e)).collect(),
        // Too far behind to replay: the client refetches everything.
        None => vec![resync(0)],
    };
    let live = futures::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(envelope) => Some((sse(&envelope), receiver)),
            Err(RecvError::Lagged(missed)) => Some((resync(missed), receiver)),
            Err(RecvError::Closed) => None,
        }
    });
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
