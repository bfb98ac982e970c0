//! Inbound processing: raw emails the reader stored become messages in conversations.
//!
//! Pending raw emails are taken a batch at a time (at most [`BATCH`] emails and [`BATCH_BYTES`]
//! bytes). The batch's emails are parsed in parallel, each within the time limit, turned into
//! [`IncomingEmail`]s and handed to the store, which threads and adds them together in one
//! transaction. An email that cannot be parsed or stored is quarantined with its reason (its
//! bytes stay) and the others go on: one bad email never blocks the mailbox. A database that
//! is down is not the email's fault: then the emails stay pending and processing stops until
//! the next pass.

use std::time::Duration;

use postdesk_core::event::Event;
use postdesk_core::ids::{InboxId, RawEmailId};
use postdesk_core::model::DeliveryStatus;
use postdesk_core::model::SenderAuth;
use postdesk_mail::envelope::Arrival;
use postdesk_mail::{Mailbox, ParsedEmail};
use postdesk_store::{
    Addr, IncomingEmail, IngestOutcome, NewAttachment, RawEmail, Store, StoreError,
};

use crate::bus::Bus;
use crate::metrics::{Metrics, Processed};
use crate::sender_auth::Verifier;

/// Most pending raw emails processed per batch (one database transaction).
const BATCH: i64 = 200;

/// Most bytes of raw email loaded per batch (one larger email is still processed, alone), so
/// memory stays bounded however large the backlog's emails are.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// How much of a too-large email's beginning is parsed for its headers.
const TOO_LARGE_HEADER_BYTES: usize = 256 * 1024;

/// Limits on processing one email.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// An email larger than this is kept raw and shown as too large, not parsed.
    pub max_email_bytes: usize,
    /// Parsing one email may take this long before it is quarantined.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_email_bytes: 50 * 1024 * 1024,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Everything processing needs besides the store and the bus: the limits on one email and the
/// check of its sender.
#[derive(Debug, Clone, Default)]
pub struct Processing {
    /// Limits on processing one email.
    pub limits: Limits,
    /// Checks each email's sender (DKIM, SPF, DMARC) before it is stored.
    pub sender_auth: Verifier,
    /// Counts the emails received, processed and quarantined.
    pub metrics: Metrics,
}

/// What one processing pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcessReport {
    /// Emails added to conversations.
    pub added: usize,
    /// Emails the inbox already had (same Message-ID).
    pub duplicates: usize,
    /// Bounces of our own emails, recorded on them.
    pub bounces: usize,
    /// Emails set aside with a reason.
    pub quarantined: usize,
}

/// Processes every pending raw email of `inbox` (or of all inboxes), a batch at a time: the
/// emails of a batch are parsed and their senders checked (`sender_auth`) in parallel, then
/// stored together, and storing one batch overlaps loading, parsing and checking the next.
/// Each email's outcome, and the ingest latency of each one added, is counted in `metrics`.
///
/// # Errors
/// Only when the database itself fails; per-email problems are quarantined.
pub async fn process_pending(
    store: &Store,
    bus: &Bus,
    inbox: Option<InboxId>,
    limits: Limits,
    sender_auth: &Verifier,
    metrics: &Metrics,
) -> Result<ProcessReport, StoreError> {
    let mut report = ProcessReport::default();
    let mut after: Option<RawEmailId> = None;
    let mut current = load_and_parse(store, inbox, None, limits, sender_auth).await?;
    loop {
        let Some(last) = current.last().map(|p| p.id) else {
            if after.is_none() {
                return Ok(report);
            }
            // One more pass from the start, for emails that became pending behind the cursor
            // (a reprocess request, or a PostgreSQL row committed late by another writer).
            after = None;
            current = load_and_parse(store, inbox, None, limits, sender_auth).await?;
            continue;
        };
        after = Some(last);
        let (stored, next) = tokio::join!(
            store_parsed(store, bus, current, limits, metrics, &mut report),
            load_and_parse(store, inbox, after, limits, sender_auth)
        );
        stored?;
        current = next?;
    }
}

