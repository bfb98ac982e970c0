//! Building and running the whole server: store, secrets, bus, IMAP readers, outbox worker,
//! routing service, retention sweeper, snooze wake-ups and the HTTP app, stopped together.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use postdesk_core::model::Role;
use postdesk_store::{NewUser, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::bus::Bus;
use crate::imap::{ReaderContext, Readers};
use crate::outbox::Outbox;
use crate::secrets::Secrets;
use crate::settings::Settings;
use crate::web::{self, AppState};

/// The username of the admin created on the first start.
pub const FIRST_ADMIN: &str = "admin";

/// A built server, listening, not yet serving.
pub struct Application {
    listener: TcpListener,
    /// The SMTP ingress listener, when enabled.
    smtp_listener: Option<TcpListener>,
    state: AppState,
    /// Set when the first start created an admin with a generated password: shown once.
    pub first_admin_password: Option<String>,
}

/// Opens the store the settings name, creating the data folder.
///
/// # Errors
/// When the folder cannot be created or the database cannot be opened.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "Failed to create the data folder {}",
            settings.data_dir.display()
        )
    })?;
    make_private(settings)?;
    Store::connect(&settings.database_url()).await
}

/// The data folder is its owner's alone (0700) and so are the database's files (0600),
/// also for a folder an earlier version left readable. SQLite gives the files it creates
/// later (`-wal`, `-shm`) the database file's mode, so the database file is created 0600
/// before SQLite opens it.
fn make_private(settings: &Settings) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let dir = &settings.data_dir;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("Failed to make the data folder {} private", dir.display()))?;
        if settings.database_url.is_none() {
            let db = dir.join("postdesk.db");
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&db)
                .with_context(|| format!("Failed to create {}", db.display()))?;
        }
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("Failed to make {} private", path.display()))?;
            }
        }
    }
    Ok(())
}

