//! Part 3: the ingest bench's backlog, split over several inboxes (one Dovecot mailbox each),
//! read by one node and then by several on one PostgreSQL database. Each inbox is created
//! through node `i % nodes`, which claims its lease at once, so the nodes share the reading
//! (a node claims every free lease it finds, so inboxes that exist before the nodes start go
//! to whichever claims first). Then new emails one at a time, timed to an event stream on
//! every node.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use postdesk_testkit::{Dovecot, PgDatabase};
use serde_json::Value;

use crate::procs::{CpuLap, PgCpu};
use crate::report::{Nodes, NodesDelay, NodesRun};
use crate::server::{self, Postdesk};
use crate::streams::Streams;
use crate::{Options, PASSWORD, corpus, mail, procs};

/// The key every node encrypts the mailbox passwords with (base64 of bytes 0 to 31): the
/// nodes must share it to read each other's inboxes.
const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// How often the database is asked how far the backlog is.
const POLL: Duration = Duration::from_millis(20);
/// The pause before each new email of the delay.
const DELAY_GAP: Duration = Duration::from_millis(300);
/// Emails per `UID FETCH` for the warm-up pass, as postdesk's reader.
const FETCH_BATCH: usize = 200;

/// A row of `pg_stat_activity`: state, wait event type, wait event, the statement's start.
type Activity = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The Dovecot user (and inbox address) of backlog inbox `j`.
fn user(j: usize) -> String {
    format!("backlog{j}@example.test")
}

pub async fn run(options: &Options, dovecot: &Dovecot) -> anyhow::Result<Nodes> {
    let k = options.node_inboxes;
    eprintln!(
        "nodes: generating {} emails (seed {}), split over {k} mailboxes",
        options.messages, options.seed
    );
    let emails = corpus::generate(options.messages, options.seed);
    let stats = corpus::Stats::of(&emails);
    let per_inbox = options.messages.div_ceil(k);
    let started = Instant::now();
    // Contiguous parts: a reply's parent is at most 300 emails earlier, so nearly every
    // conversation stays in one inbox.
    for (j, part) in emails.chunks(per_inbox).enumerate() {
        dovecot.add_user(&user(j), PASSWORD)?;
        let raws: Vec<&[u8]> = part.iter().map(|e| e.raw.as_slice()).collect();
        mail::append_all(dovecot.imap_port(), &user(j), PASSWORD, &raws).await?;
    }
    let load_secs = started.elapsed().as_secs_f64();
    drop(emails);
    // One pass over every mailbox, so that each run finds Dovecot's files in the page cache.
    for j in 0..k {
        let fetched =
            mail::bare_fetch(dovecot.imap_port(), &user(j), PASSWORD, FETCH_BATCH).await?;
        ensure!(fetched.emails > 0, "mailbox {} is empty", user(j));
    }
    eprintln!("  loaded in {load_secs:.1} s");
    let mut out = Nodes {
        emails: stats.emails,
        bytes: stats.bytes,
        inboxes: k,
        load_secs,
        runs: Vec::new(),
    };
    for round in 0..options.rounds {
        for &streams in &options.node_streams {
            for nodes in [1, options.nodes] {
                let delay = round == 0 && streams && options.delay_emails > 0;
                let run = backlog(options, dovecot, nodes, streams, round, delay).await?;
                eprintln!(
                    "  {nodes} node(s), {} event streams, round {}: {} emails processed in {:.2} s ({:.0}/s)",
                    if streams { "with" } else { "without" },
                    round + 1,
                    out.emails,
                    run.processed_secs,
                    out.emails as f64 / run.processed_secs
                );
                out.runs.push(run);
            }
        }
    }
    Ok(out)
}

/// One run: fresh database, `n` nodes (with an event stream each, or none), the backlog, then
/// (with `delay`) new emails.
async fn backlog(
    options: &Options,
    dovecot: &Dovecot,
    n: usize,
    streams: bool,
    round: usize,
    delay: bool,
) -> anyhow::Result<NodesRun> {
    let pg = PgDatabase::create()
        .await
        .context("part 3 needs PostgreSQL (POSTDESK_TEST_PG_URL)")?;
    let mut nodes = Vec::with_capacity(n);
    let mut started = Ok(());
    for _ in 0..n {
        match Postdesk::start_with(Some(pg.url()), &[("POSTDESK_SECRET_KEY", SECRET_KEY)]).await {
            Ok(node) => nodes.push(node),
            Err(e) => {
                started = Err(e);
                break;
            }
        }
    }
    let outcome = match started {
        Ok(()) => measure(options, dovecot, &nodes, &pg, streams, round, delay).await,
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        for node in &nodes {
            eprintln!(
                "--- postdesk {} log tail ---\n{}",
                node.pid,
                node.log_tail()
            );
        }
    }
    for node in nodes {
        node.stop().await;
    }
    // A backend reports its statistics when it ends, at the latest: read them once the
    // nodes' connections are gone.
    let outcome = match outcome {
        Ok(mut run) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            run.pg_stats = pg_stats(pg.name()).await;
            Ok(run)
        }
        Err(e) => Err(e),
    };
    let _ = pg.cleanup().await;
    outcome
}

