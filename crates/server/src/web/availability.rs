//! An agent's availability: `available` (routing may give them conversations), `away` or
//! `offline` (set for them when their last session ends). Every change is published as
//! `user_availability`; becoming available lets routing give them the waiting queue.

use axum::Json;
use axum::extract::State;
use postdesk_core::access::Rule;
use postdesk_core::event::Event;
use postdesk_core::model::Availability;
use serde::Deserialize;

use super::error::{ApiJson, ErrorBody};
use super::policy::Route;
use super::session::UserOut;
use super::{ApiError, AppState, AuthUser};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::put("/me/availability", Rule::SignedIn, set)]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(set))]
pub(super) struct Api;

/// One's availability.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AvailabilityForm {
    /// `available`, `away` or `offline` (another word is 422).
    #[schema(value_type = Availability)]
    status: String,
}

/// Sets the signed-in user's availability; published as `user_availability`.
#[utoipa::path(put, path = "/me/availability", request_body = AvailabilityForm,
    responses(
        (status = 200, description = "The user with their `availability`", body = UserOut),
        (status = 422, description = "Another word", body = ErrorBody),
    ))]
async fn set(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(form): ApiJson<AvailabilityForm>,
) -> Result<Json<UserOut>, ApiError> {
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
    Ok(Json(UserOut::from(&user)))
}

/// After sessions ended: users left with none turn `offline` (published).
pub(super) async fn sessions_ended(state: &AppState) {
    crate::routing::settle_offline(&state.store, &state.bus).await;
}
