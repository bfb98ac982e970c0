//! Outgoing email: composing a reply (Reply via Email, Send via Email as attachment) and the
//! worker that delivers the outbox over each inbox's SMTP server.
//!
//! Composing writes the email_out message and its outbox row in one transaction, then wakes
//! the worker. The worker claims due rows one at a time (the attempt is counted before
//! sending), sends the stored bytes, and records the outcome on the message: 4xx and network
//! errors are retried with backoff, 5xx fails at once with the server's reason, and after
//! [`MAX_ATTEMPTS`] the email is failed for good. A failed email stays visible with its reason
//! until an agent retries it.
//!
//! Each sent email is then also appended to the inbox's Sent folder (see
//! [`crate::imap::append_sent_copy`]), apart from its delivery: a failed append is logged and
//! retried on the same schedule, and never holds a delivery up.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use postdesk_core::delivery::{MAX_ATTEMPTS, SendOutcome, classify_reply, retry_delay};
use postdesk_core::event::Event;
use postdesk_core::ids::MessageId;
use postdesk_core::model::{MessageKind, Security};
use postdesk_core::thread::reply_references;
use postdesk_mail::{
    Format, Mailbox, OutgoingAttachment, OutgoingEmail, Quoted, ReplyBody, parse_recipient,
    render_reply,
};
use postdesk_store::{
    Addr, Conversation, CopyOutcome, Inbox, Message, OutboxItem, QueuedEmail, SentCopy, Store, User,
};
use tokio::sync::{Notify, watch};

use crate::bus::Bus;
use crate::mail_oauth::{MailOAuth, TokenError};
use crate::metrics::{Metrics, SendFailure};
use crate::secrets::Secrets;

/// How often an email whose inbox must be connected again is looked at (it is also due at
/// once when the inbox is connected again).
const RECONNECT_RECHECK: Duration = Duration::from_secs(5 * 60);

/// The result of one delivery attempt.
#[derive(Debug)]
enum Attempt {
    /// Sent, or refused, or to be retried: counts as an attempt. The class of a failure is
    /// for the metrics (unused when sent).
    Done(SendOutcome, SendFailure),
    /// The inbox's OAuth2 sign-in must be renewed by an admin: the email waits, uncounted.
    WaitForReconnect {
        /// Why, for the message's delivery error.
        reason: String,
    },
}

/// What one SMTP delivery answers.
type SmtpResult =
    Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>;

/// How long a claimed email is reserved for the worker that claimed it.
const LEASE: Duration = Duration::from_secs(5 * 60);

/// Time allowed for one SMTP delivery, connect to QUIT. lettre's own timeout covers only
/// each read and write, not a server that trickles.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest the worker sleeps without looking at the outbox.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// How many References a reply carries at most (the root and the newest).
const REFERENCES_LIMIT: usize = 20;

/// Why an email could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The request cannot be served as asked (nothing to send, no file on the message).
    #[error("{0}")]
    Invalid(String),
    /// The collision check: the conversation has newer emails (these, oldest first) than
    /// the one the agent had seen; nothing was sent.
    #[error("new emails arrived in the conversation since you opened it")]
    NewerMessages(Vec<postdesk_core::ids::MessageId>),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The most addresses one email goes to (To, Cc and Bcc together).
pub const MAX_RECIPIENTS: usize = 50;

/// What an agent sends: Reply via Email, or Send via Email as attachment.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    /// What the agent wrote.
    pub text: &'a str,
    /// Plain text, or Markdown sent as text plus HTML.
    pub format: Format,
    /// To, as the agent set it; `None`: whoever wrote the email answered.
    pub to: Option<&'a [String]>,
    /// Cc, as the agent set it; `None`: the other To and Cc of the email answered.
    pub cc: Option<&'a [String]>,
    /// Bcc: the envelope only.
    pub bcc: &'a [String],
    /// The email of the conversation answered; `None`: the contact's latest.
    pub answering: Option<MessageId>,
    /// The newest email the agent had seen (the collision check); `None`: no check.
    pub seen: Option<MessageId>,
    /// Whether the answered email is quoted below (when its inbox quotes history).
    pub quote: bool,
    /// A file message whose files the email carries.
    pub source: Option<&'a Message>,
}

