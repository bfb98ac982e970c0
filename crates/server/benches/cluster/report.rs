//! Figures: what one run measured, the console report and the rows written into
//! `docs/benchmarks.md`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{self, Summary, mb, ms, summary};
use crate::mail;

/// Resident memory of one node with the idle inboxes (part 1), at most.
pub const TARGET_RSS_MIB: f64 = 300.0;
/// CPU of one node with the idle inboxes (part 1), % of one core, at most.
pub const TARGET_IDLE_CPU: f64 = 2.0;
/// p99 of the delay from an event to the last stream that receives it (part 2), ms.
pub const TARGET_FANOUT_P99_MS: f64 = 100.0;

/// Rows kept in each table of `docs/benchmarks.md`.
const KEEP_ROWS: usize = 8;
/// Part 3 writes a row per configuration and round.
const KEEP_NODE_ROWS: usize = 16;

/// Part 1.
#[derive(Debug, Default)]
pub struct Idle {
    pub inboxes: usize,
    pub db: String,
    /// The node before any inbox.
    pub empty_rss: u64,
    pub empty_threads: u64,
    /// Creating the inboxes through the API, and until every one was idle (from the first).
    pub create_secs: f64,
    pub connect_secs: f64,
    /// How long `GET /api/v1/inboxes` took, the last time (every inbox with its status).
    pub list_ms: f64,
    /// IMAP sessions Dovecot counted when every inbox was idle, and after the idle window.
    pub sessions: usize,
    pub sessions_end: usize,
    /// The idle window.
    pub idle_secs: f64,
    pub rss_start: u64,
    pub rss_end: u64,
    pub rss_max: u64,
    /// VmHWM: the peak since the start (creating and connecting the inboxes included).
    pub peak: u64,
    pub threads_start: u64,
    pub threads_end: u64,
    pub cpu_secs: f64,
    pub dovecot_cpu_secs: f64,
    pub pg_cpu_secs: Option<f64>,
    pub bench_cpu_secs: f64,
    /// `inbox_status` events during the window (there should be none).
    pub idle_events: usize,
    /// New emails on idle inboxes.
    pub delay: Split,
    /// Dovecot processes that found no inotify instance left (their IDLE looks every second
    /// instead of hearing at once).
    pub inotify_warnings: usize,
}

impl Idle {
    pub fn cpu_percent(&self) -> f64 {
        percent(self.cpu_secs, self.idle_secs)
    }

    pub fn per_inbox_kib(&self) -> f64 {
        self.rss_end.saturating_sub(self.empty_rss) as f64 / 1024.0 / self.inboxes.max(1) as f64
    }
}

/// New emails one at a time, each timed and split: from just before the LMTP delivery to
/// `message_created`, the LMTP transaction, Dovecot's part (`250` to the reader's `syncing`)
/// and postdesk's (`syncing` to `message_created`).
#[derive(Debug, Default)]
pub struct Split {
    pub total: Vec<Duration>,
    pub lmtp: Vec<Duration>,
    pub woke: Vec<Duration>,
    pub own: Vec<Duration>,
    /// Emails whose event did not come within the wait.
    pub missed: usize,
}

impl Split {
    /// Adds one delivery; answers when its event came (`None`: missed).
    pub fn add(&mut self, t: &mail::Timed) -> Option<Instant> {
        let Some(at) = t.created else {
            self.missed += 1;
            return None;
        };
        self.total.push(at.duration_since(t.start));
        self.lmtp.push(t.stored.duration_since(t.start));
        if let Some(woke) = t.woke {
            self.woke.push(woke.saturating_duration_since(t.stored));
            self.own.push(at.saturating_duration_since(woke));
        }
        Some(at)
    }

    /// The console's line: p50 / p95 / max of each part.
    pub fn text(&self) -> String {
        format!(
            "{} emails, ms p50 / p95 / max: {} (LMTP {}; Dovecot's IDLE news {}; postdesk's part {}); {} missed",
            self.total.len(),
            p50_p95_max(&summary(&self.total)),
            p50_p95_max(&summary(&self.lmtp)),
            p50_p95_max(&summary(&self.woke)),
            p50_p95_max(&summary(&self.own)),
            self.missed
        )
    }
}

/// A transfer of part 2.
#[derive(Debug)]
pub struct Posted {
    /// Just before the API call, and when its answer was read.
    pub start: Instant,
    pub returned: Instant,
    /// The SSE id of its `conversation_transferred`, from the admin's stream.
    pub sse_id: Option<u64>,
}

