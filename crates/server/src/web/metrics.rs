//! `GET /metrics`: the server's metrics in the Prometheus text format (see
//! [`crate::metrics`] and docs/operations.md). An admin's token reads them always;
//! `POSTDESK_METRICS=1` serves them without sign-in, for a scraper on a private network.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use postdesk_core::access::Rule;

use super::policy::Route;
use super::{ApiError, AppState};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/metrics", Rule::Admin, metrics).open_with_metrics()]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(metrics))]
pub(super) struct Api;

/// The server's metrics in the Prometheus text format (docs/operations.md lists them). With
/// `POSTDESK_METRICS=1` anyone may read them; otherwise an admin's token does, and a request
/// without any sign-in gets 404.
#[utoipa::path(get, path = "/metrics",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 404, description = "Metrics are off and the request is not signed in", body = super::error::ErrorBody),
    ))]
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let readers = state.store.inbox_states().await?;
    let text = state
        .metrics
        .render(&readers, state.store.pool_use(), state.streams.total());
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}
