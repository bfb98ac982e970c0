//! An agent's availability: `available` (routing may give them conversations), `away` or
//! `offline` (set for them when their last session ends). Every change is published as
//! `user_availability`; becoming available lets routing give them the waiting queue.

use axum::Json;
use axum::extract::State;
use postdesk_core::access::Rule;
use postdesk_core::event::Event;
use postdesk_core::model::Availability;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiJson;
use super::policy::Route;
use super::session::user_json;
use super::{ApiError, AppState, AuthUser};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::put("/me/availability", Rule::SignedIn, set)]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilityForm {
    status: String,
}

async fn set(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(form): ApiJson<AvailabilityForm>,
) -> Result<Json<Value>, ApiError> {
    let availability = Availability::parse(&form.status).map_err(|_| {
        ApiError::Unprocessable(format!(
            "Unknown availability {:?}: use available, away or offline",
            form.status
        ))
    })?;
    if state
        .store
        .set_availability(auth.user.id, availability)
        .await?
    {
        // The routing service hears `available` on the bus and routes the queues.
        state.bus.publish(Event::UserAvailability {
            user_id: auth.user.id,
            availability,
        });
    }
    let user = super::users::existing(&state, auth.user.id).await?;
    Ok(Json(user_json(&user)))
}

/// After sessions ended: users left with none turn `offline` (published).
pub(super) async fn sessions_ended(state: &AppState) {
    crate::routing::settle_offline(&state.store, &state.bus).await;
}
