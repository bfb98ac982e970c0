//! `cargo bench -p postdesk --bench ingest`: how fast postdesk turns a mailbox into
//! conversations, how soon a new email shows up over Server-Sent Events (read from a mailbox
//! over IMAP, with or without Dovecot's push to postdesk, or received by postdesk's own SMTP
//! ingress), and how much memory one email at the
//! size limit takes. Everything runs against a real Dovecot started by the testkit on loopback
//! and the real `postdesk` binary (bench profile = release) as a child process. See
//! docs/benchmarks.md for what is measured, how, and the figures.
//!
//! Environment:
//! - `BENCH_MESSAGES` (10000): emails in the backlog.
//! - `BENCH_DB` (`sqlite`): `postgres` runs postdesk on a fresh PostgreSQL database
//!   (`POSTDESK_TEST_PG_URL`, default postgres://postgres@127.0.0.1:5432/postgres).
//! - `BENCH_LATENCY` (200): emails delivered one at a time for the SSE delay, over LMTP to
//!   Dovecot, again over SMTP to postdesk, and again over LMTP to a Dovecot that pushes to
//!   postdesk (and up to 100 of them to a bare IMAP reader on a
//!   second mailbox, for Dovecot's own share).
//! - `BENCH_LATENCY_GAP_MS` (50): pause after postdesk is idle again before the next delivery.
//! - `BENCH_BIG_MB` (49.9): size in MiB of the size-limit email (the limit is 50 MiB).
//! - `BENCH_ONLY` (all): comma-separated subset of `throughput,latency,smtp,push,phases,memory`.
//! - `BENCH_SEED` (1): corpus seed.
//! - `BENCH_WRITE=1`: add this run's row to the table in docs/benchmarks.md.
//! - `BENCH_LOG` (`warn`): postdesk's log filter; when set, postdesk's log is kept as
//!   `$TMPDIR/postdesk-bench-<pid>.log` (e.g. `BENCH_LOG=info,sqlx::query=debug` for statement
//!   timings).

// Shared with the cluster bench, which uses more of it.
#[allow(dead_code)]
mod common;
mod corpus;
mod mail;
mod report;
mod server;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use common::{
    commit, env_or, load_average, machine, own_memory, parts_from_env, postgres_from_env, rss_of,
};
use postdesk_core::ids::InboxId;
use postdesk_testkit::{Dovecot, PgDatabase};
use report::{Latency, Memory, Phases, PushLatency, Run, SmtpLatency, Throughput};
use server::Postdesk;

const PASSWORD: &str = "mailbox-secret";
const BIG_USER: &str = "big@example.test";
/// The Dovecot mailbox of the inbox that receives over SMTP (its IMAP reader idles on it, empty).
const SMTP_USER: &str = "smtp@example.test";
/// Every part, in the order they run: the default of `BENCH_ONLY`.
const PARTS: [&str; 6] = ["throughput", "latency", "smtp", "push", "phases", "memory"];
/// `POSTDESK_PUSH_SECRET` of the postdesk that Dovecot pushes to (the push part).
const PUSH_SECRET: &str = "bench-push-secret";
/// How often the backlog part counts the raw emails in postdesk's database.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// The mailbox of the bare IMAP reader (what Dovecot alone takes to hand over a new email).
const BASELINE_USER: &str = "idle@example.test";
/// Emails per `UID FETCH` for the bare client, and per `store_fetched` in the phases: as
/// postdesk's reader batches (`FETCH_BATCH` in `src/imap/session.rs`).
const FETCH_BATCH: usize = 200;

struct Options {
    messages: usize,
    postgres: bool,
    latency: usize,
    gap: Duration,
    big_mib: f64,
    seed: u64,
    write: bool,
    only: Vec<String>,
}

impl Options {
    fn from_env() -> anyhow::Result<Options> {
        let postgres = postgres_from_env("sqlite")?;
        let only = parts_from_env(&PARTS)?;
        Ok(Options {
            messages: env_or("BENCH_MESSAGES", 10_000)?,
            postgres,
            latency: env_or("BENCH_LATENCY", 200)?,
            gap: Duration::from_millis(env_or("BENCH_LATENCY_GAP_MS", 50)?),
            big_mib: env_or("BENCH_BIG_MB", 49.9)?,
            seed: env_or("BENCH_SEED", 1)?,
            write: env_or("BENCH_WRITE", 0u8)? == 1,
            only,
        })
    }