impl<'a> Reply<'a> {
    /// A plain reply with every default: reply all, no collision check, no quote.
    #[must_use]
    pub fn plain(text: &'a str) -> Self {
        Self {
            text,
            format: Format::Text,
            to: None,
            cc: None,
            bcc: &[],
            answering: None,
            seen: None,
            quote: false,
            source: None,
        }
    }
}

/// What a reply starts from (see [`Outbox::reply_defaults`]).
#[derive(Debug, Clone)]
pub struct ReplyDefaults {
    /// The email answered, if the conversation has one.
    pub answering: Option<MessageId>,
    /// Default To.
    pub to: Vec<Mailbox>,
    /// Default Cc.
    pub cc: Vec<Mailbox>,
    /// The reply's subject.
    pub subject: String,
}

/// The email a reply answers: `answering` (which must be an email of the conversation), or
/// by default the contact's latest.
fn answered(
    history: &[Message],
    answering: Option<MessageId>,
) -> Result<Option<&Message>, ComposeError> {
    match answering {
        Some(id) => history
            .iter()
            .find(|m| m.id == id && m.email.is_some())
            .map(Some)
            .ok_or_else(|| {
                ComposeError::Invalid(format!(
                    "message {} is not an email of this conversation",
                    id.0
                ))
            }),
        None => Ok(history
            .iter()
            .rev()
            .find(|m| m.kind == MessageKind::EmailIn && m.email.is_some())),
    }
}

/// Whom a reply goes to unless the agent says otherwise: reply all. To is whoever wrote the
/// email answered (its contact, so Reply-To is honoured), or for one of our emails its To;
/// Cc is that email's other To and Cc. Addresses of our inboxes are never added; without
/// an email to answer, To is the conversation's contact.
fn default_recipients(
    parent: Option<&Message>,
    conversation: &Conversation,
    ours: &HashSet<String>,
) -> (Vec<Mailbox>, Vec<Mailbox>) {
    let mailbox = |a: &Addr| Mailbox {
        name: a.name.clone(),
        email: a.email.clone(),
    };
    let contact = Mailbox {
        name: Some(conversation.contact.name.clone()).filter(|n| !n.is_empty()),
        email: conversation.contact.email.clone(),
    };
    let (to, cc) = match parent.and_then(|m| m.email.as_ref().map(|e| (m, e))) {
        Some((m, e)) if m.kind == MessageKind::EmailOut => (
            e.to.iter().map(mailbox).collect(),
            e.cc.iter().map(mailbox).collect(),
        ),
        Some((m, e)) => {
            let writer = match &m.author {
                postdesk_store::Author::Contact { email, name, .. } => Mailbox {
                    name: Some(name.clone()).filter(|n| !n.is_empty()),
                    email: email.clone(),
                },
                _ => e.from.as_ref().map_or_else(|| contact.clone(), mailbox),
            };
            (
                vec![writer],
                e.to.iter().chain(&e.cc).map(mailbox).collect(),
            )
        }
        None => (vec![contact.clone()], Vec::new()),
    };
    let not_ours = |m: &Mailbox| !ours.contains(&m.email.trim().to_lowercase());
    let mut to: Vec<Mailbox> = to.into_iter().filter(not_ours).collect();
    if to.is_empty() {
        to.push(contact);
    }
    (to, cc.into_iter().filter(not_ours).collect())
}

/// The agent's list parsed (every address checked, none of our inboxes), or the default.
fn chosen(
    asked: Option<&[String]>,
    default: Vec<Mailbox>,
    ours: &HashSet<String>,
) -> Result<Vec<Mailbox>, ComposeError> {
    let Some(asked) = asked else {
        return Ok(default);
    };
    asked
        .iter()
        .map(|input| {
            let mailbox =
                parse_recipient(input).map_err(|e| ComposeError::Invalid(e.to_string()))?;
            if ours.contains(&mailbox.email.to_lowercase()) {
                return Err(ComposeError::Invalid(format!(
                    "{} is one of this desk's inboxes: postdesk would read its own email back",
                    mailbox.email
                )));
            }
            Ok(mailbox)
        })
        .collect()
}

/// Each address once: the first of To, Cc, Bcc keeps it (compared without case).
fn without_repeats(
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
) -> (Vec<Mailbox>, Vec<Mailbox>, Vec<Mailbox>) {
    let mut seen = HashSet::new();
    let mut keep = |list: Vec<Mailbox>| -> Vec<Mailbox> {
        list.into_iter()
            .filter(|m| seen.insert(m.email.trim().to_lowercase()))
            .collect()
    };
    let to = keep(to);
    let cc = keep(cc);
    let bcc = keep(bcc);
    (to, cc, bcc)
}

