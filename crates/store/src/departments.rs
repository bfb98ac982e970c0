//! Departments: teams with their own queue, and who belongs to them.

use postdesk_core::ids::{DepartmentId, UserId};
use postdesk_core::model::Routing;
use sqlx::Row as _;

use crate::records::{Department, DepartmentSettings};
use crate::routing::{Requeued, requeue_of_user};
use crate::{Result, Store, StoreError, is_unique_violation, now_ms};

fn taken(name: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(format!("There is already a department named {name:?}"))
        } else {
            e.into()
        }
    }
}

impl Store {
    /// Creates a department with no members.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the name is taken.
    pub async fn create_department(&self, name: &str) -> Result<Department> {
        let row = sqlx::query("INSERT INTO departments (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(taken(name))?;
        Ok(Department {
            id: DepartmentId(row.try_get("id")?),
            name: name.to_owned(),
            members: Vec::new(),
            routing: Routing::Manual,
            max_chats_per_agent: None,
        })
    }

    /// Renames a department.
    pub async fn rename_department(&self, id: DepartmentId, name: &str) -> Result<()> {
        let done = sqlx::query("UPDATE departments SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(taken(name))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("department"));
        }
        Ok(())
    }

    /// Every department with its members, by name.
    pub async fn list_departments(&self) -> Result<Vec<Department>> {
        let rows = sqlx::query(
            "SELECT id, name, routing, max_chats_per_agent FROM departments ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut departments = rows
            .iter()
            .map(|row| {
                Ok(Department {
                    id: DepartmentId(row.try_get("id")?),
                    name: row.try_get("name")?,
                    members: Vec::new(),
                    routing: Routing::parse(&row.try_get::<String, _>("routing")?)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    max_chats_per_agent: row.try_get("max_chats_per_agent")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(
            "SELECT department_id, user_id FROM department_members ORDER BY department_id, user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let department = DepartmentId(row.try_get("department_id")?);
            let user = UserId(row.try_get("user_id")?);
            if let Some(d) = departments.iter_mut().find(|d| d.id == department) {
                d.members.push(user);
            }
        }
        Ok(departments)
    }

    /// A department with its members.
    pub async fn find_department(&self, id: DepartmentId) -> Result<Option<Department>> {
        Ok(self
            .list_departments()
            .await?
            .into_iter()
            .find(|d| d.id == id))
    }

    /// Adds a user to a department; false when already in it.
    pub async fn add_department_member(&self, id: DepartmentId, user: UserId) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO department_members (department_id, user_id, added_at) VALUES ($1, $2, $3)
             ON CONFLICT (department_id, user_id) DO NOTHING",
        )
        .bind(id.0)
        .bind(user.0)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a user from a department; false when not in it. Their conversations of it go
    /// back to its queue (see [`Store::leave_department`]).
    pub async fn remove_department_member(&self, id: DepartmentId, user: UserId) -> Result<bool> {
        Ok(self.leave_department(id, user).await?.is_some())
    }

    /// Removes a user from a department and returns their `open`, `on_hold` and `snoozed`
    /// conversations of it to its queue ("Returned to the queue: @bob left Support"), in one
    /// transaction. `None` when they were not in it; else the conversations returned.
    pub async fn leave_department(
        &self,
        id: DepartmentId,
        user: UserId,
    ) -> Result<Option<Vec<Requeued>>> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("DELETE FROM department_members WHERE department_id = $1 AND user_id = $2")
                .bind(id.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let requeued = requeue_leaver(&mut tx, id, user).await?;
        tx.commit().await?;
        Ok(Some(requeued))
    }

    /// Sets a department's name, agents (replacing its members), routing and per-agent limit,
    /// in one transaction. Agents no longer in it get their conversations of it returned to
    /// its queue (as [`Store::leave_department`] does); those are returned.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown department, [`StoreError::Conflict`] when the
    /// name is another department's.
    pub async fn update_department(
        &self,
        id: DepartmentId,
        settings: &DepartmentSettings,
    ) -> Result<Vec<Requeued>> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE departments SET name = $1, routing = $2, max_chats_per_agent = $3 WHERE id = $4",
        )
        .bind(&settings.name)
        .bind(settings.routing.as_str())
        .bind(settings.max_chats_per_agent)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(taken(&settings.name))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("department"));
        }
        let current = sqlx::query(
            "SELECT user_id FROM department_members WHERE department_id = $1 ORDER BY user_id",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok(UserId(row.try_get("user_id")?)))
        .collect::<Result<Vec<_>>>()?;
        let mut requeued = Vec::new();
        for user in current.iter().filter(|u| !settings.agents.contains(u)) {
            sqlx::query("DELETE FROM department_members WHERE department_id = $1 AND user_id = $2")
                .bind(id.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            requeued.extend(requeue_leaver(&mut tx, id, *user).await?);
        }
        let now = now_ms();
        for user in settings.agents.iter().filter(|u| !current.contains(u)) {
            sqlx::query(
                "INSERT INTO department_members (department_id, user_id, added_at) VALUES ($1, $2, $3)
                 ON CONFLICT (department_id, user_id) DO NOTHING",
            )
            .bind(id.0)
            .bind(user.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(requeued)
    }

    /// The departments a user belongs to.
    pub async fn departments_of(&self, user: UserId) -> Result<Vec<DepartmentId>> {
        let rows = sqlx::query(
            "SELECT department_id FROM department_members WHERE user_id = $1 ORDER BY department_id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok(DepartmentId(row.try_get("department_id")?)))
            .collect()
    }
}

/// Returns `user`'s conversations of department `id` to its queue, naming them and it.
async fn requeue_leaver(
    tx: &mut sqlx::AnyConnection,
    id: DepartmentId,
    user: UserId,
) -> Result<Vec<Requeued>> {
    let row = sqlx::query(
        "SELECT u.username, d.name FROM users u, departments d WHERE u.id = $1 AND d.id = $2",
    )
    .bind(user.0)
    .bind(id.0)
    .fetch_one(&mut *tx)
    .await?;
    let username: String = row.try_get("username")?;
    let department: String = row.try_get("name")?;
    requeue_of_user(
        tx,
        user,
        Some(id),
        &format!("@{username} left {department}"),
    )
    .await
}