impl Application {
    /// Opens the store (running migrations), loads the secret key, creates the first admin
    /// when there are no users, and binds the listener (port 0 picks a free port).
    ///
    /// # Errors
    /// Invalid settings, an unreachable database, an unreadable key, a port in use.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        crate::tls::install_crypto_provider();
        let store = open_store(&settings).await?;
        let secrets = Secrets::load(&settings.data_dir, settings.secret_key.as_deref())?;
        let first_admin_password =
            ensure_first_admin(&store, settings.admin_password.as_deref()).await?;
        let bus = Bus::for_store(&store);
        let metrics = crate::metrics::Metrics::new();
        let sender_auth = crate::sender_auth::Verifier::new(&settings.dns()?)?;
        let oauth = crate::mail_oauth::MailOAuth::new(store.clone(), secrets.clone())?;
        let readers = Readers::new(
            ReaderContext {
                store: store.clone(),
                bus: bus.clone(),
                secrets: secrets.clone(),
                poll_interval: settings.poll_interval(),
                limits: settings.limits(),
                sender_auth: sender_auth.clone(),
                oauth: oauth.clone(),
                metrics: metrics.clone(),
                lease: crate::cluster::Lease::unfenced(),
            },
            crate::cluster::this_node(),
        );
        let outbox = Outbox::new(
            store.clone(),
            bus.clone(),
            secrets.clone(),
            oauth.clone(),
            metrics.clone(),
        );
        let listener = TcpListener::bind(settings.listen).await.with_context(|| {
            format!(
                "Cannot listen on {}: is another program using it?",
                settings.listen
            )
        })?;
        let smtp_listener = match settings.smtp_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!("Cannot listen for SMTP on {addr}: is another program (a mail server?) using it?")
            })?),
            None => None,
        };
        let oidc = web::Oidc::from_settings(&settings)?;
        let state = AppState {
            store,
            bus,
            secrets,
            readers,
            outbox,
            settings,
            stopping: std::sync::Arc::new(watch::channel(false).0),
            ends: web::SessionEnds::default(),
            streams: web::StreamCounts::default(),
            clock: crate::totp::Clock::default(),
            oidc,
            sender_auth,
            oauth,
            routing: crate::routing::Routing::new(),
            presences: web::Presences::default(),
            metrics,
        };
        Ok(Self {
            listener,
            smtp_listener,
            state,
            first_admin_password,
        })
    }

    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.settings.listen)
    }

    /// The port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The address the SMTP ingress listens on, when enabled.
    #[must_use]
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The port the SMTP ingress listens on, when enabled.
    #[must_use]
    pub fn smtp_port(&self) -> Option<u16> {
        self.smtp_addr().map(|a| a.port())
    }

    /// Everything the server runs on (for tests and tools).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops the readers, the outbox worker and the
    /// retention sweeper.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            smtp_listener,
            state,
            ..
        } = self;
        // One stop signal for everything: the workers, the SMTP ingress and the open event
        // streams (which would otherwise keep the graceful HTTP shutdown waiting forever).
        let stop_tx = state.stopping.clone();
        let stop_rx = stop_tx.subscribe();
        // Events first (on PostgreSQL, this node hears the others from here on), then this
        // node joins the cluster.
        state.bus.start().await?;
        state.readers.join().await?;
        // Pick up emails left pending by a crash before any reader starts.
        if let Err(e) = crate::ingest::process_pending(
            &state.store,
            &state.bus,
            None,
            state.settings.limits(),
            &state.sender_auth,
            &state.metrics,
        )
        .await
        {
            tracing::warn!("Processing pending emails at start failed: {e}");
        }
        let smtp = smtp_listener.map(|l| {
            let (store, bus) = (state.store.clone(), state.bus.clone());
            let processing = crate::ingest::Processing {
                limits: state.settings.limits(),
                sender_auth: state.sender_auth.clone(),
                metrics: state.metrics.clone(),
            };
            crate::smtp_ingress::spawn(l, store, bus, processing, stop_rx.clone())
        });
        let retention = tokio::spawn(crate::retention::run_until_stopped(
            state.store.clone(),
            stop_rx.clone(),
        ));
        let routing = tokio::spawn(state.routing.clone().run_until_stopped(
            state.store.clone(),
            state.bus.clone(),
            stop_rx.clone(),
        ));
        let snooze = tokio::spawn(crate::snooze::run_until_stopped(
            state.store.clone(),
            state.bus.clone(),
            stop_rx.clone(),
        ));
        let outbox = tokio::spawn(state.outbox.clone().run_until_stopped(stop_rx));
        let readers = tokio::spawn(state.readers.clone().run_until_stopped(stop_tx.subscribe()));
        let bus = state.bus.clone();
        let state_settings = state.settings.clone();
        let app = web::router(state);
        let signal = {
            let stop_tx = stop_tx.clone();
            async move {
                shutdown.await;
                let _ = stop_tx.send(true);
            }
        };
        let timeouts = crate::serve::HttpTimeouts {
            header: Duration::from_secs(state_settings.http_header_timeout_seconds),
            body: Duration::from_secs(state_settings.http_body_timeout_seconds),
        };
        let served = crate::serve::serve(listener, app, timeouts, signal).await;
        let _ = stop_tx.send(true);
        // The readers stop and hand their inboxes over first.
        if tokio::time::timeout(Duration::from_secs(30), readers)
            .await
            .is_err()
        {
            tracing::warn!("The IMAP readers did not stop within 30 s");
        }
        if tokio::time::timeout(Duration::from_secs(30), outbox)
            .await
            .is_err()
        {
            tracing::warn!("The outbox worker did not stop within 30 s");
        }
        if tokio::time::timeout(Duration::from_secs(30), routing)
            .await
            .is_err()
        {
            tracing::warn!("The routing service did not stop within 30 s");
        }
        if tokio::time::timeout(Duration::from_secs(30), retention)
            .await
            .is_err()
        {
            tracing::warn!("The retention sweeper did not stop within 30 s");
        }
        if tokio::time::timeout(Duration::from_secs(30), snooze)
            .await
            .is_err()
        {
            tracing::warn!("The snooze task did not stop within 30 s");
        }
        if let Some(smtp) = smtp
            && tokio::time::timeout(Duration::from_secs(30), smtp)
                .await
                .is_err()
        {
            tracing::warn!("The SMTP ingress did not stop within 30 s");
        }
        // Last: what the others published while stopping is written for the other nodes.
        bus.stop().await;
        served.context("The web server failed")
    }
}

/// Creates the first admin when there are no users; returns the generated password, if one was
/// generated (a password given in the settings is not echoed).
async fn ensure_first_admin(
    store: &Store,
    configured: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    if let Some(password) = configured {
        crate::password::check_policy(password, &[FIRST_ADMIN]).map_err(|why| {
            anyhow::anyhow!("POSTDESK_ADMIN_PASSWORD is not accepted: {why}; or leave it unset to have one generated")
        })?;
    }
    let generated = configured.is_none().then(crate::password::new_password);
    let password = configured.map_or_else(|| generated.clone().unwrap_or_default(), str::to_owned);
    let created = store
        .create_user(&NewUser {
            username: FIRST_ADMIN.into(),
            name: "Administrator".into(),
            email: String::new(),
            password_hash: crate::password::hash_async(password).await?,
            roles: vec![Role::Admin, Role::Agent],
        })
        .await;
    match created {
        Ok(_) => Ok(generated),
        // Several nodes started at once on an empty database: another one created it.
        Err(postdesk_store::StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
