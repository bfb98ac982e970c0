//! postdesk: a shared email address turned into a live queue of conversations that a team of
//! agents works in. This crate wires the domain, the store, the IMAP reader, the SMTP outbox and
//! the web API into one server, and is the `postdesk` binary.
//!
//! # Layout
//! - [`settings`]: configuration from flags and environment, and the data folder.
//! - [`redact`]: secrets cut out of every log line, the mail libraries' traces included.
//! - [`secrets`]: the key that encrypts stored mail-server passwords.
//! - [`password`]: argon2id password hashing and login tokens.
//! - [`bus`]: the event bus behind Server-Sent Events (in-process on SQLite, shared by every
//!   node through the database on PostgreSQL).
//! - [`cluster`]: this node among others: its identity, inbox leases, fenced connections.
//! - [`ingest`]: raw email -> parsed -> conversation, with quarantine.
//! - [`sender_auth`]: the DKIM, SPF and DMARC verdicts of inbound emails (mail-auth, DNS).
//! - [`imap`]: one supervised reader per inbox (sync, IDLE, reconnect with backoff).
//! - [`mail_oauth`]: mailbox sign-in with OAuth2: providers, tokens, refresh (one at a time).
//! - [`metrics`]: the counters, gauges and histograms `GET /metrics` shows (Prometheus).
//! - [`outbox`]: composing emails and the worker that sends them over SMTP.
//! - [`retention`]: the hourly sweep that deletes closed conversations past their inbox's
//!   retention period.
//! - [`snooze`]: wakes snoozed conversations when their snooze ends.
//! - [`routing`]: the service that assigns departments' queues to available agents.
//! - [`smtp_ingress`]: the optional SMTP server that receives mail for the inboxes directly.
//! - [`totp`]: two-factor sign-in codes (RFC 6238) and recovery codes, on a clock tests move.
//! - [`tls`]: rustls client configurations (verifying, or explicitly not).
//! - [`web`]: the HTTP API and the event stream, behind the one access policy.
//! - [`serve`]: the HTTP server loop with header, idle and body timeouts.
//! - [`app`]: building and running the whole server.

pub mod app;
pub mod bus;
pub mod cluster;
pub mod imap;
pub mod ingest;
pub mod mail_oauth;
pub mod metrics;
pub mod outbox;
pub mod password;
pub mod redact;
pub mod retention;
pub mod routing;
pub mod secrets;
pub mod sender_auth;
pub mod serve;
pub mod settings;
pub mod smtp_ingress;
pub mod snooze;
pub mod tls;
pub mod totp;
pub mod web;

pub use app::Application;
pub use settings::Settings;