/// The outbox: composing and delivering.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Store,
    bus: Bus,
    secrets: Secrets,
    /// The access tokens of inboxes that send with OAuth2.
    oauth: MailOAuth,
    /// Wakes the worker when an email is queued.
    wake: Arc<Notify>,
    /// Wakes the Sent-folder copier when an email was sent.
    copy_wake: Arc<Notify>,
    /// Counts the emails queued, sent, retried and failed.
    metrics: Metrics,
}

impl Outbox {
    /// An outbox over `store`.
    #[must_use]
    pub fn new(
        store: Store,
        bus: Bus,
        secrets: Secrets,
        oauth: MailOAuth,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            bus,
            secrets,
            oauth,
            metrics,
            wake: Arc::new(Notify::new()),
            copy_wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the worker.
    pub fn interrupt(&self) {
        self.wake.notify_one();
    }

    /// Queues an email from the conversation: to the recipients asked for, or by default to
    /// whoever wrote the email answered (Reply-To honoured) with its other To and Cc in Cc
    /// (reply all), threaded under the email answered (by default the contact's latest), with
    /// the inbox's signature and, when asked and the inbox quotes, the answered email quoted.
    ///
    /// # Errors
    /// [`ComposeError::Invalid`] for an empty email, a malformed or own address, or an
    /// answered message that is not an email of the conversation;
    /// [`ComposeError::NewerMessages`] when the collision check finds newer emails; otherwise
    /// store or build failures.
    pub async fn reply(
        &self,
        conversation: &Conversation,
        author: &User,
        reply: &Reply<'_>,
    ) -> Result<Message, ComposeError> {
        let attachments = match reply.source {
            Some(message) => self.attachment_bytes(message).await?,
            None => Vec::new(),
        };
        if reply.text.trim().is_empty() && attachments.is_empty() {
            return Err(ComposeError::Invalid(
                "an email needs some text or a file".into(),
            ));
        }
        let store_err = |e: postdesk_store::StoreError| ComposeError::Unexpected(e.into());
        let inbox = self
            .store
            .find_inbox(conversation.inbox_id)
            .await
            .map_err(store_err)?
            .context("The conversation's inbox no longer exists")?;
        let ours = self.our_addresses().await?;
        let history = self
            .store
            .list_messages(conversation.id)
            .await
            .map_err(store_err)?;
        let parent = answered(&history, reply.answering)?;
        let parent_email = parent.and_then(|m| m.email.as_ref());
        let (in_reply_to, references, base_subject) = match parent_email {
            Some(p) => (
                Some(p.message_id.clone()),
                reply_references(
                    &p.references,
                    p.in_reply_to.as_deref(),
                    &p.message_id,
                    REFERENCES_LIMIT,
                ),
                p.subject.clone(),
            ),
            None => (None, Vec::new(), conversation.subject.clone()),
        };
        let (default_to, default_cc) = default_recipients(parent, conversation, &ours);
        let to = chosen(reply.to, default_to, &ours)?;
        let cc = chosen(reply.cc, default_cc, &ours)?;
        let bcc = chosen(Some(reply.bcc), Vec::new(), &ours)?;
        let (to, cc, bcc) = without_repeats(to, cc, bcc);
        if to.len() + cc.len() + bcc.len() > MAX_RECIPIENTS {
            return Err(ComposeError::Invalid(format!(
                "an email goes to at most {MAX_RECIPIENTS} addresses"
            )));
        }
        if to.is_empty() && cc.is_empty() && bcc.is_empty() {
            return Err(ComposeError::Invalid(
                "the email has no recipient: add an address in To".into(),
            ));
        }
        let contact = &conversation.contact;
        let signature = postdesk_core::template::fill(
            &inbox.settings.signature,
            &[
                ("contact.name", contact.name.as_str()),
                ("contact.email", contact.email.as_str()),
                ("agent.name", author.name.as_str()),
                ("inbox.name", inbox.settings.name.as_str()),
            ],
        );
        let quote_author = parent.and_then(|m| match &m.author {
            _ if m.kind == MessageKind::EmailOut => None,
            postdesk_store::Author::Contact { email, name, .. } => Some(Mailbox {
                name: Some(name.clone()).filter(|n| !n.is_empty()),
                email: email.clone(),
            }),
            _ => None,
        });
        let quote_from = quote_author.or_else(|| {
            parent_email.and_then(|e| e.from.as_ref()).map(|a| Mailbox {
                name: a.name.clone(),
                email: a.email.clone(),
            })
        });
        let quote = parent
            .filter(|_| reply.quote && inbox.settings.quote_history)
            .map(|m| Quoted {
                from: quote_from.as_ref(),
                date: parent_email
                    .and_then(|e| e.date)
                    .or(Some(m.created_at))
                    .and_then(chrono::DateTime::from_timestamp_millis),
                text: m.text.as_str(),
                html: m.html.as_deref(),
            });
        let rendered = render_reply(&ReplyBody {
            text: reply.text,
            format: reply.format,
            signature: Some(signature.as_str()).filter(|s| !s.trim().is_empty()),
            quote,
        });
        let domain = postdesk_core::address::EmailAddress::parse(&inbox.settings.email)
            .map(|a| a.domain().to_owned())
            .unwrap_or_else(|_| "postdesk.invalid".to_owned());
        let now = chrono::Utc::now();
        let from = Mailbox {
            name: Some(inbox.settings.sender_name.clone()),
            email: inbox.settings.email.clone(),
        };
        let outgoing = OutgoingEmail {
            from: from.clone(),
            to,
            cc,
            bcc,
            subject: postdesk_mail::reply_subject(&base_subject),
            message_id: postdesk_mail::new_message_id(&domain),
            in_reply_to,
            references,
            date: now,
            text: rendered.text,
            html: rendered.html,
            attachments,
        };
        let mime =
            postdesk_mail::build(&outgoing).map_err(|e| ComposeError::Invalid(e.to_string()))?;
        let addrs = |list: &[Mailbox]| -> Vec<Addr> {
            list.iter()
                .map(|m| Addr {
                    name: m.name.clone(),
                    email: m.email.clone(),
                })
                .collect()
        };
        let queued = QueuedEmail {
            text: rendered.shown_text,
            message_id: outgoing.message_id.clone(),
            in_reply_to: outgoing.in_reply_to.clone(),
            references: outgoing.references.clone(),
            from: Addr {
                name: from.name,
                email: from.email,
            },
            to: addrs(&outgoing.to),
            cc: addrs(&outgoing.cc),
            bcc: addrs(&outgoing.bcc),
            subject: outgoing.subject.clone(),
            html: rendered.shown_html,
            date: now.timestamp_millis(),
            rcpt_to: outgoing.envelope_recipients(),
            mime,
            mail_from: inbox.settings.email.clone(),
            source_message_id: reply.source.map(|m| m.id),
            seen_message_id: reply.seen,
        };
        let message = match self
            .store
            .queue_email(conversation.id, author.id, &queued)
            .await
        {
            Ok(message) => message,
            Err(postdesk_store::StoreError::NewerMessages(ids)) => {
                return Err(ComposeError::NewerMessages(ids));
            }
            Err(e) => return Err(store_err(e)),
        };
        self.metrics.outbox_queued();
        self.bus.publish(Event::MessageCreated {
            conversation_id: conversation.id,
            message_id: message.id,
        });
        self.interrupt();
        Ok(message)
    }

    /// What Reply via Email starts from: the email answered (`answering`, or the contact's
    /// latest) and its default recipients (reply all), for the composer to show and edit.
    ///
    /// # Errors
    /// [`ComposeError::Invalid`] when `answering` is not an email of the conversation.
    pub async fn reply_defaults(
        &self,
        conversation: &Conversation,
        answering: Option<MessageId>,
    ) -> Result<ReplyDefaults, ComposeError> {
        let ours = self.our_addresses().await?;
        let history = self
            .store
            .list_messages(conversation.id)
            .await
            .map_err(|e| ComposeError::Unexpected(e.into()))?;
        let parent = answered(&history, answering)?;
        let (to, cc) = default_recipients(parent, conversation, &ours);
        let (to, cc, _) = without_repeats(to, cc, Vec::new());
        Ok(ReplyDefaults {
            answering: parent.map(|m| m.id),
            to,
            cc,
            subject: postdesk_mail::reply_subject(
                parent
                    .and_then(|m| m.email.as_ref())
                    .map_or(conversation.subject.as_str(), |e| e.subject.as_str()),
            ),
        })
    }

    /// The addresses of every inbox, lowercase: never a default recipient, never allowed as
    /// one (postdesk would read its own email back).
    async fn our_addresses(&self) -> Result<HashSet<String>, ComposeError> {
        Ok(self
            .store
            .list_inboxes()
            .await
            .map_err(|e| ComposeError::Unexpected(e.into()))?
            .iter()
            .map(|i| i.settings.email.to_lowercase())
            .collect())
    }

    async fn attachment_bytes(
        &self,
        message: &Message,
    ) -> Result<Vec<OutgoingAttachment>, ComposeError> {
        if message.attachments.is_empty() {
            return Err(ComposeError::Invalid(
                "this message has no file to send".into(),
            ));
        }
        let mut out = Vec::new();
        for a in &message.attachments {
            let (_, _, bytes) = self
                .store
                .find_attachment(a.id)
                .await
                .map_err(anyhow::Error::from)?
                .context("An attachment of the message is missing")?;
            out.push(OutgoingAttachment {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                bytes,
            });
        }
        Ok(out)
    }

    /// Sends every email that is due now; returns how many attempts were made.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn send_due(&self) -> anyhow::Result<usize> {
        let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let mut attempts = 0;
        while let Some(item) = self.store.claim_outbox(lease).await? {
            attempts += 1;
            let (outcome, class) = match self.deliver(&item).await {
                Attempt::WaitForReconnect { reason } => {
                    tracing::info!(message_id = %item.message_id, inbox = %item.inbox_id, "Email kept in the outbox: {reason}");
                    self.metrics.outbox_retried(SendFailure::Auth);
                    let at = postdesk_store::now_ms()
                        + i64::try_from(RECONNECT_RECHECK.as_millis()).unwrap_or(i64::MAX / 2);
                    self.store.wait_for_reconnect(&item, at, &reason).await?;
                    self.bus.publish(Event::DeliveryUpdated {
                        conversation_id: item.conversation_id,
                        message_id: item.message_id,
                        status: postdesk_core::model::DeliveryStatus::Queued,
                    });
                    continue;
                }
                Attempt::Done(outcome, class) => (outcome, class),
            };
            let outcome = match outcome {
                SendOutcome::Retry { reason } if item.attempts >= MAX_ATTEMPTS => {
                    SendOutcome::Failed {
                        reason: format!("Gave up after {} attempts: {reason}", item.attempts),
                    }
                }
                outcome => outcome,
            };
            let delay = retry_delay(item.attempts, rand::random::<f64>());
            let retry_at =
                postdesk_store::now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            match &outcome {
                SendOutcome::Sent => {
                    tracing::info!(message_id = %item.message_id, "Email sent");
                    self.metrics.outbox_sent(item.queued_at);
                }
                SendOutcome::Retry { reason } => {
                    tracing::warn!(message_id = %item.message_id, attempt = item.attempts, "Email send failed, will retry in {}s: {reason}", delay.as_secs());
                    self.metrics.outbox_retried(class);
                }
                SendOutcome::Failed { reason } => {
                    tracing::warn!(message_id = %item.message_id, "Email failed: {reason}");
                    self.metrics.outbox_failed(class);
                }
            }
            let status = self.store.finish_outbox(&item, &outcome, retry_at).await?;
            if outcome == SendOutcome::Sent {
                self.copy_wake.notify_one();
            }
            self.bus.publish(Event::DeliveryUpdated {
                conversation_id: item.conversation_id,
                message_id: item.message_id,
                status,
            });
        }
        Ok(attempts)
    }