/// What PostgreSQL counted for the run's database (fresh for each run): transactions
/// committed, rows fetched through indexes, inserted and updated, and rows added to the
/// shared event log. The bench's own polling is in them too (a count every 20 ms).
async fn pg_stats(database: &str) -> Vec<(&'static str, i64)> {
    use sqlx::Connection as _;
    let admin = std::env::var("POSTDESK_TEST_PG_URL")
        .unwrap_or_else(|_| postdesk_testkit::postgres::DEFAULT_PG_URL.to_owned());
    let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await else {
        return Vec::new();
    };
    let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT xact_commit, tup_fetched, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_optional(&mut conn)
    .await
    .ok()
    .flatten();
    let _ = conn.close().await;
    row.map_or_else(Vec::new, |(commits, fetched, inserted, updated)| {
        vec![
            ("transactions", commits),
            ("rows fetched", fetched),
            ("rows inserted", inserted),
            ("rows updated", updated),
        ]
    })
}

async fn measure(
    options: &Options,
    dovecot: &Dovecot,
    nodes: &[Postdesk],
    pg: &PgDatabase,
    with_streams: bool,
    round: usize,
    delay: bool,
) -> anyhow::Result<NodesRun> {
    let n = nodes.len();
    let k = options.node_inboxes;
    let expected = i64::try_from(options.messages)?;
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(pg.url())
        .await?;
    // A light event stream on every node, as an agent's browser (or none).
    let mut streams = Vec::with_capacity(n);
    for node in nodes.iter().filter(|_| with_streams) {
        streams.push(
            Streams::open(
                &node.base,
                std::slice::from_ref(&node.token),
                "message_created",
                1,
            )
            .await?,
        );
    }
    let laps: Vec<CpuLap> = nodes.iter().map(|node| CpuLap::start(node.pid)).collect();
    let dovecot_cpu = server::dovecot_cpu(dovecot.dir());
    let mut pg_cpu = PgCpu::start(pg.name()).await;
    let own = procs::own_cpu();

    let started = Instant::now();
    for j in 0..k {
        let node = &nodes[j % n];
        let mut body = server::inbox_body(dovecot.imap_port(), &user(j), &user(j), PASSWORD);
        body["name"] = Value::from(format!("Backlog {j}"));
        node.post("/api/v1/inboxes", &body).await?;
    }
    let (mut drained, mut processed) = (None, None);
    let mut waits: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut samples = 0usize;
    let limit = Duration::from_secs(600);
    while processed.is_none() {
        ensure!(
            started.elapsed() < limit,
            "the backlog was not processed within {limit:?}"
        );
        tokio::time::sleep(POLL).await;
        let (total, done): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE state <> 'new') FROM raw_emails",
        )
        .fetch_one(&db)
        .await?;
        let at = Instant::now();
        // What the database's backends for the nodes are doing at this moment.
        let doing: Vec<Activity> =
            sqlx::query_as(
                "SELECT state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 70)
                 FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
            .fetch_all(&db)
            .await?;
        for (state, kind, event, query) in doing {
            let what = match (state.as_deref(), kind, event) {
                (Some("idle"), _, _) => continue,
                // A lock wait: on which statement.
                (state, Some(kind), Some(event)) if kind == "Lock" => format!(
                    "{} ({kind}: {event}) in \"{}\"",
                    state.unwrap_or("?"),
                    query.unwrap_or_default()
                ),
                (state, Some(kind), Some(event)) => {
                    format!("{} ({kind}: {event})", state.unwrap_or("?"))
                }
                (state, _, _) => format!("{} (running)", state.unwrap_or("?")),
            };
            *waits.entry(what).or_insert(0usize) += 1;
        }
        samples += 1;
        if drained.is_none() && total >= expected {
            drained = Some(at);
        }
        if done >= expected {
            processed = Some(at);
        }
    }
    let processed = processed.unwrap_or_else(Instant::now);
    let drained = drained.unwrap_or(processed);
    // The backlog's cost: CPU until every email was processed.
    let mut run = NodesRun {
        nodes: n,
        streams: with_streams,
        round,
        drained_secs: drained.duration_since(started).as_secs_f64(),
        processed_secs: processed.duration_since(started).as_secs_f64(),
        node_cpu: laps.iter().map(|lap| lap.lap().0).collect(),
        dovecot_cpu: server::dovecot_cpu(dovecot.dir())
            .saturating_sub(dovecot_cpu)
            .as_secs_f64(),
        pg_cpu: pg_cpu.lap().await.as_secs_f64(),
        bench_cpu: procs::own_cpu().saturating_sub(own).as_secs_f64(),
        busy_secs: processed.duration_since(started).as_secs_f64(),
        samples,
        ..NodesRun::default()
    };
    let mut waits: Vec<(String, usize)> = waits.into_iter().collect();
    waits.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    run.waits = waits;
    // The streams go on until their node has sent what it will (a stream that fell behind
    // got `resync` instead of the events it missed): until none heard anything for a second.
    let mut heard = usize::MAX;
    let quiet = Instant::now() + Duration::from_secs(60);
    while Instant::now() < quiet {
        let now: usize = streams
            .iter()
            .map(|s| s.count.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        if now == heard {
            break;
        }
        heard = now;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for stream in streams {
        let received = stream.stop().await.pop().unwrap_or_default();
        run.events.push(received.watched.len());
        run.delivered
            .push(received.watched.len() + received.others + received.resyncs);
        run.resyncs += received.resyncs;
        let last = received.watched.iter().map(|(_, at)| *at).max();
        run.events_last
            .push(last.map(|at| at.duration_since(started).as_secs_f64()));
    }
    run.published = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
        .fetch_one(&db)
        .await?;
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM raw_emails GROUP BY state ORDER BY state")
            .fetch_all(&db)
            .await?;
    run.states = states;
    run.conversations = sqlx::query_scalar("SELECT COUNT(*) FROM conversations")
        .fetch_one(&db)
        .await?;
    db.close().await;
    run.readers = readers(nodes).await?;
    ensure!(
        run.states
            .iter()
            .filter(|(state, _)| state != "new")
            .map(|(_, count)| count)
            .sum::<i64>()
            == expected,
        "not every email was processed: {:?}",
        run.states
    );
    if delay {
        run.delay = Some(new_emails(options, dovecot, nodes).await?);
    }
    Ok(run)
}

/// How many inboxes each node reads, from `GET /api/v1/cluster` (nodes matched by pid).
async fn readers(nodes: &[Postdesk]) -> anyhow::Result<Vec<usize>> {
    let cluster = nodes[0].get("/api/v1/cluster").await?;
    let listed = cluster["nodes"].as_array().cloned().unwrap_or_default();
    Ok(nodes
        .iter()
        .map(|node| {
            listed
                .iter()
                .find(|l| l["pid"] == u64::from(node.pid))
                .and_then(|l| l["inboxes"].as_array())
                .map_or(0, Vec::len)
        })
        .collect())
}

/// New emails one at a time into an inbox of its own (created through the last node, which
/// reads it), each timed from just before its LMTP delivery to its `message_created` on every
/// node's event stream.
async fn new_emails(
    options: &Options,
    dovecot: &Dovecot,
    nodes: &[Postdesk],
) -> anyhow::Result<NodesDelay> {
    let n = nodes.len();
    let reader = n - 1;
    let live = format!("live{n}@example.test");
    dovecot.add_user(&live, PASSWORD)?;
    let mut body = server::inbox_body(dovecot.imap_port(), &live, &live, PASSWORD);
    body["name"] = Value::from("Live");
    let inbox = nodes[reader].post("/api/v1/inboxes", &body).await?["id"]
        .as_i64()
        .context("no inbox id")?;
    nodes[0]
        .wait_synced(
            inbox,
            Duration::from_secs(30),
            Duration::from_millis(50),
            "the new inbox did not become idle",
        )
        .await?;
    let pid = nodes[0].get(&format!("/api/v1/inboxes/{inbox}")).await?["reader"]["node_id"]
        .as_str()
        .map(str::to_owned);
    let cluster = nodes[0].get("/api/v1/cluster").await?;
    let reader_pid = cluster["nodes"]
        .as_array()
        .and_then(|listed| listed.iter().find(|l| l["id"].as_str() == pid.as_deref()))
        .and_then(|l| l["pid"].as_u64());
    let mut out = NodesDelay {
        reader_checked: reader_pid == Some(u64::from(nodes[reader].pid)),
        ..NodesDelay::default()
    };
    let mut events = Vec::with_capacity(n);
    for node in nodes {
        events.push(node.events().await?);
    }
    let emails = corpus::generate(options.delay_emails, options.seed.wrapping_add(13));
    let mut lmtp = mail::Delivery::connect(mail::Protocol::Lmtp, dovecot.lmtp_port()).await?;
    eprintln!(
        "  {} new emails, one at a time, to an inbox read by node {}",
        emails.len(),
        reader + 1
    );
    for email in &emails {
        tokio::time::sleep(DELAY_GAP).await;
        for stream in &mut events {
            stream.drain();
        }
        let timed = mail::deliver_timed(
            &mut lmtp,
            &mut events[reader],
            &live,
            &email.raw,
            Some(inbox),
        )
        .await?;
        let deadline = timed.stored + Duration::from_secs(20);
        let mut last = timed.created;
        for (i, stream) in events.iter_mut().enumerate() {
            if i != reader {
                let (_, at) = stream.wait_created(Some(inbox), deadline).await;
                last = last.zip(at).map(|(a, b)| a.max(b));
            }
        }
        match (out.reader.add(&timed), last) {
            (Some(at_reader), Some(last)) => {
                out.last.push(last.duration_since(timed.start));
                out.spread.push(last.saturating_duration_since(at_reader));
            }
            _ => {
                out.missed += 1;
                eprintln!("  a new email did not reach every node's stream within 20 s");
            }
        }
        nodes[0].wait_idle_again(inbox).await?;
    }
    lmtp.quit().await;
    Ok(out)
}