/// Part 2.
#[derive(Debug, Default)]
pub struct Fanout {
    pub clients: usize,
    pub db: String,
    pub gap_ms: u64,
    pub open_secs: f64,
    /// With every stream open, before the series.
    pub rss_idle: u64,
    pub threads: u64,
    /// CPU of postdesk with every stream open and nothing happening, in cores.
    pub idle_cpu: f64,
    /// During the series (until every delivery came): postdesk, the bench process (the
    /// clients and the API calls), the PostgreSQL backends, in cores.
    pub server_cpu: f64,
    pub bench_cpu: f64,
    pub pg_cpu: Option<f64>,
    pub series_secs: f64,
    pub rss_end: u64,
    pub posted: Vec<Posted>,
    /// Per stream, the `message_created` events it read: (SSE id, when).
    pub received: Vec<Vec<(u64, Instant)>>,
    pub resyncs: usize,
    /// Streams that ended before they were closed, and why.
    pub ended: Vec<String>,
}

/// What part 2's deliveries say.
pub struct FanoutFigures {
    /// Per transfer: from the API answer to the last stream, and from the call's start.
    pub last_from_return: Summary,
    pub last_from_start: Summary,
    /// Every delivery to every stream, from the API answer.
    pub each_from_return: Summary,
    /// Deliveries read before the API answer was (counted as 0 from it).
    pub early: usize,
    /// Deliveries that never came (transfers × streams minus those read).
    pub missing: usize,
    /// The API calls themselves.
    pub calls: Summary,
}

impl Fanout {
    pub fn figures(&self) -> FanoutFigures {
        let mut by_id: HashMap<u64, Vec<Instant>> = HashMap::new();
        for stream in &self.received {
            for (id, at) in stream {
                by_id.entry(*id).or_default().push(*at);
            }
        }
        let (mut last_ret, mut last_start, mut each, mut calls) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut early, mut missing) = (0, 0);
        for posted in &self.posted {
            calls.push(posted.returned.duration_since(posted.start));
            let got = posted
                .sse_id
                .and_then(|id| by_id.get(&id))
                .map_or(&[][..], Vec::as_slice);
            missing += self.received.len().saturating_sub(got.len());
            for at in got {
                early += usize::from(*at < posted.returned);
                each.push(at.saturating_duration_since(posted.returned));
            }
            if let Some(last) = got.iter().max() {
                last_ret.push(last.saturating_duration_since(posted.returned));
                last_start.push(last.saturating_duration_since(posted.start));
            }
        }
        FanoutFigures {
            last_from_return: summary(&last_ret),
            last_from_start: summary(&last_start),
            each_from_return: summary(&each),
            early,
            missing,
            calls: summary(&calls),
        }
    }
}

/// Part 3, one run: `nodes` nodes on a fresh database read the backlog.
#[derive(Debug, Default)]
pub struct NodesRun {
    pub nodes: usize,
    /// Whether each node had an event stream open.
    pub streams: bool,
    pub round: usize,
    /// Inboxes read by each node, from `GET /api/v1/cluster`.
    pub readers: Vec<usize>,
    /// From the first `POST /inboxes` to every email stored raw, and to every one processed.
    pub drained_secs: f64,
    pub processed_secs: f64,
    /// CPU seconds over the backlog (until every email was processed): each node, Dovecot,
    /// the PostgreSQL backends, the bench process.
    pub node_cpu: Vec<f64>,
    pub dovecot_cpu: f64,
    pub pg_cpu: f64,
    pub bench_cpu: f64,
    /// The time those CPU seconds were counted over.
    pub busy_secs: f64,
    /// Per node: `message_created` events its stream heard, and when the last came (s from
    /// the start).
    pub events: Vec<usize>,
    pub events_last: Vec<Option<f64>>,
    /// Per node: every event its stream read (`resync` included).
    pub delivered: Vec<usize>,
    pub resyncs: usize,
    /// Events published in all (the shared log's last id).
    pub published: i64,
    /// Raw emails by state, and conversations, afterwards.
    pub states: Vec<(String, i64)>,
    pub conversations: i64,
    /// PostgreSQL's counters for the run's database.
    pub pg_stats: Vec<(&'static str, i64)>,
    /// What the nodes' database sessions were doing, sampled with each look at the backlog
    /// (`pg_stat_activity`: state and wait event, idle ones left out), most seen first; and
    /// how many looks.
    pub waits: Vec<(String, usize)>,
    pub samples: usize,
    pub delay: Option<NodesDelay>,
}

impl NodesRun {
    /// Cores kept busy over the backlog: every node, PostgreSQL, Dovecot and the bench.
    pub fn cores(&self) -> f64 {
        let cpu =
            self.node_cpu.iter().sum::<f64>() + self.pg_cpu + self.dovecot_cpu + self.bench_cpu;
        cpu / self.busy_secs.max(f64::EPSILON)
    }
}

/// Part 3, new emails after the backlog.
#[derive(Debug, Default)]
pub struct NodesDelay {
    /// Whether the inbox was read by the node it was created through, as meant.
    pub reader_checked: bool,
    /// On the reader's node's stream.
    pub reader: Split,
    /// LMTP start to `message_created` on the last node to show it.
    pub last: Vec<Duration>,
    /// From the reader's node to the last node.
    pub spread: Vec<Duration>,
    /// Emails that did not reach every node's stream within the wait.
    pub missed: usize,
}

/// Part 3.
#[derive(Debug, Default)]
pub struct Nodes {
    pub emails: usize,
    pub bytes: usize,
    pub inboxes: usize,
    pub load_secs: f64,
    pub runs: Vec<NodesRun>,
}

impl Nodes {
    /// Mean emails per second (processed) of the runs with `nodes` nodes, with or without
    /// event streams.
    pub fn rate(&self, nodes: usize, streams: bool) -> Option<f64> {
        let rates: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.nodes == nodes && r.streams == streams)
            .map(|r| self.emails as f64 / r.processed_secs)
            .collect();
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
    }
}

