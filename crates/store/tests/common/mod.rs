//! Test data shared by the store's test files, and the `contract!` macro that runs a test on
//! SQLite and on PostgreSQL (a fresh database per test on 127.0.0.1:5432).
#![allow(dead_code, unused_macros)]

use std::sync::atomic::{AtomicU32, Ordering};

use postdesk_core::ids::{ConversationId, InboxId, MessageId};
use postdesk_core::model::{MailAuth, Role, Security};
use postdesk_store::{
    Addr, InboxSettings, IncomingEmail, IngestOutcome, NewUser, ServerSettings, Store,
    StoreFetched, User,
};

fn server(host: &str, port: u16) -> ServerSettings {
    ServerSettings {
        host: host.into(),
        port,
        security: Security::Starttls,
        username: "support@example.test".into(),
        password_encrypted: vec![1, 2, 3, 0, 255],
        tls_verify: true,
        auth: MailAuth::Password,
    }
}

/// An inbox's settings for `email`, with example IMAP and SMTP servers.
pub fn inbox_settings(email: &str) -> InboxSettings {
    InboxSettings {
        name: "Support".into(),
        email: email.into(),
        sender_name: "Example Support".into(),
        department_id: None,
        active: true,
        imap: server("imap.example.test", 143),
        imap_mailbox: "INBOX".into(),
        imap_move_to: None,
        imap_sent_mailbox: None,
        smtp: server("smtp.example.test", 587),
        reopen_days: 30,
        retention_days: None,
        oauth_provider_id: None,
        signature: String::new(),
        quote_history: true,
    }
}

/// A new user `username` with `role` (and a password hash nobody signs in with).
pub async fn user(store: &Store, username: &str, role: Role) -> User {
    store
        .create_user(&NewUser {
            username: username.into(),
            name: format!("{username} name"),
            email: format!("{username}@agents.test"),
            password_hash: "$argon2id$fake".into(),
            roles: vec![role],
        })
        .await
        .unwrap()
}

/// An email from `from` (Carol Contact) to the support address, with a body naming its
/// Message-ID.
pub fn incoming(message_id: &str, from: &str, subject: &str) -> IncomingEmail {
    IncomingEmail {
        message_id: message_id.into(),
        in_reply_to: None,
        references: vec![],
        contact: Addr {
            name: Some("Carol Contact".into()),
            email: from.into(),
        },
        from: Some(Addr {
            name: Some("Carol Contact".into()),
            email: from.into(),
        }),
        to: vec![Addr {
            name: None,
            email: "support@example.test".into(),
        }],
        cc: vec![],
        subject: subject.into(),
        date: Some(1_700_000_000_000),
        text: format!("body of {message_id}"),
        html: None,
        attachments: vec![],
        auto_reply: false,
        attach_original: false,
        auth: None,
    }
}

/// A new conversation in `inbox`: the [`incoming`] email with Message-ID `message_id` from
/// `from`, fetched as UID `uid` and ingested; returns the conversation and its message.
pub async fn new_conversation(
    store: &Store,
    inbox: InboxId,
    uid: u32,
    (message_id, from): (&str, &str),
) -> (ConversationId, MessageId) {
    let fetched = StoreFetched {
        uid,
        bytes: format!("raw {message_id}").into_bytes(),
    };
    store
        .store_fetched(inbox, "INBOX", 7, vec![fetched], uid + 1)
        .await
        .unwrap();
    let pending = store.pending_raw(Some(inbox), 100).await.unwrap();
    let raw = pending.last().expect("a pending raw email");
    let email = incoming(message_id, from, &format!("About {message_id}"));
    match store.ingest_email(raw.id, inbox, &email).await.unwrap() {
        IngestOutcome::Added {
            conversation_id,
            message_id,
            new_conversation: true,
            ..
        } => (conversation_id, message_id),
        other => panic!("expected a new conversation: {other:?}"),
    }
}

/// A UID and Message-ID never used before in this process.
static NEXT: AtomicU32 = AtomicU32::new(1);

/// A new email from `from` into `inbox`: a new conversation in Queued Chats.
pub async fn arrive(store: &Store, inbox: InboxId, from: &str) -> ConversationId {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let email = IncomingEmail {
        message_id: format!("m{n}@lists.test"),
        in_reply_to: None,
        references: vec![],
        contact: Addr {
            name: Some(format!("Contact {from}")),
            email: from.into(),
        },
        from: Some(Addr {
            name: None,
            email: from.into(),
        }),
        to: vec![],
        cc: vec![],
        subject: format!("Question {n}"),
        date: None,
        text: format!("body {n}"),
        html: None,
        attachments: vec![],
        auto_reply: false,
        attach_original: false,
        auth: None,
    };
    store
        .store_fetched(
            inbox,
            "INBOX",
            7,
            vec![StoreFetched {
                uid: n,
                bytes: format!("raw {n}").into_bytes(),
            }],
            n + 1,
        )
        .await
        .unwrap();
    let pending = store.pending_raw(Some(inbox), 100).await.unwrap();
    let raw = pending.last().expect("a pending raw email");
    match store.ingest_email(raw.id, inbox, &email).await.unwrap() {
        IngestOutcome::Added {
            conversation_id, ..
        } => conversation_id,
        other => panic!("expected a new conversation: {other:?}"),
    }
}

/// The number `sql` counts (as `n`), read straight from the database.
pub async fn count(store: &Store, sql: &'static str) -> i64 {
    use sqlx::Row as _;
    sqlx::query(sql)
        .fetch_one(store.raw_pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

/// A store plus whatever keeps its database alive.
pub struct Fixture {
    pub store: Store,
    pub _sqlite_dir: Option<tempfile::TempDir>,
    pub _pg: Option<postdesk_testkit::PgDatabase>,
}

pub async fn sqlite() -> Fixture {
    postdesk_testkit::init();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/postdesk.db", dir.path().display());
    Fixture {
        store: Store::connect(&url).await.unwrap(),
        _sqlite_dir: Some(dir),
        _pg: None,
    }
}

pub async fn postgres() -> Fixture {
    postdesk_testkit::init();
    let db = postdesk_testkit::PgDatabase::create()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    Fixture {
        store: Store::connect(db.url()).await.unwrap(),
        _sqlite_dir: None,
        _pg: Some(db),
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::common::sqlite().await.store).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = crate::common::postgres().await;
                super::$name(fixture.store.clone()).await;
                drop(fixture);
            })*
        }
    };
}

/// For each `async fn flow(url: &str)` that opens several stores on one database (several
/// nodes), a test `flow` on SQLite (in `two_stores_on_sqlite`) and one on PostgreSQL (in
/// `two_stores_on_postgres`).
macro_rules! on_one_database {
    ($($name:ident),* $(,)?) => {
        mod two_stores_on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fixture = crate::common::sqlite().await;
                let dir = fixture._sqlite_dir.as_ref().unwrap();
                let url = format!("sqlite://{}/postdesk.db", dir.path().display());
                super::$name(&url).await;
            })*
        }
        mod two_stores_on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fixture = crate::common::postgres().await;
                let url = fixture._pg.as_ref().unwrap().url().to_owned();
                super::$name(&url).await;
            })*
        }
    };
}
