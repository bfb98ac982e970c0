//! `GET /metrics`, end to end on SQLite and PostgreSQL: real things happen (emails delivered
//! to the real Dovecot and ingested, one of them quarantined, Reply via Email to the real SMTP
//! server, accepted, refused and deferred, an event stream connected) and the Prometheus text
//! shows each, well-formed. Off, it answers 404 to a caller without a token and still serves
//! an admin.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{EventLog, TestApp, email, eventually, on_both_databases, spawn_app_with};

on_both_databases! {
    metrics_flow =>
        metrics_follow_ingest_replies_streams_and_readers_on_sqlite,
        metrics_follow_ingest_replies_streams_and_readers_on_postgres;
}

/// One sample: its metric name and labels (sorted).
type Series = (String, Vec<(String, String)>);

/// Parses the Prometheus text exposition format (0.0.4) strictly: every line is a `# HELP`,
/// a `# TYPE` of a known type, or a sample `name{label="value",…} value` of a declared
/// family, with a valid name, labels and number. Panics on any other line.
fn parse(text: &str) -> HashMap<Series, f64> {
    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, words) = help.split_once(' ').expect("HELP has a name and text");
            assert!(valid_name(name), "HELP of a bad name: {line}");
            assert!(!words.trim().is_empty(), "HELP without words: {line}");
            continue;
        }
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').expect("TYPE has a name and kind");
            assert!(valid_name(name), "TYPE of a bad name: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "unknown type: {line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "declared twice: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "an unknown comment: {line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
                    assert!(valid_name(key), "bad label name in {line}");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next().expect("a closing quote") {
                            (_, '\\') => match chars.next().expect("an escape").1 {
                                'n' => value.push('\n'),
                                c @ ('\\' | '"') => value.push(c),
                                c => panic!("bad escape \\{c} in {line}"),
                            },
                            (i, '"') => break i,
                            (_, c) => value.push(c),
                        }
                    };
                    labels.push((key.to_owned(), value));
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
                labels.sort();
                (name, labels)
            }
        };
        assert!(valid_name(name), "bad metric name: {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "a sample before its TYPE: {line}"
        );
        assert!(
            samples.insert((name.to_owned(), labels), value).is_none(),
            "a sample twice: {line}"
        );
    }
    samples
}

/// The value of `name` with exactly `labels` (0 when the series is not shown yet).
fn value(samples: &HashMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    samples
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or(0.0)
}

/// GETs `/metrics` (as `token`, or without one), asserting its status and, when it is 200,
/// its content type; the body.
async fn scrape(app: &TestApp, token: Option<&str>, expected: StatusCode) -> String {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), expected);
    if expected == StatusCode::OK {
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
    response.text().await.unwrap()
}

/// Scrapes (unauthenticated, metrics on) until `probe` finds what it waits for.
async fn until<T>(
    app: &TestApp,
    what: &str,
    probe: impl Fn(&HashMap<Series, f64>) -> Option<T>,
) -> T {
    eventually(what, || async {
        probe(&parse(&scrape(app, None, StatusCode::OK).await))
    })
    .await
}