    fn runs(&self, part: &str) -> bool {
        self.only.iter().any(|p| p == part)
    }
}

fn main() -> anyhow::Result<()> {
    if !common::benchmarking("ingest") {
        return Ok(());
    }
    let options = Options::from_env()?;
    let run = common::runtime()?.block_on(bench(&options))?;
    println!("{}", run.text());
    if options.write {
        let path = report::write_row(&run.markdown_row())?;
        println!("wrote the row into {}", path.display());
    }
    Ok(())
}

async fn database(options: &Options) -> anyhow::Result<Option<PgDatabase>> {
    Ok(if options.postgres {
        Some(
            PgDatabase::create()
                .await
                .context("BENCH_DB=postgres needs PostgreSQL")?,
        )
    } else {
        None
    })
}

async fn bench(options: &Options) -> anyhow::Result<Run> {
    postdesk_testkit::init();
    let mut run = Run {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string(),
        machine: machine(),
        db: if options.postgres {
            "PostgreSQL".into()
        } else {
            "SQLite".into()
        },
        commit: commit(),
        load: (load_average(), String::new()),
        ..Run::default()
    };
    eprintln!("postdesk binary: {}", server::binary());
    // Sender checks run as in production, against a DNS server that answers at once.
    let _dns = server::dns_from_env().await?;
    let dovecot = Dovecot::start().await?;
    dovecot.add_user(corpus::SUPPORT, PASSWORD)?;

    let mut emails = Vec::new();
    if options.runs("throughput") || options.runs("phases") {
        eprintln!(
            "generating {} emails (seed {})",
            options.messages, options.seed
        );
        emails = corpus::generate(options.messages, options.seed);
        run.corpus = Some(corpus::Stats::of(&emails));
    }
    if options.runs("throughput") {
        let raws: Vec<&[u8]> = emails.iter().map(|e| e.raw.as_slice()).collect();
        let started = Instant::now();
        mail::append_all(dovecot.imap_port(), corpus::SUPPORT, PASSWORD, &raws).await?;
        run.load_secs = started.elapsed().as_secs_f64();
        eprintln!(
            "loaded the mailbox in {:.1} s; bare fetch (one warm-up pass, then the timed one)",
            run.load_secs
        );
        let warm =
            mail::bare_fetch(dovecot.imap_port(), corpus::SUPPORT, PASSWORD, FETCH_BATCH).await?;
        ensure!(
            warm.emails == emails.len(),
            "the mailbox has {} emails, expected {}",
            warm.emails,
            emails.len()
        );
        let cpu = server::dovecot_cpu(dovecot.dir());
        let bare =
            mail::bare_fetch(dovecot.imap_port(), corpus::SUPPORT, PASSWORD, FETCH_BATCH).await?;
        run.bare_dovecot_cpu =
            (server::dovecot_cpu(dovecot.dir()).saturating_sub(cpu)).as_secs_f64();
        run.bare = Some(bare);
    }

    if options.runs("throughput") || options.runs("latency") {
        server::on_fresh_node(options.postgres, &[], async |postdesk, pg| {
            let url = pg.map(PgDatabase::url);
            backlog_and_latency(options, &dovecot, postdesk, url, &emails, &mut run).await
        })
        .await?;
    }

    if options.runs("smtp") {
        let smtp_port = postdesk_testkit::free_port()?;
        let listen = format!("127.0.0.1:{smtp_port}");
        let env = [("POSTDESK_SMTP_LISTEN", listen.as_str())];
        let smtp = server::on_fresh_node(options.postgres, &env, async |postdesk, pg| {
            eprintln!("  its SMTP ingress on {listen}");
            let url = pg.map(PgDatabase::url);
            smtp_latency(options, &dovecot, postdesk, smtp_port, url).await
        })
        .await?;
        run.smtp = Some(smtp);
    }

    if options.runs("push") {
        let env = [("POSTDESK_PUSH_SECRET", PUSH_SECRET)];
        let push = server::on_fresh_node(options.postgres, &env, async |postdesk, pg| {
            push_latency(options, postdesk, pg.map(PgDatabase::url)).await
        })
        .await?;
        run.push = Some(push);
    }

    if options.runs("phases") {
        let pg = database(options).await?;
        let url = pg.as_ref().map(|p| p.url().to_owned());
        run.phases = Some(phases(&emails, url.as_deref()).await?);
        if let Some(pg) = pg {
            let _ = pg.cleanup().await;
        }
    }
    drop(emails);

    if options.runs("memory") {
        let memory = server::on_fresh_node(options.postgres, &[], async |postdesk, _| {
            memory(options, &dovecot, postdesk).await
        })
        .await?;
        run.memory = Some(memory);
    }
    run.load.1 = load_average();
    Ok(run)
}

