//! Part 2: many agents with an open event stream each, and a series of queue events: a
//! conversation transferred through the API from one department's Queued Chats to the
//! other's and back, every agent being in both. Each transfer is timed from the API call to
//! every stream that receives its `conversation_transferred` (which carries the conversation
//! as the lists show it).

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use postdesk_core::ids::UserId;
use postdesk_core::model::Role;
use postdesk_store::{NewSession, NewUser, Store};
use postdesk_testkit::{Dovecot, PgDatabase};
use serde_json::{Value, json};

use crate::procs::{self, CpuLap, PgCpu};
use crate::report::{Fanout, Posted};
use crate::server::{self, Postdesk};
use crate::streams::Streams;
use crate::{Options, PASSWORD, corpus, mail};

/// The Dovecot mailbox of the inbox whose one conversation is transferred.
const USER: &str = "fanout@example.test";
/// The event timed: every agent of the departments hears a conversation move between their
/// queues (and the `conversation_queued` after it).
const WATCHED: &str = "conversation_transferred";
/// Streams being opened at a time.
const OPEN_PARALLEL: usize = 50;
/// How long the node is watched with every stream open and nothing happening.
const IDLE_WITH_STREAMS: Duration = Duration::from_secs(20);

pub async fn run(options: &Options, dovecot: &Dovecot) -> anyhow::Result<Fanout> {
    eprintln!(
        "fanout: {} agents with an event stream each, {} transfers",
        options.clients, options.events
    );
    dovecot.add_user(USER, PASSWORD)?;
    server::on_fresh_node(options.postgres, &[], async |postdesk, pg| {
        let store_url = pg.map_or_else(|| postdesk.sqlite_url(), |pg| pg.url().to_owned());
        measure(
            options,
            dovecot,
            postdesk,
            &store_url,
            pg.map(PgDatabase::name),
        )
        .await
    })
    .await
}

/// Creates `n` agents with one session each, straight in the database (the sign-ins
/// themselves are not measured here: argon2 would take most of a minute for a thousand), and
/// answers their ids and tokens.
async fn agents(store_url: &str, n: usize) -> anyhow::Result<(Vec<UserId>, Vec<String>)> {
    let store = Store::connect(store_url).await?;
    let password_hash = postdesk::password::hash("bench-agent-lantern-quartz")?;
    let expires_at = postdesk_store::now_ms() + 24 * 3600 * 1000;
    let (mut ids, mut tokens) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let user = store
            .create_user(&NewUser {
                username: format!("agent{i}"),
                name: format!("Agent {i}"),
                email: format!("agent{i}@example.test"),
                password_hash: password_hash.clone(),
                roles: vec![Role::Agent],
            })
            .await?;
        let token = postdesk::password::new_token();
        store
            .create_session(&NewSession {
                user_id: user.id,
                token_hash: postdesk::password::token_hash(&token),
                expires_at,
                ip: "127.0.0.1".into(),
                user_agent: "postdesk cluster bench".into(),
                method: "password".into(),
            })
            .await?;
        ids.push(user.id);
        tokens.push(token);
    }
    store.close().await;
    Ok((ids, tokens))
}

