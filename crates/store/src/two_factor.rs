//! Two-factor sign-in: a user's TOTP secret (encrypted by the caller), the last time step
//! used (so no code works twice, also across nodes), one-time recovery codes (hashed), and
//! the system settings that say who must use it.

use postdesk_core::ids::UserId;
use sqlx::Row as _;

use crate::{Result, Store, StoreError, now_ms};

/// A user's two-factor state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TotpState {
    /// The encrypted secret, pending or confirmed.
    pub secret_encrypted: Option<Vec<u8>>,
    /// Whether it is confirmed and asked for at sign-in.
    pub enabled: bool,
    /// The last time step whose code was accepted.
    pub last_step: i64,
}

impl Store {
    /// A user's two-factor state.
    pub async fn totp_state(&self, user: UserId) -> Result<TotpState> {
        let row = sqlx::query(
            "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = $1",
        )
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
        Ok(TotpState {
            secret_encrypted: row.try_get("totp_secret")?,
            enabled: row.try_get::<i64, _>("totp_enabled")? != 0,
            last_step: row.try_get("totp_last_step")?,
        })
    }

    /// Starts an enrolment: a new secret, not yet asked for at sign-in; any earlier secret
    /// and recovery codes are gone.
    pub async fn set_pending_totp(&self, user: UserId, secret_encrypted: &[u8]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = $1, totp_enabled = 0, totp_last_step = 0 WHERE id = $2",
        )
        .bind(secret_encrypted)
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
        delete_recovery_codes(&mut tx, user).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms the pending secret with the step of the code that proved it, and stores the
    /// hashes of new recovery codes.
    pub async fn enable_totp(
        &self,
        user: UserId,
        step: i64,
        recovery_hashes: &[String],
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE users SET totp_enabled = 1, totp_last_step = $1 WHERE id = $2")
            .bind(step)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        delete_recovery_codes(&mut tx, user).await?;
        for hash in recovery_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user.0)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Turns two-factor sign-in off for a user: the secret and the recovery codes are gone.
    pub async fn disable_totp(&self, user: UserId) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_enabled = 0, totp_last_step = 0 WHERE id = $1",
        )
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
        delete_recovery_codes(&mut tx, user).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses time step `step`: true when it is newer than every step used before (one atomic
    /// update, so two nodes never accept the same code).
    pub async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_enabled = 1 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(user.0)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Uses a recovery code by its hash: true the first time only.
    pub async fn use_recovery_code(&self, user: UserId, code_hash: &str) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now_ms())
        .bind(user.0)
        .bind(code_hash)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// How many unused recovery codes a user has.
    pub async fn recovery_codes_left(&self, user: UserId) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user.0)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// A system setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        sqlx::query("SELECT value FROM system_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| Ok(r.try_get("value")?))
            .transpose()
    }

    /// Sets a system setting.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO system_settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

async fn delete_recovery_codes(tx: &mut sqlx::AnyConnection, user: UserId) -> Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
