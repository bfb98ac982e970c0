//! Routing: a department with `round_robin` or `load_balancing` routing assigns its queued
//! conversations to its available agents, decided in the database so several postdesk nodes
//! never give one conversation twice or an agent more than the department's limit. Also
//! agents' availability, and conversations returned to the queue when their agent leaves.
//!
//! # Concurrency
//! One assignment run is one write transaction. On PostgreSQL it locks the department's row
//! (`FOR UPDATE`), so runs for one department take turns across nodes, and then the rows of
//! the department's available agents in id order, so runs of two departments sharing an agent
//! take turns over that agent's open count. On SQLite write transactions are serialized
//! already (the store's writer, and SQLite's own lock between processes). A conversation is
//! only assigned by an update that still finds it `queued`, so Take it! racing with routing
//! gives it to one of them.

use postdesk_core::ids::{ConversationId, DepartmentId, InboxId, UserId};
use postdesk_core::model::{Availability, Routing};
use sqlx::Row as _;

use crate::conversations::assign_if_queued;
use crate::ingest::insert_system_message;
use crate::{Backend, Result, Store, StoreError, WriteTx, now_ms};

/// Most conversations one assignment run gives out (one transaction); a caller runs it again
/// while it gives out this many.
pub const ROUTING_BATCH: usize = 100;

/// A conversation routing gave to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The conversation, now `open`.
    pub conversation_id: ConversationId,
    /// Its inbox.
    pub inbox_id: InboxId,
    /// Its department.
    pub department_id: DepartmentId,
    /// The agent it was given to.
    pub assignee_id: UserId,
}

/// A conversation put back in its queue because its agent left (deactivated, or removed from
/// its department).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requeued {
    /// The conversation, now `queued`.
    pub conversation_id: ConversationId,
    /// Its inbox.
    pub inbox_id: InboxId,
    /// Its department (whose queue it is back in), if any.
    pub department_id: Option<DepartmentId>,
}

/// An agent a run may give conversations to.
struct Candidate {
    id: UserId,
    username: String,
    open: i64,
}

/// Picks the agent for the next conversation among those with room, or `None` when nobody has
/// room. `candidates` are in id order.
fn pick(
    routing: Routing,
    candidates: &[Candidate],
    limit: Option<i64>,
    last: Option<UserId>,
) -> Option<usize> {
    let has_room = |c: &Candidate| limit.is_none_or(|max| c.open < max);
    match routing {
        Routing::Manual => None,
        Routing::RoundRobin => {
            let after = |c: &Candidate| last.is_none_or(|last| c.id > last);
            candidates
                .iter()
                .position(|c| after(c) && has_room(c))
                .or_else(|| candidates.iter().position(has_room))
        }
        Routing::LoadBalancing => candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| has_room(c))
            .min_by_key(|(_, c)| (c.open, c.id))
            .map(|(i, _)| i),
    }
}

/// The system line of an assignment.
fn assigned_line(routing: Routing, username: &str) -> String {
    let how = match routing {
        Routing::RoundRobin => "round robin",
        Routing::LoadBalancing | Routing::Manual => "load balancing",
    };
    format!("Assigned to @{username} by {how}")
}

