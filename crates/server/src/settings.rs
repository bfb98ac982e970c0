//! Configuration. Every setting has a flag and an environment variable; defaults run postdesk
//! on SQLite in `./postdesk-data` on `127.0.0.1:8080` with nothing else to install.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How postdesk runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Folder for the SQLite database and the encryption key.
    #[arg(long, env = "POSTDESK_DATA_DIR", default_value = "./postdesk-data")]
    pub data_dir: PathBuf,
    /// Address and port the web app listens on.
    #[arg(long, env = "POSTDESK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address and port to receive mail on over SMTP for the inboxes' addresses (e.g.
    /// 127.0.0.1:2525), from a mail server that forwards to postdesk. Off when not set.
    #[arg(long, env = "POSTDESK_SMTP_LISTEN")]
    pub smtp_listen: Option<SocketAddr>,
    /// Database URL: sqlite://PATH or postgres://… (default: SQLite in the data folder).
    #[arg(long, env = "POSTDESK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Password for the first admin, created when there are no users (default: generated and printed once).
    #[arg(long, env = "POSTDESK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Base64 of the 32-byte key that encrypts stored mail-server passwords (default: a key
    /// generated into the data folder). Every node of a PostgreSQL deployment needs the same.
    #[arg(long, env = "POSTDESK_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Seconds between checks for new mail on servers without IMAP IDLE.
    #[arg(long, env = "POSTDESK_POLL_SECONDS", default_value_t = 30)]
    pub poll_seconds: u64,
    /// The URL people open postdesk at (e.g. https://support.example.com/). When it is https,
    /// session cookies are marked Secure.
    #[arg(long, env = "POSTDESK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest email ingested in full, in MB. A larger one is kept raw and shown as "too large"
    /// in its conversation (with the original as a download) instead of being parsed.
    #[arg(long, env = "POSTDESK_MAX_EMAIL_MB", default_value_t = 50)]
    pub max_email_mb: u64,
    /// Seconds one email may take to be processed before it is quarantined.
    #[arg(long, env = "POSTDESK_PROCESS_TIMEOUT_SECONDS", default_value_t = 60)]
    pub process_timeout_seconds: u64,
    /// Hours a login token stays valid.
    #[arg(long, env = "POSTDESK_SESSION_HOURS", default_value_t = 24 * 7)]
    pub session_hours: u64,
    /// Turns on `PUT /api/v1/hooks/dovecot-push` (Dovecot's push-notification plugin) with this
    /// secret as the HTTP Basic password: a push wakes the inbox's reader at once. Off when
    /// unset.
    #[arg(long, env = "POSTDESK_PUSH_SECRET", hide_env_values = true)]
    pub push_secret: Option<String>,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection is kept open. Slow or half-sent requests are closed after it.
    #[arg(
        long,
        env = "POSTDESK_HTTP_HEADER_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub http_header_timeout_seconds: u64,
    /// Seconds a client has to send a request's body once its headers are in.
    #[arg(long, env = "POSTDESK_HTTP_BODY_TIMEOUT_SECONDS", default_value_t = 60)]
    pub http_body_timeout_seconds: u64,
    /// How many event streams (browser tabs) one user may have open at once.
    #[arg(long, env = "POSTDESK_MAX_EVENT_STREAMS", default_value_t = 8)]
    pub max_event_streams: usize,
    /// Take the client's address from the X-Forwarded-For header a reverse proxy in front of
    /// postdesk sets (its last entry). Only with such a proxy: otherwise clients could choose
    /// their own address and escape sign-in throttling.
    #[arg(long, env = "POSTDESK_TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,
    /// DNS servers for checking senders (DKIM, SPF, DMARC) of inbound email: addresses with an
    /// optional port, separated by commas (e.g. 127.0.0.1:5353), or "off" for no checks.
    /// Default: the system's resolver.
    #[arg(long, env = "POSTDESK_DNS")]
    pub dns: Option<String>,
}

impl Settings {
    /// Settings for tests and embedding: a data folder, port 0, everything else default.
    #[must_use]
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            smtp_listen: None,
            database_url: None,
            admin_password: None,
            secret_key: None,
            poll_seconds: 30,
            public_url: None,
            max_email_mb: 50,
            process_timeout_seconds: 60,
            session_hours: 24 * 7,
            push_secret: None,
            http_header_timeout_seconds: 10,
            http_body_timeout_seconds: 60,
            max_event_streams: 8,
            trust_proxy: false,
            dns: None,
        }
    }

    /// The DNS servers sender authentication asks.
    ///
    /// # Errors
    /// A message naming `POSTDESK_DNS` and the entry that is not an address.
    pub fn dns(&self) -> anyhow::Result<crate::sender_auth::Dns> {
        crate::sender_auth::Dns::parse(self.dns.as_deref().unwrap_or_default())
            .map_err(anyhow::Error::msg)
    }

    /// The database URL, defaulting to SQLite in the data folder.
    #[must_use]
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("postdesk.db").display()))
    }

    /// The poll interval for servers without IDLE.
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_seconds.max(1))
    }

    /// The limits on processing one inbound email.
    #[must_use]
    pub fn limits(&self) -> crate::ingest::Limits {
        crate::ingest::Limits {
            max_email_bytes: usize::try_from(self.max_email_mb.saturating_mul(1024 * 1024))
                .unwrap_or(usize::MAX),
            timeout: Duration::from_secs(self.process_timeout_seconds.max(1)),
        }
    }

    /// Checks settings that depend on each other.
    ///
    /// # Errors
    /// A message naming the setting to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            anyhow::bail!(
                "POSTDESK_DATABASE_URL must start with sqlite:// or postgres://, got {url:?}"
            );
        }
        if self.http_header_timeout_seconds == 0 || self.http_body_timeout_seconds == 0 {
            anyhow::bail!(
                "POSTDESK_HTTP_HEADER_TIMEOUT_SECONDS and POSTDESK_HTTP_BODY_TIMEOUT_SECONDS must be at least 1"
            );
        }
        self.dns()?;
        if self.max_event_streams == 0 {
            anyhow::bail!("POSTDESK_MAX_EVENT_STREAMS must be at least 1");
        }
        if self.session_hours == 0 {
            anyhow::bail!("POSTDESK_SESSION_HOURS must be at least 1");
        }
        if self
            .push_secret
            .as_deref()
            .is_some_and(|secret| secret.trim().len() < 16)
        {
            anyhow::bail!(
                "POSTDESK_PUSH_SECRET must be at least 16 characters (it guards the push endpoint); leave it unset to turn push off"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_push_secret_is_refused_with_the_setting_named() {
        let mut settings = Settings::for_data_dir("./data".into());
        assert!(settings.validate().is_ok(), "push is off by default");
        settings.push_secret = Some("short".into());
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("POSTDESK_PUSH_SECRET"), "{error}");
        settings.push_secret = Some("a-long-enough-secret".into());
        assert!(settings.validate().is_ok());
    }
}
