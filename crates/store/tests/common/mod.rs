//! Test data shared by the store's test files.

use postdesk_core::model::{MailAuth, Security};
use postdesk_store::{InboxSettings, ServerSettings};

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
    }
}