/// Measurement 1 (postdesk's side) and 2, on one postdesk.
async fn backlog_and_latency(
    options: &Options,
    dovecot: &Dovecot,
    postdesk: &Postdesk,
    database_url: Option<&str>,
    emails: &[corpus::Email],
    run: &mut Run,
) -> anyhow::Result<()> {
    let expected = if options.runs("throughput") {
        options.messages
    } else {
        0
    };
    let mut events = postdesk.events().await?;
    let (cpu0, dovecot_cpu0) = (postdesk.cpu(), server::dovecot_cpu(dovecot.dir()));
    let started = Instant::now();
    let inbox = postdesk
        .create_inbox(
            dovecot.imap_port(),
            corpus::SUPPORT,
            corpus::SUPPORT,
            PASSWORD,
        )
        .await?;
    // When the mailbox is drained: every email stored raw in postdesk's database (before it is
    // processed). Counted from a connection of our own, every 10 ms, from just after the inbox
    // exists (its id is needed): its reader cannot have stored a whole backlog by then.
    let mut drained = if expected > 0 {
        Some(
            postdesk
                .raw_emails(database_url)
                .await?
                .watch(inbox, expected, DRAIN_POLL),
        )
    } else {
        None
    };
    let (mut messages, mut conversations, mut lagged) = (0usize, 0usize, false);
    let mut last_poll = Instant::now();
    let mut last_progress = Instant::now();
    let limit = Duration::from_secs(600).max(Duration::from_millis(
        u64::try_from(expected).unwrap_or(0) * 100,
    ));
    let finished = loop {
        ensure!(
            started.elapsed() < limit,
            "the backlog was not ingested within {limit:?} ({messages} messages seen)"
        );
        if let Some(event) = events.next(Duration::from_millis(200)).await {
            match event.kind.as_str() {
                "message_created" => messages += 1,
                "conversation_queued" => conversations += 1,
                "resync" => lagged = true,
                "inbox_status"
                    if event.data["state"] == "idle" && postdesk.inbox_synced(inbox).await? =>
                {
                    break event.at;
                }
                "inbox_status" if event.data["state"] == "error" => eprintln!(
                    "inbox error: {}",
                    postdesk.get(&format!("/api/v1/inboxes/{inbox}")).await?["status"]
                ),
                _ => {}
            }
        }
        if last_poll.elapsed() > Duration::from_secs(1) {
            last_poll = Instant::now();
            if postdesk.inbox_synced(inbox).await? && (lagged || messages >= expected) {
                break Instant::now();
            }
        }
        if last_progress.elapsed() > Duration::from_secs(5) && expected > 0 {
            last_progress = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "  postdesk: {messages}/{expected} messages after {secs:.0} s ({:.0}/s)",
                messages as f64 / secs
            );
        }
    };
    let secs = finished.duration_since(started).as_secs_f64();
    let postdesk_cpu = postdesk.cpu().saturating_sub(cpu0).as_secs_f64();
    let dovecot_cpu = server::dovecot_cpu(dovecot.dir())
        .saturating_sub(dovecot_cpu0)
        .as_secs_f64();
    // Processed implies stored, so the polling has seen it (or does within one more poll).
    let drained = match drained.as_mut() {
        Some(watch) => Some(watch.finish(Duration::from_secs(10)).await?),
        None => None,
    };
    if options.runs("throughput") {
        // The database says what was processed (exact even if the event stream lagged).
        let url = database_url.map_or_else(|| postdesk.sqlite_url(), str::to_owned);
        let store = postdesk_store::Store::connect(&url).await?;
        let count = |state: &'static str| store.count_raw(InboxId(inbox), state);
        let (processed, quarantined, pending) = (
            count("processed").await?,
            count("quarantined").await?,
            count("new").await?,
        );
        store.close().await;
        ensure!(
            usize::try_from(processed + quarantined).ok() == Some(expected) && pending == 0,
            "postdesk processed {processed} and quarantined {quarantined} of {expected} emails ({pending} pending)"
        );
        let drained = drained.context("the raw emails were not counted")?;
        let drained_secs = drained.at.duration_since(started).as_secs_f64();
        run.postdesk = Some(Throughput {
            emails: expected,
            secs,
            drained_secs,
            drain_polls: drained.polls,
            drain_slowest: drained.slowest,
            conversations,
            postdesk_cpu,
            dovecot_cpu,
            processed,
            quarantined,
            lagged,
        });
        eprintln!(
            "  postdesk: {expected} emails stored raw after {drained_secs:.1} s, processed after {secs:.1} s"
        );
    }

    if options.runs("latency") {
        // The bare reader's mailbox gets the same backlog as postdesk's.
        let backlog: Vec<&[u8]> = if options.runs("throughput") {
            emails.iter().map(|e| e.raw.as_slice()).collect()
        } else {
            Vec::new()
        };
        run.latency = Some(latency(options, dovecot, postdesk, inbox, &backlog).await?);
    }
    Ok(())
}

