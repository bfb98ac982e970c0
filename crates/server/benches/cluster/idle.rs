//! Part 1: one node reading many inboxes, each its own Dovecot mailbox, all connected and in
//! IMAP IDLE. What the node costs while nothing happens, and how soon a new email on one of
//! them reaches an event stream.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use futures::StreamExt as _;
use postdesk_testkit::{Dovecot, PgDatabase};
use serde_json::Value;

use crate::procs::{self, CpuLap, PgCpu};
use crate::report::Idle;
use crate::server::{self, Postdesk};
use crate::{Options, PASSWORD, corpus, mail};

/// Inboxes created at a time through the API.
const CREATE_PARALLEL: usize = 4;
/// How long the node is left alone after every inbox is idle, before measuring: the first
/// heartbeats after the start, and the blocking pool's idle threads (they end after 10 s).
const SETTLE: Duration = Duration::from_secs(15);
/// The pause before each new email of the delay samples.
const SAMPLE_GAP: Duration = Duration::from_millis(500);

/// The Dovecot user (and inbox address) of idle inbox `i`.
fn user(i: usize) -> String {
    format!("idle{i}@example.test")
}

pub async fn run(options: &Options, dovecot: &Dovecot) -> anyhow::Result<Idle> {
    let n = options.inboxes;
    eprintln!("idle: {n} Dovecot mailboxes, one inbox each, on one node");
    for i in 0..n {
        dovecot.add_user(&user(i), PASSWORD)?;
    }
    server::on_fresh_node(options.postgres, &[], async |postdesk, pg| {
        measure(options, dovecot, postdesk, pg.map(PgDatabase::name)).await
    })
    .await
}

async fn measure(
    options: &Options,
    dovecot: &Dovecot,
    postdesk: &Postdesk,
    pg_name: Option<&str>,
) -> anyhow::Result<Idle> {
    let n = options.inboxes;
    let pid = postdesk.pid;
    let mut out = Idle {
        inboxes: n,
        db: options.db_name().to_owned(),
        ..Idle::default()
    };
    // The node with no inbox yet, after its start has settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    out.empty_rss = procs::rss(pid);
    out.empty_threads = procs::threads(pid);

    let mut events = postdesk.events().await?;
    let started = Instant::now();
    let created: Vec<anyhow::Result<i64>> = futures::stream::iter(0..n)
        .map(|i| async move {
            let mut body = server::inbox_body(dovecot.imap_port(), &user(i), &user(i), PASSWORD);
            body["name"] = Value::from(format!("Idle {i}"));
            let created = postdesk.post("/api/v1/inboxes", &body).await?;
            created["id"].as_i64().context("no inbox id")
        })
        .buffered(CREATE_PARALLEL)
        .collect()
        .await;
    let ids: Vec<i64> = created.into_iter().collect::<anyhow::Result<_>>()?;
    out.create_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "  {n} inboxes created in {:.1} s; waiting for every reader to be idle",
        out.create_secs
    );
    // Every inbox idle: connected, synced, in IDLE.
    let deadline = started + Duration::from_secs(120).max(Duration::from_millis(300 * n as u64));
    loop {
        let asked = Instant::now();
        let list = postdesk.get("/api/v1/inboxes").await?;
        out.list_ms = asked.elapsed().as_secs_f64() * 1000.0;
        let inboxes = list["inboxes"].as_array().cloned().unwrap_or_default();
        let idle = inboxes
            .iter()
            .filter(|i| i["status"]["state"] == "idle" && !i["status"]["last_sync_at"].is_null())
            .count();
        if idle == n {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "only {idle} of {n} inboxes were idle after {:.0} s",
            started.elapsed().as_secs_f64()
        );
        eprintln!(
            "  {idle}/{n} idle after {:.0} s (GET /inboxes took {:.0} ms)",
            started.elapsed().as_secs_f64(),
            out.list_ms
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    out.connect_secs = started.elapsed().as_secs_f64();
    out.sessions = dovecot.all_imap_sessions()?;
    eprintln!(
        "  every inbox idle after {:.1} s; Dovecot counts {} IMAP sessions",
        out.connect_secs, out.sessions
    );
    events.drain();
    tokio::time::sleep(SETTLE).await;

    // Idle: nothing happens; the admin's event stream stays open, as a browser would.
    eprintln!("  measuring the idle node for {} s", options.idle_secs);
    out.rss_start = procs::rss(pid);
    out.threads_start = procs::threads(pid);
    let lap = CpuLap::start(pid);
    let dovecot_cpu = server::dovecot_cpu(dovecot.dir());
    let mut pg_cpu = match pg_name {
        Some(name) => Some(PgCpu::start(name).await),
        None => None,
    };
    let own = procs::own_cpu();
    let until = Instant::now() + Duration::from_secs(options.idle_secs);
    let mut samples = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())).await;
        samples.push(procs::rss(pid));
    }
    (out.cpu_secs, out.idle_secs) = lap.lap();
    out.dovecot_cpu_secs = server::dovecot_cpu(dovecot.dir())
        .saturating_sub(dovecot_cpu)
        .as_secs_f64();
    if let Some(pg) = pg_cpu.as_mut() {
        out.pg_cpu_secs = Some(pg.lap().await.as_secs_f64());
    }
    out.bench_cpu_secs = procs::own_cpu().saturating_sub(own).as_secs_f64();
    out.rss_end = procs::rss(pid);
    out.rss_max = samples.iter().copied().max().unwrap_or(out.rss_end);
    out.threads_end = procs::threads(pid);
    out.peak = procs::peak(pid);
    out.idle_events = events.drain_counting("inbox_status");
    out.sessions_end = dovecot.all_imap_sessions()?;

    // A new email on one inbox after another, spread over them.
    let samples = options.samples.min(n);
    if samples > 0 {
        eprintln!("  delivering {samples} emails, one at a time, to idle inboxes");
        let emails = corpus::generate(samples, options.seed.wrapping_add(7));
        let mut lmtp = mail::Delivery::connect(mail::Protocol::Lmtp, dovecot.lmtp_port()).await?;
        for (k, email) in emails.iter().enumerate() {
            let i = k * n / samples;
            let inbox = ids[i];
            tokio::time::sleep(SAMPLE_GAP).await;
            events.drain();
            let timed =
                mail::deliver_timed(&mut lmtp, &mut events, &user(i), &email.raw, Some(inbox))
                    .await?;
            if out.delay.add(&timed).is_none() {
                eprintln!("  no message_created within 20 s of a delivery to inbox {inbox}");
            }
            postdesk.wait_idle_again(inbox).await?;
        }
        lmtp.quit().await;
    }
    // Dovecot's IDLE hears of new mail through inotify, one instance per imap process, all
    // running as one user: past fs.inotify.max_user_instances it falls back to looking every
    // mailbox_idle_check_interval, and says so once per process.
    out.inotify_warnings = dovecot
        .log()
        .lines()
        .filter(|l| l.contains("Inotify instance limit"))
        .count();
    Ok(out)
}
