//! The team desk at a million conversations: how long an agent's lists, a contact page, full-text
//! search and a routing decision take on a database of 10,000 and of 1,000,000 conversations
//! (3 messages and 0.2 contacts per conversation), on SQLite and PostgreSQL.
//! A measurement, not a check: `cargo bench -p postdesk-store --bench desk_scale`.
//!
//! Each size gets a fresh database, filled by `data::generate` (bulk SQL, seeded), then a
//! fresh `Store` on it. Every request is timed one at a time (p50, p95, max over up to
//! `BENCH_REQUESTS`); the routing decision while a feeder ingests emails at `BENCH_RATE` per
//! second through `Store::store_fetched` and `Store::ingest_batch`, as the reader does.
//!
//! Options (environment): `BENCH_DB` (`sqlite` or `postgres`; default both, PostgreSQL when
//! `PgDatabase::create` reaches it, as the tests find it), `BENCH_SIZES` (conversations,
//! comma separated; default `10000,1000000`), `BENCH_REQUESTS` (200 per request),
//! `BENCH_SECONDS` (at most this long per request and size, at least 10 requests; 60),
//! `BENCH_DECISIONS` (routing decisions, 500), `BENCH_RATE` (emails/s fed meanwhile, 50),
//! `BENCH_SEED` (1), `BENCH_DIR` (where the SQLite file goes; a temporary folder by default).

#[path = "../../tests/common/mod.rs"]
mod common;
mod data;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postdesk_core::access::ListScope;
use postdesk_core::ids::{ContactId, InboxId, UserId};
use postdesk_core::model::ConversationStatus;
use postdesk_core::search::SearchTerms;
use postdesk_store::{Addr, ConversationFilter, IncomingEmail, SearchQuery, Store, StoreFetched};
use sqlx::Row as _;

use data::{Desk, Rng};

/// The first page of a list.
const PAGE: i64 = 50;
/// Hits a search shows.
const HITS: i64 = 20;

/// What is measured, with its p95 target in milliseconds (issue 11).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Request {
    QueuedChats,
    ChatsInProgress,
    ContactPage,
    SearchCommon,
    SearchRare,
    Routing,
}

impl Request {
    const READS: [Request; 5] = [
        Request::QueuedChats,
        Request::ChatsInProgress,
        Request::ContactPage,
        Request::SearchCommon,
        Request::SearchRare,
    ];

    fn name(self) -> &'static str {
        match self {
            Request::QueuedChats => "Queued Chats, an agent's first page",
            Request::ChatsInProgress => "Chats in Progress, the agent with 300",
            Request::ContactPage => "Contact page (the contact's conversations)",
            Request::SearchCommon => "Search, a common word, as an agent",
            Request::SearchRare => "Search, a rare word, as an agent",
            Request::Routing => "Routing decision under the email feed",
        }
    }

    fn target_ms(self) -> f64 {
        match self {
            Request::QueuedChats | Request::ChatsInProgress | Request::ContactPage => 50.0,
            Request::SearchCommon | Request::SearchRare => 200.0,
            Request::Routing => 20.0,
        }
    }
}

/// One read request, the `i`th of its kind; answers how many rows it got. Each is what the
/// API does for it: a list is its first page and its true total (`GET /conversations`), a
/// contact page the contact with their count and the first page of their conversations
/// (`GET /contacts/{id}`), a search `GET /search` as an agent.
async fn read(store: &Store, desk: &Desk, request: Request, i: usize) -> anyhow::Result<usize> {
    let agent = desk.agents[i % desk.agents.len()];
    let as_agent = |user: UserId| Some(ListScope::QueueAndMine(user));
    let list = |filter: ConversationFilter| async move {
        let page = store.conversation_page(&filter).await?;
        let total = store.count_conversations(&filter).await?;
        anyhow::ensure!(
            usize::try_from(total)? >= page.conversations.len(),
            "a total below its page"
        );
        Ok::<_, anyhow::Error>(page.conversations.len())
    };
    let rows = match request {
        Request::QueuedChats => {
            list(ConversationFilter {
                status: Some(ConversationStatus::Queued),
                visible: as_agent(agent),
                limit: Some(PAGE),
                ..ConversationFilter::default()
            })
            .await?
        }
        Request::ChatsInProgress => {
            list(ConversationFilter {
                status: Some(ConversationStatus::Open),
                member: Some(desk.heavy),
                visible: as_agent(desk.heavy),
                limit: Some(PAGE),
                ..ConversationFilter::default()
            })
            .await?
        }
        Request::ContactPage => {
            let contact = ContactId(i64::try_from(1 + (i * 7919) % desk.contacts)?);
            let visible = ListScope::All;
            let found = store.find_contact(contact, Some(&visible)).await?;
            anyhow::ensure!(found.is_some(), "contact {contact} exists");
            store
                .conversation_page(&ConversationFilter {
                    contact_id: Some(contact),
                    visible: Some(visible),
                    limit: Some(PAGE),
                    ..ConversationFilter::default()
                })
                .await?
                .conversations
                .len()
        }
        Request::SearchCommon | Request::SearchRare => {
            let words = if request == Request::SearchCommon {
                desk.words.common()
            } else {
                desk.words.rare()
            };
            store
                .search(&SearchQuery {
                    terms: SearchTerms::parse(&words[i % words.len()]),
                    status: None,
                    inbox: None,
                    visible: as_agent(agent),
                    limit: HITS,
                })
                .await?
                .len()
        }
        Request::Routing => unreachable!("measured by `routing`"),
    };
    Ok(rows)
}

