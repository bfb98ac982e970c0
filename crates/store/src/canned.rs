//! Canned responses: saved replies an agent inserts with `!shortcut`, global, of a department
//! or a user's own (migration 0016).
//!
//! A shortcut is unique within its scope and owner whatever its case (`!Hello` and `!hello`
//! cannot both be global), though stored as typed. The migration's unique index compares the
//! exact text, so each write checks the case-insensitive rule inside its transaction, with
//! writers of canned responses taking turns: on SQLite every write transaction does; on
//! PostgreSQL the transaction locks the table against other writers of it (readers go on).

use postdesk_core::access::{CannedOwner, CannedView};
use postdesk_core::ids::{CannedResponseId, DepartmentId, UserId};
use postdesk_core::model::CannedScope;
use sqlx::Row as _;

use crate::{Backend, Result, Store, StoreError, WriteTx, is_unique_violation, now_ms};

/// A canned response as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    /// Id.
    pub id: CannedResponseId,
    /// What follows `!` in the composer, as typed.
    pub shortcut: String,
    /// The text inserted, with `{{contact.name}}` and the other variables unfilled.
    pub text: String,
    /// Whose it is (its scope, department or user).
    pub owner: CannedOwner,
    /// Who added it (`None` when that user is gone).
    pub created_by: Option<UserId>,
    /// Added (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
}

/// What a canned response says and whose it is: what adding or changing one stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedContent {
    /// The shortcut, as typed (checked by the caller).
    pub shortcut: String,
    /// The text.
    pub text: String,
    /// Whose it is.
    pub owner: CannedOwner,
}

/// The columns a [`CannedResponse`] is read from.
const CANNED_COLUMNS: &str =
    "id, shortcut, text, scope, department_id, user_id, created_by, created_at, updated_at";

