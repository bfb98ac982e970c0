//! The HTTP API end to end, against a real postdesk with a real Dovecot, a real SMTP server
//! and, for the PostgreSQL variants, a real PostgreSQL.

mod auth;
mod flow;
mod helpers;
mod inboxes;
mod restart;
