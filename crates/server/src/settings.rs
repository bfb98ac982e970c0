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
    /// Single sign-on: the OpenID Connect provider's issuer URL, exactly as its discovery
    /// document states it (e.g. https://login.example.com/realms/support). Single sign-on is
    /// on when this, the client id and the client secret are set; off when none is.
    #[arg(long, env = "POSTDESK_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Single sign-on: the client id postdesk is registered with at the provider.
    #[arg(long, env = "POSTDESK_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Single sign-on: the client secret that goes with the client id.
    #[arg(long, env = "POSTDESK_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Single sign-on: the ID token claim that names a user's roles: `admin`, `manager` or
    /// `agent`, as a list or a space-separated string. Anything else, or no value, is
    /// `agent`. When the claim is present, it sets the user's roles at every sign-in.
    #[arg(long, env = "POSTDESK_OIDC_ROLE_CLAIM", default_value = DEFAULT_ROLE_CLAIM)]
    pub oidc_role_claim: String,
    /// Single sign-on: create a user at the first sign-in of a verified email address that
    /// no user has (`false`: only users an admin created, matched by email, can sign in).
    #[arg(
        long,
        env = "POSTDESK_OIDC_CREATE_USERS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub oidc_create_users: bool,
    /// Serve `GET /metrics` (Prometheus text format) to anyone who can reach the port, without
    /// signing in: for a scraper on a private network. Off: only an admin's token reads it,
    /// and without one it answers 404.
    #[arg(
        long,
        env = "POSTDESK_METRICS",
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub metrics: bool,
    /// DNS servers for checking senders (DKIM, SPF, DMARC) of inbound email: addresses with an
    /// optional port, separated by commas (e.g. 127.0.0.1:5353), or "off" for no checks.
    /// Default: the system's resolver.
    #[arg(long, env = "POSTDESK_DNS")]
    pub dns: Option<String>,
}

/// The claim [`Settings::oidc_role_claim`] names by default.
pub const DEFAULT_ROLE_CLAIM: &str = "postdesk_role";

/// Where the provider sends people back to, under the public URL.
pub const OIDC_CALLBACK_PATH: &str = "/api/v1/login/oidc/callback";

