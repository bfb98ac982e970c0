//! The real `postdesk` binary as a child process, its API and event stream, and what
//! `/proc` says about it (memory, CPU time).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use futures::StreamExt as _;
use postdesk_testkit::PgDatabase;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "bench-quartz-lantern-river";

/// The `postdesk` binary Cargo built for this bench, with the bench profile (release).
/// `CARGO_BIN_EXE_<name>` is set for benchmarks as for integration tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_postdesk")
}

/// The DNS servers every postdesk of this run asks for sender checks (`POSTDESK_DNS`), set
/// once by [`use_dns`]; without it the child inherits the environment's.
static DNS: OnceLock<String> = OnceLock::new();

/// Makes every postdesk started from now on check senders against `servers`.
pub fn use_dns(servers: String) {
    let _ = DNS.set(servers);
}

/// Sets the DNS servers every postdesk of the run checks senders (DKIM, SPF, DMARC) against,
/// as in production: `BENCH_DNS` (servers, or "off"), or else a real dnsmasq on loopback that
/// answers at once, authoritative for the corpus' `.test` domains (its DKIM signatures do not
/// verify), which this starts and answers (it stops when dropped).
pub async fn dns_from_env() -> anyhow::Result<Option<postdesk_testkit::DnsServer>> {
    Ok(match std::env::var("BENCH_DNS") {
        Ok(servers) => {
            use_dns(servers);
            None
        }
        Err(_) => {
            let dns = postdesk_testkit::DnsServer::start(&[]).await?;
            use_dns(dns.addr().to_string());
            Some(dns)
        }
    })
}

/// A running `postdesk serve`, killed on drop (and by a watchdog if this process dies first).
pub struct Postdesk {
    child: tokio::process::Child,
    watchdog: std::process::Child,
    pub pid: u32,
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    log: PathBuf,
    data: tempfile::TempDir,
}