    async fn deliver(&self, item: &OutboxItem) -> Attempt {
        // What is not the SMTP server's answer: the inbox, its settings, the database.
        let done = |outcome| Attempt::Done(outcome, SendFailure::Other);
        let inbox = match self.store.find_inbox(item.inbox_id).await {
            Ok(Some(inbox)) => inbox,
            Ok(None) => {
                return done(SendOutcome::Failed {
                    reason: "The inbox no longer exists".into(),
                });
            }
            Err(e) => {
                return done(SendOutcome::Retry {
                    reason: format!("Database: {e}"),
                });
            }
        };
        let failed = |e: anyhow::Error| {
            done(SendOutcome::Failed {
                reason: format!("{e:#}"),
            })
        };
        let envelope = match envelope(item) {
            Ok(e) => e,
            Err(e) => return failed(e),
        };
        let server = format!("{}:{}", inbox.settings.smtp.host, inbox.settings.smtp.port);
        let token = match self.bearer(&inbox, None).await {
            Ok(token) => token,
            Err(attempt) => return attempt,
        };
        let mut result = match self
            .send_once(&inbox, token.as_deref(), &envelope, &item.mime)
            .await
        {
            Ok(result) => result,
            Err(e) => return failed(e),
        };
        if let (Some(refused), Ok(Err(e))) = (token.as_deref(), &result)
            && bearer_refused(e)
        {
            tracing::info!(inbox = %inbox.id, "The SMTP server refused the OAuth2 access token; refreshing it: {e}");
            let token = match self.bearer(&inbox, Some(refused)).await {
                Ok(token) => token,
                Err(attempt) => return attempt,
            };
            result = match self
                .send_once(&inbox, token.as_deref(), &envelope, &item.mime)
                .await
            {
                Ok(result) => result,
                Err(e) => return failed(e),
            };
        }
        let (outcome, class) = match result {
            Err(_) => (
                SendOutcome::Retry {
                    reason: format!(
                        "SMTP server {server} did not finish within {}s",
                        SEND_TIMEOUT.as_secs()
                    ),
                },
                SendFailure::Network,
            ),
            Ok(Ok(_)) => (SendOutcome::Sent, SendFailure::Other),
            Ok(Err(e)) if token.is_some() && bearer_refused(&e) => (
                SendOutcome::Retry {
                    reason: format!(
                        "SMTP server {server} refused the OAuth2 sign-in, also with a refreshed access token (the signed-in account may lack the right to send as this mailbox): {}",
                        smtp_words(&e)
                    ),
                },
                SendFailure::Auth,
            ),
            Ok(Err(e)) => match e.status() {
                // The server's reply code decides, by our policy rather than lettre's (which
                // takes every 5xx as permanent; 552 "mailbox full" is retried).
                Some(code) => (
                    match classify_reply(u16::from(code), e.to_string()) {
                        SendOutcome::Failed { reason } => SendOutcome::Failed {
                            reason: format!("SMTP server {server} refused the email: {reason}"),
                        },
                        SendOutcome::Retry { reason } => SendOutcome::Retry {
                            reason: format!("SMTP server {server}: {reason}"),
                        },
                        // A success code in an error makes no sense: try again.
                        SendOutcome::Sent => SendOutcome::Retry {
                            reason: format!("SMTP server {server}: {e}"),
                        },
                    },
                    SendFailure::of_reply(u16::from(code)),
                ),
                None => (
                    SendOutcome::Retry {
                        reason: format!("SMTP server {server}: {e}"),
                    },
                    SendFailure::Network,
                ),
            },
        };
        Attempt::Done(outcome, class)
    }