/// `Some(())` when the sample is exactly `want`.
fn is(
    samples: &HashMap<Series, f64>,
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> Option<()> {
    (value(samples, name, labels) == want).then_some(())
}

async fn metrics_flow(db: crate::helpers::Db) {
    let mut app = spawn_app_with(db, |s| s.metrics = true).await;
    let inbox = app.inbox_id.to_string();
    let inbox = inbox.as_str();

    // On: anyone reads them, without signing in. The reader settles in IDLE.
    let first = parse(&scrape(&app, None, StatusCode::OK).await);
    let started = value(&first, "postdesk_process_start_time_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started > now - 600.0 && started <= now, "{started}");
    assert_eq!(
        value(
            &first,
            "postdesk_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    let pool_max = match db {
        crate::helpers::Db::Sqlite => 4.0,
        crate::helpers::Db::Postgres => 10.0,
    };
    assert_eq!(value(&first, "postdesk_db_connections_max", &[]), pool_max);
    let open = value(&first, "postdesk_db_connections", &[("state", "in_use")])
        + value(&first, "postdesk_db_connections", &[("state", "idle")]);
    assert!(open >= 1.0 && open <= pool_max, "{open} connections open");
    until(&app, "the reader idle", |s| {
        is(s, "postdesk_inbox_readers", &[("state", "idle")], 1.0)
    })
    .await;

    // An event stream connected, then closed.
    let stream = EventLog::open(&app, &app.admin).await;
    until(&app, "one event stream", |s| {
        is(s, "postdesk_sse_clients", &[], 1.0)
    })
    .await;

    // An email delivered to the mailbox and ingested; one without a sender quarantined.
    app.deliver(&email("m1@c.test", "carol@c.test", "Metrics", "Hello", ""))
        .await;
    let conversation = app.first_queued(&app.admin).await;
    app.deliver(
        "Message-ID: <nobody@c.test>\r\nSubject: From no one\r\nTo: support@example.test\r\n\r\nWho?\r\n",
    )
    .await;
    let ingested = until(&app, "both emails fetched and one quarantined", |s| {
        is(
            s,
            "postdesk_emails_quarantined_total",
            &[("inbox", inbox)],
            1.0,
        )
        .map(|()| s.clone())
    })
    .await;
    for (name, labels, want) in [
        (
            "postdesk_emails_fetched_total",
            vec![("inbox", inbox), ("via", "imap")],
            2.0,
        ),
        (
            "postdesk_emails_processed_total",
            vec![("inbox", inbox), ("outcome", "added")],
            1.0,
        ),
        ("postdesk_ingest_latency_seconds_count", vec![], 1.0),
        (
            "postdesk_ingest_latency_seconds_bucket",
            vec![("le", "+Inf")],
            1.0,
        ),
    ] {
        assert_eq!(value(&ingested, name, &labels), want, "{name} {labels:?}");
    }
    assert!(value(&ingested, "postdesk_ingest_latency_seconds_sum", &[]) < 30.0);

    // Reply via Email: accepted by the SMTP server, then refused (550), then deferred (451).
    app.take(&app.admin, conversation).await;
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let reply = |text: &'static str| {
        let (app, path) = (&app, &path);
        async move {
            let (status, body) = app
                .post(&app.admin, path, &json!({ "text": text, "via": "email" }))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    };
    reply("Sent fine").await;
    app.smtp
        .wait_for(1, std::time::Duration::from_secs(30))
        .await
        .expect("the reply is sent");
    let sent = until(&app, "the reply counted as sent", |s| {
        is(s, "postdesk_outbox_sent_total", &[], 1.0).map(|()| s.clone())
    })
    .await;
    assert_eq!(value(&sent, "postdesk_outbox_queued_total", &[]), 1.0);
    assert_eq!(
        value(&sent, "postdesk_outbox_delivery_latency_seconds_count", &[]),
        1.0
    );
    app.smtp.reject_with(Some("550 5.7.1 Rejected for test"));
    reply("Refused").await;
    let refused = until(&app, "the refused reply counted", |s| {
        is(s, "postdesk_outbox_failed_total", &[("class", "5xx")], 1.0).map(|()| s.clone())
    })
    .await;
    assert_eq!(value(&refused, "postdesk_outbox_queued_total", &[]), 2.0);
    assert_eq!(value(&refused, "postdesk_outbox_sent_total", &[]), 1.0);
    assert_eq!(
        value(
            &refused,
            "postdesk_outbox_retried_total",
            &[("class", "4xx")]
        ),
        0.0,
        "shown from the start, at 0"
    );
    app.smtp.reject_with(Some("451 4.3.0 Try later"));
    reply("Deferred").await;
    until(&app, "the deferred reply counted as retried", |s| {
        is(s, "postdesk_outbox_retried_total", &[("class", "4xx")], 1.0)
    })
    .await;

    drop(stream);
    until(&app, "the event stream gone", |s| {
        is(s, "postdesk_sse_clients", &[], 0.0)
    })
    .await;

    // The inbox turned off: its reader shows stopped.
    let mut body = app.inbox_body(crate::helpers::SUPPORT_PASSWORD);
    body["active"] = json!(false);
    let (status, answer) = app
        .put(
            &app.admin,
            &format!("/api/v1/inboxes/{}", app.inbox_id),
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stopped = until(&app, "the reader stopped", |s| {
        is(s, "postdesk_inbox_readers", &[("state", "stopped")], 1.0).map(|()| s.clone())
    })
    .await;
    assert_eq!(
        value(&stopped, "postdesk_inbox_readers", &[("state", "idle")]),
        0.0
    );

    // Off: no token gets 404 with what to do, an agent 403, an admin the metrics.
    app.smtp.reject_with(None);
    app.restart_with(|_| {}).await;
    let answer = scrape(&app, None, StatusCode::NOT_FOUND).await;
    assert!(answer.contains("POSTDESK_METRICS"), "{answer}");
    let agent = app.agent("alice").await;
    scrape(&app, Some(&agent), StatusCode::FORBIDDEN).await;
    scrape(&app, Some("not-a-token"), StatusCode::UNAUTHORIZED).await;
    let admin = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    let read = parse(&scrape(&app, Some(&admin), StatusCode::OK).await);
    assert_eq!(
        value(&read, "postdesk_inbox_readers", &[("state", "stopped")]),
        1.0,
        "read from the database, also after the restart"
    );
}