async fn measure(
    options: &Options,
    dovecot: &Dovecot,
    postdesk: &Postdesk,
    store_url: &str,
    pg_name: Option<&str>,
) -> anyhow::Result<Fanout> {
    let pid = postdesk.pid;
    let mut out = Fanout {
        clients: options.clients,
        db: options.db_name().to_owned(),
        gap_ms: u64::try_from(options.event_gap.as_millis()).unwrap_or(u64::MAX),
        ..Fanout::default()
    };
    let (ids, tokens) = agents(store_url, options.clients).await?;
    // Two departments, every agent in both: the conversation goes from one queue to the other.
    let mut departments = Vec::new();
    for name in ["Fan-out A", "Fan-out B"] {
        let department = postdesk
            .post(
                "/api/v1/departments",
                &json!({ "name": name, "agent_ids": ids.iter().map(|i| i.0).collect::<Vec<_>>() }),
            )
            .await?;
        departments.push(department["id"].as_i64().context("no department id")?);
    }
    // One email in the department's inbox: a queued conversation each agent may read.
    let mut reference = postdesk.events().await?;
    let email = corpus::generate(1, options.seed.wrapping_add(11));
    mail::append_all(dovecot.imap_port(), USER, PASSWORD, &[&email[0].raw]).await?;
    let mut body = server::inbox_body(dovecot.imap_port(), USER, USER, PASSWORD);
    body["name"] = Value::from("Fan-out");
    body["department_id"] = Value::from(departments[0]);
    postdesk.post("/api/v1/inboxes", &body).await?;
    let created = reference
        .next_of("message_created", Duration::from_secs(30))
        .await
        .context("the email of the fan-out inbox did not arrive within 30 s")?;
    let conversation = created.data["conversation_id"]
        .as_i64()
        .context("no conversation id")?;
    ensure!(
        created.data["conversation"]["status"] == "queued",
        "the conversation is not queued: {}",
        created.data["conversation"]
    );

    let opening = Instant::now();
    let streams = Streams::open(&postdesk.base, &tokens, WATCHED, OPEN_PARALLEL).await?;
    out.open_secs = opening.elapsed().as_secs_f64();
    eprintln!(
        "  {} streams open after {:.1} s",
        streams.len(),
        out.open_secs
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    out.rss_idle = procs::rss(pid);
    out.threads = procs::threads(pid);
    let lap = CpuLap::start(pid);
    tokio::time::sleep(IDLE_WITH_STREAMS).await;
    let (cpu, secs) = lap.lap();
    out.idle_cpu = cpu / secs;

    // The series: each transfer timed from just before its API call.
    reference.drain();
    let lap = CpuLap::start(pid);
    let own = procs::own_cpu();
    let mut pg_cpu = match pg_name {
        Some(name) => Some(PgCpu::start(name).await),
        None => None,
    };
    let series = Instant::now();
    let path = format!("/api/v1/conversations/{conversation}/transfer");
    for k in 0..options.events {
        tokio::time::sleep(options.event_gap).await;
        let to = departments[(k + 1) % 2];
        let start = Instant::now();
        postdesk
            .post(&path, &json!({ "department_id": to }))
            .await?;
        let returned = Instant::now();
        out.posted.push(Posted {
            start,
            returned,
            sse_id: None,
        });
    }
    let expected = options.events * streams.len();
    let complete = streams.wait_for(expected, Duration::from_secs(30)).await;
    let series_secs = series.elapsed().as_secs_f64();
    let (cpu, _) = lap.lap();
    out.server_cpu = cpu / series_secs;
    out.bench_cpu = procs::own_cpu().saturating_sub(own).as_secs_f64() / series_secs;
    if let Some(pg) = pg_cpu.as_mut() {
        out.pg_cpu = Some(pg.lap().await.as_secs_f64() / series_secs);
    }
    out.series_secs = series_secs;
    out.rss_end = procs::rss(pid);
    if !complete {
        eprintln!(
            "  only {} of {expected} deliveries within 30 s of the last transfer",
            streams.count.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    // Which SSE id each transfer got: the calls were one after another, so the admin's
    // stream heard their events in the same order.
    let mut sse_ids = Vec::new();
    while let Some(event) = reference.next(Duration::from_millis(200)).await {
        if event.kind == WATCHED && event.data["conversation_id"] == conversation {
            sse_ids.push(event.id);
        }
    }
    ensure!(
        sse_ids.len() == out.posted.len(),
        "the admin's stream heard {} transfers of {}",
        sse_ids.len(),
        out.posted.len()
    );
    for (posted, id) in out.posted.iter_mut().zip(sse_ids) {
        posted.sse_id = id;
    }
    for stream in streams.stop().await {
        out.resyncs += stream.resyncs;
        if let Some(why) = stream.ended {
            out.ended.push(why);
        }
        out.received.push(stream.watched);
    }
    Ok(out)
}
