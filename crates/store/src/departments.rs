//! Departments: teams with their own queue, and who belongs to them.

use postdesk_core::ids::{DepartmentId, UserId};
use sqlx::Row as _;

use crate::records::Department;
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
        let rows = sqlx::query("SELECT id, name FROM departments ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut departments = rows
            .iter()
            .map(|row| {
                Ok(Department {
                    id: DepartmentId(row.try_get("id")?),
                    name: row.try_get("name")?,
                    members: Vec::new(),
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

    /// Removes a user from a department; false when not in it.
    pub async fn remove_department_member(&self, id: DepartmentId, user: UserId) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM department_members WHERE department_id = $1 AND user_id = $2")
                .bind(id.0)
                .bind(user.0)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
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
