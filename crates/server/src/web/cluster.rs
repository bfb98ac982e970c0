//! `GET /cluster` (admin): the nodes running on this database, their heartbeats, and the
//! inboxes each reads.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use postdesk_core::access::Rule;
use postdesk_store::ReaderLease;
use serde_json::{Value, json};

use super::conversations::time;
use super::policy::Route;
use super::{ApiError, AppState};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/cluster", Rule::Admin, show)]
}

/// How an inbox's reader shows: `{node_id, hostname, lease_expires_at}`, or null when no
/// node reads it (turned off, or its reader's node just died).
pub(super) fn reader_json(lease: Option<&ReaderLease>) -> Value {
    lease.map_or(Value::Null, |l| {
        json!({
            "node_id": l.node_id,
            "hostname": l.hostname,
            "lease_expires_at": time(l.expires_at),
        })
    })
}

/// `{node_id, nodes:[{id, hostname, pid, version, started_at, heartbeat_at, alive,
/// inboxes:[…]}]}`: `node_id` is the node that answers.
async fn show(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let alive_ms = i64::try_from(crate::cluster::ALIVE.as_millis()).unwrap_or(i64::MAX);
    let nodes = state.store.list_nodes(alive_ms).await?;
    let mut reads: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for lease in state.store.reader_leases(None).await? {
        reads
            .entry(lease.node_id)
            .or_default()
            .push(lease.inbox_id.0);
    }
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|n| {
            let inboxes = reads.remove(&n.info.id).unwrap_or_default();
            json!({
                "id": n.info.id,
                "hostname": n.info.hostname,
                "pid": n.info.pid,
                "version": n.info.version,
                "started_at": time(n.info.started_at),
                "heartbeat_at": time(n.heartbeat_at),
                "alive": n.alive,
                "inboxes": inboxes,
            })
        })
        .collect();
    Ok(Json(json!({
        "node_id": state.readers.node().id,
        "nodes": nodes,
    })))
}
