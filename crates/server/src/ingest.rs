//! Inbound processing: raw emails the reader stored become messages in conversations.
//!
//! Each pending raw email is parsed, turned into an [`IncomingEmail`] and handed to the store,
//! which threads it and adds it in one transaction. An email that cannot be parsed or stored
//! is quarantined with its reason (its bytes stay) and the next one goes on: one bad email
//! never blocks the mailbox. A database that is down is not the email's fault: then the email
//! stays pending and processing stops until the next pass.

use postdesk_core::event::Event;
use postdesk_core::ids::InboxId;
use postdesk_mail::{Mailbox, ParsedEmail};
use postdesk_store::{Addr, IncomingEmail, IngestOutcome, NewAttachment, Store, StoreError};

use crate::bus::Bus;

/// How many pending raw emails are read per round.
const BATCH: i64 = 50;

/// What one processing pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessReport {
    /// Emails added to conversations.
    pub added: usize,
    /// Emails the inbox already had (same Message-ID).
    pub duplicates: usize,
    /// Emails set aside with a reason.
    pub quarantined: usize,
}

/// Processes every pending raw email of `inbox` (or of all inboxes).
///
/// # Errors
/// Only when the database itself fails; per-email problems are quarantined.
pub async fn process_pending(
    store: &Store,
    bus: &Bus,
    inbox: Option<InboxId>,
) -> Result<ProcessReport, StoreError> {
    let mut report = ProcessReport::default();
    loop {
        let pending = store.pending_raw(inbox, BATCH).await?;
        if pending.is_empty() {
            return Ok(report);
        }
        for raw in pending {
            let bytes = raw.bytes;
            let parsed = tokio::task::spawn_blocking(move || postdesk_mail::parse(&bytes)).await;
            let email = match parsed {
                Ok(Ok(parsed)) => to_incoming(parsed),
                Ok(Err(e)) => Err(format!("Cannot parse the email: {e}")),
                Err(e) => Err(format!("Parsing the email crashed: {e}")),
            };
            let email = match email {
                Ok(email) => email,
                Err(reason) => {
                    tracing::warn!(raw_email = %raw.id, %reason, "Quarantined an inbound email");
                    store.quarantine_raw(raw.id, &reason).await?;
                    report.quarantined += 1;
                    continue;
                }
            };
            match store.ingest_email(raw.id, raw.inbox_id, &email).await {
                Ok(IngestOutcome::Added {
                    conversation_id,
                    message_id,
                    new_conversation,
                    reopened,
                }) => {
                    report.added += 1;
                    if new_conversation || reopened {
                        bus.publish(Event::ConversationQueued {
                            conversation_id,
                            inbox_id: raw.inbox_id,
                        });
                    }
                    bus.publish(Event::MessageCreated {
                        conversation_id,
                        message_id,
                    });
                }
                Ok(IngestOutcome::Duplicate) => report.duplicates += 1,
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    let reason = format!("Cannot store the email: {e}");
                    tracing::warn!(raw_email = %raw.id, %reason, "Quarantined an inbound email");
                    store.quarantine_raw(raw.id, &reason).await?;
                    report.quarantined += 1;
                }
            }
        }
    }
}

fn addr(m: Mailbox) -> Addr {
    Addr {
        name: m.name.filter(|n| !n.trim().is_empty()),
        email: m.email,
    }
}

/// The store's view of a parsed email. The contact is whom a reply goes to: Reply-To when
/// given, else From.
fn to_incoming(p: ParsedEmail) -> Result<IncomingEmail, String> {
    let from = p.from.map(addr);
    let contact = p
        .reply_to
        .first()
        .cloned()
        .map(addr)
        .or_else(|| from.clone())
        .filter(|a| postdesk_core::address::EmailAddress::parse(&a.email).is_ok())
        .ok_or_else(|| "The email has no usable sender address (From or Reply-To)".to_owned())?;
    Ok(IncomingEmail {
        message_id: p.message_id,
        in_reply_to: p.in_reply_to,
        references: p.references,
        contact,
        from,
        to: p.to.into_iter().map(addr).collect(),
        cc: p.cc.into_iter().map(addr).collect(),
        subject: p.subject,
        date: p.date.map(|d| d.timestamp_millis()),
        text: p.text,
        html: p.html,
        attachments: p
            .attachments
            .into_iter()
            .map(|a| NewAttachment {
                filename: a.filename,
                content_type: a.content_type,
                content_id: a.content_id,
                inline: a.inline,
                bytes: a.bytes,
            })
            .collect(),
    })
}
