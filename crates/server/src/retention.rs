//! Inboxes' retention periods: a closed conversation older than its inbox's `retention_days`
//! is deleted with its messages, files and raw emails ([`Store::delete_expired_conversations`]).
//! The sweeper runs once when the server starts and then hourly; each pass that deleted
//! something is recorded in the audit log, by [`ACTOR`].

use std::time::Duration;

use anyhow::Context as _;
use postdesk_store::{NewAuditEntry, RetentionReport, Store};
use serde_json::json;
use tokio::sync::watch;

/// How often the sweeper looks for expired conversations.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Who the audit log names for what the sweeper deletes.
pub const ACTOR: &str = "postdesk";

/// The audit log's action for a retention pass that deleted something.
pub const ACTION: &str = "retention.delete";

/// One pass: deletes what has expired now and, when anything was, records the counts per
/// inbox in the audit log. Returns what was deleted.
///
/// # Errors
/// When the database fails (what was deleted before the failure stays deleted), or the audit
/// entry cannot be written.
pub async fn run_retention_once(store: &Store) -> anyhow::Result<RetentionReport> {
    let report = store
        .delete_expired_conversations(postdesk_store::now_ms())
        .await
        .context("Failed to delete the conversations past their inbox's retention period")?;
    if report.is_empty() {
        return Ok(report);
    }
    let total = report.total();
    tracing::info!(
        conversations = total.conversations,
        messages = total.messages,
        raw_emails = total.raw_emails,
        "Deleted closed conversations past their inbox's retention period"
    );
    let targets: Vec<String> = report
        .inboxes
        .iter()
        .map(|i| format!("inbox:{}", i.inbox_id))
        .collect();
    store
        .audit(&NewAuditEntry {
            actor_id: None,
            actor: ACTOR.to_owned(),
            action: ACTION.to_owned(),
            target: targets.join(" "),
            ip: String::new(),
            details: json!({ "inboxes": report.inboxes, "total": total }),
        })
        .await
        .context("Failed to record the retention deletion in the audit log")?;
    Ok(report)
}

/// Runs [`run_retention_once`] now and then every [`INTERVAL`] until `stop` turns true. A
/// failed pass is logged and the next one tries again.
pub async fn run_until_stopped(store: Store, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = run_retention_once(&store).await {
            tracing::warn!("Retention: {e:#}; trying again in an hour");
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}
