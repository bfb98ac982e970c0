//! Three postdesk processes (the real binary) on one PostgreSQL database, with a real Dovecot
//! and a real SMTP server: an event of any node reaches the streams of every node (with one id,
//! resumable anywhere); exactly one node reads the inbox, as Dovecot counts its sessions; a
//! reply sent through any node goes out once; an inbox change made on any node reaches its
//! reader; and the inbox survives its reader's node dying (SIGKILL) in the middle of a burst,
//! or pausing (SIGSTOP) for longer than its lease, without an email lost or read twice.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use postdesk::cluster::{HEARTBEAT, LEASE};
use postdesk_testkit::{Dovecot, PgDatabase, SmtpCapture};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::crash::{Server, get_json, login, start_with};
use crate::helpers::{EventLog, SUPPORT, SUPPORT_PASSWORD, email};

const NODES: usize = 3;

/// The key every node encrypts the mailbox passwords with (base64 of bytes 0 to 31).
const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// How soon another node must read the inbox of a node that died.
const TAKEOVER: Duration = Duration::from_secs(15);

struct Cluster {
    nodes: Vec<Server>,
    logs: Vec<PathBuf>,
    dovecot: Dovecot,
    smtp: SmtpCapture,
    client: reqwest::Client,
    /// The admin's token: sessions are in the database, so it works on every node.
    token: String,
    inbox: i64,
    _data: tempfile::TempDir,
    _pg: PgDatabase,
}

impl Cluster {
    /// Three nodes, and an inbox created through the first.
    async fn start() -> Cluster {
        postdesk_testkit::init();
        let dovecot = Dovecot::start().await.unwrap();
        dovecot.add_user(SUPPORT, SUPPORT_PASSWORD).unwrap();
        let smtp = SmtpCapture::start().await.unwrap();
        let pg = PgDatabase::create().await.unwrap();
        let data = tempfile::tempdir().unwrap();
        let env = [("POSTDESK_DNS", "off"), ("POSTDESK_SECRET_KEY", SECRET_KEY)];
        let mut nodes = Vec::new();
        let mut logs = Vec::new();
        for i in 0..NODES {
            let log = data.path().join(format!("node{i}.log"));
            let dir = data.path().join(format!("node{i}"));
            nodes.push(start_with(&dir, Some(pg.url()), "info", Some(&log), &env).await);
            logs.push(log);
        }
        let client = reqwest::Client::new();
        let token = login(&client, &nodes[0].base).await;
        let mut cluster = Cluster {
            nodes,
            logs,
            dovecot,
            smtp,
            client,
            token,
            inbox: 0,
            _data: data,
            _pg: pg,
        };
        let (status, inbox) = cluster
            .send(0, "POST", "/api/v1/inboxes", &cluster.inbox_body(true))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{inbox}");
        cluster.inbox = inbox["id"].as_i64().unwrap();
        cluster
    }

    fn inbox_body(&self, active: bool) -> Value {
        json!({
            "name": "Support", "email": SUPPORT, "sender_name": "Example Support", "active": active,
            "imap": { "host": self.dovecot.host(), "port": self.dovecot.imap_port(), "security": "none",
                      "username": SUPPORT, "password": SUPPORT_PASSWORD },
            "smtp": { "host": self.smtp.host(), "port": self.smtp.port(), "security": "none" },
        })
    }

    fn pid(&self, node: usize) -> u32 {
        self.nodes[node].child.id().expect("the node runs")
    }