/// The next batch of pending emails after `after`, parsed and their senders checked in
/// parallel, in order.
async fn load_and_parse(
    store: &Store,
    inbox: Option<InboxId>,
    after: Option<RawEmailId>,
    limits: Limits,
    sender_auth: &Verifier,
) -> Result<Vec<Parsed>, StoreError> {
    use futures::StreamExt as _;
    let started = std::time::Instant::now();
    let raws = store
        .pending_raw_within(inbox, after, BATCH, BATCH_BYTES)
        .await?;
    let loaded = started.elapsed();
    // A few more parses in flight than cores, so no core waits for the next one to be handed
    // over.
    let parallel = 2 * std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let parsed: Vec<Parsed> = futures::stream::iter(raws.into_iter().map(|raw| async move {
        let RawEmail {
            id,
            inbox_id,
            bytes,
            via_smtp,
            fetched_at,
        } = raw;
        let size = bytes.len();
        let too_large = size > limits.max_email_bytes;
        // The parser gets the bytes themselves (no copy); a too-large email only its headers.
        let input = if too_large {
            header_section(&bytes)
        } else {
            bytes
        };
        let (input, parsed) = parse_limited(input, limits).await;
        let parsed = Parsed {
            id,
            inbox_id,
            fetched_at,
            size,
            too_large,
            parsed,
            auth: None,
        };
        // Only a whole email can be checked (DKIM hashes the body), and only a parsed one is
        // stored as a message.
        let arrival = if via_smtp {
            Arrival::SmtpIngress
        } else {
            Arrival::Imap
        };
        (
            parsed,
            (!too_large && sender_auth.is_on()).then_some((input, arrival)),
        )
    }))
    .buffered(parallel)
    // Checking senders waits on DNS, not on a core: many at once, in a stage of its own so a
    // slow DNS server never holds up parsing.
    .map(|(mut parsed, check)| async move {
        if let (Some((bytes, arrival)), Ok(_)) = (check, &parsed.parsed) {
            parsed.auth = sender_auth.verify(&bytes, arrival).await;
        }
        parsed
    })
    .buffered(crate::sender_auth::PARALLEL_CHECKS)
    .collect()
    .await;
    if !parsed.is_empty() {
        tracing::debug!(
            emails = parsed.len(),
            load_ms = loaded.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "Loaded and parsed a batch"
        );
    }
    Ok(parsed)
}

/// One raw email, parsed (or why not).
struct Parsed {
    id: RawEmailId,
    inbox_id: InboxId,
    /// When it was stored raw (ms), for the ingest latency.
    fetched_at: i64,
    size: usize,
    too_large: bool,
    parsed: Result<ParsedEmail, String>,
    /// The sender's DKIM, SPF and DMARC verdicts, when checked.
    auth: Option<SenderAuth>,
}

/// Stores a parsed batch: quarantines what failed, records bounces, adds the rest to their
/// conversations (per inbox, in one transaction each) and publishes the events.
async fn store_parsed(
    store: &Store,
    bus: &Bus,
    parsed: Vec<Parsed>,
    limits: Limits,
    metrics: &Metrics,
    report: &mut ProcessReport,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let count = parsed.len();
    let fetched_at: std::collections::HashMap<RawEmailId, i64> =
        parsed.iter().map(|p| (p.id, p.fetched_at)).collect();
    // Per inbox, in order: the emails to store together.
    let mut groups: Vec<(InboxId, Vec<(RawEmailId, IncomingEmail)>)> = Vec::new();
    for one in parsed {
        let Some(email) = prepare(store, bus, one, limits, metrics, report).await? else {
            continue;
        };
        match groups.iter_mut().find(|(inbox, _)| *inbox == email.1) {
            Some((_, emails)) => emails.push((email.0, email.2)),
            None => groups.push((email.1, vec![(email.0, email.2)])),
        }
    }
    for (inbox_id, emails) in groups {
        let outcomes = store.ingest_batch(inbox_id, &emails).await?;
        for ((id, _), outcome) in emails.iter().zip(outcomes) {
            match outcome {
                Ok(IngestOutcome::Added {
                    conversation_id,
                    message_id,
                    new_conversation,
                    reopened,
                    resumed,
                }) => {
                    report.added += 1;
                    metrics.processed(inbox_id, Processed::Added, fetched_at.get(id).copied());
                    if new_conversation || reopened {
                        bus.publish(Event::ConversationQueued {
                            conversation_id,
                            inbox_id,
                        });
                    }
                    if resumed {
                        bus.publish(Event::ConversationResumed { conversation_id });
                    }
                    bus.publish(Event::MessageCreated {
                        conversation_id,
                        message_id,
                    });
                }
                Ok(IngestOutcome::Duplicate) => {
                    report.duplicates += 1;
                    metrics.processed(inbox_id, Processed::Duplicate, None);
                }
                Ok(IngestOutcome::AlreadyHandled) => {}
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    let reason = format!("Cannot store the email: {e}");
                    quarantine(store, metrics, (inbox_id, *id), &reason, report).await?;
                }
            }
        }
    }
    tracing::debug!(
        emails = count,
        store_ms = started.elapsed().as_millis(),
        "Stored a batch"
    );
    Ok(())
}