impl Postdesk {
    /// Starts postdesk on a fresh data folder (SQLite there, or `database_url`) with extra
    /// environment for the child (e.g. `POSTDESK_SMTP_LISTEN` to turn the SMTP ingress on or
    /// `POSTDESK_PUSH_SECRET` the push endpoint), waits for `/healthz`, and logs in as the
    /// admin. Its listeners are bound before `/healthz` answers, so they accept connections
    /// when this returns.
    pub async fn start_with(
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Postdesk> {
        let data = tempfile::Builder::new()
            .prefix("postdesk-bench-")
            .tempdir()?;
        let port = postdesk_testkit::free_port()?;
        let log = data.path().join("postdesk.log");
        let mut command = tokio::process::Command::new(binary());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("POSTDESK_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env(
                "POSTDESK_LOG",
                std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("POSTDESK_DATABASE_URL")
            .env_remove("POSTDESK_MAX_EMAIL_MB")
            .env_remove("POSTDESK_SMTP_LISTEN")
            .env_remove("POSTDESK_PUSH_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        if let Some(url) = database_url {
            command.env("POSTDESK_DATABASE_URL", url);
        }
        if let Some(dns) = DNS.get() {
            command.env("POSTDESK_DNS", dns);
        }
        command.envs(env.iter().copied());
        let child = command
            .spawn()
            .with_context(|| format!("cannot run {}", binary()))?;
        let pid = child.id().context("postdesk exited at once")?;
        let watchdog = watchdog(pid)?;
        let mut server = Postdesk {
            child,
            watchdog,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            token: String::new(),
            log,
            data,
        };
        let started = Instant::now();
        while server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .is_err()
        {
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("postdesk exited with {status}:\n{}", server.log_tail());
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "postdesk did not come up:\n{}",
                server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let login: Value = server
            .client
            .post(server.url("/api/v1/login"))
            .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        server.token = login["token"]
            .as_str()
            .context("no token in the login answer")?
            .to_owned();
        Ok(server)
    }

    /// The SQLite database postdesk uses when no database URL was given.
    pub fn sqlite_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.data.path().join("data").join("postdesk.db").display()
        )
    }

    /// Opens postdesk's database (`database_url`, or its SQLite file) to count what it stored,
    /// alongside the running postdesk.
    pub async fn raw_emails(&self, database_url: Option<&str>) -> anyhow::Result<RawEmails> {
        match database_url {
            Some(url) => RawEmails::connect(url).await,
            // Read-only: WAL lets this reader in beside postdesk's writer without blocking it.
            None => RawEmails::connect(&format!("{}?mode=ro", self.sqlite_url())).await,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The last lines postdesk wrote to stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Creates an inbox reading `user`'s INBOX on Dovecot over plain IMAP; its reader starts.
    pub async fn create_inbox(
        &self,
        imap_port: u16,
        address: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<i64> {
        let body = inbox_body(imap_port, address, user, password);
        let created = self.post("/api/v1/inboxes", &body).await?;
        created["id"].as_i64().context("no inbox id")
    }

    /// POSTs `body` to `path` as the admin; answers the JSON of a successful answer.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or_default();
        ensure!(
            status.is_success(),
            "POST {path} answered {status}: {answer}"
        );
        Ok(answer)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Whether the inbox has finished a sync with nothing left to process: state `idle`, a
    /// last sync time, and an empty backlog.
    pub async fn inbox_synced(&self, inbox: i64) -> anyhow::Result<bool> {
        let body = self.get(&format!("/api/v1/inboxes/{inbox}")).await?;
        let status = &body["status"];
        Ok(
            status["state"] == "idle"
                && !status["last_sync_at"].is_null()
                && status["backlog"] == 0,
        )
    }

    /// Waits until [`Postdesk::inbox_synced`], asking every `poll`; fails with `what` after
    /// `within`.
    pub async fn wait_synced(
        &self,
        inbox: i64,
        within: Duration,
        poll: Duration,
        what: &str,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while !self.inbox_synced(inbox).await? {
            anyhow::ensure!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(poll).await;
        }
        Ok(())
    }

    /// Waits until the inbox is idle again with nothing left to process, as after each email
    /// of a delay measurement (asking every 5 ms, for up to 20 s).
    pub async fn wait_idle_again(&self, inbox: i64) -> anyhow::Result<()> {
        self.wait_synced(
            inbox,
            Duration::from_secs(20),
            Duration::from_millis(5),
            "postdesk did not return to idle",
        )
        .await
    }

    /// Opens `GET /api/v1/events`.
    pub async fn events(&self) -> anyhow::Result<Events> {
        let response = self
            .client
            .get(self.url("/api/v1/events"))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                let at = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let (mut kind, mut data, mut id) = (None, Value::Null, None);
                    for line in block.lines() {
                        if let Some(i) = line.strip_prefix("id:") {
                            id = i.trim().parse().ok();
                        } else if let Some(k) = line.strip_prefix("event:") {
                            kind = Some(k.trim().to_owned());
                        } else if let Some(d) = line.strip_prefix("data:") {
                            data = serde_json::from_str(d.trim()).unwrap_or_default();
                        }
                    }
                    if let Some(kind) = kind
                        && tx.send(SseEvent { at, id, kind, data }).is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(Events { rx, task })
    }

    /// VmRSS and VmHWM in bytes.
    pub fn memory(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .with_context(|| format!("no {name} in /proc/{}/status", self.pid))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`, Linux 4.0+).
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// CPU time used by postdesk so far (all threads).
    pub fn cpu(&self) -> Duration {
        process_cpu(self.pid, false)
    }

    /// Kills postdesk. With `BENCH_LOG` set, its log is kept as
    /// `$TMPDIR/postdesk-bench-<pid>.log` (the data folder itself is removed).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        if std::env::var_os("BENCH_LOG").is_some() {
            let kept = std::env::temp_dir().join(format!("postdesk-bench-{}.log", self.pid));
            if std::fs::copy(&self.log, &kept).is_ok() {
                eprintln!("postdesk's log: {}", kept.display());
            }
        }
    }
}

/// Runs `measure` on a fresh postdesk started with `env` (as [`Postdesk::start_with`]), on a
/// fresh PostgreSQL database with `postgres` (handed to `measure`) or else on SQLite in its
/// data folder; prints the tail of its log when `measure` fails; then stops it and drops the
/// database.
pub async fn on_fresh_node<T>(
    postgres: bool,
    env: &[(&str, &str)],
    measure: impl AsyncFnOnce(&Postdesk, Option<&PgDatabase>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let pg = if postgres {
        Some(
            PgDatabase::create()
                .await
                .context("BENCH_DB=postgres needs PostgreSQL (POSTDESK_TEST_PG_URL)")?,
        )
    } else {
        None
    };
    let outcome = match Postdesk::start_with(pg.as_ref().map(PgDatabase::url), env).await {
        Ok(postdesk) => {
            eprintln!("postdesk pid {} at {}", postdesk.pid, postdesk.base);
            let outcome = measure(&postdesk, pg.as_ref()).await;
            if outcome.is_err() {
                eprintln!("--- postdesk log tail ---\n{}", postdesk.log_tail());
            }
            postdesk.stop().await;
            outcome
        }
        Err(e) => Err(e),
    };
    if let Some(pg) = pg {
        let _ = pg.cleanup().await;
    }
    outcome
}

/// The `POST /api/v1/inboxes` body of an inbox named "Support" reading `user`'s INBOX on
/// Dovecot over plain IMAP (its SMTP server is never used by the benches).
pub fn inbox_body(imap_port: u16, address: &str, user: &str, password: &str) -> Value {
    json!({
        "name": "Support", "email": address, "sender_name": "Example Support",
        "imap": { "host": "127.0.0.1", "port": imap_port, "security": "none", "username": user, "password": password },
        "smtp": { "host": "127.0.0.1", "port": 25, "security": "none" },
    })
}

/// A connection of its own to postdesk's database, counting the raw emails it has stored
/// (every state: new, processed, quarantined, duplicate). Plain SQL rather than
/// `postdesk_store`, which would open the SQLite file for writing and run the migrations.
pub struct RawEmails {
    pool: sqlx::AnyPool,
}

impl RawEmails {
    /// Connects to `url` (`sqlite://PATH?mode=ro` or `postgres://…`) with one connection.
    pub async fn connect(url: &str) -> anyhow::Result<RawEmails> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .with_context(|| format!("cannot open postdesk's database {url}"))?;
        Ok(RawEmails { pool })
    }

    /// `SELECT COUNT(*) FROM raw_emails WHERE inbox_id = $1`.
    pub async fn count(&self, inbox: i64) -> anyhow::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM raw_emails WHERE inbox_id = $1")
            .bind(inbox)
            .fetch_one(&self.pool)
            .await
            .context("cannot count postdesk's raw emails")
    }

    /// Closes the connection (a PostgreSQL database cannot be dropped while it is open).
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Counts every `every` in a task of its own until the inbox holds `expected` raw emails
    /// (see [`Drained`]).
    pub fn watch(self, inbox: i64, expected: usize, every: Duration) -> Drained {
        let expected = i64::try_from(expected).unwrap_or(i64::MAX);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut polls, mut slowest) = (0usize, Duration::ZERO);
            loop {
                tick.tick().await;
                let asked = Instant::now();
                let count = self.count(inbox).await?;
                let answered = Instant::now();
                polls += 1;
                slowest = slowest.max(answered.duration_since(asked));
                if count >= expected {
                    self.pool.close().await;
                    return Ok(DrainedAt {
                        at: answered,
                        polls,
                        slowest,
                    });
                }
            }
        });
        Drained { task }
    }
}