/// Measurement 2: one email at a time over LMTP, each timed to its `message_created` event.
/// postdesk's `inbox_status: syncing` event, published as soon as its IDLE wakes, splits each
/// delay into Dovecot's part (stored -> IDLE wake-up) and postdesk's (wake-up -> event).
async fn latency(
    options: &Options,
    dovecot: &Dovecot,
    postdesk: &Postdesk,
    inbox: i64,
    backlog: &[&[u8]],
) -> anyhow::Result<Latency> {
    let emails = corpus::generate(options.latency, options.seed.wrapping_add(1_000_003));
    let mut events = postdesk.events().await?;
    let mut lmtp = mail::Delivery::connect(mail::Protocol::Lmtp, dovecot.lmtp_port()).await?;
    let mut out = Latency {
        gap_ms: u64::try_from(options.gap.as_millis()).unwrap_or(u64::MAX),
        ..Latency::default()
    };
    eprintln!(
        "delivering {} emails one at a time for the SSE delay",
        emails.len()
    );
    for email in &emails {
        tokio::time::sleep(options.gap).await;
        events.drain();
        let mail::Timed {
            start,
            stored,
            woke,
            created,
        } = mail::deliver_timed(&mut lmtp, &mut events, corpus::SUPPORT, &email.raw, None).await?;
        match created {
            Some(at) => {
                out.from_start.push(at.duration_since(start));
                out.from_stored.push(at.saturating_duration_since(stored));
                out.lmtp.push(stored.duration_since(start));
                if let Some(woke) = woke {
                    out.dovecot_notify
                        .push(woke.saturating_duration_since(stored));
                    out.postdesk_own.push(at.saturating_duration_since(woke));
                }
            }
            None => {
                out.missed += 1;
                eprintln!("  no message_created within 20 s of a delivery");
            }
        }
        // Back to idle (the reader re-enters IDLE after announcing it) before the next email.
        postdesk.wait_idle_again(inbox).await?;
    }
    lmtp.quit().await;

    // Dovecot alone: a bare reader doing postdesk's IMAP steps on another mailbox holding the
    // same backlog, same deliveries and pacing.
    let n = emails.len().min(100);
    dovecot.add_user(BASELINE_USER, PASSWORD)?;
    let mut lmtp = mail::Delivery::connect(mail::Protocol::Lmtp, dovecot.lmtp_port()).await?;
    if backlog.is_empty() {
        lmtp.deliver(BASELINE_USER, &emails[0].raw).await?;
    } else {
        eprintln!(
            "loading the {} backlog emails into a second mailbox for the bare reader",
            backlog.len()
        );
        mail::append_all(dovecot.imap_port(), BASELINE_USER, PASSWORD, backlog).await?;
    }
    let mut reader = mail::BareReader::start(dovecot.imap_port(), BASELINE_USER, PASSWORD).await?;
    eprintln!("delivering {n} emails to a bare IMAP reader (what Dovecot alone takes)");
    for email in &emails[..n] {
        tokio::time::sleep(options.gap).await;
        lmtp.deliver(BASELINE_USER, &email.raw).await?;
        let stored = Instant::now();
        match reader.next(Duration::from_secs(5)).await {
            Some((woke, fetched)) => {
                out.bare_woke.push(woke.saturating_duration_since(stored));
                out.bare_fetched
                    .push(fetched.saturating_duration_since(stored));
            }
            None => eprintln!("  the bare reader got nothing within 5 s"),
        }
    }
    lmtp.quit().await;
    Ok(out)
}

