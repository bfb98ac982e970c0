//! `GET /cluster` (admin): the nodes running on this database, their heartbeats, and the
//! inboxes each reads.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use postdesk_core::access::Rule;
use postdesk_store::ReaderLease;
use serde::Serialize;
use utoipa::ToSchema;

use super::conversations::Time;
use super::policy::Route;
use super::{ApiError, AppState};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/cluster", Rule::Admin, show)]
}

/// This file's routes in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(show))]
pub(super) struct Api;

/// Which node reads an inbox, under a lease it renews.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReaderOut {
    /// The node (a random id per process start).
    node_id: String,
    /// Its machine.
    hostname: String,
    /// When its lease ends unless renewed.
    lease_expires_at: Time,
}

impl ReaderOut {
    /// How an inbox's reader shows; `None` when no node reads it (turned off, or its
    /// reader's node just died).
    pub(super) fn of(lease: Option<&ReaderLease>) -> Option<Self> {
        lease.map(|l| Self {
            node_id: l.node_id.clone(),
            hostname: l.hostname.clone(),
            lease_expires_at: Time::at(l.expires_at),
        })
    }
}

/// One postdesk process on this database.
#[derive(Debug, Serialize, ToSchema)]
struct NodeOut {
    id: String,
    hostname: String,
    pid: i64,
    version: String,
    started_at: Time,
    heartbeat_at: Time,
    /// Whether its heartbeat is recent.
    alive: bool,
    /// The inboxes it reads.
    inboxes: Vec<i64>,
}

/// The nodes and what each reads.
#[derive(Debug, Serialize, ToSchema)]
struct ClusterOut {
    /// The node that answers.
    node_id: String,
    nodes: Vec<NodeOut>,
}

/// The nodes running on this database, their last heartbeat and the inboxes each reads.
#[utoipa::path(get, path = "/cluster",
    responses((status = 200, description = "The nodes", body = ClusterOut)))]
async fn show(State(state): State<AppState>) -> Result<Json<ClusterOut>, ApiError> {
    let alive_ms = i64::try_from(crate::cluster::ALIVE.as_millis()).unwrap_or(i64::MAX);
    let nodes = state.store.list_nodes(alive_ms).await?;
    let mut reads: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for lease in state.store.reader_leases(None).await? {
        reads
            .entry(lease.node_id)
            .or_default()
            .push(lease.inbox_id.0);
    }
    let nodes = nodes
        .into_iter()
        .map(|n| NodeOut {
            inboxes: reads.remove(&n.info.id).unwrap_or_default(),
            id: n.info.id,
            hostname: n.info.hostname,
            pid: n.info.pid,
            version: n.info.version,
            started_at: Time::at(n.info.started_at),
            heartbeat_at: Time::at(n.heartbeat_at),
            alive: n.alive,
        })
        .collect();
    Ok(Json(ClusterOut {
        node_id: state.readers.node().id.clone(),
        nodes,
    }))
}
