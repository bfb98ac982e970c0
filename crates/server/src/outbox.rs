//! Outgoing email: composing a reply (Reply via Email, Send via Email as attachment) and the
//! worker that delivers the outbox over each inbox's SMTP server.
//!
//! Composing writes the email_out message and its outbox row in one transaction, then wakes
//! the worker. The worker claims due rows one at a time (the attempt is counted before
//! sending), sends the stored bytes, and records the outcome on the message: 4xx and network
//! errors are retried with backoff, 5xx fails at once with the server's reason, and after
//! [`MAX_ATTEMPTS`] the email is failed for good. A failed email stays visible with its reason
//! until an agent retries it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use postdesk_core::delivery::{MAX_ATTEMPTS, SendOutcome, retry_delay};
use postdesk_core::event::Event;
use postdesk_core::model::{MessageKind, Security};
use postdesk_core::thread::reply_references;
use postdesk_mail::{Mailbox, OutgoingAttachment, OutgoingEmail};
use postdesk_store::{Addr, Conversation, Inbox, Message, OutboxItem, QueuedEmail, Store, User};
use tokio::sync::{Notify, watch};

use crate::bus::Bus;
use crate::secrets::Secrets;

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
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The outbox: composing and delivering.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Store,
    bus: Bus,
    secrets: Secrets,
    /// Wakes the worker when an email is queued.
    wake: Arc<Notify>,
}