/// One run of the bench.
#[derive(Debug, Default)]
pub struct Run {
    pub date: String,
    pub machine: String,
    pub commit: String,
    /// /proc/loadavg (1 min) when the run started and ended: other work on the machine.
    pub load: (String, String),
    pub idle: Option<Idle>,
    pub fanout: Option<Fanout>,
    pub nodes: Option<Nodes>,
}

fn percent(cpu: f64, secs: f64) -> f64 {
    if secs > 0.0 { cpu / secs * 100.0 } else { 0.0 }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// "12.3 / 45.6 / 78.9" ms: p50, p95, max.
fn p50_p95_max(s: &Summary) -> String {
    format!("{:.1} / {:.1} / {:.1}", ms(s.p50), ms(s.p95), ms(s.max))
}

impl Run {
    /// The console report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n=== postdesk cluster benchmark: {} UTC, {} (commit {}) ===",
            self.date, self.machine, self.commit
        );
        let _ = writeln!(
            out,
            "load average (1 min) at start {}, at end {} (other work on the machine slows the figures)",
            self.load.0, self.load.1
        );
        if let Some(idle) = &self.idle {
            idle_text(&mut out, idle);
        }
        if let Some(fanout) = &self.fanout {
            fanout_text(&mut out, fanout);
        }
        if let Some(nodes) = &self.nodes {
            nodes_text(&mut out, nodes);
        }
        for (path, rows) in self.rows() {
            let _ = writeln!(out, "\nrows for {path}:\n{}", rows.join("\n"));
        }
        out
    }

    /// The markdown rows of this run, by table.
    fn rows(&self) -> Vec<(&'static str, Vec<String>)> {
        let mut tables = Vec::new();
        let load = format!("{} → {}", self.load.0, self.load.1);
        if let Some(idle) = &self.idle {
            let d = summary(&idle.delay.total);
            let pg = idle.pg_cpu_secs.map_or("–".to_owned(), |c| {
                format!("{:.2}", percent(c, idle.idle_secs))
            });
            tables.push((
                "idle",
                vec![format!(
                    "| {} | {} | {} | {} ({}) | {:.1} / {:.1} ({}) | {:.0} | {} | {:.2} ({}) | {:.2} / {pg} | {} ({}) | {load} |",
                    self.date,
                    self.commit,
                    idle.db,
                    idle.inboxes,
                    idle.sessions,
                    mb(idle.rss_end),
                    mb(idle.rss_max),
                    verdict(mb(idle.rss_max) < TARGET_RSS_MIB),
                    idle.per_inbox_kib(),
                    idle.threads_end,
                    idle.cpu_percent(),
                    verdict(idle.cpu_percent() < TARGET_IDLE_CPU),
                    percent(idle.dovecot_cpu_secs, idle.idle_secs),
                    p50_p95_max(&d),
                    idle.delay.total.len(),
                )],
            ));
        }
        if let Some(f) = &self.fanout {
            let fig = f.figures();
            let pg = f
                .pg_cpu
                .map_or("–".to_owned(), |c| format!("{:.1}", c * 100.0));
            tables.push((
                "fanout",
                vec![format!(
                    "| {} | {} | {} | {} | {} ({} ms apart) | {:.1} / {:.1} / {:.1} ({}) | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} / {pg} | {:.1} | {:.0} | {} / {} | {load} |",
                    self.date,
                    self.commit,
                    f.db,
                    f.received.len(),
                    f.posted.len(),
                    f.gap_ms,
                    ms(fig.last_from_return.p50),
                    ms(fig.last_from_return.p99),
                    ms(fig.last_from_return.max),
                    verdict(ms(fig.last_from_return.p99) < TARGET_FANOUT_P99_MS),
                    ms(fig.last_from_start.p50),
                    ms(fig.last_from_start.p99),
                    ms(fig.each_from_return.p50),
                    ms(fig.each_from_return.p99),
                    f.server_cpu * 100.0,
                    f.idle_cpu * 100.0,
                    f.bench_cpu * 100.0,
                    mb(f.rss_idle),
                    fig.missing,
                    f.resyncs,
                )],
            ));
        }
        if let Some(nodes) = &self.nodes {
            let rows = nodes
                .runs
                .iter()
                .map(|r| {
                    let delay = r.delay.as_ref().map_or("–".to_owned(), |d| {
                        let (a, b) = (summary(&d.reader.total), summary(&d.last));
                        format!(
                            "{:.0} / {:.0} ; {:.0} / {:.0} ({})",
                            ms(a.p50),
                            ms(a.p95),
                            ms(b.p50),
                            ms(b.p95),
                            d.reader.total.len()
                        )
                    });
                    let streams = if r.streams {
                        format!("yes ({} resync)", r.resyncs)
                    } else {
                        "no".to_owned()
                    };
                    format!(
                        "| {} | {} | {} | {} | {} ({}) | {streams} | {} | {:.2} | {:.2} | {:.0} | {} | {:.1} / {:.1} | {:.2} | {} | {delay} | {load} |",
                        self.date,
                        self.commit,
                        nodes.emails,
                        nodes.inboxes,
                        r.nodes,
                        join(&r.readers, |n| n.to_string()),
                        r.round + 1,
                        r.drained_secs,
                        r.processed_secs,
                        nodes.emails as f64 / r.processed_secs,
                        join(&r.node_cpu, |c| format!("{c:.1}")),
                        r.pg_cpu,
                        r.dovecot_cpu,
                        r.cores(),
                        r.pg_stats
                            .iter()
                            .find(|(name, _)| *name == "transactions")
                            .map_or("–".to_owned(), |(_, n)| n.to_string()),
                    )
                })
                .collect();
            tables.push(("nodes", rows));
        }
        tables
    }

    /// Adds this run's rows to the tables of `docs/benchmarks.md` (the parts that ran).
    pub fn write(&self) -> anyhow::Result<Vec<PathBuf>> {
        let path = common::docs_path();
        for (table, rows) in self.rows() {
            let (header, keep) = match table {
                "idle" => (IDLE_HEADER, KEEP_ROWS),
                "fanout" => (FANOUT_HEADER, KEEP_ROWS),
                _ => (NODES_HEADER, KEEP_NODE_ROWS),
            };
            let begin = format!(
                "<!-- bench:cluster-{table}:begin (rows added by BENCH_WRITE=1; keep the markers) -->"
            );
            let end = format!("<!-- bench:cluster-{table}:end -->");
            for row in rows {
                common::write_row(&path, &begin, &end, header, &row, keep, str::to_owned)?;
            }
        }
        Ok(vec![path])
    }
}