    /// With OAuth2, the access token to send with (`refused`: the one the server just
    /// refused); `None` for a password inbox. A provider that refuses to renew the sign-in
    /// leaves the email queued for later (the inbox shows `needs_reauth`).
    async fn bearer(
        &self,
        inbox: &Inbox,
        refused: Option<&str>,
    ) -> Result<Option<String>, Attempt> {
        if inbox.settings.smtp.auth != postdesk_core::model::MailAuth::OAuth2 {
            return Ok(None);
        }
        match self.oauth.access_token(inbox.id, refused).await {
            Ok(token) => Ok(Some(token)),
            Err(e @ (TokenError::NeedsReauth(_) | TokenError::NotConnected(_))) => {
                Err(Attempt::WaitForReconnect {
                    reason: format!("Not sent yet, kept in the outbox: {e}"),
                })
            }
            Err(TokenError::Unavailable(e)) => Err(Attempt::Done(
                SendOutcome::Retry {
                    reason: format!("The OAuth2 provider cannot be reached: {e:#}"),
                },
                SendFailure::Auth,
            )),
        }
    }

    /// One delivery attempt with `token` (or the password); the outer error is a transport
    /// that cannot be built from the settings.
    async fn send_once(
        &self,
        inbox: &Inbox,
        token: Option<&str>,
        envelope: &Envelope,
        mime: &[u8],
    ) -> anyhow::Result<Result<SmtpResult, tokio::time::error::Elapsed>> {
        let transport = self.transport(inbox, token)?;
        Ok(tokio::time::timeout(SEND_TIMEOUT, transport.send_raw(envelope, mime)).await)
    }

