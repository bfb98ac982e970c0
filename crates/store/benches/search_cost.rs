//! What the full-text indexes cost the batched ingest: the same backlog of emails ingested
//! with the search triggers and without them (dropped), on a fresh database each time.
//! A measurement, not a check: `cargo bench -p postdesk-store --bench search_cost`
//! (`BENCH_DB=sqlite` or `postgres` for one database only; PostgreSQL as the tests find it).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use postdesk_store::{Addr, Backend, IncomingEmail, Store, StoreFetched};

const EMAILS: usize = 2000;
const BATCH: usize = 100;

/// A 2 KB body of varied words, as a support email has.
fn body(i: usize) -> String {
    let words = [
        "printer", "invoice", "refund", "delivery", "password", "account", "order", "broken",
        "please", "thanks", "urgent", "tomorrow", "garantie", "rechnung", "commande", "envoi",
    ];
    (0..300)
        .map(|w| {
            let n = (i * 31 + w * 17) % 997;
            format!("{}{n}", words[(i + w) % words.len()])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn email(i: usize) -> IncomingEmail {
    let contact = Addr {
        name: Some(format!("Contact {i}")),
        email: format!("c{i}@example.org"),
    };
    IncomingEmail {
        message_id: format!("m{i}@example.org"),
        in_reply_to: None,
        references: vec![],
        contact: contact.clone(),
        from: Some(contact),
        to: vec![Addr {
            name: None,
            email: "support@example.test".into(),
        }],
        cc: vec![],
        subject: format!("Question number {i} about my order"),
        date: Some(1_700_000_000_000),
        text: body(i),
        html: None,
        attachments: vec![],
        auto_reply: false,
        attach_original: false,
        auth: None,
    }
}

/// Ingests the backlog in batches as the reader does; the time spent in `ingest_batch`.
async fn ingest(store: &Store) -> Duration {
    let inbox = store
        .create_inbox(&common::inbox_settings("support@example.test"))
        .await
        .unwrap()
        .id;
    let mut spent = Duration::ZERO;
    for start in (0..EMAILS).step_by(BATCH) {
        let fetched: Vec<StoreFetched> = (start..start + BATCH)
            .map(|i| StoreFetched {
                uid: u32::try_from(i + 1).unwrap(),
                bytes: format!("raw {i}").into_bytes(),
            })
            .collect();
        let next = u32::try_from(start + BATCH + 1).unwrap();
        store
            .store_fetched(inbox, "INBOX", 1, fetched, next)
            .await
            .unwrap();
        let pending = store.pending_raw(Some(inbox), BATCH as i64).await.unwrap();
        let batch: Vec<_> = pending
            .iter()
            .zip(start..)
            .map(|(raw, i)| (raw.id, email(i)))
            .collect();
        let began = Instant::now();
        let outcomes = store.ingest_batch(inbox, &batch).await.unwrap();
        spent += began.elapsed();
        assert!(outcomes.iter().all(Result::is_ok));
    }
    spent
}

async fn drop_search_triggers(store: &Store) {
    let sql: &[&str] = match store.backend() {
        Backend::Sqlite => &[
            "DROP TRIGGER messages_fts_insert",
            "DROP TRIGGER conversations_fts_insert",
            "DROP TRIGGER contacts_fts_update",
        ],
        Backend::Postgres => &[
            "DROP TRIGGER messages_search_insert ON messages",
            "DROP TRIGGER conversations_search_insert ON conversations",
            "DROP TRIGGER contacts_search_update ON contacts",
        ],
    };
    for statement in sql {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(store.raw_pool())
            .await
            .unwrap();
    }
}

async fn measure(connect: impl AsyncFn() -> (Store, Box<dyn std::any::Any>)) {
    for round in 1..=2 {
        for indexed in [false, true] {
            let (store, keep) = connect().await;
            if !indexed {
                drop_search_triggers(&store).await;
            }
            let spent = ingest(&store).await;
            println!(
                "{:?} round {round}, {}: {EMAILS} emails in {:.0} ms ({:.0} emails/s)",
                store.backend(),
                if indexed {
                    "with search indexes"
                } else {
                    "without"
                },
                spent.as_secs_f64() * 1000.0,
                EMAILS as f64 / spent.as_secs_f64()
            );
            store.close().await;
            drop(keep);
        }
    }
}

fn main() {
    postdesk_testkit::init();
    let only = std::env::var("BENCH_DB").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        if only.is_empty() || only == "sqlite" {
            println!("SQLite:");
            measure(async || {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/postdesk.db", dir.path().display());
                let store = Store::connect(&url).await.unwrap();
                (store, Box::new(dir) as Box<dyn std::any::Any>)
            })
            .await;
        }
        if only.is_empty() || only == "postgres" {
            println!("PostgreSQL:");
            measure(async || {
                let db = postdesk_testkit::PgDatabase::create().await.unwrap();
                let store = Store::connect(db.url()).await.unwrap();
                (store, Box::new(db) as Box<dyn std::any::Any>)
            })
            .await;
        }
    });
}