/// Parses off the async threads, within the time limit; gives the bytes back when parsing
/// finished (for checking the sender), else none.
pub(crate) async fn parse_limited(
    bytes: Vec<u8>,
    limits: Limits,
) -> (Vec<u8>, Result<ParsedEmail, String>) {
    let parsing = tokio::task::spawn_blocking(move || {
        let parsed = postdesk_mail::parse(&bytes);
        (bytes, parsed)
    });
    match tokio::time::timeout(limits.timeout, parsing).await {
        Err(_) => (
            Vec::new(),
            Err(format!(
                "Processing took longer than {} s",
                limits.timeout.as_secs()
            )),
        ),
        Ok(Err(e)) => (Vec::new(), Err(format!("Parsing the email crashed: {e}"))),
        Ok(Ok((bytes, Err(e)))) => (bytes, Err(format!("Cannot parse the email: {e}"))),
        Ok(Ok((bytes, Ok(parsed)))) => (bytes, Ok(parsed)),
    }
}

/// The header section of a raw email (up to the first blank line, at most
/// [`TOO_LARGE_HEADER_BYTES`]), followed by a blank line.
fn header_section(raw: &[u8]) -> Vec<u8> {
    let window = &raw[..raw.len().min(TOO_LARGE_HEADER_BYTES)];
    let end = window
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| window.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(window.len());
    let mut head = window[..end].to_vec();
    head.extend_from_slice(b"\r\n");
    head
}

async fn quarantine(
    store: &Store,
    metrics: &Metrics,
    (inbox, id): (InboxId, RawEmailId),
    reason: &str,
    report: &mut ProcessReport,
) -> Result<(), StoreError> {
    tracing::warn!(raw_email = %id, %reason, "Quarantined an inbound email");
    store.quarantine_raw(id, reason).await?;
    report.quarantined += 1;
    metrics.quarantined(inbox);
    Ok(())
}

/// What a parsed email becomes before it is stored: quarantined with its reason, recorded as
/// the bounce of one of our emails, or an [`IncomingEmail`] to store (returned).
async fn prepare(
    store: &Store,
    bus: &Bus,
    one: Parsed,
    limits: Limits,
    metrics: &Metrics,
    report: &mut ProcessReport,
) -> Result<Option<(RawEmailId, InboxId, IncomingEmail)>, StoreError> {
    let Parsed {
        id,
        inbox_id,
        size,
        too_large,
        parsed,
        auth,
        fetched_at: _,
    } = one;
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => {
            quarantine(store, metrics, (inbox_id, id), &reason, report).await?;
            return Ok(None);
        }
    };

    // A bounce of one of our emails marks that email failed instead of opening a conversation;
    // a delay warning marks it delayed (the receiving server is still retrying).
    if let Some(bounce) = parsed
        .bounce
        .as_ref()
        .filter(|b| b.is_bounce || b.kind == "delayed")
        && let Some(original) = bounce.original_message_id.as_deref()
    {
        let mut reason = match (&bounce.status, &bounce.diagnostic) {
            (Some(status), Some(diagnostic)) => format!("{status} {diagnostic}"),
            (Some(status), None) => status.clone(),
            (None, Some(diagnostic)) => diagnostic.clone(),
            (None, None) => "the receiving server returned the email".to_owned(),
        };
        if !bounce.recipients.is_empty() {
            reason = format!("{} ({reason})", bounce.recipients.join(", "));
        }
        let status = if bounce.is_bounce {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Delayed
        };
        if let Some(recorded) = store
            .record_delivery_report(id, inbox_id, original, status, &reason)
            .await?
        {
            report.bounces += 1;
            metrics.processed(inbox_id, Processed::DeliveryReport, None);
            bus.publish(Event::DeliveryUpdated {
                conversation_id: recorded.conversation_id,
                message_id: recorded.message_id,
                status,
            });
            bus.publish(Event::MessageCreated {
                conversation_id: recorded.conversation_id,
                message_id: recorded.notice_id,
            });
            return Ok(None);
        }
    }

    let mut email = match to_incoming(parsed) {
        Ok(email) => IncomingEmail { auth, ..email },
        Err(reason) => {
            quarantine(store, metrics, (inbox_id, id), &reason, report).await?;
            return Ok(None);
        }
    };
    if too_large {
        email.text = format!(
            "This email is {:.1} MB, over the {} MB limit, so it is not shown here. It is kept exactly as received: download original.eml below.",
            size as f64 / 1_048_576.0,
            limits.max_email_bytes / 1_048_576
        );
        email.html = None;
        email.attachments.clear();
        email.attach_original = true;
    }
    Ok(Some((id, inbox_id, email)))
}