const IDLE_HEADER: &str = "| Run (UTC) | Commit | DB | Inboxes (IMAP sessions) | RSS MiB: at the end / max of the window (target < 300) | KiB per inbox | Threads | Idle CPU, % of a core (target < 2) | Dovecot / PostgreSQL CPU, % of a core | New email → SSE ms: p50 / p95 / max (emails) | Load |\n|---|---|---|---|---|---|---|---|---|---|---|";
const FANOUT_HEADER: &str = "| Run (UTC) | Commit | DB | Streams | Transfers | To the last stream, ms from the API answer: p50 / p99 / max (target p99 < 100) | The same from the call's start: p50 / p99 | Every delivery, ms: p50 / p99 | CPU % of a core: postdesk in the series / idle with the streams / PostgreSQL | Clients' CPU % | postdesk RSS MiB | Missed / resync | Load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";
const NODES_HEADER: &str = "| Run (UTC) | Commit | Emails | Inboxes | Nodes (inboxes each reads) | An event stream on each node | Round | Stored raw, s | Processed, s | Emails/s | CPU s per node | PostgreSQL / Dovecot CPU s | Cores busy | PostgreSQL transactions | New email → SSE ms, p50 / p95: reader's node ; last node (emails) | Load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

fn join<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    items.iter().map(show).collect::<Vec<_>>().join(", ")
}

