//! Figures: what one run measured, the console report and the row written into
//! `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::common::{docs_path, mb, ms, summary};

pub const BEGIN: &str = "<!-- bench:runs:begin (rows added by BENCH_WRITE=1; keep the markers) -->";
pub const END: &str = "<!-- bench:runs:end -->";
/// Runs kept in the table; older rows are dropped when a new one is written.
const KEEP_ROWS: usize = 8;

pub const TARGET_RATIO: f64 = 0.5;
pub const TARGET_MEDIAN_MS: f64 = 100.0;
pub const TARGET_P99_MS: f64 = 500.0;
pub const TARGET_MEMORY_FACTOR: f64 = 4.0;

#[derive(Debug, Default)]
pub struct Throughput {
    pub emails: usize,
    /// From creating the inbox to idle with an empty backlog: every email processed into
    /// conversations.
    pub secs: f64,
    /// From creating the inbox to every email stored raw in postdesk's database (the mailbox
    /// drained), seen by polling the database.
    pub drained_secs: f64,
    /// Database queries of that polling, and the slowest.
    pub drain_polls: usize,
    pub drain_slowest: Duration,
    pub conversations: usize,
    pub postdesk_cpu: f64,
    pub dovecot_cpu: f64,
    pub processed: i64,
    pub quarantined: i64,
    pub lagged: bool,
}

#[derive(Debug, Default)]
pub struct Latency {
    /// From just before the LMTP transaction to the `message_created` event read.
    pub from_start: Vec<Duration>,
    /// From Dovecot's 250 after DATA (stored) to the event.
    pub from_stored: Vec<Duration>,
    /// How long the LMTP transactions took.
    pub lmtp: Vec<Duration>,
    /// Dovecot's part: from the LMTP 250 to postdesk's `inbox_status: syncing` (IDLE woke).
    pub dovecot_notify: Vec<Duration>,
    /// postdesk's part: from that wake-up to the `message_created` event.
    pub postdesk_own: Vec<Duration>,
    /// Dovecot alone, with a bare reader doing postdesk's IMAP steps on another mailbox of the
    /// same size: LMTP 250 to its IDLE waking, and to the new email's bytes in hand.
    pub bare_woke: Vec<Duration>,
    pub bare_fetched: Vec<Duration>,
    /// Emails whose event did not come within the wait.
    pub missed: usize,
    pub gap_ms: u64,
}

/// Delivery over SMTP straight to postdesk's SMTP ingress (no Dovecot in the path).
#[derive(Debug, Default)]
pub struct SmtpLatency {
    /// From just before `MAIL FROM` to the `message_created` event read.
    pub from_start: Vec<Duration>,
    /// From just before `MAIL FROM` to the `250` after the final dot: postdesk has committed
    /// the email to its database.
    pub to_stored: Vec<Duration>,
    /// From that `250` to the event (processing after the reply).
    pub from_stored: Vec<Duration>,
    /// Emails whose event did not come within the wait.
    pub missed: usize,
    pub gap_ms: u64,
}

/// Delivery over LMTP to a Dovecot whose push-notification plugin (`ox` driver) calls
/// postdesk's `PUT /api/v1/hooks/dovecot-push` as soon as it stores the email; the reader also
/// stays in IDLE.
#[derive(Debug, Default)]
pub struct PushLatency {
    /// From just before the LMTP transaction to the `message_created` event read.
    pub from_start: Vec<Duration>,
    /// How long the LMTP transactions took (start -> `250`, the email stored).
    pub lmtp: Vec<Duration>,
    /// From the `250` to the event (zero when the event came first).
    pub from_stored: Vec<Duration>,
    /// From just before the LMTP transaction to postdesk's `inbox_status: syncing` (its reader
    /// woken, by the push or by IDLE).
    pub woke: Vec<Duration>,
    /// postdesk's part: from that wake-up to the `message_created` event.
    pub postdesk_own: Vec<Duration>,
    /// Deliveries whose event was read before the LMTP `250` (the push is sent during the
    /// transaction).
    pub event_before_250: usize,
    /// `message_created` events in all (each email should have exactly one).
    pub created_events: usize,
    /// Error or warning lines of the Dovecot log about the push-notification plugin.
    pub push_errors: Vec<String>,
    /// Emails whose event did not come within the wait.
    pub missed: usize,
    pub gap_ms: u64,
}