/// Measurement 3: one email at a time over one SMTP connection straight to postdesk's SMTP
/// ingress, each timed from just before `MAIL FROM` to the `250` after the final dot (postdesk
/// has committed it) and to its `message_created` event; paced as [`latency`]. The inbox's
/// address is the recipient; its IMAP reader idles on an empty Dovecot mailbox.
async fn smtp_latency(
    options: &Options,
    dovecot: &Dovecot,
    postdesk: &Postdesk,
    smtp_port: u16,
    database_url: Option<&str>,
) -> anyhow::Result<SmtpLatency> {
    let emails = corpus::generate(options.latency, options.seed.wrapping_add(2_000_003));
    dovecot.add_user(SMTP_USER, PASSWORD)?;
    let inbox = postdesk
        .create_inbox(dovecot.imap_port(), corpus::SUPPORT, SMTP_USER, PASSWORD)
        .await?;
    postdesk
        .wait_synced(
            inbox,
            Duration::from_secs(30),
            Duration::from_millis(50),
            "the inbox on an empty mailbox did not become idle",
        )
        .await?;
    let mut events = postdesk.events().await?;
    let mut smtp = mail::Delivery::connect(mail::Protocol::Smtp, smtp_port).await?;
    let mut out = SmtpLatency {
        gap_ms: u64::try_from(options.gap.as_millis()).unwrap_or(u64::MAX),
        ..SmtpLatency::default()
    };
    eprintln!(
        "delivering {} emails one at a time over SMTP to postdesk's SMTP ingress",
        emails.len()
    );
    for email in &emails {
        tokio::time::sleep(options.gap).await;
        events.drain();
        let start = Instant::now();
        smtp.deliver(corpus::SUPPORT, &email.raw).await?;
        let stored = Instant::now();
        match events
            .next_of("message_created", Duration::from_secs(20))
            .await
        {
            Some(event) => {
                out.from_start.push(event.at.duration_since(start));
                out.to_stored.push(stored.duration_since(start));
                out.from_stored
                    .push(event.at.saturating_duration_since(stored));
            }
            None => {
                out.missed += 1;
                eprintln!("  no message_created within 20 s of an SMTP delivery");
            }
        }
        // Processed (backlog 0) and idle before the next email, as in the LMTP part.
        postdesk.wait_idle_again(inbox).await?;
    }
    smtp.quit().await;
    // Each email stored exactly once, all over SMTP (the mailbox the reader watches is empty).
    let db = postdesk.raw_emails(database_url).await?;
    let stored = db.count(inbox).await;
    db.close().await;
    let stored = stored?;
    ensure!(
        usize::try_from(stored).ok() == Some(emails.len()),
        "postdesk stored {stored} raw emails for {} delivered over SMTP",
        emails.len()
    );
    Ok(out)
}