impl Store {
    /// Gives the queued conversations of `department`, oldest in the queue first (`queued_at`,
    /// then id), to its available, active agents with room under the department's
    /// `max_chats_per_agent` (counting each agent's `open` conversations of every inbox):
    /// `round_robin` to the next agent by id after the last one given one, `load_balancing` to
    /// the one with the fewest open (ties by id). Each assignment sets the conversation `open`
    /// with its assignee and adds a system line ("Assigned to @bob by round robin"). Gives at
    /// most [`ROUTING_BATCH`] at a time; nothing for a `manual` department. Safe to run from
    /// several processes at once (see the module's notes).
    pub async fn assign_queued(&self, department: DepartmentId) -> Result<Vec<Assignment>> {
        let mut tx = self.write_tx().await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT routing, max_chats_per_agent, last_assigned_user_id FROM departments
             WHERE id = $1{lock}"
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(department.0)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Err(StoreError::NotFound("department"));
        };
        let routing = Routing::parse(&row.try_get::<String, _>("routing")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let limit: Option<i64> = row.try_get("max_chats_per_agent")?;
        let mut last = row
            .try_get::<Option<i64>, _>("last_assigned_user_id")?
            .map(UserId);
        if routing == Routing::Manual {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let mut candidates = available_agents(&mut tx, self.backend, department).await?;
        if candidates.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let room: i64 = match limit {
            Some(max) => candidates.iter().map(|c| (max - c.open).max(0)).sum(),
            None => i64::MAX,
        };
        let batch = i64::try_from(ROUTING_BATCH).unwrap_or(i64::MAX).min(room);
        let queued = sqlx::query(
            "SELECT id, inbox_id FROM conversations WHERE department_id = $1 AND status = 'queued'
             ORDER BY COALESCE(queued_at, created_at), id LIMIT $2",
        )
        .bind(department.0)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let now = now_ms();
        let mut assigned = Vec::new();
        for row in &queued {
            let Some(chosen) = pick(routing, &candidates, limit, last) else {
                break;
            };
            let conversation = ConversationId(row.try_get("id")?);
            let agent = &mut candidates[chosen];
            if !assign_if_queued(&mut tx, conversation, agent.id, now).await? {
                continue;
            }
            insert_system_message(
                &mut tx,
                conversation,
                &assigned_line(routing, &agent.username),
            )
            .await?;
            agent.open += 1;
            last = Some(agent.id);
            assigned.push(Assignment {
                conversation_id: conversation,
                inbox_id: InboxId(row.try_get("inbox_id")?),
                department_id: department,
                assignee_id: agent.id,
            });
        }
        if routing == Routing::RoundRobin && !assigned.is_empty() {
            sqlx::query("UPDATE departments SET last_assigned_user_id = $1 WHERE id = $2")
                .bind(last.map(|u| u.0))
                .bind(department.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(assigned)
    }

    /// The departments routing has work in: `round_robin` or `load_balancing`, with a queued
    /// conversation and an available, active agent. (A read; the periodic sweep asks it before
    /// taking a write transaction per department.)
    pub async fn departments_to_route(&self) -> Result<Vec<DepartmentId>> {
        let rows = sqlx::query(
            "SELECT d.id FROM departments d
             WHERE d.routing <> 'manual'
               AND EXISTS (SELECT 1 FROM conversations c
                           WHERE c.department_id = d.id AND c.status = 'queued')
               AND EXISTS (SELECT 1 FROM department_members m JOIN users u ON u.id = m.user_id
                           WHERE m.department_id = d.id AND u.active = 1
                             AND u.availability = 'available')
             ORDER BY d.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(DepartmentId(row.try_get("id")?)))
            .collect()
    }

    /// Sets a user's availability; false when it already was that.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    pub async fn set_availability(&self, user: UserId, availability: Availability) -> Result<bool> {
        let done =
            sqlx::query("UPDATE users SET availability = $1 WHERE id = $2 AND availability <> $1")
                .bind(availability.as_str())
                .bind(user.0)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        self.find_user(user)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        Ok(false)
    }

    /// Turns `offline` every user who is not, but has no unexpired session left (their last
    /// session ended, expired, or they were deactivated); who changed.
    pub async fn offline_without_sessions(&self) -> Result<Vec<UserId>> {
        // A read first: the periodic sweep calls this, and on SQLite an update takes the write
        // lock even when it changes nothing.
        let now = now_ms();
        let any = sqlx::query(
            "SELECT 1 AS one FROM users
             WHERE availability <> 'offline'
               AND NOT EXISTS (SELECT 1 FROM sessions s
                               WHERE s.user_id = users.id AND s.expires_at > $1)
             LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "UPDATE users SET availability = 'offline'
             WHERE availability <> 'offline'
               AND NOT EXISTS (SELECT 1 FROM sessions s
                               WHERE s.user_id = users.id AND s.expires_at > $1)
             RETURNING id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(UserId(row.try_get("id")?)))
            .collect()
    }
}

/// The department's active, available members, in id order, each with their `open` count. On
/// PostgreSQL their rows are locked (in id order) until the transaction ends.
async fn available_agents(
    tx: &mut WriteTx,
    backend: Backend,
    department: DepartmentId,
) -> Result<Vec<Candidate>> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE OF u",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT u.id, u.username FROM users u JOIN department_members m ON m.user_id = u.id
         WHERE m.department_id = $1 AND u.active = 1 AND u.availability = 'available'
         ORDER BY u.id{lock}"
    );
    let locked = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(department.0)
        .fetch_all(&mut **tx)
        .await?;
    if locked.is_empty() {
        return Ok(Vec::new());
    }
    // Counted after the lock (a statement of its own, so on PostgreSQL it sees what another
    // department's run that gave one of these agents a conversation has committed).
    let counts = sqlx::query(
        "SELECT c.assignee_id, COUNT(*) AS n
         FROM conversations c JOIN department_members m ON m.user_id = c.assignee_id
         WHERE m.department_id = $1 AND c.status = 'open'
         GROUP BY c.assignee_id",
    )
    .bind(department.0)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get::<i64, _>("assignee_id")?,
            row.try_get::<i64, _>("n")?,
        ))
    })
    .collect::<Result<std::collections::HashMap<_, _>>>()?;
    // Only the agents locked above: one who became available since waits for the next run.
    let candidates = locked
        .iter()
        .map(|row| {
            let id: i64 = row.try_get("id")?;
            Ok(Candidate {
                id: UserId(id),
                username: row.try_get("username")?,
                open: counts.get(&id).copied().unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(candidates)
}

/// Puts the `open`, `on_hold` and `snoozed` conversations of `user` (of `department` only,
/// when given) back in their queue: status `queued`, no assignee, `queued_at` now, with the
/// system line `Returned to the queue: {why}`.
pub(crate) async fn requeue_of_user(
    tx: &mut sqlx::AnyConnection,
    user: UserId,
    department: Option<DepartmentId>,
    why: &str,
) -> Result<Vec<Requeued>> {
    let now = now_ms();
    let rows = sqlx::query(
        "UPDATE conversations SET status = 'queued', assignee_id = NULL, snoozed_until = NULL,
            queued_at = $1, updated_at = $1
         WHERE assignee_id = $2 AND status IN ('open', 'on_hold', 'snoozed')
           AND ($3 IS NULL OR department_id = $3)
         RETURNING id, inbox_id, department_id",
    )
    .bind(now)
    .bind(user.0)
    .bind(department.map(|d| d.0))
    .fetch_all(&mut *tx)
    .await?;
    let mut requeued = rows
        .iter()
        .map(|row| {
            Ok(Requeued {
                conversation_id: ConversationId(row.try_get("id")?),
                inbox_id: InboxId(row.try_get("inbox_id")?),
                department_id: row
                    .try_get::<Option<i64>, _>("department_id")?
                    .map(DepartmentId),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    requeued.sort_by_key(|r| r.conversation_id);
    let line = format!("Returned to the queue: {why}");
    for r in &requeued {
        insert_system_message(tx, r.conversation_id, &line).await?;
    }
    Ok(requeued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(open: &[i64]) -> Vec<Candidate> {
        open.iter()
            .enumerate()
            .map(|(i, open)| Candidate {
                id: UserId(i64::try_from(i).unwrap() + 1),
                username: format!("a{i}"),
                open: *open,
            })
            .collect()
    }

    #[test]
    fn round_robin_goes_on_after_the_last_and_wraps_past_the_full() {
        let a = agents(&[0, 0, 0]);
        assert_eq!(pick(Routing::RoundRobin, &a, None, None), Some(0));
        assert_eq!(
            pick(Routing::RoundRobin, &a, None, Some(UserId(1))),
            Some(1)
        );
        assert_eq!(
            pick(Routing::RoundRobin, &a, None, Some(UserId(3))),
            Some(0)
        );
        let a = agents(&[0, 2, 2]);
        assert_eq!(
            pick(Routing::RoundRobin, &a, Some(2), Some(UserId(1))),
            Some(0)
        );
        let a = agents(&[2, 2, 2]);
        assert_eq!(pick(Routing::RoundRobin, &a, Some(2), None), None);
    }

    #[test]
    fn load_balancing_picks_the_fewest_open_ties_by_id() {
        let a = agents(&[3, 1, 1]);
        assert_eq!(pick(Routing::LoadBalancing, &a, None, None), Some(1));
        assert_eq!(pick(Routing::LoadBalancing, &a, Some(1), None), None);
        assert_eq!(pick(Routing::Manual, &a, None, None), None);
    }
}