/// `text` without NUL characters. PostgreSQL's text cannot hold them (SQLite's can), and an
/// email must be stored the same on both instead of being quarantined on one: a NUL shows as
/// nothing anyway. The raw email keeps every byte.
fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text
    }
}

fn addr(m: Mailbox) -> Addr {
    Addr {
        name: m.name.map(without_nul).filter(|n| !n.trim().is_empty()),
        email: without_nul(m.email),
    }
}

/// The store's view of a parsed email. The contact is whom a reply goes to: Reply-To when
/// given, else From.
pub(crate) fn to_incoming(p: ParsedEmail) -> Result<IncomingEmail, String> {
    let auto_reply = p.auto_reply;
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
        message_id: without_nul(p.message_id),
        in_reply_to: p.in_reply_to.map(without_nul),
        references: p.references.into_iter().map(without_nul).collect(),
        contact,
        from,
        to: p.to.into_iter().map(addr).collect(),
        cc: p.cc.into_iter().map(addr).collect(),
        subject: without_nul(p.subject),
        date: p.date.map(|d| d.timestamp_millis()),
        text: without_nul(p.text),
        html: p.html.map(without_nul),
        attachments: p
            .attachments
            .into_iter()
            .map(|a| NewAttachment {
                filename: without_nul(a.filename),
                content_type: without_nul(a.content_type),
                content_id: a.content_id.map(without_nul),
                inline: a.inline,
                bytes: a.bytes,
            })
            .collect(),
        auto_reply,
        attach_original: false,
        auth: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parsing_past_the_time_limit_is_an_error_not_a_hang() {
        let body = "word ".repeat(2_000_000);
        let raw = format!("From: a@b.test\r\nSubject: slow\r\n\r\n{body}").into_bytes();
        let limits = Limits {
            max_email_bytes: usize::MAX,
            timeout: Duration::ZERO,
        };
        let error = parse_limited(raw, limits).await.1.unwrap_err();
        assert_eq!(error, "Processing took longer than 0 s");
    }

    #[test]
    fn nul_characters_are_dropped_before_storing() {
        let raw = b"From: \"Nul\0Name\" <a@b.test>\r\nSubject: a\0b\r\nContent-Type: text/plain\r\n\r\nbefore\0after\r\n";
        let email = to_incoming(postdesk_mail::parse(raw).unwrap()).unwrap();
        assert!(!email.subject.contains('\0'), "{:?}", email.subject);
        assert!(email.text.starts_with("beforeafter"), "{:?}", email.text);
        assert!(!email.contact.name.unwrap_or_default().contains('\0'));
    }

    #[test]
    fn the_header_section_of_a_large_email_is_cut_at_the_blank_line() {
        let raw = b"From: a@b.test\r\nSubject: big\r\n\r\nbody body body";
        assert_eq!(
            header_section(raw),
            b"From: a@b.test\r\nSubject: big\r\n\r\n\r\n"
        );
        let bare = b"From: a@b.test\nSubject: big\n\nbody";
        assert_eq!(
            header_section(bare),
            b"From: a@b.test\nSubject: big\n\n\r\n"
        );
        let endless = vec![b'X'; TOO_LARGE_HEADER_BYTES * 2];
        assert_eq!(
            header_section(&endless).len(),
            TOO_LARGE_HEADER_BYTES + 2,
            "at most the window"
        );
    }
}
