//! The audit log: every administrative action and every sign-in, append-only (the database
//! refuses to change or delete a line).

use postdesk_core::ids::UserId;
use sqlx::Row as _;

use crate::records::{AuditEntry, AuditFilter, NewAuditEntry};
use crate::{Result, Store, now_ms};

/// Failed sign-ins counted against one account or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    /// How many.
    pub count: i64,
    /// When the last one was (ms).
    pub last_at: Option<i64>,
}

fn failures_from_row(row: &sqlx::any::AnyRow) -> Result<Failures> {
    Ok(Failures {
        count: row.try_get("n")?,
        last_at: row.try_get("last_at")?,
    })
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    let details: String = row.try_get("details")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_id: row.try_get::<Option<i64>, _>("actor_id")?.map(UserId),
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        ip: row.try_get("ip")?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
    })
}

impl Store {
    /// Appends a line to the audit log.
    pub async fn audit(&self, entry: &NewAuditEntry) -> Result<()> {
        let details = if entry.details.is_null() {
            "{}".to_owned()
        } else {
            entry.details.to_string()
        };
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor, action, target, ip, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now_ms())
        .bind(entry.actor_id.map(|u| u.0))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.ip)
        .bind(details)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries matching `filter`, newest first.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let action_prefix = filter.action.as_ref().map(|a| {
            let escaped = a
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped}.%")
        });
        let rows = sqlx::query(
            "SELECT id, at, actor_id, actor, action, target, ip, details FROM audit_log
             WHERE ($1 IS NULL OR at >= $1)
               AND ($2 IS NULL OR actor = $2)
               AND ($3 IS NULL OR action = $3 OR action LIKE $4 ESCAPE '\\')
               AND ($5 IS NULL OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(filter.since)
        .bind(filter.actor.as_deref())
        .bind(filter.action.as_deref())
        .bind(action_prefix)
        .bind(filter.before_id)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Failed sign-ins for `account` (a username) since `since` (ms) and after its last
    /// successful sign-in.
    pub async fn sign_in_failures_for_account(
        &self,
        account: &str,
        since: i64,
    ) -> Result<Failures> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(at) AS last_at FROM audit_log
             WHERE action = 'sign_in.failed' AND actor = $1 AND at >= $2
               AND at > COALESCE((SELECT MAX(at) FROM audit_log WHERE action = 'sign_in' AND actor = $1), 0)",
        )
        .bind(account)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        failures_from_row(&row)
    }

    /// Failed sign-ins from `ip` since `since` (ms).
    pub async fn sign_in_failures_from(&self, ip: &str, since: i64) -> Result<Failures> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(at) AS last_at FROM audit_log
             WHERE action = 'sign_in.failed' AND ip = $1 AND at >= $2",
        )
        .bind(ip)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        failures_from_row(&row)
    }
}