#[derive(Debug, Default)]
pub struct Phases {
    pub emails: usize,
    pub store_raw: f64,
    pub process: f64,
    pub parse_only: f64,
}

#[derive(Debug, Default)]
pub struct Memory {
    pub email_bytes: usize,
    pub attachment_bytes: usize,
    pub idle_rss: u64,
    pub peak: u64,
    pub peak_reset: bool,
    pub secs: f64,
    pub parsed_in_full: bool,
    /// Peak RSS sampled every 10 ms and when it happened (s after the APPEND started).
    pub sampled_peak: (u64, f64),
    /// Peak growth of this process while `postdesk_mail::parse` parses the same email.
    pub parse_peak: Option<u64>,
    /// When the APPEND finished (s).
    pub appended: f64,
    /// RSS every 100 ms (s, bytes).
    pub timeline: Vec<(f64, u64)>,
}

impl Memory {
    pub fn growth(&self) -> u64 {
        self.peak.saturating_sub(self.idle_rss)
    }

    pub fn factor(&self) -> f64 {
        self.growth() as f64 / self.email_bytes.max(1) as f64
    }
}

#[derive(Debug, Default)]
pub struct Run {
    pub date: String,
    pub machine: String,
    pub db: String,
    pub commit: String,
    /// /proc/loadavg (1 min) when the run started and ended: other work on the machine.
    pub load: (String, String),
    pub corpus: Option<crate::corpus::Stats>,
    pub load_secs: f64,
    pub bare: Option<crate::mail::Fetched>,
    pub bare_dovecot_cpu: f64,
    pub postdesk: Option<Throughput>,
    pub latency: Option<Latency>,
    pub smtp: Option<SmtpLatency>,
    pub push: Option<PushLatency>,
    pub phases: Option<Phases>,
    pub memory: Option<Memory>,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

impl Run {
    pub fn bare_rate(&self) -> Option<f64> {
        self.bare
            .as_ref()
            .map(|b| b.emails as f64 / b.elapsed.as_secs_f64())
    }

    /// Emails per second processed into conversations.
    pub fn postdesk_rate(&self) -> Option<f64> {
        self.postdesk.as_ref().map(|p| p.emails as f64 / p.secs)
    }

    /// Emails per second stored raw (the mailbox drained).
    pub fn drained_rate(&self) -> Option<f64> {
        self.postdesk
            .as_ref()
            .map(|p| p.emails as f64 / p.drained_secs)
    }

