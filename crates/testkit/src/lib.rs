//! Real servers on loopback for postdesk's integration tests. No mocks.
//!
//! Every helper starts (or connects to) a real server that the code under test talks to
//! over a real socket, exactly as it would in production:
//!
//! - [`Dovecot`]: a throw-away Dovecot IMAP/IMAPS/LMTP server in a temp dir, with
//!   `passwd-file` users and maildir storage. Starts in well under a second. With
//!   [`DovecotOptions`] it also checks OAuth2 bearer tokens (`AUTHENTICATE XOAUTH2`,
//!   `OAUTHBEARER`) by introspection at an [`OidcProvider`], and runs the submission
//!   service (SMTP `AUTH XOAUTH2`) relaying to an [`SmtpCapture`].
//! - [`SmtpCapture`]: an aiosmtpd (Python) SMTP server that stores exactly the bytes it
//!   receives, and can be told to reject with a given reply line.
//! - [`PgDatabase`]: a fresh, uniquely named PostgreSQL database per test.
//! - [`DnsServer`]: a dnsmasq DNS server serving the TXT records a test publishes (DKIM
//!   keys, SPF, DMARC).
//! - [`OidcProvider`]: a real OpenID Connect provider (panva's `oidc-provider` on Node.js)
//!   with configured clients and users, and a scripted browser sign-in; also the mailbox
//!   OAuth2 authorization server (scope `mail`, rotated refresh tokens, introspection,
//!   revocation) with a non-interactive code flow ([`OidcProvider::authorize`]).
//!
//! Call [`init`] at the top of each test: it installs the rustls crypto provider and, when
//! `TEST_LOG=1`, a tracing subscriber that writes to the test output.
//!
//! # Layout
//! - `dovecot.rs`: [`Dovecot`], config generation, process lifecycle, IMAP APPEND and LMTP helpers.
//! - `smtp.rs`: [`SmtpCapture`], [`CapturedMail`]; the embedded `smtp_capture.py` server.
//! - `postgres.rs`: [`PgDatabase`].
//! - `dns.rs`: [`DnsServer`] (dnsmasq).
//! - `oidc.rs`: [`OidcProvider`], [`oidc::OidcConfig`]; runs `tests/oidc/provider.mjs`.
//! - `process.rs` (private): signals, log tails, readiness probes shared by the above.
//!
//! # What the machine needs
//! `dovecot` (Debian: `dovecot-imapd dovecot-lmtpd dovecot-submissiond`), `dnsmasq` (Debian:
//! `dnsmasq-base`), `openssl`, `python3` with `aiosmtpd`,
//! and a PostgreSQL server on `127.0.0.1:5432` with trust auth for user `postgres`
//! (or `POSTDESK_TEST_PG_URL`), and `node` (or `POSTDESK_NODE`) with `npm ci` done in
//! `tests/oidc`. `scripts/test` installs and starts all of them.

pub mod dns;
pub mod dovecot;
pub mod oidc;
pub mod postgres;
mod process;
pub mod smtp;

pub use dns::DnsServer;
pub use dovecot::{Dovecot, DovecotOptions, OAuth2Passdb};
pub use oidc::OidcProvider;
pub use postgres::PgDatabase;
pub use smtp::{CapturedMail, SmtpCapture};

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Once;

/// The loopback address every testkit server listens on.
pub const HOST: &str = "127.0.0.1";

/// One-time test setup; safe to call from every test (idempotent).
///
/// - Installs rustls' `ring` crypto provider as the process default (ignored if one is
///   already installed).
/// - When the environment variable `TEST_LOG=1`, installs a `tracing` subscriber that
///   writes through the test harness' capture (`with_test_writer`), filtered by `RUST_LOG`
///   (default `debug`).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the
/// kernel picked, and releases it. Another process could grab it in between; the servers
/// here retry with fresh ports when that happens.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| anyhow::anyhow!("cannot bind 127.0.0.1:0 to find a free port: {e}"))?;
    Ok(listener.local_addr()?.port())
}