fn canned_from_row(row: &sqlx::any::AnyRow) -> Result<CannedResponse> {
    let scope: String = row.try_get("scope")?;
    let department: Option<i64> = row.try_get("department_id")?;
    let user: Option<i64> = row.try_get("user_id")?;
    let id: i64 = row.try_get("id")?;
    let owner = match (CannedScope::parse(&scope), department, user) {
        (Ok(CannedScope::Global), None, None) => CannedOwner::Global,
        (Ok(CannedScope::Department), Some(d), None) => CannedOwner::Department(DepartmentId(d)),
        (Ok(CannedScope::User), None, Some(u)) => CannedOwner::User(UserId(u)),
        _ => {
            return Err(StoreError::Corrupt(format!(
                "canned response {id} has scope {scope:?} with department {department:?} and user {user:?}"
            )));
        }
    };
    Ok(CannedResponse {
        id: CannedResponseId(id),
        shortcut: row.try_get("shortcut")?,
        text: row.try_get("text")?,
        owner,
        created_by: row.try_get::<Option<i64>, _>("created_by")?.map(UserId),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The words of a shortcut already taken within `owner`'s canned responses.
fn taken(shortcut: &str, owner: CannedOwner) -> StoreError {
    let among = match owner {
        CannedOwner::Global => "among the global ones",
        CannedOwner::Department(_) => "among this department's",
        CannedOwner::User(_) => "among your own",
    };
    StoreError::Conflict(format!(
        "A canned response !{shortcut} already exists {among} (shortcuts are the same whatever \
         their case): choose another shortcut or change that one"
    ))
}

/// The order of a list: by shortcut whatever its case, the most personal first (a user's
/// own, then a department's, then the global one), then oldest first.
fn list_order(c: &CannedResponse) -> (String, u8, i64) {
    let rank = match c.owner {
        CannedOwner::User(_) => 0,
        CannedOwner::Department(_) => 1,
        CannedOwner::Global => 2,
    };
    (c.shortcut.to_lowercase(), rank, c.id.0)
}

impl Store {
    /// The canned responses `view` shows (see [`postdesk_core::access::canned_view`]), by
    /// shortcut whatever its case; for one shortcut in several scopes, the most personal
    /// comes first (the user's own, then a department's, then the global one).
    pub async fn list_canned_responses(&self, view: &CannedView) -> Result<Vec<CannedResponse>> {
        // Every global and department one, and the viewer's own; the view's own test picks
        // the departments, so the list and the policy cannot disagree.
        let sql = format!(
            "SELECT {CANNED_COLUMNS} FROM canned_responses WHERE scope <> 'user' OR user_id = $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(view.user.0)
            .fetch_all(&self.pool)
            .await?;
        let mut list = rows
            .iter()
            .map(canned_from_row)
            .collect::<Result<Vec<_>>>()?;
        list.retain(|c| view.shows(c.owner));
        list.sort_by_cached_key(list_order);
        Ok(list)
    }

    /// One canned response, whoever's it is.
    pub async fn find_canned_response(
        &self,
        id: CannedResponseId,
    ) -> Result<Option<CannedResponse>> {
        let sql = format!("SELECT {CANNED_COLUMNS} FROM canned_responses WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(canned_from_row).transpose()
    }

    /// Adds a canned response, added by `by`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when its owner already has one with that shortcut, whatever
    /// its case.
    pub async fn create_canned_response(
        &self,
        content: &CannedContent,
        by: UserId,
    ) -> Result<CannedResponse> {
        let mut tx = self.canned_write_tx().await?;
        check_shortcut_free(&mut tx, content, None).await?;
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO canned_responses
                 (shortcut, text, scope, department_id, user_id, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(&content.shortcut)
        .bind(&content.text)
        .bind(content.owner.scope().as_str())
        .bind(content.owner.department().map(|d| d.0))
        .bind(content.owner.user().map(|u| u.0))
        .bind(by.0)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, content))?;
        let id = CannedResponseId(row.try_get("id")?);
        tx.commit().await?;
        Ok(CannedResponse {
            id,
            shortcut: content.shortcut.clone(),
            text: content.text.clone(),
            owner: content.owner,
            created_by: Some(by),
            created_at: now,
            updated_at: now,
        })
    }

    /// Replaces a canned response's shortcut, text and owner.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`] when the new
    /// owner already has another with that shortcut, whatever its case.
    pub async fn update_canned_response(
        &self,
        id: CannedResponseId,
        content: &CannedContent,
    ) -> Result<CannedResponse> {
        let mut tx = self.canned_write_tx().await?;
        check_shortcut_free(&mut tx, content, Some(id)).await?;
        let sql = format!(
            "UPDATE canned_responses SET shortcut = $1, text = $2, scope = $3, department_id = $4,
                 user_id = $5, updated_at = $6 WHERE id = $7
             RETURNING {CANNED_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&content.shortcut)
            .bind(&content.text)
            .bind(content.owner.scope().as_str())
            .bind(content.owner.department().map(|d| d.0))
            .bind(content.owner.user().map(|u| u.0))
            .bind(now_ms())
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, content))?
            .ok_or(StoreError::NotFound("canned response"))?;
        let updated = canned_from_row(&row)?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a canned response; false when there was none with that id.
    pub async fn delete_canned_response(&self, id: CannedResponseId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM canned_responses WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A write transaction in which no other write of canned responses runs: SQLite's write
    /// transactions take turns anyway; on PostgreSQL the table is locked against other
    /// writers (`SHARE ROW EXCLUSIVE` conflicts with itself and with writes, not with reads)
    /// until the commit.
    async fn canned_write_tx(&self) -> Result<WriteTx> {
        let mut tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE canned_responses IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

/// Refuses `content` when its owner has another canned response (not `except`) with the
/// same shortcut whatever its case. Letters beyond ASCII are compared by Rust's lower case,
/// which both databases' `LOWER` would not do alike.
async fn check_shortcut_free(
    tx: &mut WriteTx,
    content: &CannedContent,
    except: Option<CannedResponseId>,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT id, shortcut FROM canned_responses
         WHERE scope = $1 AND COALESCE(department_id, 0) = $2 AND COALESCE(user_id, 0) = $3",
    )
    .bind(content.owner.scope().as_str())
    .bind(content.owner.department().map_or(0, |d| d.0))
    .bind(content.owner.user().map_or(0, |u| u.0))
    .fetch_all(&mut **tx)
    .await?;
    let wanted = content.shortcut.to_lowercase();
    for row in &rows {
        let id = CannedResponseId(row.try_get("id")?);
        let shortcut: String = row.try_get("shortcut")?;
        if Some(id) != except && shortcut.to_lowercase() == wanted {
            return Err(taken(&content.shortcut, content.owner));
        }
    }
    Ok(())
}

/// A unique violation as the conflict it is (the check above runs first, so only a change
/// of the rules would reach it), anything else as it is.
fn conflict_or(e: sqlx::Error, content: &CannedContent) -> StoreError {
    if is_unique_violation(&e) {
        taken(&content.shortcut, content.owner)
    } else {
        e.into()
    }
}