    /// The console report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n=== postdesk ingest benchmark: {} UTC, {}, {} (commit {}) ===",
            self.date, self.machine, self.db, self.commit
        );
        let _ = writeln!(
            out,
            "load average (1 min) at start {}, at end {} (other work on the machine slows the figures)",
            self.load.0, self.load.1
        );
        if let Some(c) = &self.corpus {
            let _ = writeln!(
                out,
                "corpus: {} emails, {:.1} MiB (mean {:.1} KiB, largest {:.0} KiB); {} replies (In-Reply-To), {} with attachments, {} with HTML",
                c.emails,
                mb(c.bytes as u64),
                c.bytes as f64 / c.emails.max(1) as f64 / 1024.0,
                c.largest as f64 / 1024.0,
                c.replies,
                c.attachments,
                c.html
            );
            let _ = writeln!(
                out,
                "mailbox loaded with pipelined APPEND on one connection in {:.1} s",
                self.load_secs
            );
        }
        if let (Some(bare), Some(rate)) = (&self.bare, self.bare_rate()) {
            let _ = writeln!(out, "\n1. Backlog ingest");
            let _ = writeln!(
                out,
                "   bare IMAP fetch (async-imap, UID FETCH (UID BODY.PEEK[]), 200 per batch): {} emails in {:.2} s = {rate:.0} emails/s ({:.1} MiB/s); Dovecot CPU {:.1} s",
                bare.emails,
                bare.elapsed.as_secs_f64(),
                mb(bare.bytes as u64) / bare.elapsed.as_secs_f64(),
                self.bare_dovecot_cpu
            );
        }
        if let (Some(p), Some(rate), Some(drained)) =
            (&self.postdesk, self.postdesk_rate(), self.drained_rate())
        {
            let _ = writeln!(
                out,
                "   postdesk (release binary, {}), timed from creating the inbox:",
                self.db
            );
            let _ = writeln!(
                out,
                "     stored raw (drained): {} emails in {:.2} s = {drained:.0} emails/s (its database polled every 10 ms: {} queries, slowest {:.1} ms)",
                p.emails,
                p.drained_secs,
                p.drain_polls,
                ms(p.drain_slowest)
            );
            let _ = writeln!(
                out,
                "     processed into conversations: {} emails in {:.2} s = {rate:.0} emails/s; {} conversations; processed {}, quarantined {}",
                p.emails, p.secs, p.conversations, p.processed, p.quarantined
            );
            let _ = writeln!(
                out,
                "   CPU while ingesting: postdesk {:.1} s ({:.2} cores), Dovecot {:.1} s, over {:.1} s{}",
                p.postdesk_cpu,
                p.postdesk_cpu / p.secs,
                p.dovecot_cpu,
                p.secs,
                if p.lagged {
                    " (the event stream lagged: counts from the database)"
                } else {
                    ""
                }
            );
            if let Some(bare) = self.bare_rate() {
                let ratio = rate / bare;
                let _ = writeln!(
                    out,
                    "   ratio postdesk processed / bare: {ratio:.2} (target >= {TARGET_RATIO}): {}",
                    verdict(ratio >= TARGET_RATIO)
                );
                let _ = writeln!(
                    out,
                    "   ratio postdesk stored raw (drained) / bare: {:.2} (the target is on the processed ratio; this one alone would have {})",
                    drained / bare,
                    if drained / bare >= TARGET_RATIO {
                        "met it"
                    } else {
                        "MISSED it"
                    }
                );
            }
        }
        if let Some(ph) = &self.phases {
            let n = ph.emails.max(1) as f64;
            let _ = writeln!(
                out,
                "   phases, in-process on the same corpus ({} emails, in batches as the reader takes them):",
                ph.emails
            );
            let _ = writeln!(
                out,
                "     store raw (Store::store_fetched, 200 per transaction): {:.2} s ({:.2} ms/email)",
                ph.store_raw,
                ph.store_raw * 1000.0 / n
            );
            let _ = writeln!(
                out,
                "     process (ingest::process_pending: read, parse, thread, insert): {:.2} s ({:.2} ms/email)",
                ph.process,
                ph.process * 1000.0 / n
            );
            let _ = writeln!(
                out,
                "       of which parsing (postdesk_mail::parse alone): {:.2} s ({:.2} ms/email); database and the rest: {:.2} s",
                ph.parse_only,
                ph.parse_only * 1000.0 / n,
                (ph.process - ph.parse_only).max(0.0)
            );
        }
        if let Some(l) = &self.latency {
            let s = summary(&l.from_start);
            let st = summary(&l.from_stored);
            let lm = summary(&l.lmtp);
            let _ = writeln!(
                out,
                "\n2. Mailbox -> SSE delay (IDLE), {} emails over LMTP one at a time, {} ms after postdesk is idle again",
                l.from_start.len(),
                l.gap_ms
            );
            let _ = writeln!(
                out,
                "   delivery start -> message_created read: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1} (target median < {TARGET_MEDIAN_MS}, p99 < {TARGET_P99_MS}): {}",
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max),
                verdict(ms(s.p50) < TARGET_MEDIAN_MS && ms(s.p99) < TARGET_P99_MS && l.missed == 0)
            );
            let _ = writeln!(
                out,
                "   of which the LMTP delivery itself: median {:.1} ms, p99 {:.1}",
                ms(lm.p50),
                ms(lm.p99)
            );
            let _ = writeln!(
                out,
                "   stored (LMTP 250) -> event: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
                ms(st.p50),
                ms(st.p90),
                ms(st.p99),
                ms(st.max)
            );
            if !l.dovecot_notify.is_empty() {
                let d = summary(&l.dovecot_notify);
                let p = summary(&l.postdesk_own);
                let _ = writeln!(
                    out,
                    "   Dovecot's part, stored -> postdesk woken from IDLE (its inbox_status: syncing): median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
                    ms(d.p50),
                    ms(d.p90),
                    ms(d.p99),
                    ms(d.max)
                );
                let _ = writeln!(
                    out,
                    "   postdesk's part, woken -> message_created read: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
                    ms(p.p50),
                    ms(p.p90),
                    ms(p.p99),
                    ms(p.max)
                );
            }
            if !l.bare_fetched.is_empty() {
                let w = summary(&l.bare_woke);
                let f = summary(&l.bare_fetched);
                let _ = writeln!(
                    out,
                    "   Dovecot alone: a bare async-imap reader doing the same IMAP steps on a mailbox of the same size ({} emails, same pacing)",
                    l.bare_fetched.len()
                );
                let _ = writeln!(
                    out,
                    "     stored -> IDLE woke: median {:.1} ms, p99 {:.1}; stored -> bytes in hand: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
                    ms(w.p50),
                    ms(w.p99),
                    ms(f.p50),
                    ms(f.p90),
                    ms(f.p99),
                    ms(f.max)
                );
                let _ = writeln!(
                    out,
                    "     so postdesk adds (median stored -> event minus median stored -> bytes): {:.1} ms",
                    ms(st.p50) - ms(f.p50)
                );
            }
            if l.missed > 0 {
                let _ = writeln!(
                    out,
                    "   {} emails had no event within the wait (not in the percentiles)",
                    l.missed
                );
            }
        }
        if let Some(l) = &self.smtp {
            let s = summary(&l.from_start);
            let t = summary(&l.to_stored);
            let st = summary(&l.from_stored);
            let _ = writeln!(
                out,
                "\n3. Direct SMTP ingress -> SSE delay (no IMAP), {} emails over one SMTP connection one at a time, {} ms after postdesk is idle again",
                l.from_start.len(),
                l.gap_ms
            );
            let _ = writeln!(
                out,
                "   MAIL FROM -> message_created read: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1} (target median < {TARGET_MEDIAN_MS}, p99 < {TARGET_P99_MS}): {}",
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max),
                verdict(ms(s.p50) < TARGET_MEDIAN_MS && ms(s.p99) < TARGET_P99_MS && l.missed == 0)
            );
            let _ = writeln!(
                out,
                "   MAIL FROM -> 250 after the final dot (committed in postdesk's database): median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
                ms(t.p50),
                ms(t.p90),
                ms(t.p99),
                ms(t.max)
            );
            let _ = writeln!(
                out,
                "   250 -> message_created read (processing after the reply): median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
                ms(st.p50),
                ms(st.p90),
                ms(st.p99),
                ms(st.max)
            );
            if l.missed > 0 {
                let _ = writeln!(
                    out,
                    "   {} emails had no event within the wait (not in the percentiles)",
                    l.missed
                );
            }
        }
        if let Some(l) = &self.push {
            push_text(&mut out, l);
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                out,
                "\n5. Peak memory for one email at the size limit (child process, /proc/PID/status)"
            );
            let _ = writeln!(
                out,
                "   email {:.1} MiB ({} bytes; attachment {:.1} MiB), parsed in full: {}, ingested in {:.1} s",
                mb(m.email_bytes as u64),
                m.email_bytes,
                mb(m.attachment_bytes as u64),
                m.parsed_in_full,
                m.secs
            );
            let _ = writeln!(
                out,
                "   idle RSS {:.1} MiB; peak (VmHWM{}) {:.1} MiB; growth {:.1} MiB = {:.2} x the email (target < {TARGET_MEMORY_FACTOR}): {}",
                mb(m.idle_rss),
                if m.peak_reset {
                    ", reset at idle"
                } else {
                    ", since start"
                },
                mb(m.peak),
                mb(m.growth()),
                m.factor(),
                verdict(m.factor() < TARGET_MEMORY_FACTOR)
            );
            let _ = writeln!(
                out,
                "   sampled every 10 ms: peak RSS {:.1} MiB at {:.2} s after the APPEND started (APPEND done at {:.2} s, event at {:.2} s)",
                mb(m.sampled_peak.0),
                m.sampled_peak.1,
                m.appended,
                m.secs
            );
            let line: Vec<String> = m
                .timeline
                .iter()
                .map(|(at, rss)| format!("{at:.1}s {:.0}", mb(*rss)))
                .collect();
            let _ = writeln!(out, "   RSS MiB every 100 ms: {}", line.join(", "));
            if let Some(parse) = m.parse_peak {
                let _ = writeln!(
                    out,
                    "   for comparison, postdesk_mail::parse alone on that email (in the bench process): peak growth {:.1} MiB = {:.2} x the email",
                    mb(parse),
                    parse as f64 / m.email_bytes.max(1) as f64
                );
            }
        }
        let _ = writeln!(
            out,
            "\nmarkdown row for docs/benchmarks.md:\n{}",
            self.markdown_row()
        );
        out
    }

    /// One row of the runs table.
    pub fn markdown_row(&self) -> String {
        let dash = || "–".to_owned();
        let emails = self.corpus.map_or_else(dash, |c| c.emails.to_string());
        let bare = self.bare_rate().map_or_else(dash, |r| format!("{r:.0}/s"));
        let postdesk = self
            .postdesk_rate()
            .map_or_else(dash, |r| format!("{r:.0}/s"));
        let ratio = match (self.postdesk_rate(), self.bare_rate()) {
            (Some(p), Some(b)) => format!("{:.2}", p / b),
            _ => dash(),
        };
        let drained = match (self.drained_rate(), self.bare_rate()) {
            (Some(d), Some(b)) => format!("{d:.0}/s ({:.2})", d / b),
            _ => dash(),
        };
        let latency = self.latency.as_ref().map_or_else(dash, |l| {
            let s = summary(&l.from_start);
            let missed = if l.missed > 0 {
                format!(" ({} missed)", l.missed)
            } else {
                String::new()
            };
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0}{missed}",
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max)
            )
        });
        let smtp = self.smtp.as_ref().map_or_else(dash, |l| {
            let s = summary(&l.from_start);
            let t = summary(&l.to_stored);
            let missed = if l.missed > 0 {
                format!(" ({} missed)", l.missed)
            } else {
                String::new()
            };
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ({:.1} / {:.1} / {:.1} / {:.1}){missed}",
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max),
                ms(t.p50),
                ms(t.p90),
                ms(t.p99),
                ms(t.max)
            )
        });
        let push = self.push.as_ref().map_or_else(dash, |l| {
            let s = summary(&l.from_start);
            let missed = if l.missed > 0 {
                format!(" ({} missed)", l.missed)
            } else {
                String::new()
            };
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1}{missed}",
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max)
            )
        });
        let (memory, factor) = self.memory.as_ref().map_or_else(
            || (dash(), dash()),
            |m| {
                (
                    format!("{:.0} MiB", mb(m.growth())),
                    format!("{:.2}", m.factor()),
                )
            },
        );
        format!(
            "| {} | {} | {} | {emails} | {bare} | {postdesk} | {ratio} | {drained} | {latency} | {smtp} | {push} | {memory} | {factor} |",
            self.date, self.commit, self.db
        )
    }
}

