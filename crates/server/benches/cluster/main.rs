//! `cargo bench -p postdesk --bench cluster`: how far one node goes, and what more nodes on one
//! PostgreSQL database change. Three parts, each against the real `postdesk` binary (bench
//! profile = release) as child processes, a real Dovecot started by the testkit, and
//! PostgreSQL:
//!
//! 1. `idle`: one node reading 1,000 inboxes, each its own Dovecot mailbox, all connected and
//!    in IMAP IDLE: its memory, threads and CPU while nothing happens, and how soon a new
//!    email on one of them shows up over Server-Sent Events.
//! 2. `fanout`: 1,000 agents each with an open event stream; a series of queue events (a
//!    conversation transferred through the API between two departments' Queued Chats, every
//!    agent in both), each timed from the API call to every client that receives it.
//! 3. `nodes`: the 10,000-email backlog of the ingest bench, spread over several inboxes, read
//!    by one node and then by three: throughput, and the delay of a new email, per node.
//!
//! See docs/benchmarks.md ("Several nodes: idle inboxes, fan-out, three nodes") for what is
//! measured, how, and the figures.
//!
//! Environment:
//! - `BENCH_ONLY` (all): comma-separated subset of `idle,fanout,nodes`.
//! - `BENCH_DB` (`postgres`): the database of parts 1 and 2, `postgres` (a fresh database on
//!   `POSTDESK_TEST_PG_URL`, default postgres://postgres@127.0.0.1:5432/postgres) or
//!   `sqlite`. Part 3 is always on PostgreSQL.
//! - `BENCH_INBOXES` (1000): idle inboxes of part 1.
//! - `BENCH_IDLE_SECS` (60): how long part 1 measures the idle node.
//! - `BENCH_SAMPLES` (20): new emails delivered one at a time to idle inboxes of part 1.
//! - `BENCH_CLIENTS` (1000): agents with an open event stream in part 2.
//! - `BENCH_EVENTS` (200): transfers in part 2, one every `BENCH_EVENT_GAP_MS` (100).
//! - `BENCH_MESSAGES` (10000): the backlog of part 3.
//! - `BENCH_NODES` (3): nodes of part 3's second configuration (the first is one node).
//! - `BENCH_NODE_INBOXES` (6): inboxes the backlog is split over in part 3.
//! - `BENCH_DELAY_EMAILS` (30): new emails delivered one at a time after each backlog of
//!   part 3's first round.
//! - `BENCH_ROUNDS` (2): how many times part 3 runs each configuration (alternating).
//! - `BENCH_NODE_STREAMS` (`1,0`): part 3's backlogs with an event stream open on each node
//!   (`1`, as agents' browsers), then without (`0`: what the streams cost).
//! - `BENCH_SEED` (1): corpus seed.
//! - `BENCH_WRITE=1`: add this run's rows to the tables in docs/benchmarks.md.
//! - `BENCH_LOG` (`warn`): postdesk's log filter; when set, each postdesk's log is kept as
//!   `$TMPDIR/postdesk-bench-<pid>.log`.
//! - `BENCH_DNS`: the DNS servers postdesk checks senders against (`POSTDESK_DNS`); by
//!   default a dnsmasq on loopback that answers at once; `off` measures without the checks.

#[path = "../ingest/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../ingest/corpus.rs"]
#[allow(dead_code)]
mod corpus;
#[path = "../ingest/mail.rs"]
#[allow(dead_code)]
mod mail;
#[path = "../ingest/server.rs"]
#[allow(dead_code)]
mod server;

mod fanout;
mod idle;
mod nodes;
mod procs;
mod report;
mod streams;

use std::time::Duration;

use anyhow::ensure;
use common::{env_or, parts_from_env, postgres_from_env};
use postdesk_testkit::Dovecot;

/// The password of every Dovecot mailbox of the bench.
pub const PASSWORD: &str = "mailbox-secret";

/// Every part, in the order they run: the default of `BENCH_ONLY`.
const PARTS: [&str; 3] = ["idle", "fanout", "nodes"];

