//! The postdesk domain: identifiers, the states a conversation and a message go through, and the
//! pure policies (threading order, reply routing, slash commands, send outcomes) that the adapters
//! around it apply. No IO, no database, no HTTP, no IMAP here.
//! The types the HTTP API shows derive `utoipa::ToSchema`: their description in the API's
//! OpenAPI document, nothing more.
//!
//! # Layout
//! - [`access`]: the one authorization policy: who may do what to which conversation.
//! - [`ids`]: newtype identifiers for every stored entity.
//! - [`model`]: roles, statuses, kinds and the connection security of an inbox.
//! - [`address`]: [`address::EmailAddress`], a parsed, normalised address.
//! - [`thread`]: which Message-IDs an inbound email may thread under, in order.
//! - [`command`]: the slash commands an agent can type in a conversation.
//! - [`delivery`]: what an SMTP reply means for an outgoing email, and the retry schedule.
//! - [`event`]: the realtime events published after every committed change.
//! - [`search`]: conversations' tags and the terms of a full-text search.
//! - [`template`]: the variables of signatures and canned responses.

pub mod access;
pub mod address;
pub mod command;
pub mod delivery;
pub mod event;
pub mod ids;
pub mod model;
pub mod search;
pub mod template;
pub mod thread;