/// Where OAuth2 providers send the admin back after connecting a mailbox.
pub const MAIL_OAUTH_CALLBACK_PATH: &str = "/api/v1/oauth/callback";

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
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_role_claim: DEFAULT_ROLE_CLAIM.to_owned(),
            oidc_create_users: true,
            metrics: false,
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

    /// Whether single sign-on is configured (issuer, client id and secret are all set;
    /// [`Settings::validate`] refuses some but not all).
    #[must_use]
    pub fn oidc_enabled(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        set(&self.oidc_issuer) && set(&self.oidc_client_id) && set(&self.oidc_client_secret)
    }

    /// The single sign-on redirect URI: `{POSTDESK_PUBLIC_URL}/api/v1/login/oidc/callback`.
    /// Without a public URL it is on `request_origin` (`http://host:port`, the origin the
    /// browser used, from the request's Host header), or on the listen address when that
    /// is unknown too. Register exactly this URI at the provider.
    #[must_use]
    pub fn oidc_redirect_uri(&self, request_origin: Option<&str>) -> String {
        self.redirect_uri(request_origin, OIDC_CALLBACK_PATH)
    }

    /// A redirect URI at `path`, on the public URL, else on `request_origin`, else on the
    /// listen address (see [`Settings::oidc_redirect_uri`]); for mailbox OAuth2 it is
    /// `{POSTDESK_PUBLIC_URL}/api/v1/oauth/callback`.
    #[must_use]
    pub fn redirect_uri(&self, request_origin: Option<&str>, path: &str) -> String {
        let base = match (self.public_url.as_deref(), request_origin) {
            (Some(public), _) if !public.trim().is_empty() => public.trim().to_owned(),
            (_, Some(origin)) => origin.to_owned(),
            _ => format!("http://{}", self.listen),
        };
        format!("{}{path}", base.trim_end_matches('/'))
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
        self.validate_oidc()
    }

    /// Single sign-on's settings: all of issuer, client id and secret, or none.
    fn validate_oidc(&self) -> anyhow::Result<()> {
        let given = [
            ("POSTDESK_OIDC_ISSUER", &self.oidc_issuer),
            ("POSTDESK_OIDC_CLIENT_ID", &self.oidc_client_id),
            ("POSTDESK_OIDC_CLIENT_SECRET", &self.oidc_client_secret),
        ];
        let missing: Vec<&str> = given
            .iter()
            .filter(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
            .map(|(name, _)| *name)
            .collect();
        if missing.len() == given.len() {
            return Ok(());
        }
        if !missing.is_empty() {
            anyhow::bail!(
                "Single sign-on needs POSTDESK_OIDC_ISSUER, POSTDESK_OIDC_CLIENT_ID and POSTDESK_OIDC_CLIENT_SECRET together: set {} too, or unset them all to turn single sign-on off",
                missing.join(" and ")
            );
        }
        let issuer = self.oidc_issuer.as_deref().unwrap_or_default().trim();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            anyhow::bail!(
                "POSTDESK_OIDC_ISSUER must be the provider's issuer URL (https://…), got {issuer:?}"
            );
        }
        if self.oidc_role_claim.trim().is_empty() {
            anyhow::bail!(
                "POSTDESK_OIDC_ROLE_CLAIM must name a claim (default {DEFAULT_ROLE_CLAIM:?})"
            );
        }
        if let Some(url) = self.public_url.as_deref().filter(|u| !u.trim().is_empty())
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            anyhow::bail!(
                "POSTDESK_PUBLIC_URL must start with https:// or http:// (single sign-on sends people back to it), got {url:?}"
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

    #[test]
    fn single_sign_on_needs_issuer_client_id_and_secret_together() {
        let mut settings = Settings::for_data_dir("./data".into());
        assert!(!settings.oidc_enabled(), "off by default");
        settings.oidc_issuer = Some("https://login.example.com".into());
        let error = settings.validate().unwrap_err().to_string();
        assert!(
            error.contains("POSTDESK_OIDC_CLIENT_ID")
                && error.contains("POSTDESK_OIDC_CLIENT_SECRET"),
            "{error}"
        );
        settings.oidc_client_id = Some("postdesk".into());
        settings.oidc_client_secret = Some("s3cret".into());
        assert!(settings.validate().is_ok());
        assert!(settings.oidc_enabled());
        settings.oidc_issuer = Some("login.example.com".into());
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("POSTDESK_OIDC_ISSUER"), "{error}");
    }

    #[test]
    fn metrics_are_off_unless_asked_for() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            settings: Settings,
        }
        let parse = |args: &[&str]| {
            <Serve as clap::Parser>::try_parse_from(["postdesk"].iter().chain(args))
                .unwrap()
                .settings
                .metrics
        };
        assert!(!parse(&[]));
        assert!(parse(&["--metrics"]));
        assert!(!Settings::for_data_dir("./data".into()).metrics);
    }

    #[test]
    fn the_redirect_uri_prefers_the_public_url() {
        let mut settings = Settings::for_data_dir("./data".into());
        assert_eq!(
            settings.oidc_redirect_uri(Some("http://localhost:8080")),
            "http://localhost:8080/api/v1/login/oidc/callback"
        );
        assert_eq!(
            settings.oidc_redirect_uri(None),
            "http://127.0.0.1:0/api/v1/login/oidc/callback"
        );
        settings.public_url = Some("https://support.example.com/".into());
        assert_eq!(
            settings.oidc_redirect_uri(Some("http://evil.test")),
            "https://support.example.com/api/v1/login/oidc/callback"
        );
    }
}
