//! `spawn_app()`: a postdesk on port 0 with its own data folder (and its own PostgreSQL
//! database for the PostgreSQL variants), a Dovecot with the support mailbox, and an SMTP
//! capture server, wired together through an inbox created over the API.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use postdesk::{Application, Settings};
use postdesk_testkit::{Dovecot, PgDatabase, SmtpCapture};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SUPPORT: &str = "support@example.test";
pub const SUPPORT_PASSWORD: &str = "mailbox-secret";
pub const ADMIN_PASSWORD: &str = "tangerine-obelisk-harbor-42";
/// The password of every agent the tests create.
pub const AGENT_PASSWORD: &str = "velvet-compass-meadow-17";

/// How long a test waits for something that should happen within a second or so (generous:
/// CI runs many tests at once on two cores).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// For each flow `async fn flow(db: Db)`, a test on SQLite and one on PostgreSQL.
macro_rules! on_both_databases {
    ($($flow:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $flow($crate::helpers::Db::Sqlite).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $flow($crate::helpers::Db::Postgres).await;
        }
    )*};
}
pub(crate) use on_both_databases;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dovecot: Dovecot,
    pub smtp: SmtpCapture,
    pub admin: String,
    pub inbox_id: i64,
    /// The port of the SMTP ingress, when the settings enabled it (as first started).
    pub smtp_ingress_port: Option<u16>,
    /// The server's clock for two-factor codes, which a test moves.
    pub clock: postdesk::totp::Clock,
    data_dir: tempfile::TempDir,
    database_url: Option<String>,
    running: Option<(oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>)>,
    _pg: Option<PgDatabase>,
}

async fn start(
    settings: Settings,
) -> (String, oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>) {
    let (base, _, _, stop, handle) = start_app(settings).await;
    (base, stop, handle)
}

/// Starts postdesk; also returns the SMTP ingress port, if enabled, and its clock.
async fn start_app(
    settings: Settings,
) -> (
    String,
    Option<u16>,
    postdesk::totp::Clock,
    oneshot::Sender<()>,
    JoinHandle<anyhow::Result<()>>,
) {
    let app = Application::build(settings).await.expect("postdesk builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let smtp_port = app.smtp_port();
    let clock = app.state().clock.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (base, smtp_port, clock, stop, handle)
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// [`spawn_app`] with changed settings (e.g. the SMTP ingress turned on).
pub async fn spawn_app_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    postdesk_testkit::init();
    let dovecot = Dovecot::start().await.expect("Dovecot starts");
    dovecot.add_user(SUPPORT, SUPPORT_PASSWORD).unwrap();
    let smtp = SmtpCapture::start().await.expect("SMTP capture starts");
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(
            PgDatabase::create()
                .await
                .expect("PostgreSQL on 127.0.0.1:5432"),
        ),
    };
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = pg.as_ref().map(|p| p.url().to_owned());
    let mut first_settings = settings(data_dir.path().into(), database_url.clone());
    tweak(&mut first_settings);
    let (base, smtp_ingress_port, clock, stop, handle) = start_app(first_settings).await;
    let client = reqwest::Client::new();
    let mut app = TestApp {
        base,
        client,
        dovecot,
        smtp,
        admin: String::new(),
        inbox_id: 0,
        smtp_ingress_port,
        clock,
        data_dir,
        database_url,
        running: Some((stop, handle)),
        _pg: pg,
    };
    app.admin = app.login("admin", ADMIN_PASSWORD).await;
    let (status, inbox) = app
        .post(
            &app.admin,
            "/api/v1/inboxes",
            &app.inbox_body(SUPPORT_PASSWORD),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inbox}");
    app.inbox_id = inbox["id"].as_i64().unwrap();
    app
}

fn settings(data_dir: PathBuf, database_url: Option<String>) -> Settings {
    let mut settings = Settings::for_data_dir(data_dir);
    settings.database_url = database_url;
    settings.admin_password = Some(ADMIN_PASSWORD.into());
    settings.poll_seconds = 2;
    // No sender checks unless a test turns them on with its own DNS server: the machine's
    // resolver may not answer, and the other tests are not about it.
    settings.dns = Some("off".into());
    settings
}

impl TestApp {
    pub fn inbox_body(&self, imap_password: &str) -> Value {
        json!({
            "name": "Support",
            "email": SUPPORT,
            "sender_name": "Example Support",
            "active": true,
            "imap": { "host": self.dovecot.host(), "port": self.dovecot.imap_port(), "security": "none",
                      "username": SUPPORT, "password": imap_password },
            "smtp": { "host": self.smtp.host(), "port": self.smtp.port(), "security": "none" },
        })
    }

    /// Stops postdesk (gracefully) and starts it again on the same data folder and database.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Restarts with the default test settings changed by `tweak` (same data folder and
    /// database; what `spawn_app_with` changed is not kept).
    pub async fn restart_with(&mut self, tweak: impl Fn(&mut Settings)) {
        self.stop().await;
        let mut settings = settings(self.data_dir.path().into(), self.database_url.clone());
        tweak(&mut settings);
        let (base, stop, handle) = start(settings).await;
        self.base = base;
        self.running = Some((stop, handle));
    }

