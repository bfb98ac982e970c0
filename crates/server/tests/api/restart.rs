//! Restarting postdesk on the same data folder re-ingests nothing.

use reqwest::StatusCode;

use crate::helpers::{Db, EventLog, email, eventually, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reingests_nothing_on_sqlite() {
    a_restart_reingests_nothing(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reingests_nothing_on_postgres() {
    a_restart_reingests_nothing(Db::Postgres).await;
}

async fn total_messages(app: &crate::helpers::TestApp) -> usize {
    let mut total = 0;
    for c in app.conversations(&app.admin, "").await {
        total += app
            .messages(&app.admin, c["id"].as_i64().unwrap())
            .await
            .len();
    }
    total
}

async fn a_restart_reingests_nothing(db: Db) {
    let mut app = spawn_app(db).await;
    for i in 0..3 {
        app.deliver(&email(
            &format!("m{i}@customer.test"),
            "carol@customer.test",
            &format!("Question {i}"),
            "Hi",
            "",
        ))
        .await;
    }
    eventually("three conversations", || async {
        (app.conversations(&app.admin, "").await.len() == 3).then_some(())
    })
    .await;
    let sync_before = app.inbox().await["status"]["last_sync_at"]
        .as_str()
        .unwrap()
        .to_owned();

    // A browser listening to live events must not keep postdesk from stopping.
    let events = EventLog::open(&app, &app.admin).await;
    app.restart().await;
    drop(events);
    // The admin token survives the restart (sessions are stored).
    let (status, _) = app.get(&app.admin, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    // Wait until the restarted reader has synced the mailbox again, then one more email.
    eventually("the reader to sync after the restart", || async {
        let inbox = app.inbox().await;
        (inbox["status"]["state"] == "idle"
            && inbox["status"]["last_sync_at"]
                .as_str()
                .is_some_and(|s| s > sync_before.as_str()))
        .then_some(())
    })
    .await;
    app.deliver(&email(
        "after@customer.test",
        "carol@customer.test",
        "After restart",
        "Hi",
        "",
    ))
    .await;
    eventually("the new email after the restart", || async {
        (app.conversations(&app.admin, "").await.len() == 4).then_some(())
    })
    .await;
    assert_eq!(total_messages(&app).await, 4, "each email exactly once");
    app.stop().await;
}
