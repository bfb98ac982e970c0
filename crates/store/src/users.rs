//! Users and login sessions.

use postdesk_core::ids::{SessionId, UserId};
use postdesk_core::model::{Availability, Role};
use sqlx::Row as _;

use crate::records::{NewSession, NewUser, SessionInfo, SessionUser, User};
use crate::routing::{Requeued, requeue_of_user};
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
        availability: Availability::parse(&row.try_get::<String, _>("availability")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
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
             RETURNING id, username, name, email, roles, active, created_at, availability",
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
            "SELECT id, username, name, email, roles, active, created_at, availability, password_hash
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
            "SELECT id, username, name, email, roles, active, created_at, availability FROM users WHERE id = $1",
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

    /// The user with `email` (compared case-insensitively), for single sign-on: the oldest
    /// active one when several share the address, else the oldest deactivated one (so a
    /// deactivated user is refused rather than created anew). Never matches an empty address.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let email = email.trim();
        if email.is_empty() {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, username, name, email, roles, active, created_at, availability FROM users
             WHERE email <> '' AND LOWER(email) = LOWER($1)
             ORDER BY active DESC, id LIMIT 1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Sets a user's roles (single sign-on maps them from the provider's claim).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    pub async fn set_user_roles(&self, id: UserId, roles: &[Role]) -> Result<()> {
        let done = sqlx::query("UPDATE users SET roles = $1 WHERE id = $2")
            .bind(roles_text(roles))
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    /// Every user, by username.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT id, username, name, email, roles, active, created_at, availability FROM users ORDER BY username",
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

    /// Sets a user's password hash and ends every session of theirs but `keep` (the session
    /// of a user changing their own password), in one transaction.
    pub async fn set_password_hash(
        &self,
        id: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("user"));
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(id.0)
            .bind(keep.map_or(0, |s| s.0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Activates or deactivates a user. Deactivating ends their sessions, turns them
    /// `offline` and returns every `open`, `on_hold` or `snoozed` conversation of theirs to its
    /// queue ("Returned to the queue: @bob was deactivated"), all in one transaction; those
    /// conversations are returned.
    pub async fn set_user_active(&self, id: UserId, active: bool) -> Result<Vec<Requeued>> {
        let mut tx = self.write_tx().await?;
        let sql = if active {
            "UPDATE users SET active = 1 WHERE id = $1 RETURNING username"
        } else {
            "UPDATE users SET active = 0, availability = 'offline' WHERE id = $1 RETURNING username"
        };
        let Some(row) = sqlx::query(sql).bind(id.0).fetch_optional(&mut *tx).await? else {
            return Err(StoreError::NotFound("user"));
        };
        let mut requeued = Vec::new();
        if !active {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            let username: String = row.try_get("username")?;
            let why = format!("@{username} was deactivated");
            requeued = requeue_of_user(&mut tx, id, None, &why).await?;
        }
        tx.commit().await?;
        Ok(requeued)
    }

    /// Starts a login session, stored by the hash of its token.
    pub async fn create_session(&self, new: &NewSession) -> Result<SessionId> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent, method)
             VALUES ($1, $2, $3, $4, $3, $5, $6, $7) RETURNING id",
        )
        .bind(&new.token_hash)
        .bind(new.user_id.0)
        .bind(now)
        .bind(new.expires_at)
        .bind(&new.ip)
        .bind(truncate(&new.user_agent, 300))
        .bind(&new.method)
        .fetch_one(&self.pool)
        .await?;
        Ok(SessionId(row.try_get("id")?))
    }

    /// The active user a token hash belongs to, with the session and the user's departments,
    /// if the session has not expired. Notes the session's use at most once a minute.
    pub async fn find_session_user(&self, token_hash: &str) -> Result<Option<SessionUser>> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT u.id, u.username, u.name, u.email, u.roles, u.active, u.created_at, u.availability,
                    s.user_id, s.id AS session_id, s.created_at AS session_created_at, s.expires_at,
                    s.last_seen_at, s.ip, s.user_agent, s.method, u.totp_enabled
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active = 1",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = user_from_row(&row)?;
        let session = session_from_row(&row, "session_id", "session_created_at")?;
        if now - session.last_seen_at > 60_000 {
            // A plain pool write (not the writers' turn): losing this race is harmless.
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now)
                .bind(session.id.0)
                .execute(&self.pool)
                .await?;
        }
        let departments = self.departments_of(user.id).await?;
        let totp_enabled = row.try_get::<i64, _>("totp_enabled")? != 0;
        Ok(Some(SessionUser {
            user,
            session,
            departments,
            totp_enabled,
        }))
    }

    /// Whether the session is still valid (not ended, not expired, its user active).
    pub async fn session_is_valid(&self, id: SessionId) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = $1 AND s.expires_at > $2 AND u.active = 1",
        )
        .bind(id.0)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// The unexpired sessions of a user, newest first.
    pub async fn list_sessions(&self, user: UserId) -> Result<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT id, user_id, created_at, expires_at, last_seen_at, ip, user_agent, method
             FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY id DESC",
        )
        .bind(user.0)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| session_from_row(row, "id", "created_at"))
            .collect()
    }

    /// Ends a session (logout).
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends one session of `user`; false when they have no such session.
    pub async fn delete_user_session(&self, user: UserId, id: SessionId) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                .bind(id.0)
                .bind(user.0)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Ends every session of `user`; how many there were.
    pub async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.0)
            .execute(&self.pool)
            .await?
            .rows_affected())
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

/// A session row; `id` and `created_at` name its columns (they differ when joined with
/// `users`).
fn session_from_row(row: &sqlx::any::AnyRow, id: &str, created_at: &str) -> Result<SessionInfo> {
    Ok(SessionInfo {
        id: SessionId(row.try_get(id)?),
        user_id: UserId(row.try_get("user_id")?),
        created_at: row.try_get(created_at)?,
        expires_at: row.try_get("expires_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        method: row.try_get("method")?,
    })
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
