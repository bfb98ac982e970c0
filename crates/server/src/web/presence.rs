//! Who else is in a conversation: agents viewing it or typing in it, shown live so that two
//! agents do not answer the same email unknowingly (the send-time collision check in
//! [`crate::outbox::Outbox::reply`] catches what slips through).
//!
//! Presence is what the agents' pages repeat (`viewing` every few seconds while open,
//! `typing` while they write); it lives in this node's memory for
//! [`PRESENCE_TTL_SECONDS`] after the last repeat, and every report is published as a
//! `presence` event to those who may read the conversation. Nothing of it is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use postdesk_core::access::{Action, Rule};
use postdesk_core::event::{Event, PRESENCE_TTL_SECONDS};
use postdesk_core::ids::{ConversationId, UserId};
use postdesk_core::model::Presence as State_;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiJson, ErrorBody};
use super::policy::{Allowed, Route};
use super::{ApiError, AppState, AuthUser};

pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get(
            "/conversations/{id}/presence",
            Rule::Conversation(Action::Read),
            show,
        ),
        Route::post(
            "/conversations/{id}/presence",
            Rule::Conversation(Action::Read),
            report,
        ),
    ]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show, report))]
pub(super) struct Api;

/// Who is in one conversation: each agent's presence and when they last reported it.
type Here = HashMap<UserId, (State_, Instant)>;

/// The presences of this node's agents, per conversation.
#[derive(Debug, Clone, Default)]
pub struct Presences {
    inner: Arc<Mutex<HashMap<ConversationId, Here>>>,
}

impl Presences {
    /// Records `user`'s `state` in `conversation` (`left` forgets them); drops what expired.
    pub fn set(&self, conversation: ConversationId, user: UserId, state: State_, now: Instant) {
        let mut all = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ttl = Duration::from_secs(PRESENCE_TTL_SECONDS);
        all.retain(|_, users| {
            users.retain(|_, (_, at)| now.duration_since(*at) < ttl);
            !users.is_empty()
        });
        let users = all.entry(conversation).or_default();
        if state == State_::Left {
            users.remove(&user);
        } else {
            users.insert(user, (state, now));
        }
        if users.is_empty() {
            all.remove(&conversation);
        }
    }

    /// Who is in `conversation` now and doing what, by user id.
    #[must_use]
    pub fn of(&self, conversation: ConversationId, now: Instant) -> Vec<(UserId, State_)> {
        let all = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ttl = Duration::from_secs(PRESENCE_TTL_SECONDS);
        let mut found: Vec<(UserId, State_)> = all
            .get(&conversation)
            .into_iter()
            .flatten()
            .filter(|(_, (_, at))| now.duration_since(*at) < ttl)
            .map(|(user, (state, _))| (*user, *state))
            .collect();
        found.sort_by_key(|(user, _)| user.0);
        found
    }
}

/// What the signed-in agent is doing in the conversation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PresenceForm {
    /// `viewing`, `typing` or `left` (another word is 422).
    #[schema(value_type = State_)]
    state: String,
}

/// An agent in the conversation.
#[derive(Debug, Serialize, ToSchema)]
struct AgentPresence {
    user_id: UserId,
    /// `viewing` or `typing`.
    state: State_,
}

/// Who is in a conversation now.
#[derive(Debug, Serialize, ToSchema)]
struct PresenceList {
    /// By user id.
    presence: Vec<AgentPresence>,
    /// A presence lasts this long after its last report.
    ttl_seconds: u64,
}

/// `{presence: [{user_id, state}]}`: who is viewing or typing in the conversation now.
#[utoipa::path(get, path = "/conversations/{id}/presence", params(("id" = i64, Path, description = "The conversation")),
    responses((status = 200, description = "Who has it open on this node now", body = PresenceList)))]
async fn show(State(state): State<AppState>, Allowed(c): Allowed) -> Json<PresenceList> {
    let presence = state
        .presences
        .of(c.id, Instant::now())
        .into_iter()
        .map(|(user_id, state)| AgentPresence { user_id, state })
        .collect();
    Json(PresenceList {
        presence,
        ttl_seconds: PRESENCE_TTL_SECONDS,
    })
}

/// Reports the signed-in agent's presence (`viewing`, `typing` or `left`); 204.
#[utoipa::path(post, path = "/conversations/{id}/presence", params(("id" = i64, Path, description = "The conversation")), request_body = PresenceForm,
    responses(
        (status = 204, description = "Reported; published as a `presence` event"),
        (status = 422, description = "Another word", body = ErrorBody),
    ))]
async fn report(
    State(state): State<AppState>,
    auth: AuthUser,
    Allowed(c): Allowed,
    ApiJson(form): ApiJson<PresenceForm>,
) -> Result<axum::http::StatusCode, ApiError> {
    let presence = State_::parse(&form.state).map_err(|_| {
        ApiError::Unprocessable(format!(
            "Unknown presence {:?}: use viewing, typing or left",
            form.state
        ))
    })?;
    state
        .presences
        .set(c.id, auth.user.id, presence, Instant::now());
    state.bus.publish(Event::Presence {
        conversation_id: c.id,
        user_id: auth.user.id,
        state: presence,
    });
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presences_expire_and_leave() {
        let presences = Presences::default();
        let start = Instant::now();
        let (c, ann, bob) = (ConversationId(1), UserId(1), UserId(2));
        presences.set(c, ann, State_::Viewing, start);
        presences.set(c, bob, State_::Typing, start + Duration::from_secs(20));
        assert_eq!(
            presences.of(c, start + Duration::from_secs(25)),
            vec![(ann, State_::Viewing), (bob, State_::Typing)]
        );
        // Ann's presence was not repeated within the time to live.
        assert_eq!(
            presences.of(c, start + Duration::from_secs(PRESENCE_TTL_SECONDS + 1)),
            vec![(bob, State_::Typing)]
        );
        presences.set(c, bob, State_::Left, start + Duration::from_secs(31));
        assert!(presences.of(c, start + Duration::from_secs(31)).is_empty());
        assert!(presences.of(ConversationId(2), start).is_empty());
    }
}