/// A new customer's email, the `k`th the feeder sends.
fn feed_email(desk: &Desk, rng: &mut Rng, k: usize) -> IncomingEmail {
    let (name, email) = data::contact(1 + rng.below(desk.contacts));
    let contact = Addr {
        name: Some(name),
        email,
    };
    let mut text = String::new();
    for w in 0..30 {
        if w > 0 {
            text.push(' ');
        }
        text.push_str(desk.words.sample(rng));
    }
    IncomingEmail {
        message_id: format!("feed{k}@bench.example"),
        in_reply_to: None,
        references: vec![],
        contact: contact.clone(),
        from: Some(contact),
        to: vec![Addr {
            name: None,
            email: "support@desk.example".into(),
        }],
        cc: vec![],
        subject: format!("New question {k}"),
        date: Some(postdesk_store::now_ms()),
        text,
        html: None,
        attachments: vec![],
        auto_reply: false,
        attach_original: false,
        auth: None,
    }
}

/// What the feeder did: emails, seconds, its slowest email.
struct Fed {
    emails: usize,
    seconds: f64,
    slowest: Duration,
}

/// Ingests one new email every `1 / rate` s into Support's inbox until told to stop: stored raw,
/// then processed, as the reader does (each call its own write transaction, taking its turn
/// among the store's writers with the routing decisions on SQLite).
async fn feed(
    store: Store,
    desk: Arc<Desk>,
    inbox: InboxId,
    rate: f64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Fed> {
    let mut rng = Rng::new(7);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let began = Instant::now();
    let mut emails = 0;
    let mut slowest = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let started = Instant::now();
        let uid = u32::try_from(emails + 1)?;
        let raw = StoreFetched {
            uid,
            bytes: format!("raw {uid}").into_bytes(),
        };
        store
            .store_fetched(inbox, "INBOX", 1, vec![raw], uid + 1)
            .await?;
        let pending = store.pending_raw(Some(inbox), 1).await?;
        let batch: Vec<_> = pending
            .iter()
            .map(|raw| (raw.id, feed_email(&desk, &mut rng, emails)))
            .collect();
        for outcome in store.ingest_batch(inbox, &batch).await? {
            outcome?;
        }
        emails += 1;
        slowest = slowest.max(started.elapsed());
    }
    Ok(Fed {
        emails,
        seconds: began.elapsed().as_secs_f64(),
        slowest,
    })
}

/// Routing decisions for Support, paced at `rate` per second (one per arriving email) while
/// the feeder runs: `Store::assign_queued`, as the routing service calls it. Each time runs
/// from the decision's start, waiting for the writers' turn included (SQLite), to its commit.
async fn routing(
    store: &Store,
    desk: &Arc<Desk>,
    decisions: usize,
    rate: f64,
) -> anyhow::Result<(Vec<Duration>, usize, Fed)> {
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = tokio::spawn(feed(
        store.clone(),
        desk.clone(),
        desk.support_inbox,
        rate,
        stop.clone(),
    ));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // The feed first: a second at full rate before the first decision.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut times = Vec::with_capacity(decisions);
    let mut assigned = 0;
    for _ in 0..decisions {
        tick.tick().await;
        let began = Instant::now();
        let decided = store.assign_queued(desk.support).await?;
        times.push(began.elapsed());
        assigned += decided.len();
    }
    stop.store(true, Ordering::Relaxed);
    let fed = feeder.await??;
    Ok((times, assigned, fed))
}

/// One row of the report.
struct Figure {
    request: Request,
    database: &'static str,
    size: usize,
    count: usize,
    p50: f64,
    p95: f64,
    max: f64,
    rows: f64,
}

fn figure(
    request: Request,
    database: &'static str,
    size: usize,
    mut times: Vec<Duration>,
    rows: usize,
) -> Figure {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: usize| ms(times[(times.len() * p).div_ceil(100).max(1) - 1]);
    Figure {
        request,
        database,
        size,
        count: times.len(),
        p50: at(50),
        p95: at(95),
        max: ms(*times.last().unwrap_or(&Duration::ZERO)),
        rows: rows as f64 / times.len().max(1) as f64,
    }
}

fn print_row(f: &Figure) {
    let met = if f.p95 < f.request.target_ms() {
        "met"
    } else {
        "**missed**"
    };
    println!(
        "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | < {:.0} | {met} |",
        f.request.name(),
        f.database,
        f.size,
        f.count,
        f.p50,
        f.p95,
        f.max,
        f.rows,
        f.request.target_ms()
    );
}