impl Outbox {
    /// An outbox over `store`.
    #[must_use]
    pub fn new(store: Store, bus: Bus, secrets: Secrets) -> Self {
        Self {
            store,
            bus,
            secrets,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the worker.
    pub fn interrupt(&self) {
        self.wake.notify_one();
    }

    /// Queues an email to the conversation's contact, threaded under their latest email.
    /// `source` is a file message whose attachments the email carries.
    ///
    /// # Errors
    /// [`ComposeError::Invalid`] for an empty email; otherwise store or build failures.
    pub async fn reply(
        &self,
        conversation: &Conversation,
        author: &User,
        text: &str,
        source: Option<&Message>,
    ) -> Result<Message, ComposeError> {
        let attachments = match source {
            Some(message) => self.attachment_bytes(message).await?,
            None => Vec::new(),
        };
        if text.trim().is_empty() && attachments.is_empty() {
            return Err(ComposeError::Invalid(
                "an email needs some text or a file".into(),
            ));
        }
        let inbox = self
            .store
            .find_inbox(conversation.inbox_id)
            .await
            .map_err(anyhow::Error::from)?
            .context("The conversation's inbox no longer exists")?;
        let history = self
            .store
            .list_messages(conversation.id)
            .await
            .map_err(anyhow::Error::from)?;
        let parent = history
            .iter()
            .rev()
            .filter(|m| m.kind == MessageKind::EmailIn)
            .find_map(|m| m.email.as_ref());
        let (in_reply_to, references, base_subject) = match parent {
            Some(p) => (
                Some(p.message_id.clone()),
                reply_references(&p.references, &p.message_id, REFERENCES_LIMIT),
                p.subject.clone(),
            ),
            None => (None, Vec::new(), conversation.subject.clone()),
        };
        let domain = postdesk_core::address::EmailAddress::parse(&inbox.settings.email)
            .map(|a| a.domain().to_owned())
            .unwrap_or_else(|_| "postdesk.invalid".to_owned());
        let now = chrono::Utc::now();
        let from = Mailbox {
            name: Some(inbox.settings.sender_name.clone()),
            email: inbox.settings.email.clone(),
        };
        let contact = &conversation.contact;
        let to = Mailbox {
            name: Some(contact.name.clone()).filter(|n| !n.is_empty()),
            email: contact.email.clone(),
        };
        let outgoing = OutgoingEmail {
            from: from.clone(),
            to: vec![to.clone()],
            cc: Vec::new(),
            subject: postdesk_mail::reply_subject(&base_subject),
            message_id: postdesk_mail::new_message_id(&domain),
            in_reply_to,
            references,
            date: now,
            text: text.to_owned(),
            attachments,
        };
        let mime =
            postdesk_mail::build(&outgoing).map_err(|e| ComposeError::Invalid(e.to_string()))?;
        let queued = QueuedEmail {
            text: outgoing.text.clone(),
            message_id: outgoing.message_id.clone(),
            in_reply_to: outgoing.in_reply_to.clone(),
            references: outgoing.references.clone(),
            from: Addr {
                name: from.name,
                email: from.email,
            },
            to: vec![Addr {
                name: to.name,
                email: to.email,
            }],
            cc: Vec::new(),
            subject: outgoing.subject.clone(),
            date: now.timestamp_millis(),
            mime,
            mail_from: inbox.settings.email.clone(),
            rcpt_to: vec![contact.email.clone()],
            source_message_id: source.map(|m| m.id),
        };
        let message = self
            .store
            .queue_email(conversation.id, author.id, &queued)
            .await
            .map_err(anyhow::Error::from)?;
        self.bus.publish(Event::MessageCreated {
            conversation_id: conversation.id,
            message_id: message.id,
        });
        self.interrupt();
        Ok(message)
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
            let outcome = match self.deliver(&item).await {
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
                SendOutcome::Sent => tracing::info!(message = %item.message_id, "Email sent"),
                SendOutcome::Retry { reason } => {
                    tracing::warn!(message = %item.message_id, attempt = item.attempts, "Email send failed, will retry in {}s: {reason}", delay.as_secs());
                }
                SendOutcome::Failed { reason } => {
                    tracing::warn!(message = %item.message_id, "Email failed: {reason}")
                }
            }
            let status = self.store.finish_outbox(&item, &outcome, retry_at).await?;
            self.bus.publish(Event::DeliveryUpdated {
                conversation_id: item.conversation_id,
                message_id: item.message_id,
                status,
            });
        }
        Ok(attempts)
    }

    async fn deliver(&self, item: &OutboxItem) -> SendOutcome {
        let inbox = match self.store.find_inbox(item.inbox_id).await {
            Ok(Some(inbox)) => inbox,
            Ok(None) => {
                return SendOutcome::Failed {
                    reason: "The inbox no longer exists".into(),
                };
            }
            Err(e) => {
                return SendOutcome::Retry {
                    reason: format!("Database: {e}"),
                };
            }
        };
        let transport = match self.transport(&inbox) {
            Ok(t) => t,
            Err(e) => {
                return SendOutcome::Failed {
                    reason: format!("{e:#}"),
                };
            }
        };
        let envelope = match envelope(item) {
            Ok(e) => e,
            Err(e) => {
                return SendOutcome::Failed {
                    reason: format!("{e:#}"),
                };
            }
        };
        let server = format!("{}:{}", inbox.settings.smtp.host, inbox.settings.smtp.port);
        match tokio::time::timeout(SEND_TIMEOUT, transport.send_raw(&envelope, &item.mime)).await {
            Err(_) => SendOutcome::Retry {
                reason: format!(
                    "SMTP server {server} did not finish within {}s",
                    SEND_TIMEOUT.as_secs()
                ),
            },
            Ok(Ok(_)) => SendOutcome::Sent,
            Ok(Err(e)) if e.is_permanent() => SendOutcome::Failed {
                reason: format!("SMTP server {server} refused the email: {e}"),
            },
            Ok(Err(e)) => SendOutcome::Retry {
                reason: format!("SMTP server {server}: {e}"),
            },
        }
    }

    fn transport(&self, inbox: &Inbox) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
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
        if !smtp.username.is_empty() {
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
        let transport = self.transport(inbox)?;
        let server = format!("{}:{}", inbox.settings.smtp.host, inbox.settings.smtp.port);
        let ok = tokio::time::timeout(SEND_TIMEOUT, transport.test_connection())
            .await
            .with_context(|| format!("SMTP server {server} did not answer in time"))?
            .with_context(|| format!("Cannot connect to SMTP server {server}"))?;
        anyhow::ensure!(ok, "SMTP server {server} did not accept the connection");
        Ok(())
    }

    /// Delivers due emails until `stop` turns true, sleeping until the next is due or a new
    /// one is queued.
    pub async fn run_until_stopped(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.send_due().await {
                tracing::warn!("Outbox worker: {e:#}");
            }
            let sleep = match self.store.next_outbox_due().await {
                Ok(Some(due)) => {
                    let ms = u64::try_from(due - postdesk_store::now_ms()).unwrap_or(0);
                    Duration::from_millis(ms).min(MAX_SLEEP)
                }
                _ => MAX_SLEEP,
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => return,
            }
        }
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
