//! How the store keeps its SQLite file: page size and checkpoints. These are properties of
//! the embedded database alone (PostgreSQL has neither setting), so they run on SQLite only;
//! every behaviour of the store itself is in `contract.rs`, on both databases.

use std::time::{Duration, Instant};

#[macro_use]
mod common;

use postdesk_store::{Store, StoreFetched};
use sqlx::{Connection as _, Row as _};

/// An email of about `size` bytes whose content differs with `n`.
fn email(n: usize, size: usize) -> Vec<u8> {
    let mut bytes = format!(
        "Message-ID: <big-{n}@example.test>\r\nFrom: a@example.test\r\nSubject: {n}\r\n\r\n"
    )
    .into_bytes();
    let line = format!("{n:>10} of the body, a line of text to fill the email up\r\n");
    while bytes.len() < size {
        bytes.extend_from_slice(line.as_bytes());
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_uses_16_kib_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postdesk.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let page_size: i64 = sqlx::query("PRAGMA page_size")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(page_size, 16_384);
}

/// The write-ahead log is copied into the database file while writing goes on, long before
/// SQLite's own automatic checkpoint (10,000 pages, 160 MiB here) would do it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_is_checkpointed_while_writing() {
    postdesk_testkit::init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postdesk.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let inbox = store
        .create_inbox(&common::inbox_settings("support@example.test"))
        .await
        .unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    // 24 write transactions of 1 MiB each: 24 MiB, about 1,600 pages.
    for batch in 0..24u32 {
        let fetched = vec![StoreFetched {
            uid: batch + 1,
            bytes: email(batch as usize, 1024 * 1024),
        }];
        store
            .store_fetched(inbox.id, "INBOX", 1, fetched, batch + 2)
            .await
            .unwrap();
    }
    // The checkpoints run in the background; the last one may still be going.
    let deadline = Instant::now() + Duration::from_secs(20);
    let size = loop {
        let size = std::fs::metadata(&path).unwrap().len();
        if size >= 20 * 1024 * 1024 || Instant::now() > deadline {
            break size;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        size >= 20 * 1024 * 1024,
        "the database file holds {size} bytes (was {before}) after 24 MiB were written: \
         the log was not checkpointed"
    );
    store.close().await;
}