/// Section 4 of the console report: LMTP delivery with Dovecot's push configured.
fn push_text(out: &mut String, l: &PushLatency) {
    let s = summary(&l.from_start);
    let lm = summary(&l.lmtp);
    let st = summary(&l.from_stored);
    let _ = writeln!(
        out,
        "\n4. Mailbox -> SSE delay with Dovecot's push (push-notification ox driver -> PUT /api/v1/hooks/dovecot-push, IDLE still on), {} emails over LMTP one at a time, {} ms after postdesk is idle again",
        l.from_start.len(),
        l.gap_ms
    );
    let _ = writeln!(
        out,
        "   delivery start -> message_created read: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1} (target median < {TARGET_MEDIAN_MS}, p99 < {TARGET_P99_MS}): {}",
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.max),
        verdict(ms(s.p50) < TARGET_MEDIAN_MS && ms(s.p99) < TARGET_P99_MS && l.missed == 0)
    );
    let _ = writeln!(
        out,
        "   of which the LMTP delivery itself (start -> 250): median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
        ms(lm.p50),
        ms(lm.p90),
        ms(lm.p99),
        ms(lm.max)
    );
    let _ = writeln!(
        out,
        "   stored (LMTP 250) -> event: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}; event read before the 250: {} of {}",
        ms(st.p50),
        ms(st.p90),
        ms(st.p99),
        ms(st.max),
        l.event_before_250,
        l.from_start.len()
    );
    if !l.woke.is_empty() {
        let w = summary(&l.woke);
        let p = summary(&l.postdesk_own);
        let _ = writeln!(
            out,
            "   delivery start -> postdesk woken (its inbox_status: syncing): median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
            ms(w.p50),
            ms(w.p90),
            ms(w.p99),
            ms(w.max)
        );
        let _ = writeln!(
            out,
            "   postdesk's part, woken -> message_created read: median {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max)
        );
    }
    let _ = writeln!(
        out,
        "   message_created events: {} for {} emails, each stored once in postdesk's database",
        l.created_events,
        l.from_start.len() + l.missed
    );
    if l.missed > 0 {
        let _ = writeln!(
            out,
            "   {} emails had no event within the wait (not in the percentiles)",
            l.missed
        );
    }
    if !l.push_errors.is_empty() {
        let _ = writeln!(
            out,
            "   Dovecot logged {} push-notification errors or warnings, the first: {}",
            l.push_errors.len(),
            l.push_errors[0]
        );
    }
}