fn idle_text(out: &mut String, idle: &Idle) {
    let _ = writeln!(
        out,
        "\n--- 1. One node, {} idle inboxes ({}) ---",
        idle.inboxes, idle.db
    );
    let _ = writeln!(
        out,
        "before any inbox: RSS {:.1} MiB, {} threads",
        mb(idle.empty_rss),
        idle.empty_threads
    );
    let _ = writeln!(
        out,
        "inboxes created through the API in {:.1} s; every one idle after {:.1} s; Dovecot counts {} IMAP sessions ({} after the window); GET /inboxes took {:.0} ms",
        idle.create_secs, idle.connect_secs, idle.sessions, idle.sessions_end, idle.list_ms
    );
    let _ = writeln!(
        out,
        "idle for {:.0} s: RSS {:.1} MiB at the start, {:.1} at the end, {:.1} at most (target < {TARGET_RSS_MIB:.0}: {}); {:.0} KiB per inbox over the empty node; peak since start (VmHWM) {:.1} MiB",
        idle.idle_secs,
        mb(idle.rss_start),
        mb(idle.rss_end),
        mb(idle.rss_max),
        verdict(mb(idle.rss_max) < TARGET_RSS_MIB),
        idle.per_inbox_kib(),
        mb(idle.peak)
    );
    let _ = writeln!(
        out,
        "threads {} → {}; CPU {:.2} s = {:.2} % of a core (target < {TARGET_IDLE_CPU}: {}); Dovecot {:.2} %, PostgreSQL backends {}, this bench {:.2} %; {} inbox_status events in the window",
        idle.threads_start,
        idle.threads_end,
        idle.cpu_secs,
        idle.cpu_percent(),
        verdict(idle.cpu_percent() < TARGET_IDLE_CPU),
        percent(idle.dovecot_cpu_secs, idle.idle_secs),
        idle.pg_cpu_secs.map_or("–".to_owned(), |c| format!(
            "{:.2} %",
            percent(c, idle.idle_secs)
        )),
        percent(idle.bench_cpu_secs, idle.idle_secs),
        idle.idle_events
    );
    if !idle.delay.total.is_empty() {
        let _ = writeln!(
            out,
            "new email → SSE message_created: {}",
            idle.delay.text()
        );
        let _ = writeln!(
            out,
            "Dovecot: {} imap processes found no inotify instance left (fs.inotify.max_user_instances = {}) and look for new mail every second instead",
            idle.inotify_warnings,
            std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
                .map_or("?".to_owned(), |v| v.trim().to_owned())
        );
    }
}

fn fanout_text(out: &mut String, f: &Fanout) {
    let fig = f.figures();
    let _ = writeln!(
        out,
        "\n--- 2. Fan-out to {} event streams of {} agents ({}) ---",
        f.received.len(),
        f.clients,
        f.db
    );
    let _ = writeln!(
        out,
        "{} streams opened in {:.1} s; postdesk then RSS {:.1} MiB, {} threads, {:.2} % of a core with nothing happening",
        f.received.len(),
        f.open_secs,
        mb(f.rss_idle),
        f.threads,
        f.idle_cpu * 100.0
    );
    let _ = writeln!(
        out,
        "{} transfers between two queues, one every {} ms (API call p50 / p95 / max {} ms)",
        f.posted.len(),
        f.gap_ms,
        p50_p95_max(&fig.calls)
    );
    let _ = writeln!(
        out,
        "to the last stream, from the API answer: p50 {:.1} / p90 {:.1} / p99 {:.1} / max {:.1} ms (target p99 < {TARGET_FANOUT_P99_MS:.0}: {})",
        ms(fig.last_from_return.p50),
        ms(fig.last_from_return.p90),
        ms(fig.last_from_return.p99),
        ms(fig.last_from_return.max),
        verdict(ms(fig.last_from_return.p99) < TARGET_FANOUT_P99_MS)
    );
    let _ = writeln!(
        out,
        "to the last stream, from the call's start: p50 {:.1} / p99 {:.1} / max {:.1} ms; every delivery from the answer: p50 {:.1} / p99 {:.1} ms; {} read before the answer",
        ms(fig.last_from_start.p50),
        ms(fig.last_from_start.p99),
        ms(fig.last_from_start.max),
        ms(fig.each_from_return.p50),
        ms(fig.each_from_return.p99),
        fig.early
    );
    let _ = writeln!(
        out,
        "during the series ({:.1} s): postdesk {:.1} % of a core, the clients and API calls (this bench) {:.1} %, PostgreSQL backends {}; RSS after {:.1} MiB",
        f.series_secs,
        f.server_cpu * 100.0,
        f.bench_cpu * 100.0,
        f.pg_cpu
            .map_or("–".to_owned(), |c| format!("{:.1} %", c * 100.0)),
        mb(f.rss_end)
    );
    let _ = writeln!(
        out,
        "deliveries missing: {}; resync events: {}; streams ended early: {}{}",
        fig.missing,
        f.resyncs,
        f.ended.len(),
        f.ended
            .first()
            .map_or(String::new(), |why| format!(" (first: {why})"))
    );
}

