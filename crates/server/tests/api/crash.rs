//! A crash (SIGKILL) in the middle of a 500-email backlog, then a restart: every email is in
//! postdesk exactly once. Runs the real `postdesk` binary so the kill is a real process kill.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Db, SUPPORT, SUPPORT_PASSWORD, email};

const BACKLOG: usize = 500;
const ADMIN_PASSWORD: &str = "tangerine-obelisk-harbor-42";

pub struct Server {
    pub child: tokio::process::Child,
    pub base: String,
}

async fn start(data_dir: &std::path::Path, database_url: Option<&str>) -> Server {
    start_logging(data_dir, database_url, "warn", None).await
}

/// Starts the real binary with `POSTDESK_LOG=level`, its standard error into `log` (or
/// nowhere).
pub async fn start_logging(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    level: &str,
    log: Option<&std::path::Path>,
) -> Server {
    start_with(data_dir, database_url, level, log, &[]).await
}

/// [`start_logging`] with more environment variables (e.g. `POSTDESK_LOG_FORMAT`).
pub async fn start_with(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    level: &str,
    log: Option<&std::path::Path>,
    env: &[(&str, &str)],
) -> Server {
    let port = postdesk_testkit::free_port().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_postdesk"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("POSTDESK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("POSTDESK_LOG", level)
        .stdout(Stdio::null())
        .stderr(log.map_or_else(Stdio::null, |path| {
            Stdio::from(std::fs::File::create(path).expect("the log file"))
        }))
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.env("POSTDESK_DATABASE_URL", url);
    }
    command.envs(env.iter().copied());
    let child = command.spawn().expect("the postdesk binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "postdesk did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child, base }
}

pub async fn login(client: &reqwest::Client, base: &str) -> String {
    let body: Value = client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// GET `path` as JSON, `Null` when postdesk does not answer (it may be down or starting).
pub async fn get_json(client: &reqwest::Client, base: &str, token: &str, path: &str) -> Value {
    let Ok(response) = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return Value::Null;
    };
    response.json().await.unwrap_or_default()
}

async fn conversation_count(client: &reqwest::Client, base: &str, token: &str) -> usize {
    get_json(client, base, token, "/api/v1/conversations?limit=1000").await["conversations"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_backlog_then_restart_keeps_every_email_exactly_once_on_sqlite() {
    sigkill_during_a_backlog(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_backlog_then_restart_keeps_every_email_exactly_once_on_postgres() {
    sigkill_during_a_backlog(Db::Postgres).await;
}

async fn sigkill_during_a_backlog(db: Db) {
    postdesk_testkit::init();
    let dovecot = postdesk_testkit::Dovecot::start().await.unwrap();
    dovecot.add_user(SUPPORT, SUPPORT_PASSWORD).unwrap();
    for i in 0..BACKLOG {
        let raw = email(
            &format!("backlog{i}@customer.test"),
            "carol@customer.test",
            &format!("Backlog {i}"),
            "Hello",
            "",
        );
        dovecot
            .append(SUPPORT, SUPPORT_PASSWORD, "INBOX", raw.as_bytes())
            .await
            .unwrap();
    }
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(postdesk_testkit::PgDatabase::create().await.unwrap()),
    };
    let url = pg.as_ref().map(|p| p.url().to_owned());
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // Start, add the inbox, and kill the process in the middle of the backlog.
    let mut server = start(data.path(), url.as_deref()).await;
    let token = login(&client, &server.base).await;
    let inbox = json!({
        "name": "Support", "email": SUPPORT, "sender_name": "Example Support",
        "imap": { "host": dovecot.host(), "port": dovecot.imap_port(), "security": "none", "username": SUPPORT, "password": SUPPORT_PASSWORD },
        "smtp": { "host": "127.0.0.1", "port": 25, "security": "none" },
    });
    let created = client
        .post(format!("{}/api/v1/inboxes", server.base))
        .bearer_auth(&token)
        .json(&inbox)
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let start_time = Instant::now();
    let seen_before_kill = loop {
        let n = conversation_count(&client, &server.base, &token).await;
        if n >= 10 {
            break n;
        }
        assert!(
            start_time.elapsed() < Duration::from_secs(60),
            "ingest did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    server.child.kill().await.unwrap(); // SIGKILL: no shutdown, no flush
    assert!(
        seen_before_kill < BACKLOG,
        "the kill came in the middle of the backlog ({seen_before_kill} ingested)"
    );

    // Restart on the same data: the rest arrives, nothing twice.
    let server = start(data.path(), url.as_deref()).await;
    let token = login(&client, &server.base).await;
    let start_time = Instant::now();
    while conversation_count(&client, &server.base, &token).await < BACKLOG {
        assert!(
            start_time.elapsed() < Duration::from_secs(120),
            "the backlog was not finished after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = get_json(
        &client,
        &server.base,
        &token,
        "/api/v1/conversations?limit=1000",
    )
    .await;
    let conversations = body["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), BACKLOG, "every email exactly once");
    let subjects: HashSet<&str> = conversations
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), BACKLOG, "no email twice, none missing");
    for c in conversations.iter().take(25) {
        let id = c["id"].as_i64().unwrap();
        let messages = get_json(
            &client,
            &server.base,
            &token,
            &format!("/api/v1/conversations/{id}/messages"),
        )
        .await;
        assert_eq!(
            messages["messages"].as_array().unwrap().len(),
            1,
            "one message per conversation"
        );
    }
}