/// What a run is asked to do (from the environment).
#[derive(Debug, Clone)]
pub struct Options {
    pub postgres: bool,
    pub inboxes: usize,
    pub idle_secs: u64,
    pub samples: usize,
    pub clients: usize,
    pub events: usize,
    pub event_gap: Duration,
    pub messages: usize,
    pub nodes: usize,
    pub node_inboxes: usize,
    pub delay_emails: usize,
    pub rounds: usize,
    pub node_streams: Vec<bool>,
    pub seed: u64,
    pub write: bool,
    pub only: Vec<String>,
}

impl Options {
    fn from_env() -> anyhow::Result<Options> {
        let postgres = postgres_from_env("postgres")?;
        let only = parts_from_env(&PARTS)?;
        let options = Options {
            postgres,
            inboxes: env_or("BENCH_INBOXES", 1000)?,
            idle_secs: env_or("BENCH_IDLE_SECS", 60)?,
            samples: env_or("BENCH_SAMPLES", 20)?,
            clients: env_or("BENCH_CLIENTS", 1000)?,
            events: env_or("BENCH_EVENTS", 200)?,
            event_gap: Duration::from_millis(env_or("BENCH_EVENT_GAP_MS", 100)?),
            messages: env_or("BENCH_MESSAGES", 10_000)?,
            nodes: env_or("BENCH_NODES", 3)?,
            node_inboxes: env_or("BENCH_NODE_INBOXES", 6)?,
            delay_emails: env_or("BENCH_DELAY_EMAILS", 30)?,
            rounds: env_or("BENCH_ROUNDS", 2)?,
            node_streams: env_or("BENCH_NODE_STREAMS", "1,0".to_owned())?
                .split(',')
                .map(|v| match v.trim() {
                    "1" => Ok(true),
                    "0" => Ok(false),
                    other => Err(anyhow::anyhow!(
                        "BENCH_NODE_STREAMS: {other:?} is not 1 or 0"
                    )),
                })
                .collect::<anyhow::Result<_>>()?,
            seed: env_or("BENCH_SEED", 1)?,
            write: env_or("BENCH_WRITE", 0u8)? == 1,
            only,
        };
        ensure!(options.inboxes > 0, "BENCH_INBOXES must be at least 1");
        ensure!(options.clients > 0, "BENCH_CLIENTS must be at least 1");
        ensure!(options.nodes >= 2, "BENCH_NODES must be at least 2");
        ensure!(
            options.node_inboxes > 0 && options.messages >= options.node_inboxes,
            "BENCH_NODE_INBOXES must be at least 1 and at most BENCH_MESSAGES"
        );
        ensure!(options.rounds > 0, "BENCH_ROUNDS must be at least 1");
        Ok(options)
    }

    fn runs(&self, part: &str) -> bool {
        self.only.iter().any(|p| p == part)
    }

    /// The database of parts 1 and 2, as the report names it.
    pub fn db_name(&self) -> &'static str {
        if self.postgres {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }
}

fn main() -> anyhow::Result<()> {
    if !common::benchmarking("cluster") {
        return Ok(());
    }
    let options = Options::from_env()?;
    let run = common::runtime()?.block_on(bench(&options))?;
    println!("{}", run.text());
    if options.write {
        for path in run.write()? {
            println!("wrote this run's rows into {}", path.display());
        }
    }
    Ok(())
}

async fn bench(options: &Options) -> anyhow::Result<report::Run> {
    postdesk_testkit::init();
    let mut run = report::Run {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string(),
        machine: common::machine(),
        commit: common::commit(),
        load: (common::load_average(), String::new()),
        ..report::Run::default()
    };
    eprintln!("postdesk binary: {}", server::binary());
    // Sender checks run as in production, against a DNS server that answers at once.
    let _dns = server::dns_from_env().await?;
    let mut dovecot = Dovecot::start().await?;
    // Every idle inbox holds a session, and so does each reader of the other parts.
    let sessions = options.inboxes + options.node_inboxes + 50;
    dovecot.allow_imap_sessions(sessions).await?;

    if options.runs("idle") {
        run.idle = Some(idle::run(options, &dovecot).await?);
    }
    if options.runs("fanout") {
        run.fanout = Some(fanout::run(options, &dovecot).await?);
    }
    if options.runs("nodes") {
        run.nodes = Some(nodes::run(options, &dovecot).await?);
    }
    run.load.1 = common::load_average();
    Ok(run)
}