/// When the polling saw every raw email stored: the moment the answer arrived (the last
/// commit came before it, and after the previous poll), with how many queries it took and
/// the slowest of them.
#[derive(Debug, Clone, Copy)]
pub struct DrainedAt {
    pub at: Instant,
    pub polls: usize,
    pub slowest: Duration,
}

/// The polling task of [`RawEmails::watch`]; stopped when dropped.
pub struct Drained {
    task: JoinHandle<anyhow::Result<DrainedAt>>,
}

impl Drained {
    /// Waits up to `timeout` for the polling to see every raw email stored.
    pub async fn finish(&mut self, timeout: Duration) -> anyhow::Result<DrainedAt> {
        match tokio::time::timeout(timeout, &mut self.task).await {
            Ok(joined) => joined.context("the database polling task failed")?,
            Err(_) => bail!("the database polling did not see every raw email within {timeout:?}"),
        }
    }
}

impl Drop for Drained {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `sh` that kills `pid` when this process's end of its stdin closes, i.e. when the bench
/// dies without running destructors (Ctrl-C).
fn watchdog(pid: u32) -> anyhow::Result<std::process::Child> {
    std::process::Command::new("sh")
        .args([
            "-c",
            "while read -r _; do :; done; kill -s KILL \"$1\" 2>/dev/null",
            "postdesk-bench-watchdog",
            &pid.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the watchdog sh")
}

/// One Server-Sent Event, stamped when its bytes were read.
#[derive(Debug)]
pub struct SseEvent {
    pub at: Instant,
    /// Its `id:` (none for `resync`); the cluster bench matches events by it.
    #[allow(dead_code)]
    pub id: Option<u64>,
    pub kind: String,
    pub data: Value,
}

/// The events of one `GET /api/v1/events` connection, read in the background.
pub struct Events {
    rx: mpsc::UnboundedReceiver<SseEvent>,
    task: JoinHandle<()>,
}

impl Events {
    /// The next event, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next event of `kind` (others are dropped), or `None` after `timeout`.
    pub async fn next_of(&mut self, kind: &str, timeout: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let event = self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await?;
            if event.kind == kind {
                return Some(event);
            }
        }
    }

    /// Waits until `deadline` for a `message_created` (in a conversation of `inbox`, when
    /// given), noting when the inbox's reader said it woke (`inbox_status: syncing`) before
    /// it: (woke, created), each `None` when not seen.
    pub async fn wait_created(
        &mut self,
        inbox: Option<i64>,
        deadline: Instant,
    ) -> (Option<Instant>, Option<Instant>) {
        let ours = |id: &Value| inbox.is_none_or(|inbox| *id == inbox);
        let mut woke = None;
        loop {
            let Some(event) = self
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
            else {
                return (woke, None);
            };
            match event.kind.as_str() {
                "inbox_status"
                    if woke.is_none()
                        && event.data["state"] == "syncing"
                        && ours(&event.data["inbox_id"]) =>
                {
                    woke = Some(event.at);
                }
                "message_created" if ours(&event.data["conversation"]["inbox_id"]) => {
                    return (woke, Some(event.at));
                }
                _ => {}
            }
        }
    }

    /// Drops every event already received.
    pub fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Drops every event already received, counting those of `kind`.
    pub fn drain_counting(&mut self, kind: &str) -> usize {
        let mut counted = 0;
        while let Ok(event) = self.rx.try_recv() {
            counted += usize::from(event.kind == kind);
        }
        counted
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `(pgrp, utime + stime [+ cutime + cstime])` of a process, in seconds.
fn stat_of(pid: &str, children: bool) -> Option<(u32, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime, i.e. indexes 0..=14 here.
    let pgrp = fields.get(2)?.parse().ok()?;
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut ticks = tick(11) + tick(12);
    if children {
        ticks += tick(13) + tick(14);
    }
    Some((pgrp, ticks / clock_ticks()))
}

/// CPU time of one process (with its reaped children's when `children`).
pub fn process_cpu(pid: u32, children: bool) -> Duration {
    Duration::from_secs_f64(stat_of(&pid.to_string(), children).map_or(0.0, |(_, s)| s))
}

/// CPU time of a Dovecot instance: every live process in the master's process group, plus the
/// children the master has reaped. The master is found by its `-c <dir>/dovecot.conf`.
pub fn dovecot_cpu(dir: &Path) -> Duration {
    let config = dir.join("dovecot.conf");
    let config = config.to_string_lossy();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let pids: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    let master = pids.iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .contains(config.as_ref())
        }) && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "dovecot")
    });
    let Some(master) = master.and_then(|m| m.parse::<u32>().ok()) else {
        return Duration::ZERO;
    };
    let total: f64 = pids
        .iter()
        .filter_map(|pid| {
            let (pgrp, secs) = stat_of(pid, pid == &master.to_string())?;
            (pgrp == master).then_some(secs)
        })
        .sum();
    Duration::from_secs_f64(total)
}