fn nodes_text(out: &mut String, nodes: &Nodes) {
    let _ = writeln!(
        out,
        "\n--- 3. The backlog on one and on several nodes (PostgreSQL) ---"
    );
    let _ = writeln!(
        out,
        "{} emails, {:.1} MiB, split over {} inboxes (one Dovecot mailbox each; loaded in {:.1} s)",
        nodes.emails,
        mb(nodes.bytes as u64),
        nodes.inboxes,
        nodes.load_secs
    );
    for r in &nodes.runs {
        let _ = writeln!(
            out,
            "{} node(s), {} an event stream each, round {}: inboxes read per node [{}]; stored raw after {:.2} s, processed after {:.2} s = {:.0} emails/s; CPU s per node [{}], PostgreSQL backends {:.1} s, Dovecot {:.1} s, this bench {:.1} s",
            r.nodes,
            if r.streams { "with" } else { "without" },
            r.round + 1,
            join(&r.readers, |n| n.to_string()),
            r.drained_secs,
            r.processed_secs,
            nodes.emails as f64 / r.processed_secs,
            join(&r.node_cpu, |c| format!("{c:.1}")),
            r.pg_cpu,
            r.dovecot_cpu,
            r.bench_cpu
        );
        let _ = writeln!(
            out,
            "   {:.2} cores busy until processed; PostgreSQL counted {}; {} events published; raw emails {:?}; {} conversations",
            r.cores(),
            join(&r.pg_stats, |(name, n)| format!("{n} {name}")),
            r.published,
            r.states,
            r.conversations
        );
        let _ = writeln!(
            out,
            "   the nodes' database sessions over {} looks (sessions per look): {}",
            r.samples,
            join(&r.waits[..r.waits.len().min(6)], |(what, n)| format!(
                "{what} {:.2}",
                *n as f64 / r.samples.max(1) as f64
            ))
        );
        if r.streams {
            let _ = writeln!(
                out,
                "   each node's stream read [{}] events ({} resync in all), message_created [{}], the last at [{}] s",
                join(&r.delivered, |n| n.to_string()),
                r.resyncs,
                join(&r.events, |n| n.to_string()),
                join(&r.events_last, |l| l
                    .map_or("–".to_owned(), |s| format!("{s:.2}"))),
            );
        }
        if let Some(d) = &r.delay {
            let _ = writeln!(
                out,
                "   new emails to an inbox read by the node it was created through ({}): on that node's stream {}",
                d.reader_checked,
                d.reader.text()
            );
            let _ = writeln!(
                out,
                "   on the last node's stream, ms p50 / p95 / max: {}; last minus reader's node {}; {} did not reach every node",
                p50_p95_max(&summary(&d.last)),
                p50_p95_max(&summary(&d.spread)),
                d.missed
            );
        }
    }
    let nodes_max = nodes.runs.iter().map(|r| r.nodes).max().unwrap_or(1);
    for streams in [true, false] {
        if let (Some(one), Some(more)) = (nodes.rate(1, streams), nodes.rate(nodes_max, streams)) {
            let _ = writeln!(
                out,
                "mean throughput {} event streams: 1 node {one:.0} emails/s, {nodes_max} nodes {more:.0} emails/s ({:.2}×)",
                if streams { "with" } else { "without" },
                more / one
            );
        }
    }
}