const HEADER: &str = "| Request | DB | Conversations | Requests | p50 ms | p95 ms | max ms | rows | p95 target ms | |\n|---|---|---|---|---|---|---|---|---|---|";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The database's size on disk, in MiB.
async fn size_mib(store: &Store, sqlite_file: Option<&std::path::Path>) -> anyhow::Result<f64> {
    let bytes = match sqlite_file {
        Some(file) => {
            let wal = file.with_extension("db-wal");
            std::fs::metadata(file)?.len() + std::fs::metadata(wal).map_or(0, |m| m.len())
        }
        None => u64::try_from(
            sqlx::query("SELECT CAST(pg_database_size(current_database()) AS BIGINT) AS size")
                .fetch_one(store.raw_pool())
                .await?
                .try_get::<i64, _>("size")?,
        )?,
    };
    Ok(bytes as f64 / (1024.0 * 1024.0))
}

/// Generates a desk of `size` conversations on a fresh database and measures it.
async fn measure(
    database: &'static str,
    size: usize,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let seed = env_usize("BENCH_SEED", 1) as u64;
    let requests = env_usize("BENCH_REQUESTS", 200);
    let budget = Duration::from_secs(env_usize("BENCH_SECONDS", 60) as u64);
    let decisions = env_usize("BENCH_DECISIONS", 500);
    let rate = env_usize("BENCH_RATE", 50) as f64;

    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    let (url, sqlite_file) = if database == "SQLite" {
        let dir = match std::env::var("BENCH_DIR") {
            Ok(parent) => tempfile::tempdir_in(parent)?,
            Err(_) => tempfile::tempdir()?,
        };
        let file = dir.path().join("postdesk.db");
        keep.push(Box::new(dir));
        (format!("sqlite://{}", file.display()), Some(file))
    } else {
        let db = postdesk_testkit::PgDatabase::create().await?;
        let url = db.url().to_owned();
        keep.push(Box::new(db));
        (url, None)
    };
    println!("\n{database}, {size} conversations: generating (seed {seed})");
    let began = Instant::now();
    let store = Store::connect(&url).await?;
    let desk = data::generate(&store, size, seed).await?;
    store.close().await;
    let generated = began.elapsed().as_secs_f64();
    let store = Store::connect(&url).await?;
    let mib = size_mib(&store, sqlite_file.as_deref()).await?;
    println!(
        "{database}, {size} conversations: {} contacts, {} messages, {} queued, {} open; \
         generated in {generated:.1} s (rows and search index {:.1} s, GIN indexes {:.1} s, \
         VACUUM ANALYZE {:.1} s); {mib:.0} MiB on disk",
        desk.contacts,
        desk.messages,
        desk.queued,
        desk.open,
        desk.load_seconds,
        desk.index_seconds,
        desk.analyze_seconds
    );
    let desk = Arc::new(desk);

    for request in Request::READS {
        for i in 0..5 {
            read(&store, &desk, request, 1000 + i).await?;
        }
        let mut times = Vec::new();
        let mut rows = 0;
        let started = Instant::now();
        while times.len() < requests && (times.len() < 10 || started.elapsed() < budget) {
            let began = Instant::now();
            rows += read(&store, &desk, request, times.len()).await?;
            times.push(began.elapsed());
        }
        let f = figure(request, database, size, times, rows);
        print_row(&f);
        figures.push(f);
    }

    let (times, assigned, fed) = routing(&store, &desk, decisions, rate).await?;
    let f = figure(Request::Routing, database, size, times, assigned);
    print_row(&f);
    println!(
        "  (feeder: {} emails in {:.1} s = {:.1} emails/s, slowest {:.1} ms; {} decisions assigned {assigned} conversations)",
        fed.emails,
        fed.seconds,
        fed.emails as f64 / fed.seconds,
        fed.slowest.as_secs_f64() * 1000.0,
        f.count
    );
    figures.push(f);
    store.close().await;
    drop(keep);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    postdesk_testkit::init();
    let only = std::env::var("BENCH_DB").unwrap_or_default();
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("Team desk at scale, commit {commit}, sizes {sizes:?}");
    let mut figures = Vec::new();
    runtime.block_on(async {
        for database in ["SQLite", "PostgreSQL"] {
            let name = if database == "SQLite" {
                "sqlite"
            } else {
                "postgres"
            };
            if !only.is_empty() && only != name {
                continue;
            }
            for &size in &sizes {
                if let Err(e) = measure(database, size, &mut figures).await {
                    println!("{database}, {size} conversations: not measured: {e:#}");
                    if database == "PostgreSQL" {
                        break;
                    }
                    return Err(e);
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;

    println!("\n{HEADER}");
    figures.iter().for_each(print_row);
    let smallest = sizes.iter().min().copied().unwrap_or(0);
    println!("\nHow cost grows (p95 at each size / p95 at {smallest}):");
    for f in figures.iter().filter(|f| f.size != smallest) {
        if let Some(base) = figures
            .iter()
            .find(|b| b.size == smallest && b.request == f.request && b.database == f.database)
        {
            println!(
                "  {} on {}, {}: {:.1}×",
                f.request.name(),
                f.database,
                f.size,
                f.p95 / base.p95
            );
        }
    }
    Ok(())
}
