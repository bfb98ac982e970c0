//! Users and login sessions.

use postdesk_core::ids::UserId;
use postdesk_core::model::Role;
use sqlx::Row as _;

use crate::records::{NewUser, User};
use crate::{Result, Store, StoreError, is_unique_violation, now_ms};

pub(crate) fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User> {
    let roles: String = row.try_get("roles")?;
    let roles = roles
        .split_whitespace()
        .map(|r| Role::parse(r).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    Ok(User {
        id: UserId(row.try_get("id")?),
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        roles,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Store {
    /// Creates a user.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the username is taken.
    pub async fn create_user(&self, new: &NewUser) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO users (username, name, email, password_hash, roles, active, created_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6)
             RETURNING id, username, name, email, roles, active, created_at",
        )
        .bind(&new.username)
        .bind(&new.name)
        .bind(&new.email)
        .bind(&new.password_hash)
        .bind(roles_text(&new.roles))
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("the username {:?} is already taken", new.username))
            } else {
                e.into()
            }
        })?;
        user_from_row(&row)
    }

    /// A user and their password hash, by login name.
    pub async fn find_user_credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query(
            "SELECT id, username, name, email, roles, active, created_at, password_hash
             FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((user_from_row(&row)?, row.try_get("password_hash")?)))
            .transpose()
    }

    /// A user by id.
    pub async fn find_user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT id, username, name, email, roles, active, created_at FROM users WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// A user by login name.
    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>> {
        Ok(self
            .find_user_credentials(username)
            .await?
            .map(|(user, _)| user))
    }

    /// Every user, by username.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT id, username, name, email, roles, active, created_at FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// How many users exist (the first start creates an admin when there are none).
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Sets a user's password hash.
    pub async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    /// Activates or deactivates a user; deactivating ends their sessions.
    pub async fn set_user_active(&self, id: UserId, active: bool) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE users SET active = $1 WHERE id = $2")
            .bind(i64::from(active))
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        if !active {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a login session by the hash of its token.
    pub async fn create_session(
        &self,
        user: UserId,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user.0)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The active user a token hash belongs to, if the session has not expired.
    pub async fn find_session_user(&self, token_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.name, u.email, u.roles, u.active, u.created_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active = 1",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes expired sessions.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
