//! schemathesis (property-based testing of an API from its OpenAPI document; from PyPI,
//! installed by `scripts/test`) against a live postdesk with a real Dovecot and a real SMTP
//! server, driven by `GET /api/v1/openapi.json`: no answer may be a server error, and every
//! answer must have a documented status and match its documented schema.
//!
//! The server holds real data first (users, a department, an inbox with conversations from
//! delivered emails, messages, a file, an email sent, a draft, a canned response, an OAuth2
//! provider), and the document's path ids point at it most of the time (schemathesis's
//! dictionaries), so that the answers checked are real ones, not only 404s.

use std::path::Path;
use std::time::Duration;

use postdesk::{Application, Settings};
use postdesk_testkit::{Dovecot, SmtpCapture};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "tangerine-obelisk-harbor-42";
const SUPPORT: &str = "support@example.test";
const SUPPORT_PASSWORD: &str = "mailbox-secret";
const AGENT_PASSWORD: &str = "agent-ann-velvet-compass-17";
/// The mail server's push hook's secret.
const PUSH_SECRET: &str = "push-secret-long-enough-42";

/// Test cases per operation and phase: enough to reach every documented answer of most
/// operations, few enough for a few minutes on two cores.
const MAX_EXAMPLES: u32 = 20;

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The python that runs schemathesis (as `scripts/test` chooses it).
fn python() -> String {
    std::env::var("POSTDESK_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A signed-in client of the live server.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// Calls `method path` with `body`; the call must succeed.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, Some(body)).await
    }

    /// The id of the session this client signs in with.
    async fn current_session(&self) -> i64 {
        let sessions = self.get("/api/v1/me/sessions").await;
        sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == true)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    /// Waits until `probe` finds what it looks for (at most 30 s).
    async fn eventually<F, Fut>(&self, what: &str, mut probe: F) -> Value
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<Value>>,
    {
        for _ in 0..300 {
            if let Some(found) = probe().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let answer: Value = client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().expect("a token").to_owned()
}

fn email(message_id: &str, from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: Carol Customer <{from}>\r\nTo: Support <{SUPPORT}>\r\nSubject: {subject}\r\n\
         Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<p>{body}</p><blockquote>An older email</blockquote>\r\n"
    )
}

/// The ids the document's path parameters point at, as schemathesis dictionaries.
struct Seeded {
    /// The users an admin changes: never the admin, whose token schemathesis uses.
    user: i64,
    department: i64,
    inbox: i64,
    provider: i64,
    /// Carol's conversation, the admin's: most conversation calls work on it.
    conversation: i64,
    /// Dan's, the admin's too: the calls that close it, merge it or send it elsewhere.
    movable: i64,
    /// Frank's, in Queued Chats: Take it!.
    queued: i64,
    /// Carol, Dan and Frank.
    contacts: [i64; 3],
    /// A contact schemathesis may delete (with their conversation).
    doomed_contact: i64,
    inbound_message: i64,
    file_message: i64,
    email_message: i64,
    attachment: i64,
    canned: i64,
    /// A second session of the admin's, which `DELETE /me/sessions/{id}` may end.
    spare_session: i64,
    /// An email that could not be processed.
    quarantined: i64,
}

/// Real data for the answers to show, through the API itself.
async fn seed(api: &Api, dovecot: &Dovecot, smtp: &SmtpCapture) -> Seeded {
    let ann = api
        .post(
            "/api/v1/users",
            json!({ "username": "ann", "name": "Ann Agent", "email": "ann@example.test",
                    "password": AGENT_PASSWORD, "roles": ["agent"] }),
        )
        .await;
    let user = ann["id"].as_i64().unwrap();
    let department = api
        .post(
            "/api/v1/departments",
            json!({ "name": "Support", "agent_ids": [user] }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let inbox = api
        .post(
            "/api/v1/inboxes",
            json!({
                "name": "Support", "email": SUPPORT, "sender_name": "Example Support",
                "signature": "-- {{agent.name}}",
                "imap": { "host": dovecot.host(), "port": dovecot.imap_port(), "security": "none",
                          "username": SUPPORT, "password": SUPPORT_PASSWORD },
                "smtp": { "host": smtp.host(), "port": smtp.port(), "security": "none" },
            }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let provider = api
        .post(
            "/api/v1/oauth/providers",
            json!({ "name": "Workspace", "kind": "google", "client_id": "postdesk",
                    "client_secret": "s3cret" }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for (id, from, subject) in [
        ("first@c.test", "carol@c.test", "Invoice question"),
        ("second@c.test", "dan@c.test", "Where is my order?"),
        ("fourth@c.test", "frank@c.test", "A new question"),
        ("third@c.test", "erin@c.test", "Please forget me"),
    ] {
        dovecot
            .append(
                SUPPORT,
                SUPPORT_PASSWORD,
                "INBOX",
                email(id, from, subject, "Hello, a question").as_bytes(),
            )
            .await
            .expect("APPEND");
    }
    // Not an email at all: quarantined.
    dovecot
        .append(
            SUPPORT,
            SUPPORT_PASSWORD,
            "INBOX",
            b"\x00\x01\x02 this is not an email\r\n\r\n",
        )
        .await
        .expect("APPEND");
    let queued = api
        .eventually("four conversations", || async {
            let list = api.get("/api/v1/conversations?status=queued").await;
            let list = list["conversations"].as_array().unwrap().clone();
            (list.len() == 4).then_some(Value::Array(list))
        })
        .await;
    let by_contact = |email: &str| {
        queued
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["contact"]["email"] == email)
            .unwrap()
            .clone()
    };
    let (carol, dan, erin, frank) = (
        by_contact("carol@c.test"),
        by_contact("dan@c.test"),
        by_contact("erin@c.test"),
        by_contact("frank@c.test"),
    );
    let conversation = carol["id"].as_i64().unwrap();
    let movable = dan["id"].as_i64().unwrap();
    for id in [conversation, movable] {
        api.post(&format!("/api/v1/conversations/{id}/take"), json!({}))
            .await;
    }
    let path = |rest: &str| format!("/api/v1/conversations/{conversation}/{rest}");
    api.post(
        &path("messages"),
        json!({ "text": "Checking with billing", "via": "internal" }),
    )
    .await;
    let reply = api
        .post(
            &path("messages"),
            json!({ "text": "**Thanks**, we are on it", "via": "email", "format": "markdown" }),
        )
        .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"%PDF-1.7 a report".to_vec())
            .file_name("report.pdf")
            .mime_str("application/pdf")
            .unwrap(),
    );
    let upload: Value = api
        .client
        .post(format!("{}{}", api.base, path("uploads")))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    api.call(
        Method::PUT,
        &path("tags"),
        Some(json!({ "tags": ["Billing", "VIP"] })),
    )
    .await;
    api.call(
        Method::PUT,
        &path("draft"),
        Some(json!({ "text": "Dear Carol", "to": ["carol@c.test"] })),
    )
    .await;
    api.post(&path("presence"), json!({ "state": "viewing" }))
        .await;
    let messages = api.get(&path("messages")).await;
    let inbound = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "email_in")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let email_message = reply["id"].as_i64().unwrap();
    api.eventually("the reply sent", || async {
        let messages = api.get(&path("messages")).await;
        messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == email_message && m["email"]["delivery"]["status"] == "sent")
            .cloned()
    })
    .await;
    let canned = api
        .post(
            "/api/v1/canned-responses",
            json!({ "shortcut": "thanks", "text": "Thank you, {{contact.name}}!", "scope": "global" }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let spare = Api {
        client: api.client.clone(),
        base: api.base.clone(),
        token: login(&api.client, &api.base, "admin", ADMIN_PASSWORD).await,
    };
    let spare_session = spare.current_session().await;
    let quarantined = api
        .eventually("the broken email quarantined", || async {
            let list = api.get("/api/v1/quarantine").await;
            list["quarantined"].get(0).map(|q| q["id"].clone())
        })
        .await
        .as_i64()
        .unwrap();
    Seeded {
        user,
        department,
        inbox,
        provider,
        conversation,
        movable,
        queued: frank["id"].as_i64().unwrap(),
        contacts: [&carol, &dan, &frank].map(|c| c["contact"]["id"].as_i64().unwrap()),
        doomed_contact: erin["contact"]["id"].as_i64().unwrap(),
        inbound_message: inbound,
        file_message: upload["id"].as_i64().unwrap(),
        email_message,
        attachment: upload["attachments"][0]["id"].as_i64().unwrap(),
        canned,
        spare_session,
        quarantined,
    }
}

/// The operations schemathesis leaves alone, each with why.
const EXCLUDED: &[(&str, &str)] = &[(
    "POST /api/v1/logout",
    "it ends the session of the token schemathesis calls with (tests/api/auth.rs tests it)",
)];

/// schemathesis's configuration: the seeded ids, and the exclusions. Operations are chosen
/// by name (`METHOD /path`): a path and a method given apart select every operation of
/// either.
fn config(seeded: &Seeded) -> String {
    let mut toml = String::new();
    // A path id is a seeded one four times out of five; the fifth is schemathesis's own (an
    // unknown id, a negative number, …).
    let dictionaries = [
        ("conversation", seeded.conversation),
        ("movable", seeded.movable),
        ("queued", seeded.queued),
        ("department", seeded.department),
        ("inbox", seeded.inbox),
        ("provider", seeded.provider),
        ("contact", seeded.contacts[0]),
        ("doomed_contact", seeded.doomed_contact),
        ("inbound_message", seeded.inbound_message),
        ("file_message", seeded.file_message),
        ("email_message", seeded.email_message),
        ("attachment", seeded.attachment),
        ("canned", seeded.canned),
        ("user", seeded.user),
        ("spare_session", seeded.spare_session),
        ("quarantined", seeded.quarantined),
    ];
    for (name, id) in dictionaries {
        toml.push_str(&format!("[dictionaries.{name}]\nvalues = [{id}]\n\n"));
    }
    let often = |parameter: &str, dictionary: &str| {
        format!("\"path.{parameter}\" = {{ dictionary = \"{dictionary}\", probability = 0.8 }}")
    };
    let ids = [
        (
            "include-name-regex = '^[A-Z]+ /api/v1/conversations/\\{id\\}(?!/(take|close|reopen|merge|transfer)$)'",
            often("id", "conversation"),
        ),
        (
            "include-name-regex = '^POST /api/v1/conversations/\\{id\\}/(close|reopen|transfer)$'",
            often("id", "movable"),
        ),
        (
            "include-name = 'POST /api/v1/conversations/{id}/merge'",
            format!(
                "{}, \"body.into_id\" = {{ dictionary = \"conversation\", probability = 0.8 }}",
                often("id", "movable")
            ),
        ),
        (
            "include-name = 'POST /api/v1/conversations/{id}/take'",
            often("id", "queued"),
        ),
        (
            "include-name-regex = '^[A-Z]+ /api/v1/departments/\\{id\\}'",
            format!(
                "{}, {}",
                often("id", "department"),
                often("user_id", "user")
            ),
        ),
        (
            "include-name-regex = '^[A-Z]+ /api/v1/inboxes/\\{id\\}'",
            often("id", "inbox"),
        ),
        (
            "include-name-regex = '^[A-Z]+ /api/v1/oauth/providers/\\{id\\}$'",
            often("id", "provider"),
        ),
        (
            "include-name-regex = '^(GET|PATCH) /api/v1/contacts/\\{id\\}'",
            often("id", "contact"),
        ),
        (
            "include-name = 'DELETE /api/v1/contacts/{id}'",
            often("id", "doomed_contact"),
        ),
        (
            "include-name = 'GET /api/v1/messages/{id}/body.html'",
            often("id", "inbound_message"),
        ),
        (
            "include-name = 'POST /api/v1/messages/{id}/send-email'",
            often("id", "file_message"),
        ),
        (
            "include-name = 'POST /api/v1/messages/{id}/retry'",
            often("id", "email_message"),
        ),
        (
            "include-name = 'GET /api/v1/attachments/{id}'",
            often("id", "attachment"),
        ),
        (
            "include-name-regex = '^[A-Z]+ /api/v1/canned-responses/\\{id\\}$'",
            often("id", "canned"),
        ),
        (
            "include-name-regex = '^[A-Z]+ /api/v1/users/\\{id\\}'",
            often("id", "user"),
        ),
        (
            "include-name = 'DELETE /api/v1/me/sessions/{id}'",
            often("id", "spare_session"),
        ),
        (
            "include-name-regex = '^[A-Z]+ /api/v1/quarantine/\\{id\\}'",
            often("id", "quarantined"),
        ),
    ];
    for (selector, parameters) in ids {
        toml.push_str(&format!(
            "[[operations]]\n{selector}\nparameters = {{ {parameters} }}\n\n"
        ));
    }
    // The mail server's push hook with its own secret (HTTP Basic), not the admin's token.
    toml.push_str(&format!(
        "[[operations]]\ninclude-name-regex = '^(PUT|POST) /api/v1/hooks/dovecot-push$'\n\
         headers = {{ Authorization = 'Basic {}' }}\n\n",
        base64_of(&format!("dovecot:{PUSH_SECRET}"))
    ));
    // The event stream stays open: schemathesis reads it for 1 s (or 10 events) and checks
    // each event it got (a `Last-Event-ID` from before replays the seeded ones).
    toml.push_str(
        "[[operations]]\ninclude-name = 'GET /api/v1/events'\nrequest-timeout = 1\nmax-stream-events = 10\n\n",
    );
    for (name, _why) in EXCLUDED {
        toml.push_str(&format!(
            "[[operations]]\ninclude-name = '{name}'\nenabled = false\n\n"
        ));
    }
    toml
}

/// A schemathesis hook that keeps the run signed in and its data in place: a call that would
/// end the admin's own session (a new password or "sign out everywhere" for the admin, the
/// end of the session schemathesis uses) goes to Ann, or to the admin's spare session,
/// instead; deleting a contact deletes Erin, never Carol, Dan or Frank, whose conversations
/// the other calls work on; closing, merging or transferring Carol's conversation (which
/// would leave the calls that write in it only 409s) does it to Dan's. Every other id is
/// sent as generated.
fn hooks(admin: i64, own_session: i64, seeded: &Seeded) -> String {
    format!(
        r#"import schemathesis

GUARDED = {{
    ("PATCH", "/api/v1/users/{{id}}"): ([{admin}], {user}),
    ("DELETE", "/api/v1/users/{{id}}/sessions"): ([{admin}], {user}),
    ("DELETE", "/api/v1/me/sessions/{{id}}"): ([{own_session}], {spare}),
    ("DELETE", "/api/v1/contacts/{{id}}"): ({contacts:?}, {doomed}),
    ("POST", "/api/v1/conversations/{{id}}/close"): ([{conversation}], {movable}),
    ("POST", "/api/v1/conversations/{{id}}/merge"): ([{conversation}], {movable}),
    ("POST", "/api/v1/conversations/{{id}}/transfer"): ([{conversation}], {movable}),
}}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    guarded = GUARDED.get((case.operation.method.upper(), case.operation.path))
    if guarded and str((case.path_parameters or {{}}).get("id")) in map(str, guarded[0]):
        case.path_parameters["id"] = guarded[1]
"#,
        user = seeded.user,
        spare = seeded.spare_session,
        contacts = seeded.contacts,
        doomed = seeded.doomed_contact,
        conversation = seeded.conversation,
        movable = seeded.movable,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_off_its_schema() {
    postdesk_testkit::init();
    let version = std::process::Command::new(python())
        .args(["-m", "schemathesis.cli", "--version"])
        .output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "schemathesis is not installed for {}: run scripts/test (it installs it with pip)",
        python()
    );

    // Arrange: real servers, postdesk, and data for the answers to show.
    let dovecot = Dovecot::start().await.unwrap();
    dovecot.add_user(SUPPORT, SUPPORT_PASSWORD).unwrap();
    let smtp = SmtpCapture::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_data_dir(data.path().into());
    settings.admin_password = Some(ADMIN_PASSWORD.into());
    settings.poll_seconds = 2;
    settings.dns = Some("off".into());
    // The mail server's push hook is on, so that its secret is checked, not refused as off.
    settings.push_secret = Some(PUSH_SECRET.into());
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let token = login(&client, &base, "admin", ADMIN_PASSWORD).await;
    let api = Api {
        client,
        base: base.clone(),
        token: token.clone(),
    };
    let me = api.get("/api/v1/me").await;
    let own_session = api.current_session().await;
    let seeded = seed(&api, &dovecot, &smtp).await;
    let work = tempfile::tempdir().unwrap();
    let config_file = work.path().join("schemathesis.toml");
    std::fs::write(&config_file, config(&seeded)).unwrap();
    let hooks_file = work.path().join("hooks.py");
    let admin = me["id"].as_i64().unwrap();
    std::fs::write(&hooks_file, hooks(admin, own_session, &seeded)).unwrap();

    // Act: schemathesis, every phase, against the document the server serves. A longer or
    // another run: POSTDESK_SCHEMATHESIS_EXAMPLES, POSTDESK_SCHEMATHESIS_SEED.
    let examples = std::env::var("POSTDESK_SCHEMATHESIS_EXAMPLES")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(MAX_EXAMPLES);
    let seed = std::env::var("POSTDESK_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20260501".into());
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(900),
        tokio::process::Command::new(python())
            .current_dir(work.path())
            .args(["-m", "schemathesis.cli", "--config-file"])
            .arg(&config_file)
            .args(["run", &format!("{base}/api/v1/openapi.json")])
            .args(["--url", &base])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", &examples.to_string()])
            .args(["--seed", &seed, "--workers", "1", "--no-color"])
            .args(["--request-timeout", "20", "--suppress-health-check", "all"])
            .args(["--report", "junit", "--report-dir"])
            .arg(report_dir())
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_HOOKS", &hooks_file)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("schemathesis finishes within 15 minutes")
    .expect("schemathesis runs");
    let took = started.elapsed();

    // Assert: exit code 0, and the server is still up.
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    eprintln!("schemathesis took {took:?}:\n{out}");
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{out}\n{err}",
        output.status
    );
    assert!(
        out.contains("passed"),
        "schemathesis ran no test case:\n{out}\n{err}"
    );
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// Where schemathesis's JUnit report goes (kept for CI).
fn report_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/schemathesis")
}
