//! The HTTP API end to end, against a real postdesk with a real Dovecot, a real SMTP server
//! and, for the PostgreSQL variants, a real PostgreSQL.

mod access;
mod auth;
mod canned;
mod cluster;
mod contacts;
mod crash;
mod desk;
mod drafts;
mod flow;
mod helpers;
mod inbound;
mod inboxes;
mod lists;
mod logs;
mod mailbox_oauth;
mod metrics;
mod oidc;
mod openapi;
mod replies;
mod restart;
mod routing;
mod search;
mod sender_auth;
mod sent_folder;
mod signin;
mod smtp_ingress;
mod two_factor;
