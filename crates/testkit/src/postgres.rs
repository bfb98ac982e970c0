//! A fresh PostgreSQL database per test, on a server that is already running.
//!
//! [`PgDatabase::create`] connects to the admin URL (`$POSTDESK_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), runs
//! `CREATE DATABASE "postdesk_test_<uuid>"` and hands out the URL of the new database.
//! The database is dropped (`DROP DATABASE … WITH (FORCE)`, PostgreSQL 13+) by
//! [`PgDatabase::cleanup`], or else best effort on drop, from a helper thread with its own
//! small runtime (bounded to a few seconds, never panics). Databases left behind by killed
//! test runs all start with `postdesk_test_` and can be removed by hand.

use std::time::Duration;

use anyhow::Context;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The admin URL used when `POSTDESK_TEST_PG_URL` is not set.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A uniquely named, empty database. Dropped on [`PgDatabase::cleanup`] or drop.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
    admin_url: String,
    dropped: bool,
}

impl PgDatabase {
    /// Creates `postdesk_test_<uuid>` on the admin server.
    pub async fn create() -> anyhow::Result<PgDatabase> {
        let admin_url =
            std::env::var("POSTDESK_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
        let name = format!("postdesk_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect(&admin_url).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .with_context(|| {
                format!(
                    "CREATE DATABASE \"{name}\" on {} failed (may this role create databases?)",
                    redact(&admin_url)
                )
            })?;
        let _ = conn.close().await;
        let url = with_database(&admin_url, &name);
        tracing::debug!("created test database {name}");
        Ok(PgDatabase {
            name,
            url,
            admin_url,
            dropped: false,
        })
    }

    /// `postgres://…/postdesk_test_<uuid>`, same server and credentials as the admin URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name, `postdesk_test_<uuid>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database now (terminating any connections still open to it).
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("postdesk-testkit-dropdb".into())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| {
                        rt.block_on(async {
                            tokio::time::timeout(
                                Duration::from_secs(10),
                                drop_database(&admin_url, &name),
                            )
                            .await
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")))
                        })
                    });
                let _ = tx.send(result);
            });
        if spawned.is_ok() {
            match rx.recv_timeout(Duration::from_secs(12)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("could not drop test database {}: {e:#}", self.name),
                Err(_) => tracing::warn!("gave up dropping test database {}", self.name),
            }
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(url).await.with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {} (start a server with trust auth for user \
             postgres on 127.0.0.1:5432 — scripts/test does — or set POSTDESK_TEST_PG_URL)",
            redact(url)
        )
    })
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = connect(admin_url).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("DROP DATABASE \"{name}\" failed"))?;
    let _ = conn.close().await;
    Ok(())
}

/// `base` with its database (path) replaced by `name`, keeping any `?query`.
fn with_database(base: &str, name: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (base, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let prefix = match main[authority_start..].find('/') {
        Some(slash) => &main[..authority_start + slash],
        None => main,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// The URL with any password replaced by `***`, for error messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_in_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