    /// Sends `signal` (STOP, CONT, TERM, KILL) to node `node`.
    fn signal(&self, node: usize, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args(["-s", signal, &self.pid(node).to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {signal}");
    }

    async fn send(
        &self,
        node: usize,
        method: &str,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .client
            .request(method, format!("{}{path}", self.nodes[node].base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap_or_default())
    }

    /// GET `path` on node `node` as JSON; `Null` when it does not answer.
    async fn get(&self, node: usize, path: &str) -> Value {
        get_json(&self.client, &self.nodes[node].base, &self.token, path).await
    }

    /// Which node reads the inbox, as node `ask` sees it (the inbox's `reader`, matched to a
    /// process by the pid `GET /cluster` shows).
    async fn reader(&self, ask: usize) -> Option<usize> {
        let inbox = self
            .get(ask, &format!("/api/v1/inboxes/{}", self.inbox))
            .await;
        let node_id = inbox["reader"]["node_id"].as_str()?.to_owned();
        let cluster = self.get(ask, "/api/v1/cluster").await;
        let pid = cluster["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["id"] == node_id.as_str())?["pid"]
            .as_u64()?;
        (0..NODES).find(|i| u64::from(self.pid(*i)) == pid)
    }

    /// Waits until node `ask` sees a reader that `wanted` accepts; answers it and how long
    /// that took.
    async fn wait_reader(
        &self,
        ask: usize,
        wanted: impl Fn(usize) -> bool,
        within: Duration,
    ) -> (usize, Duration) {
        let start = Instant::now();
        loop {
            if let Some(node) = self.reader(ask).await.filter(|n| wanted(*n)) {
                return (node, start.elapsed());
            }
            assert!(
                start.elapsed() < within,
                "no wanted reader within {within:?}\n{}",
                self.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until Dovecot counts `n` IMAP sessions of the mailbox.
    async fn wait_sessions(&self, n: usize, within: Duration) {
        let start = Instant::now();
        while self.dovecot.imap_sessions(SUPPORT).unwrap() != n {
            assert!(
                start.elapsed() < within,
                "not {n} IMAP session(s) within {within:?}: {}",
                self.dovecot.imap_sessions(SUPPORT).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn conversations(&self, ask: usize) -> Vec<Value> {
        self.get(ask, "/api/v1/conversations?limit=1000").await["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until node `ask` lists `n` conversations; answers them.
    async fn wait_conversations(&self, ask: usize, n: usize, within: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let found = self.conversations(ask).await;
            if found.len() >= n {
                return found;
            }
            assert!(
                start.elapsed() < within,
                "{} of {n} conversations after {within:?}\n{}",
                found.len(),
                self.log_tails()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every conversation exactly once (the `subjects`, no other), each with one message.
    async fn assert_each_once(&self, ask: usize, subjects: &[String]) {
        let conversations = self.conversations(ask).await;
        let found: Vec<&str> = conversations
            .iter()
            .map(|c| c["subject"].as_str().unwrap())
            .collect();
        assert_eq!(
            found.len(),
            subjects.len(),
            "no conversation twice or missing"
        );
        let unique: HashSet<&str> = found.iter().copied().collect();
        let expected: HashSet<&str> = subjects.iter().map(String::as_str).collect();
        assert_eq!(unique, expected);
        for c in &conversations {
            let messages = self
                .get(ask, &format!("/api/v1/conversations/{}/messages", c["id"]))
                .await;
            assert_eq!(
                messages["messages"].as_array().map(Vec::len),
                Some(1),
                "one message in {}",
                c["subject"]
            );
        }
    }

    /// Delivers an email with `subject` to the mailbox (LMTP: no IMAP session of our own).
    async fn deliver(&self, subject: &str) {
        let id = format!("{}@customer.test", subject.replace(' ', "-"));
        let raw = email(&id, "carol@customer.test", subject, "Hello", "");
        self.dovecot
            .deliver_lmtp(SUPPORT, raw.as_bytes())
            .await
            .unwrap();
    }

    fn log_tails(&self) -> String {
        let mut out = String::new();
        for (i, log) in self.logs.iter().enumerate() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("--- node {i} ---\n{tail}\n"));
        }
        out
    }
}

/// (a), (b), (e) and inbox changes: events reach every node, one reader, replies once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_events_one_reader_and_the_outbox() {
    let c = Cluster::start().await;
    let (r, _) = c.wait_reader(0, |_| true, TAKEOVER).await;
    c.wait_sessions(1, Duration::from_secs(10)).await;

    // Every node sees the same cluster: three nodes alive, itself among them, one reader.
    for ask in 0..NODES {
        let cluster = c.get(ask, "/api/v1/cluster").await;
        let nodes = cluster["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), NODES, "{cluster}");
        for node in nodes {
            assert_eq!(node["alive"], true, "{node}");
            assert_eq!(node["version"], env!("CARGO_PKG_VERSION"));
            assert!(node["hostname"].as_str().is_some_and(|h| !h.is_empty()));
            assert!(node["heartbeat_at"].as_str().is_some());
        }
        let me = nodes.iter().find(|n| n["id"] == cluster["node_id"]);
        assert_eq!(me.unwrap()["pid"], c.pid(ask), "node_id is the asking node");
        let reading: Vec<&Value> = nodes
            .iter()
            .filter(|n| n["inboxes"] == json!([c.inbox]))
            .collect();
        assert_eq!(reading.len(), 1, "{cluster}");
        assert_eq!(reading[0]["pid"], c.pid(r));
        assert!(
            nodes
                .iter()
                .all(|n| n["inboxes"] == json!([c.inbox]) || n["inboxes"] == json!([]))
        );
    }

    // Exactly one IMAP session, as Dovecot counts them, heartbeat after heartbeat of three
    // nodes looking for inboxes to read; and one sign-in in all.
    for _ in 0..6 {
        assert_eq!(c.dovecot.imap_sessions(SUPPORT).unwrap(), 1);
        tokio::time::sleep(HEARTBEAT / 2).await;
    }
    assert_eq!(c.dovecot.imap_logins(SUPPORT), 1, "{}", c.dovecot.log());

    // (a) An email read by the reader's node shows live on the streams of the other two, as
    // the same event (one id), with what changed.
    let others: Vec<usize> = (0..NODES).filter(|n| *n != r).collect();
    let watch: Vec<EventLog> = futures::future::join_all(
        others
            .iter()
            .map(|n| EventLog::connect(&c.client, &c.nodes[*n].base, &c.token, None)),
    )
    .await;
    c.deliver("Seen everywhere").await;
    let conversation = c
        .wait_conversations(others[0], 1, Duration::from_secs(15))
        .await[0]["id"]
        .as_i64()
        .unwrap();
    let mut heard = Vec::new();
    for log in &watch {
        let start = Instant::now();
        let (id, data) = loop {
            if let Some(found) = log.with_ids("message_created", conversation).pop() {
                break found;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{:?}",
                log.kinds()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(data["conversation"]["subject"], "Seen everywhere");
        assert_eq!(data["message"]["kind"], "email_in");
        assert!(log.find("conversation_queued", conversation).is_some());
        assert!(
            !log.kinds()
                .iter()
                .any(|k| k.starts_with("inbox_changed") || k == "inbox_wake"),
            "the nodes' own events are not sent to browsers: {:?}",
            log.kinds()
        );
        heard.push(id);
    }
    assert_eq!(heard[0], heard[1], "one id on every node");
    // Resuming with Last-Event-ID works on any node: here the reader's.
    let resumed =
        EventLog::connect(&c.client, &c.nodes[r].base, &c.token, Some(heard[0] - 1)).await;
    let start = Instant::now();
    while resumed.with_ids("message_created", conversation).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            resumed.kinds()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        resumed.with_ids("message_created", conversation)[0].0,
        heard[0]
    );

    // (e) Replies sent through the two other nodes: each delivered exactly once, and the
    // delivery heard on another node's stream.
    let (status, taken) = c
        .send(
            others[0],
            "POST",
            &format!("/api/v1/conversations/{conversation}/take"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    let path = format!("/api/v1/conversations/{conversation}/messages");
    for (i, node) in others.iter().enumerate() {
        let text = format!("Answer number {i} from a node");
        let (status, sent) = c
            .send(
                *node,
                "POST",
                &path,
                &json!({ "text": text, "via": "email" }),
            )
            .await;
        assert!(status.is_success(), "{status} {sent}");
    }
    c.smtp.wait_for(2, Duration::from_secs(30)).await.unwrap();
    // Long enough for every node's outbox worker to have looked at least once more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let captured = c.smtp.messages();
    assert_eq!(captured.len(), 2, "each reply once");
    for i in 0..2 {
        let text = format!("Answer number {i} from a node");
        let copies = captured
            .iter()
            .filter(|m| String::from_utf8_lossy(&m.data).contains(&text))
            .count();
        assert_eq!(copies, 1, "{text}");
    }
    let start = Instant::now();
    while watch[1]
        .all("delivery_updated", conversation)
        .iter()
        .filter(|e| e["status"] == "sent")
        .count()
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            watch[1].kinds()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An inbox turned off through a node that does not read it: its reader stops, wherever
    // it runs; turned on again, one node reads it again.
    let inbox_path = format!("/api/v1/inboxes/{}", c.inbox);
    let (status, off) = c
        .send(others[1], "PUT", &inbox_path, &c.inbox_body(false))
        .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    c.wait_sessions(0, Duration::from_secs(10)).await;
    let start = Instant::now();
    loop {
        let inbox = c.get(others[0], &inbox_path).await;
        if inbox["status"]["state"] == "stopped" && inbox["reader"].is_null() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{inbox}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, on) = c
        .send(others[1], "PUT", &inbox_path, &c.inbox_body(true))
        .await;
    assert_eq!(status, StatusCode::OK, "{on}");
    c.wait_reader(others[0], |_| true, TAKEOVER).await;
    c.wait_sessions(1, Duration::from_secs(10)).await;
    tokio::time::sleep(HEARTBEAT * 2).await;
    assert_eq!(c.dovecot.imap_sessions(SUPPORT).unwrap(), 1);
}

/// (c) The reader's node is killed (SIGKILL) in the middle of a 300-email burst: another node
/// reads the inbox within 15 s, and every email is in postdesk exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_killed_in_a_burst_is_replaced_within_15_s_and_every_email_is_kept_once() {
    const BURST: usize = 300;
    let c = Cluster::start().await;
    let (r, _) = c.wait_reader(0, |_| true, TAKEOVER).await;
    c.wait_sessions(1, Duration::from_secs(10)).await;
    let ask = (r + 1) % NODES;
    let subjects: Vec<String> = (0..BURST).map(|i| format!("Burst {i}")).collect();
    let deliveries = async {
        for subject in &subjects {
            c.deliver(subject).await;
        }
    };
    let kill = async {
        let start = Instant::now();
        loop {
            let n = c.conversations(ask).await.len();
            if n >= 30 {
                c.signal(r, "KILL");
                return (Instant::now(), n, c.dovecot.imap_logins(SUPPORT));
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "ingest did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let ((), (killed_at, read_before, logins_before)) = tokio::join!(deliveries, kill);
    assert!(
        read_before < BURST,
        "the kill came in the middle of the burst ({read_before} read)"
    );
    let (next, _) = c.wait_reader(ask, |n| n != r, TAKEOVER).await;
    assert_ne!(next, r);
    // Read again: the new reader signed in.
    while c.dovecot.imap_logins(SUPPORT) == logins_before {
        assert!(
            killed_at.elapsed() < TAKEOVER,
            "not read again within {TAKEOVER:?}\n{}",
            c.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed_at.elapsed();
    c.wait_conversations(ask, BURST, Duration::from_secs(120))
        .await;
    c.assert_each_once(ask, &subjects).await;
    c.wait_sessions(1, Duration::from_secs(5)).await;
    println!(
        "killed after {read_before} of {BURST} emails were in; read again {took:?} after the kill (lease {LEASE:?})"
    );
}

/// (d) The reader's node is paused (SIGSTOP) for longer than its lease: another node takes
/// the inbox over; resumed (SIGCONT), the paused node neither signs in to the mailbox again nor
/// stores anything, and reads only once it holds a lease again (here: when the other reader
/// stops, and hands its lease over at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_paused_past_its_lease_does_not_read_again_until_it_holds_one() {
    let c = Cluster::start().await;
    let (r, _) = c.wait_reader(0, |_| true, TAKEOVER).await;
    c.wait_sessions(1, Duration::from_secs(10)).await;
    let ask = (r + 1) % NODES;
    let mut subjects = vec!["Before the pause".to_owned()];
    c.deliver(&subjects[0]).await;
    c.wait_conversations(ask, 1, Duration::from_secs(15)).await;
    let logins_before = c.dovecot.imap_logins(SUPPORT);

    c.signal(r, "STOP");
    let paused = Instant::now();
    let (s, replaced) = c.wait_reader(ask, |n| n != r, TAKEOVER).await;
    assert!(
        replaced > LEASE / 2,
        "taken over after the lease ran out, not before ({replaced:?})"
    );
    subjects.push("During the pause".to_owned());
    c.deliver(&subjects[1]).await;
    c.wait_conversations(ask, 2, Duration::from_secs(15)).await;
    // Longer than the lease, by more than a heartbeat.
    tokio::time::sleep((LEASE + HEARTBEAT).saturating_sub(paused.elapsed())).await;
    let logins_paused = c.dovecot.imap_logins(SUPPORT);
    assert_eq!(
        logins_paused,
        logins_before + 1,
        "the new reader signed in once"
    );

    c.signal(r, "CONT");
    let paused_for = paused.elapsed();
    // New mail at once: the paused node's old IMAP connection hears of it.
    subjects.push("After the pause".to_owned());
    c.deliver(&subjects[2]).await;
    tokio::time::sleep(HEARTBEAT * 2 + Duration::from_secs(1)).await;
    assert_eq!(
        c.dovecot.imap_logins(SUPPORT),
        logins_paused,
        "the resumed node did not sign in again\n{}",
        c.log_tails()
    );
    c.wait_sessions(1, Duration::from_secs(5)).await;
    c.wait_conversations(ask, 3, Duration::from_secs(15)).await;
    c.assert_each_once(ask, &subjects).await;
    // The resumed node serves again, alive, reading nothing; the new reader keeps the inbox.
    let cluster = c.get(r, "/api/v1/cluster").await;
    let nodes = cluster["nodes"].as_array().unwrap();
    let of = |node: usize| {
        nodes
            .iter()
            .find(|n| n["pid"] == c.pid(node))
            .unwrap_or_else(|| panic!("node {node} in {cluster}"))
    };
    assert_eq!(of(r)["alive"], true, "{cluster}");
    assert_eq!(of(r)["inboxes"], json!([]), "{cluster}");
    assert_eq!(of(s)["inboxes"], json!([c.inbox]), "{cluster}");
    let log = std::fs::read_to_string(&c.logs[r]).unwrap();
    assert!(log.contains("lease of the inbox lapsed"), "{log}");
    // On Dovecot's side, the paused node's session ended as it was when the node was paused:
    // its last command (or IDLE's start) as old as the pause, the one email it had fetched
    // before; nothing was asked after the pause.
    let dovecot_log = c.dovecot.log();
    let first_login = dovecot_log
        .lines()
        .find(|l| l.contains(&format!(" Login: user=<{SUPPORT}>")))
        .unwrap();
    let mpid = first_login
        .split("mpid=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let ended = dovecot_log
        .lines()
        .find(|l| l.contains(&format!("<{mpid}>")) && l.contains("Disconnected"))
        .unwrap_or_else(|| panic!("the paused node's session ended\n{dovecot_log}"));
    assert!(ended.contains(" body_count=1 "), "{ended}");
    let quiet = quiet_secs(ended).unwrap_or_else(|| panic!("{ended}"));
    assert!(
        quiet + 1.0 >= paused_for.as_secs_f64(),
        "the paused node's last command was {quiet} s before its session ended, paused {paused_for:?}: {ended}"
    );

    // The new reader stops gracefully (SIGTERM): it hands the inbox over at once, well before
    // its lease would have run out.
    c.signal(s, "TERM");
    let stopping = Instant::now();
    let (next, took) = c.wait_reader(r, |n| n != s, LEASE).await;
    assert!(
        took < LEASE / 2,
        "handed over at once, not when the lease ran out ({took:?})"
    );
    subjects.push("After the handover".to_owned());
    c.deliver(&subjects[3]).await;
    c.wait_conversations(next, 4, Duration::from_secs(15)).await;
    c.assert_each_once(next, &subjects).await;
    c.wait_sessions(1, Duration::from_secs(5)).await;
    println!(
        "paused node replaced after {replaced:?}; stopped node handed over after {took:?} ({:?} with its exit)",
        stopping.elapsed()
    );
}

/// A node whose listening connection is cut (the server ends it) listens again at once, and
/// the events added meanwhile still reach its streams, in order, none missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_listening_connection_is_made_again_and_nothing_is_missed() {
    let app = crate::helpers::spawn_app(crate::helpers::Db::Postgres).await;
    let events = EventLog::open(&app, &app.admin).await;
    let admin = sqlx::PgPool::connect(app.database_url().unwrap())
        .await
        .unwrap();
    let listening = |admin: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i32>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_all(&admin)
        .await
        .unwrap()
    };
    let before = listening(admin.clone()).await;
    assert_eq!(before.len(), 1, "one listening connection");
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(before[0])
        .execute(&admin)
        .await
        .unwrap();
    // Emails arriving right away: their events were added while the node was not listening.
    for i in 0..3 {
        app.deliver(&email(
            &format!("cut{i}@customer.test"),
            "carol@customer.test",
            &format!("While cut {i}"),
            "Hello",
            "",
        ))
        .await;
    }
    let start = Instant::now();
    let conversations = loop {
        let found = app.conversations(&app.admin, "").await;
        let heard = found
            .iter()
            .filter(|c| {
                !events
                    .all("message_created", c["id"].as_i64().unwrap())
                    .is_empty()
            })
            .count();
        if found.len() == 3 && heard == 3 {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{:?}",
            events.kinds()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(conversations.len(), 3);
    let after = listening(admin.clone()).await;
    assert_eq!(after.len(), 1, "listening again");
    assert_ne!(after, before, "on a new connection");
    admin.close().await;
}

/// How long an IMAP session had been quiet when it ended, from Dovecot's "Disconnected" line:
/// `(UID SEARCH finished 12.009 secs ago)` or `(IDLE running for 0.001 + waiting input for
/// 12.283 secs, …)`.
fn quiet_secs(disconnected: &str) -> Option<f64> {
    disconnected
        .split(" secs")
        .filter_map(|before| before.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(f64::max)
}

#[test]
fn dovecot_says_how_long_a_session_was_quiet() {
    let idle = "imap(a)<1><s>: Info: Disconnected: Connection closed (IDLE running for 0.001 + waiting input for 12.283 secs, 2 B in + 10 B out, state=wait-input) in=368";
    assert_eq!(quiet_secs(idle), Some(12.283));
    let between = "imap(a)<1><s>: Info: Disconnected: Connection closed: read(size=7879) failed: Connection reset by peer (UID SEARCH finished 12.009 secs ago) in=313";
    assert_eq!(quiet_secs(between), Some(12.009));
    assert_eq!(quiet_secs("Disconnected: Logged out in=1 out=2"), None);
}
