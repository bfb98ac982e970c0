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

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server that must be told its port
/// before it starts. Chosen at random below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), where no `bind(…:0)` of a parallel test can
/// take it between this check and the server's bind (the kernel hands out ports of that range
/// only); another test's random pick is the only, unlikely, clash. Falls back to a port the
/// kernel picks when none below the range is free.
pub fn free_port() -> anyhow::Result<u16> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const LOWEST: u16 = 10_000;
    if ephemeral_low > LOWEST + 1000 {
        for _ in 0..50 {
            let random = u16::from_le_bytes(
                uuid::Uuid::new_v4().as_bytes()[..2]
                    .try_into()
                    .expect("two bytes"),
            );
            let port = LOWEST + random % (ephemeral_low - LOWEST);
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| anyhow::anyhow!("cannot bind 127.0.0.1:0 to find a free port: {e}"))?;
    Ok(listener.local_addr()?.port())
}