    fn transport(
        &self,
        inbox: &Inbox,
        token: Option<&str>,
    ) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let smtp = &inbox.settings.smtp;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(60)));
        let tls = || {
            TlsParameters::builder(smtp.host.clone())
                .dangerous_accept_invalid_certs(!smtp.tls_verify)
                .build_rustls()
                .context("Invalid TLS settings for the SMTP server")
        };
        builder = match smtp.security {
            Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
            Security::Starttls => builder.tls(Tls::Required(tls()?)),
            Security::None => builder.tls(Tls::None),
        };
        if let Some(token) = token {
            let user = if smtp.username.is_empty() {
                inbox.settings.email.clone()
            } else {
                smtp.username.clone()
            };
            crate::redact::register_bearer(&user, token);
            builder = builder
                .authentication(vec![Mechanism::Xoauth2])
                .credentials(Credentials::new(user, token.to_owned()));
        } else if !smtp.username.is_empty() {
            let password = self.secrets.decrypt_string(&smtp.password_encrypted)?;
            crate::redact::register_credentials(&smtp.username, &password);
            builder = builder.credentials(Credentials::new(smtp.username.clone(), password));
        }
        Ok(builder.build())
    }

    /// Connects to the inbox's SMTP server, greets and authenticates, sending nothing: the
    /// "Test connection" check.
    ///
    /// # Errors
    /// The server's or the connection's error text.
    pub async fn check_connection(&self, inbox: &Inbox) -> anyhow::Result<()> {
        let token = match self.bearer(inbox, None).await {
            Ok(token) => token,
            Err(
                Attempt::WaitForReconnect { reason }
                | Attempt::Done(SendOutcome::Retry { reason } | SendOutcome::Failed { reason }, _),
            ) => anyhow::bail!("{reason}"),
            Err(Attempt::Done(SendOutcome::Sent, _)) => None,
        };
        let transport = self.transport(inbox, token.as_deref())?;
        let server = format!("{}:{}", inbox.settings.smtp.host, inbox.settings.smtp.port);
        let ok = tokio::time::timeout(SEND_TIMEOUT, transport.test_connection())
            .await
            .with_context(|| format!("SMTP server {server} did not answer in time"))?
            .with_context(|| format!("Cannot connect to SMTP server {server}"))?;
        anyhow::ensure!(ok, "SMTP server {server} did not accept the connection");
        Ok(())
    }

    /// Appends every Sent-folder copy that is due now; returns how many attempts were made.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn copy_due(&self) -> anyhow::Result<usize> {
        let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let mut attempts = 0;
        while let Some(copy) = self.store.claim_sent_copy(lease).await? {
            attempts += 1;
            let outcome = match self.copy(&copy).await {
                Ok(outcome) => outcome,
                Err(e) if copy.attempts >= MAX_ATTEMPTS => CopyOutcome::Failed {
                    reason: format!("Gave up after {} attempts: {e:#}", copy.attempts),
                },
                Err(e) => {
                    let delay = retry_delay(copy.attempts, rand::random::<f64>());
                    CopyOutcome::Retry {
                        reason: format!("{e:#}"),
                        at: postdesk_store::now_ms()
                            + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                    }
                }
            };
            match &outcome {
                CopyOutcome::Done => {
                    tracing::debug!(message_id = %copy.message_id, "Copy appended to the Sent folder");
                }
                CopyOutcome::Off { reason } => {
                    tracing::info!(message_id = %copy.message_id, inbox = %copy.inbox_id, "No copy in the Sent folder: {reason}");
                }
                CopyOutcome::Retry { reason, .. } => {
                    tracing::warn!(message_id = %copy.message_id, inbox = %copy.inbox_id, attempt = copy.attempts, "Appending the copy to the Sent folder failed, will retry: {reason}");
                }
                CopyOutcome::Failed { reason } => {
                    tracing::error!(message_id = %copy.message_id, inbox = %copy.inbox_id, "The copy was not appended to the Sent folder: {reason}");
                }
            }
            self.store.finish_sent_copy(&copy, &outcome).await?;
        }
        Ok(attempts)
    }

    /// One attempt to put a sent email's copy in its inbox's Sent folder.
    async fn copy(&self, copy: &SentCopy) -> anyhow::Result<CopyOutcome> {
        let Some(inbox) = self.store.find_inbox(copy.inbox_id).await? else {
            return Ok(CopyOutcome::Off {
                reason: "the inbox no longer exists".into(),
            });
        };
        let folder = inbox.settings.imap_sent_mailbox.as_deref();
        if folder == Some("") {
            return Ok(CopyOutcome::Off {
                reason: "copies are turned off for this inbox (imap.sent_mailbox is empty)".into(),
            });
        }
        let message = self
            .store
            .find_message(copy.message_id)
            .await?
            .context("The sent message no longer exists")?;
        let message_id = message
            .email
            .as_ref()
            .map(|e| e.message_id.clone())
            .context("The sent message has no Message-ID")?;
        let settings = crate::imap::ImapSettings::of(&inbox, &self.secrets, &self.oauth)?;
        let sent_at =
            chrono::DateTime::from_timestamp_millis(copy.sent_at).unwrap_or_else(chrono::Utc::now);
        Ok(
            match crate::imap::append_sent_copy(&settings, folder, &message_id, &copy.mime, sent_at)
                .await?
            {
                crate::imap::Appended::Stored { .. } | crate::imap::Appended::AlreadyThere { .. } => {
                    CopyOutcome::Done
                }
                crate::imap::Appended::NoSentFolder => CopyOutcome::Off {
                    reason: "no folder of the mailbox has the \\Sent flag; name one in the inbox's settings (imap.sent_mailbox)".into(),
                },
            },
        )
    }

    /// Delivers due emails until `stop` turns true, sleeping until the next is due or a new
    /// one is queued; beside it, a second loop appends the Sent-folder copies, so a slow IMAP
    /// server never holds a delivery up.
    pub async fn run_until_stopped(self, stop: watch::Receiver<bool>) {
        let copies = {
            let outbox = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let store = outbox.store.clone();
                let wake = Arc::clone(&outbox.copy_wake);
                work_until_stopped(
                    "Sent folder copies",
                    || outbox.copy_due(),
                    || store.next_sent_copy_due(),
                    &wake,
                    stop,
                )
                .await;
            })
        };
        let store = self.store.clone();
        work_until_stopped(
            "deliveries",
            || self.send_due(),
            || store.next_outbox_due(),
            &self.wake,
            stop,
        )
        .await;
        let _ = copies.await;
    }
}