/// Measurement 4: as [`latency`], over LMTP one email at a time, but to a Dovecot of its own
/// whose push-notification plugin (`ox` driver) calls postdesk's
/// `PUT /api/v1/hooks/dovecot-push` as soon as it stores an email. The reader stays in IDLE,
/// so whichever wakes it first counts. Paced as [`latency`], on an initially empty mailbox.
async fn push_latency(
    options: &Options,
    postdesk: &Postdesk,
    database_url: Option<&str>,
) -> anyhow::Result<PushLatency> {
    let emails = corpus::generate(options.latency, options.seed.wrapping_add(3_000_017));
    // A Dovecot of its own: the other parts' instance keeps its configuration.
    let mut dovecot = Dovecot::start().await?;
    dovecot.add_user(corpus::SUPPORT, PASSWORD)?;
    let hook = postdesk.url("/api/v1/hooks/dovecot-push").replacen(
        "http://",
        &format!("http://push:{PUSH_SECRET}@"),
        1,
    );
    dovecot
        .reconfigure(&format!(
            "mail_plugins = $mail_plugins notify push_notification
mail_attribute_dict = file:%h/dovecot-attributes
plugin {{
  push_notification_driver = ox:url={hook}
}}"
        ))
        .await?;
    // The ox driver notifies only for users registered for it, in server metadata.
    doveadm(
        dovecot.dir(),
        &[
            "mailbox",
            "metadata",
            "set",
            "-u",
            corpus::SUPPORT,
            "-s",
            "",
            "/private/vendor/vendor.dovecot/http-notify",
            &format!("user={}", corpus::SUPPORT),
        ],
    )?;
    let outcome = push_deliveries(options, &dovecot, postdesk, database_url, &emails).await;
    let log = dovecot.log();
    if outcome.is_err() {
        let lines: Vec<&str> = log.lines().collect();
        eprintln!(
            "--- Dovecot (push) log tail ---\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
    }
    let mut out = outcome?;
    out.push_errors = log
        .lines()
        .filter(|l| {
            l.contains("push-notification") && (l.contains("Error") || l.contains("Warning"))
        })
        .map(str::to_owned)
        .collect();
    Ok(out)
}

/// The deliveries of [`push_latency`], once Dovecot pushes to postdesk.
async fn push_deliveries(
    options: &Options,
    dovecot: &Dovecot,
    postdesk: &Postdesk,
    database_url: Option<&str>,
    emails: &[corpus::Email],
) -> anyhow::Result<PushLatency> {
    let inbox = postdesk
        .create_inbox(
            dovecot.imap_port(),
            corpus::SUPPORT,
            corpus::SUPPORT,
            PASSWORD,
        )
        .await?;
    postdesk
        .wait_synced(
            inbox,
            Duration::from_secs(30),
            Duration::from_millis(50),
            "the inbox on an empty mailbox did not become idle",
        )
        .await?;
    let mut events = postdesk.events().await?;
    let mut lmtp = mail::Delivery::connect(mail::Protocol::Lmtp, dovecot.lmtp_port()).await?;
    let mut out = PushLatency {
        gap_ms: u64::try_from(options.gap.as_millis()).unwrap_or(u64::MAX),
        ..PushLatency::default()
    };
    eprintln!(
        "delivering {} emails one at a time over LMTP to a Dovecot that pushes to postdesk",
        emails.len()
    );
    for email in emails {
        tokio::time::sleep(options.gap).await;
        // A late or second event for the previous email would show here.
        out.created_events += events.drain_counting("message_created");
        let mail::Timed {
            start,
            stored,
            woke,
            created,
        } = mail::deliver_timed(&mut lmtp, &mut events, corpus::SUPPORT, &email.raw, None).await?;
        match created {
            Some(at) => {
                out.created_events += 1;
                out.from_start.push(at.saturating_duration_since(start));
                out.lmtp.push(stored.duration_since(start));
                out.from_stored.push(at.saturating_duration_since(stored));
                out.event_before_250 += usize::from(at < stored);
                if let Some(woke) = woke {
                    out.woke.push(woke.saturating_duration_since(start));
                    out.postdesk_own.push(at.saturating_duration_since(woke));
                }
            }
            None => {
                out.missed += 1;
                eprintln!("  no message_created within 20 s of a delivery");
            }
        }
        // Back to idle with nothing left to process before the next email.
        postdesk.wait_idle_again(inbox).await?;
    }
    lmtp.quit().await;
    // Dovecot's own IDLE notification of the last email comes 500 ms after it was stored: wait
    // past it for any late or duplicate event.
    tokio::time::sleep(Duration::from_secs(1)).await;
    out.created_events += events.drain_counting("message_created");
    // Each email stored exactly once, and announced exactly once.
    let db = postdesk.raw_emails(database_url).await?;
    let stored = db.count(inbox).await;
    db.close().await;
    let stored = stored?;
    ensure!(
        usize::try_from(stored).ok() == Some(emails.len()),
        "postdesk stored {stored} raw emails for {} delivered over LMTP",
        emails.len()
    );
    ensure!(
        out.created_events == emails.len(),
        "{} message_created events for {} emails delivered over LMTP",
        out.created_events,
        emails.len()
    );
    Ok(out)
}

/// Runs `doveadm -c <dir>/dovecot.conf ARGS` against a testkit Dovecot.
fn doveadm(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let output = std::process::Command::new("doveadm")
        .arg("-c")
        .arg(dir.join("dovecot.conf"))
        .args(args)
        .output()
        .context("cannot run doveadm")?;
    ensure!(
        output.status.success(),
        "doveadm {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Where the time goes: the reader's steps in this process, on the same corpus, without IMAP.
async fn phases(emails: &[corpus::Email], database_url: Option<&str>) -> anyhow::Result<Phases> {
    use postdesk_core::model::Security;
    use postdesk_store::{InboxSettings, ServerSettings, StoreFetched};
    eprintln!(
        "phases: storing and processing {} emails in-process",
        emails.len()
    );
    let dir = tempfile::Builder::new()
        .prefix("postdesk-bench-phases-")
        .tempdir()?;
    let url = database_url.map_or_else(
        || format!("sqlite://{}", dir.path().join("postdesk.db").display()),
        str::to_owned,
    );
    let store = postdesk_store::Store::connect(&url).await?;
    let server = |port| ServerSettings {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        username: "bench".into(),
        password_encrypted: Vec::new(),
        tls_verify: true,
        auth: postdesk_core::model::MailAuth::Password,
    };
    let inbox = store
        .create_inbox(&InboxSettings {
            name: "Support".into(),
            email: corpus::SUPPORT.into(),
            sender_name: "Example Support".into(),
            department_id: None,
            active: false,
            imap: server(143),
            imap_mailbox: "INBOX".into(),
            imap_move_to: None,
            imap_sent_mailbox: None,
            smtp: server(25),
            reopen_days: 30,
            retention_days: None,
            oauth_provider_id: None,
            signature: String::new(),
            quote_history: true,
        })
        .await?;
    let started = Instant::now();
    for (n, chunk) in emails.chunks(FETCH_BATCH).enumerate() {
        let fetched: Vec<StoreFetched> = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| StoreFetched {
                uid: u32::try_from(n * FETCH_BATCH + i + 1).unwrap_or(u32::MAX),
                bytes: e.raw.clone(),
            })
            .collect();
        let next = fetched.last().map_or(1, |f| f.uid + 1);
        store
            .store_fetched(inbox.id, "INBOX", 1, fetched, next)
            .await?;
    }
    let store_raw = started.elapsed().as_secs_f64();
    let bus = postdesk::bus::Bus::new();
    let started = Instant::now();
    let report = postdesk::ingest::process_pending(
        &store,
        &bus,
        Some(inbox.id),
        postdesk::ingest::Limits::default(),
        // The parse-and-store cost alone; the binary's runs check senders against DNS.
        &postdesk::sender_auth::Verifier::off(),
        &postdesk::metrics::Metrics::new(),
    )
    .await?;
    let process = started.elapsed().as_secs_f64();
    ensure!(
        report.added + report.quarantined == emails.len(),
        "in-process ingest: {report:?} of {} emails",
        emails.len()
    );
    store.close().await;
    let started = Instant::now();
    for email in emails {
        let _ = std::hint::black_box(postdesk_mail::parse(&email.raw));
    }
    let parse_only = started.elapsed().as_secs_f64();
    Ok(Phases {
        emails: emails.len(),
        store_raw,
        process,
        parse_only,
    })
}

/// Measurement 5: one email just under the size limit, into an idle postdesk.
async fn memory(
    options: &Options,
    dovecot: &Dovecot,
    postdesk: &Postdesk,
) -> anyhow::Result<Memory> {
    dovecot.add_user(BIG_USER, PASSWORD)?;
    let target = (options.big_mib * 1_048_576.0) as usize;
    let limit = 50 * 1_048_576;
    let raw = corpus::big_email(target, options.seed);
    ensure!(
        raw.len() <= limit,
        "the size-limit email is {} bytes, over the {limit}-byte limit",
        raw.len()
    );
    let mut events = postdesk.events().await?;
    let inbox = postdesk
        .create_inbox(dovecot.imap_port(), BIG_USER, BIG_USER, PASSWORD)
        .await?;
    postdesk
        .wait_synced(
            inbox,
            Duration::from_secs(30),
            Duration::from_millis(50),
            "the empty inbox did not become idle",
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak_reset = postdesk.reset_peak();
    let (idle_rss, _) = postdesk.memory()?;
    events.drain();

    // Sample RSS every 10 ms while the email goes through.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let pid = postdesk.pid;
    let started = Instant::now();
    let sampler = tokio::spawn(async move {
        let mut samples: Vec<(f64, u64)> = Vec::new();
        loop {
            if let Some(rss) = rss_of(pid) {
                samples.push((started.elapsed().as_secs_f64(), rss));
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = stop_rx.changed() => return samples,
            }
        }
    });
    eprintln!(
        "memory: appending one {:.1} MiB email",
        report::mb(raw.len() as u64)
    );
    mail::append_all(dovecot.imap_port(), BIG_USER, PASSWORD, &[&raw]).await?;
    let appended = started.elapsed().as_secs_f64();
    let created = events
        .next_of("message_created", Duration::from_secs(300))
        .await
        .context("no message_created for the big email within 300 s")?;
    let secs = created.at.duration_since(started).as_secs_f64();
    postdesk
        .wait_synced(
            inbox,
            Duration::from_secs(60),
            Duration::from_millis(50),
            "postdesk did not return to idle after the big email",
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let samples = sampler.await?;
    let sampled_peak =
        samples.iter().fold(
            (0u64, 0.0f64),
            |peak, &(at, rss)| if rss > peak.0 { (rss, at) } else { peak },
        );
    // Every 100 ms (the highest sample in each), for the console.
    let mut timeline: Vec<(f64, u64)> = Vec::new();
    for &(at, rss) in &samples {
        let slot = (at * 10.0).floor() / 10.0;
        match timeline.last_mut() {
            Some(last) if (last.0 - slot).abs() < 1e-9 => last.1 = last.1.max(rss),
            _ => timeline.push((slot, rss)),
        }
    }
    let (_, peak) = postdesk.memory()?;

    // Parsed in full: the attachment is there with its decoded size (not "too large").
    let conversation = created.data["conversation_id"]
        .as_i64()
        .context("no conversation id")?;
    let messages = postdesk
        .get(&format!("/api/v1/conversations/{conversation}/messages"))
        .await?;
    let attachment_bytes = messages["messages"][0]["attachments"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["filename"] == "dump.tar.zst"))
        .and_then(|a| a["size"].as_u64())
        .unwrap_or(0);
    // For comparison: parsing alone, in this process (the email's bytes are already here).
    let parse_peak = if std::fs::write("/proc/self/clear_refs", "5").is_ok() {
        let before = rss_of(std::process::id()).unwrap_or(0);
        let parsed = postdesk_mail::parse(&raw);
        let (_, hwm) = own_memory();
        drop(parsed);
        Some(hwm.saturating_sub(before))
    } else {
        None
    };

    Ok(Memory {
        parse_peak,
        email_bytes: raw.len(),
        attachment_bytes: usize::try_from(attachment_bytes).unwrap_or(0),
        idle_rss,
        peak: if peak_reset {
            peak
        } else {
            peak.max(sampled_peak.0)
        },
        peak_reset,
        secs,
        parsed_in_full: attachment_bytes > 0,
        sampled_peak,
        appended,
        timeline,
    })
}
