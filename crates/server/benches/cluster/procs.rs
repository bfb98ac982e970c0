//! What `/proc` says about the processes of a run: memory, threads, CPU time, and the CPU
//! time of the PostgreSQL backends serving one database.

use std::collections::HashMap;
use std::time::Duration;

use crate::server;

/// A field of `/proc/PID/status` in kB (`VmRSS:`, `VmHWM:`) as bytes, or a count
/// (`Threads:`).
fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
}

/// Resident memory (VmRSS) in bytes.
pub fn rss(pid: u32) -> u64 {
    status_field(pid, "VmRSS:").map_or(0, |kb| kb * 1024)
}

/// Peak resident memory (VmHWM) in bytes.
pub fn peak(pid: u32) -> u64 {
    status_field(pid, "VmHWM:").map_or(0, |kb| kb * 1024)
}

/// Threads of the process.
pub fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads:").unwrap_or(0)
}

/// CPU time (user + system, all threads) of the process so far.
pub fn cpu(pid: u32) -> Duration {
    server::process_cpu(pid, false)
}

/// CPU time of this process (the bench: its clients, its API calls) so far.
pub fn own_cpu() -> Duration {
    cpu(std::process::id())
}

/// The CPU time of the PostgreSQL backends serving one database, from `pg_stat_activity`
/// and `/proc` (the server runs on this machine). Backends that ended between two looks are
/// missed, so it is a lower bound; the server's own processes (WAL writer, checkpointer) are
/// not in it.
pub struct PgCpu {
    admin: String,
    database: String,
    seen: HashMap<u32, Duration>,
}

impl PgCpu {
    /// Starts counting for `database` (a name on the server of `POSTDESK_TEST_PG_URL`).
    pub async fn start(database: &str) -> PgCpu {
        let admin = std::env::var("POSTDESK_TEST_PG_URL")
            .unwrap_or_else(|_| postdesk_testkit::postgres::DEFAULT_PG_URL.to_owned());
        let mut pg = PgCpu {
            admin,
            database: database.to_owned(),
            seen: HashMap::new(),
        };
        pg.seen = pg.look().await;
        pg
    }

    async fn look(&self) -> HashMap<u32, Duration> {
        use sqlx::Connection as _;
        let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await else {
            return HashMap::new();
        };
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind(&self.database)
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
        let _ = conn.close().await;
        pids.into_iter()
            .filter_map(|pid| u32::try_from(pid).ok())
            .map(|pid| (pid, cpu(pid)))
            .collect()
    }

    /// The backends' CPU time since [`PgCpu::start`] (or the previous call).
    pub async fn lap(&mut self) -> Duration {
        let now = self.look().await;
        let used = now
            .iter()
            .map(|(pid, at)| at.saturating_sub(self.seen.get(pid).copied().unwrap_or_default()))
            .sum();
        self.seen = now;
        used
    }
}

/// CPU time of a child process between two looks.
#[derive(Debug, Clone, Copy)]
pub struct CpuLap {
    pid: u32,
    at: Duration,
    started: std::time::Instant,
}

impl CpuLap {
    pub fn start(pid: u32) -> CpuLap {
        CpuLap {
            pid,
            at: cpu(pid),
            started: std::time::Instant::now(),
        }
    }

    /// (CPU seconds used, wall seconds) since the start.
    pub fn lap(&self) -> (f64, f64) {
        (
            cpu(self.pid).saturating_sub(self.at).as_secs_f64(),
            self.started.elapsed().as_secs_f64(),
        )
    }
}
