//! Test data shared by the store's test files, and the `contract!` macro that runs a test on
//! SQLite and on PostgreSQL (a fresh database per test on 127.0.0.1:5432).
#![allow(dead_code, unused_macros)]

use postdesk_core::model::{MailAuth, Role, Security};
use postdesk_store::{InboxSettings, NewUser, ServerSettings, Store, User};

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