    /// Runs `doveadm` against this test's Dovecot.
    pub fn doveadm(&self, args: &[&str]) {
        let config = self.dovecot.dir().join("dovecot.conf");
        let output = std::process::Command::new("doveadm")
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .expect("doveadm runs");
        assert!(
            output.status.success(),
            "doveadm {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops postdesk gracefully; fails the test if it does not stop within 30 s (an open
    /// event stream or a stuck worker would hold it).
    pub async fn stop(&mut self) {
        if let Some((stop, handle)) = self.running.take() {
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("postdesk stops within 30 s")
                .unwrap()
                .unwrap();
        }
    }

    /// The same database the server uses, opened beside it (for minting sessions and
    /// checking rows directly).
    pub async fn store(&self) -> postdesk_store::Store {
        let url = self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.path().join("postdesk.db").display()
            )
        });
        postdesk_store::Store::connect(&url)
            .await
            .expect("the test's database opens")
    }

    /// The server's data folder.
    /// The PostgreSQL database's URL (`None`: SQLite in the data folder).
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Creates a user with `roles` and returns its id.
    pub async fn user(&self, username: &str, roles: &[&str]) -> i64 {
        let body = json!({ "username": username, "name": username.to_uppercase(), "email": format!("{username}@agents.test"),
                           "password": AGENT_PASSWORD, "roles": roles });
        let (status, created) = self.post(&self.admin, "/api/v1/users", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["id"].as_i64().unwrap()
    }

    /// A session for `user` made directly in the database, as a sign-in would (no password
    /// check, no throttling): for tests that need many tokens.
    pub async fn mint_token(
        &self,
        store: &postdesk_store::Store,
        user: i64,
        expires_at: i64,
    ) -> String {
        let token = postdesk::password::new_token();
        store
            .create_session(&postdesk_store::NewSession {
                user_id: postdesk_core::ids::UserId(user),
                token_hash: postdesk::password::token_hash(&token),
                expires_at,
                ip: "127.0.0.1".into(),
                user_agent: "api test".into(),
                method: "password".into(),
            })
            .await
            .unwrap();
        token
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let request = self.auth(self.client.request(method, self.url(path)), token);
        Self::answer(request.json(body).send().await.unwrap()).await
    }

    pub async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        Self::answer(
            self.auth(self.client.delete(self.url(path)), token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, token, path, body).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "",
                "/api/v1/login",
                &json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates an agent and returns a login token.
    pub async fn agent(&self, username: &str) -> String {
        let body = json!({ "username": username, "name": username.to_uppercase(), "email": format!("{username}@agents.test"),
                           "password": AGENT_PASSWORD, "roles": ["agent"] });
        let (status, created) = self.post(&self.admin, "/api/v1/users", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        self.login(username, AGENT_PASSWORD).await
    }

    async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    fn auth(&self, request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        if token.is_empty() {
            request
        } else {
            request.bearer_auth(token)
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        Self::answer(
            self.auth(self.client.get(self.url(path)), token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        Self::answer(
            self.auth(self.client.post(self.url(path)), token)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn put(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        Self::answer(
            self.auth(self.client.put(self.url(path)), token)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get_bytes(
        &self,
        token: &str,
        path: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let response = self
            .auth(self.client.get(self.url(path)), token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    }

    pub async fn upload(
        &self,
        token: &str,
        conversation: i64,
        filename: &str,
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(filename.to_owned())
            .mime_str("application/pdf")
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        let request = self.auth(
            self.client
                .post(self.url(&format!("/api/v1/conversations/{conversation}/uploads"))),
            token,
        );
        Self::answer(request.multipart(form).send().await.unwrap()).await
    }

    /// Puts an email into the support mailbox, as a mail server delivering it would.
    pub async fn deliver(&self, raw: &str) {
        self.dovecot
            .append(SUPPORT, SUPPORT_PASSWORD, "INBOX", raw.as_bytes())
            .await
            .expect("APPEND");
    }

    pub async fn messages(&self, token: &str, conversation: i64) -> Vec<Value> {
        let (status, body) = self
            .get(
                token,
                &format!("/api/v1/conversations/{conversation}/messages"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["messages"].as_array().unwrap().clone()
    }

    pub async fn conversations(&self, token: &str, query: &str) -> Vec<Value> {
        let (status, body) = self
            .get(token, &format!("/api/v1/conversations?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["conversations"].as_array().unwrap().clone()
    }

    /// Waits for the first conversation in Queued Chats and returns its id.
    pub async fn first_queued(&self, token: &str) -> i64 {
        eventually("a queued conversation", || async {
            self.conversations(token, "status=queued")
                .await
                .first()
                .and_then(|c| c["id"].as_i64())
        })
        .await
    }

    /// Take it!, asserting it worked.
    pub async fn take(&self, token: &str, conversation: i64) {
        let (status, body) = self
            .post(
                token,
                &format!("/api/v1/conversations/{conversation}/take"),
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Waits until the outgoing email `message` shows delivery `status`; returns its delivery.
    pub async fn wait_for_delivery(
        &self,
        token: &str,
        conversation: i64,
        message: i64,
        status: &str,
    ) -> Value {
        eventually(&format!("email {message} to be {status}"), || async {
            let messages = self.messages(token, conversation).await;
            let m = messages
                .into_iter()
                .find(|m| m["id"].as_i64() == Some(message))?;
            (m["email"]["delivery"]["status"] == status).then(|| m["email"]["delivery"].clone())
        })
        .await
    }

    /// Creates department `name` and puts the support inbox in it; returns its id.
    pub async fn inbox_in_department(&self, name: &str) -> i64 {
        self.inbox_in_new_department(&json!({ "name": name })).await
    }

    /// Creates a department from `body` (name, agents, routing, limit) and puts the support
    /// inbox in it; returns its id.
    pub async fn inbox_in_new_department(&self, body: &Value) -> i64 {
        let (status, department) = self.post(&self.admin, "/api/v1/departments", body).await;
        assert_eq!(status, StatusCode::CREATED, "{department}");
        let department = department["id"].as_i64().unwrap();
        let mut inbox = self.inbox_body(SUPPORT_PASSWORD);
        inbox["department_id"] = json!(department);
        let path = format!("/api/v1/inboxes/{}", self.inbox_id);
        let (status, body) = self.put(&self.admin, &path, &inbox).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        department
    }

    /// Adds `user` to `department`.
    pub async fn join_department(&self, department: i64, user: i64) {
        let path = format!("/api/v1/departments/{department}/members/{user}");
        let (status, body) = self.put(&self.admin, &path, &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn inbox(&self) -> Value {
        let (status, body) = self
            .get(&self.admin, &format!("/api/v1/inboxes/{}", self.inbox_id))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Polls `probe` until it returns `Some`, or fails the test after [`PATIENCE`] with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "gave up after {PATIENCE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain email from a contact.
pub fn email(
    message_id: &str,
    from: &str,
    subject: &str,
    body: &str,
    extra_headers: &str,
) -> String {
    format!(
        "From: Carol Customer <{from}>\r\nTo: Support <{SUPPORT}>\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{message_id}>\r\n{extra_headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

/// An email with a binary attachment.
pub fn email_with_attachment(
    message_id: &str,
    from: &str,
    subject: &str,
    body: &str,
    filename: &str,
    bytes: &[u8],
) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: Carol Customer <{from}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"{filename}\"\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    )
}

/// An event heard: (kind, data, id).
type Heard = (String, Value, Option<u64>);

/// Collects Server-Sent Events of one logged-in user in the background.
pub struct EventLog {
    /// In the order heard.
    events: std::sync::Arc<std::sync::Mutex<Vec<Heard>>>,
    task: JoinHandle<()>,
}

impl EventLog {
    pub async fn open(app: &TestApp, token: &str) -> EventLog {
        EventLog::connect(&app.client, &app.base, token, None).await
    }

    /// The event stream of the postdesk at `base` (any node), resuming after `last_event_id`
    /// when given.
    pub async fn connect(
        client: &reqwest::Client,
        base: &str,
        token: &str,
        last_event_id: Option<u64>,
    ) -> EventLog {
        let mut request = client
            .get(format!("{base}/api/v1/events"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        let task = tokio::spawn(async move {
            use futures::StreamExt as _;
            let mut stream = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut kind = None;
                    let mut data = None;
                    let mut id = None;
                    for line in block.lines() {
                        if let Some(k) = line.strip_prefix("event:") {
                            kind = Some(k.trim().to_owned());
                        } else if let Some(d) = line.strip_prefix("data:") {
                            data = serde_json::from_str(d.trim()).ok();
                        } else if let Some(i) = line.strip_prefix("id:") {
                            id = i.trim().parse().ok();
                        }
                    }
                    if let (Some(kind), Some(data)) = (kind, data) {
                        sink.lock().unwrap().push((kind, data, id));
                    }
                }
            }
        });
        EventLog { events, task }
    }

    /// Every event of `kind` about `conversation` with its id, in the order heard.
    pub fn with_ids(&self, kind: &str, conversation: i64) -> Vec<(u64, Value)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, v, _)| k == kind && v["conversation_id"].as_i64() == Some(conversation))
            .map(|(_, v, id)| (id.unwrap_or(0), v.clone()))
            .collect()
    }

    /// Whether the server ended the stream.
    pub fn ended(&self) -> bool {
        self.task.is_finished()
    }

    pub fn kinds(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _, _)| k.clone())
            .collect()
    }

    /// Every event of `kind` about `conversation`, in the order heard.
    pub fn all(&self, kind: &str, conversation: i64) -> Vec<Value> {
        self.with_ids(kind, conversation)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    pub fn find(&self, kind: &str, conversation: i64) -> Option<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|(k, v, _)| k == kind && v["conversation_id"].as_i64() == Some(conversation))
            .map(|(_, v, _)| v.clone())
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}