/// Columns of [`table_header`]; rows written before the push column have one fewer.
const COLUMNS: usize = 13;
/// Where the push column is (0-based), for rows written before it.
const PUSH_COLUMN: usize = 10;

/// A row of the runs table with as many columns as [`table_header`]: a row from before the push
/// column gets "–" there.
fn upgrade_row(row: &str) -> String {
    let cells: Vec<&str> = row
        .trim()
        .trim_start_matches('|')
        .trim_end_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    if cells.len() != COLUMNS - 1 {
        return row.to_owned();
    }
    let mut cells = cells;
    cells.insert(PUSH_COLUMN, "–");
    format!("| {} |", cells.join(" | "))
}

pub fn table_header() -> String {
    "| Run (UTC) | Commit | DB | Emails | Bare IMAP fetch | postdesk ingest (processed) | Ratio (target ≥ 0.50) | postdesk stored raw (drained), ratio | SSE delay ms: median / p90 / p99 / max (target < 100 / – / < 500 / –) | SMTP ingress → SSE delay ms: median / p90 / p99 / max (to the `250`) | LMTP + Dovecot push → SSE delay ms: median / p90 / p99 / max | Peak RSS growth, 49.9 MiB email | × email size (target < 4) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|".to_owned()
}

/// Adds `row` to the runs table between the markers in `docs/benchmarks.md`, keeping the most
/// recent [`KEEP_ROWS`] rows.
pub fn write_row(row: &str) -> anyhow::Result<PathBuf> {
    let path = docs_path();
    crate::common::write_row(
        &path,
        BEGIN,
        END,
        &table_header(),
        row,
        KEEP_ROWS,
        upgrade_row,
    )?;
    Ok(path)
}