/// Runs `work` until `stop` turns true, then sleeps until `next_due` (ms), a wake, or
/// [`MAX_SLEEP`], whichever is first.
async fn work_until_stopped<W, N, WF, NF>(
    what: &str,
    work: W,
    next_due: N,
    wake: &Notify,
    mut stop: watch::Receiver<bool>,
) where
    W: Fn() -> WF,
    WF: std::future::Future<Output = anyhow::Result<usize>>,
    N: Fn() -> NF,
    NF: std::future::Future<Output = postdesk_store::Result<Option<i64>>>,
{
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = work().await {
            tracing::warn!("Outbox worker ({what}): {e:#}");
        }
        let sleep = match next_due().await {
            Ok(Some(due)) => {
                let ms = u64::try_from(due - postdesk_store::now_ms()).unwrap_or(0);
                Duration::from_millis(ms).min(MAX_SLEEP)
            }
            _ => MAX_SLEEP,
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Whether an SMTP error is the server refusing the OAuth2 access token: `535` (RFC 4954),
/// or lettre 0.11 giving up at the error challenge (`334` with JSON) that Google's XOAUTH2
/// and Dovecot send before their 535: lettre answers it with "This mechanism does not expect a
/// challenge" and no status.
fn bearer_refused(e: &lettre::transport::smtp::Error) -> bool {
    match e.status() {
        Some(code) => u16::from(code) == 535,
        None => e.to_string().contains("does not expect a challenge"),
    }
}

/// An SMTP error in words, lettre's unhelpful one about the error challenge explained.
fn smtp_words(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    if e.status().is_none() && text.contains("does not expect a challenge") {
        "the server answered the access token with an error challenge (334), i.e. refused it (535)"
            .into()
    } else {
        text
    }
}

fn envelope(item: &OutboxItem) -> anyhow::Result<Envelope> {
    let from = item
        .mail_from
        .parse()
        .with_context(|| format!("Invalid sender address {:?}", item.mail_from))?;
    let to = item
        .rcpt_to
        .iter()
        .map(|r| {
            r.parse()
                .with_context(|| format!("Invalid recipient address {r:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Envelope::new(Some(from), to).context("Invalid envelope")
}
