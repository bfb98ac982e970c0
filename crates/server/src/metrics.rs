//! What an operator watches postdesk by: counters, gauges and latency histograms, served by
//! `GET /metrics` in the Prometheus text format (see docs/operations.md for every metric).
//!
//! One [`Metrics`] per server (in [`crate::web::AppState`], and handed to the readers, the
//! SMTP ingress, the processing and the outbox), so that two servers in one process (the
//! tests) keep their own counts. Updating is an atomic add on a hot path; the gauges that
//! describe a state rather than events (inbox readers, database pool, event streams) are
//! read when the metrics are asked for ([`Metrics::render`]), so they cannot drift.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use postdesk_core::ids::InboxId;
use postdesk_core::model::InboxState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry, Unit};

/// The `Content-Type` of the Prometheus text exposition format (version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every state an inbox's reader can be in, each always shown (0 when no inbox is in it), so
/// that an alert on one of them has a series to watch.
const READER_STATES: [InboxState; 6] = [
    InboxState::Connecting,
    InboxState::Syncing,
    InboxState::Idle,
    InboxState::Error,
    InboxState::NeedsReauth,
    InboxState::Stopped,
];

/// Upper bounds (seconds) of the ingest latency buckets: from an email stored raw to its
/// message in a conversation, normally well under a second.
const INGEST_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// Upper bounds (seconds) of the delivery latency buckets: from an email queued to the SMTP
/// server accepting it, seconds normally, hours when retried through an outage.
const DELIVERY_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0,
];

/// How an email entered postdesk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Fetched from the inbox's mailbox over IMAP.
    Imap,
    /// Received by postdesk's own SMTP ingress.
    Smtp,
}

/// What processing did with an email that was not quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// Added to a conversation (a new one or an existing one).
    Added,
    /// The inbox already had it (same Message-ID and content).
    Duplicate,
    /// A bounce or delay warning of one of our emails, recorded on that email.
    DeliveryReport,
}

/// Why a delivery attempt did not succeed, by what the SMTP server or the connection said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// A 4xx reply (temporary, by RFC 5321), authentication replies aside.
    Smtp4xx,
    /// A 5xx reply (permanent, by RFC 5321; 552 is retried), authentication replies aside.
    Smtp5xx,
    /// No reply: the server could not be reached, the connection dropped or timed out.
    Network,
    /// Signing in failed: the server refused the password or the OAuth2 token (530, 534,
    /// 535, 538), or the OAuth2 provider could not renew the sign-in.
    Auth,
    /// Anything else: the inbox is gone, its settings are invalid, the database failed.
    Other,
}

impl SendFailure {
    /// The class of an SMTP reply code that refused an email.
    #[must_use]
    pub fn of_reply(code: u16) -> Self {
        match code {
            530 | 534 | 535 | 538 => Self::Auth,
            400..=499 => Self::Smtp4xx,
            _ => Self::Smtp5xx,
        }
    }

    /// The `class` label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp4xx => "4xx",
            Self::Smtp5xx => "5xx",
            Self::Network => "network",
            Self::Auth => "auth",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchedLabels {
    inbox: i64,
    via: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessedLabels {
    inbox: i64,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InboxLabels {
    inbox: i64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

struct Inner {
    registry: Registry,
    fetched: Family<FetchedLabels, Counter>,
    processed: Family<ProcessedLabels, Counter>,
    quarantined: Family<InboxLabels, Counter>,
    ingest_latency: Histogram,
    outbox_queued: Counter,
    outbox_sent: Counter,
    outbox_retried: Family<ClassLabels, Counter>,
    outbox_failed: Family<ClassLabels, Counter>,
    delivery_latency: Histogram,
    sse_clients: Gauge,
    inbox_readers: Family<StateLabels, Gauge>,
    db_connections: Family<StateLabels, Gauge>,
    db_connections_max: Gauge,
}

/// The server's metrics: cheap to clone (one shared registry), cheap to update.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers metrics and hands each back, to update.
struct Adder<'r>(&'r mut Registry);

impl Adder<'_> {
    /// `metric` as `postdesk_{name}` (plus `_total` for a counter), with `help`.
    fn metric<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0.register(name, help, metric.clone());
        metric
    }

    /// `metric` in seconds, as `postdesk_{name}_seconds`.
    fn seconds<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0
            .register_with_unit(name, help, Unit::Seconds, metric.clone());
        metric
    }
}

/// Milliseconds between two Unix-millisecond times, in seconds (never negative: clocks of
/// two nodes may differ a little).
fn seconds_between(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms - from_ms).max(0) as f64 / 1000.0
}

impl Metrics {
    /// Every metric registered, at zero; the process start time and build set now.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("postdesk");
        let mut add = Adder(&mut registry);
        let fetched = add.metric(
            "emails_fetched",
            "Emails stored raw for an inbox, before processing: fetched over IMAP or received by the SMTP ingress",
            Family::default(),
        );
        let processed = add.metric(
            "emails_processed",
            "Emails processed, by outcome: added to a conversation, a duplicate the inbox had, or a delivery report of one of our emails",
            Family::default(),
        );
        let quarantined = add.metric(
            "emails_quarantined",
            "Emails set aside because they could not be parsed or stored (listed for admins with a Reprocess action)",
            Family::default(),
        );
        let ingest_latency = add.seconds(
            "ingest_latency",
            "Time from an email stored raw (fetched or received) to its message stored in a conversation",
            Histogram::new(INGEST_BUCKETS),
        );
        let outbox_queued = add.metric(
            "outbox_queued",
            "Emails queued to send: Reply via Email and Send via Email as attachment",
            Counter::default(),
        );
        let outbox_sent = add.metric(
            "outbox_sent",
            "Emails the SMTP server accepted",
            Counter::default(),
        );
        let outbox_retried: Family<ClassLabels, Counter> = add.metric(
            "outbox_retried",
            "Delivery attempts that failed and will be tried again, by class: 4xx, 5xx (552), network, auth, other",
            Family::default(),
        );
        let outbox_failed: Family<ClassLabels, Counter> = add.metric(
            "outbox_failed",
            "Emails failed for good (refused, or given up after the last attempt), by the class of the last failure: 4xx, 5xx, network, auth, other",
            Family::default(),
        );
        let delivery_latency = add.seconds(
            "outbox_delivery_latency",
            "Time from an email queued to the SMTP server accepting it, retries included",
            Histogram::new(DELIVERY_BUCKETS),
        );
        let sse_clients = add.metric(
            "sse_clients",
            "Event streams (browser tabs) connected to this node",
            Gauge::default(),
        );
        let inbox_readers = add.metric(
            "inbox_readers",
            "Inboxes whose IMAP reader is in each state (connecting, syncing, idle, error, needs_reauth, stopped), as recorded in the database",
            Family::default(),
        );
        let db_connections = add.metric(
            "db_connections",
            "Open connections of this node's database pool, by state: in_use or idle",
            Family::default(),
        );
        let db_connections_max = add.metric(
            "db_connections_max",
            "The most connections this node's database pool opens",
            Gauge::default(),
        );
        let start_time = add.seconds(
            "process_start_time",
            "When this server started, in seconds since the Unix epoch",
            Gauge::<f64, AtomicU64>::default(),
        );
        start_time.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        add.0.register(
            "build",
            "The version of postdesk running (always 1)",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        // Each class has a series from the start, so that the first failure is an increase.
        for class in [
            SendFailure::Smtp4xx,
            SendFailure::Smtp5xx,
            SendFailure::Network,
            SendFailure::Auth,
            SendFailure::Other,
        ] {
            let labels = ClassLabels {
                class: class.as_str(),
            };
            let _ = outbox_retried.get_or_create(&labels);
            let _ = outbox_failed.get_or_create(&labels);
        }
        Self(Arc::new(Inner {
            registry,
            fetched,
            processed,
            quarantined,
            ingest_latency,
            outbox_queued,
            outbox_sent,
            outbox_retried,
            outbox_failed,
            delivery_latency,
            sse_clients,
            inbox_readers,
            db_connections,
            db_connections_max,
        }))
    }

    /// `count` emails of `inbox` stored raw, arrived `via` IMAP or SMTP.
    pub fn fetched(&self, inbox: InboxId, via: Via, count: usize) {
        let via = match via {
            Via::Imap => "imap",
            Via::Smtp => "smtp",
        };
        self.0
            .fetched
            .get_or_create(&FetchedLabels {
                inbox: inbox.0,
                via,
            })
            .inc_by(count as u64);
    }

    /// One email of `inbox` processed with `outcome`; for an added one, `fetched_at` (ms) is
    /// when it was stored raw, for the ingest latency.
    pub fn processed(&self, inbox: InboxId, outcome: Processed, fetched_at: Option<i64>) {
        let outcome = match outcome {
            Processed::Added => "added",
            Processed::Duplicate => "duplicate",
            Processed::DeliveryReport => "delivery_report",
        };
        self.0
            .processed
            .get_or_create(&ProcessedLabels {
                inbox: inbox.0,
                outcome,
            })
            .inc();
        if let Some(at) = fetched_at {
            self.0
                .ingest_latency
                .observe(seconds_between(at, postdesk_store::now_ms()));
        }
    }

    /// One email of `inbox` quarantined.
    pub fn quarantined(&self, inbox: InboxId) {
        self.0
            .quarantined
            .get_or_create(&InboxLabels { inbox: inbox.0 })
            .inc();
    }

    /// One email queued to send.
    pub fn outbox_queued(&self) {
        self.0.outbox_queued.inc();
    }

    /// One email accepted by its SMTP server, queued at `queued_at` (ms).
    pub fn outbox_sent(&self, queued_at: i64) {
        self.0.outbox_sent.inc();
        self.0
            .delivery_latency
            .observe(seconds_between(queued_at, postdesk_store::now_ms()));
    }

    /// One delivery attempt failed for `why`, to be tried again.
    pub fn outbox_retried(&self, why: SendFailure) {
        self.0
            .outbox_retried
            .get_or_create(&ClassLabels {
                class: why.as_str(),
            })
            .inc();
    }

    /// One email failed for good, last for `why`.
    pub fn outbox_failed(&self, why: SendFailure) {
        self.0
            .outbox_failed
            .get_or_create(&ClassLabels {
                class: why.as_str(),
            })
            .inc();
    }

    /// The exposition text, with the gauges of the moment set first: how many inboxes are in
    /// each reader state (`readers`: every inbox and its state, from the database), the
    /// database pool's use, and the event streams open on this node. Each inbox's counters
    /// of IMAP fetches, additions and quarantines are shown from 0 before their first event,
    /// so that an alert sees that event as an increase.
    #[must_use]
    pub fn render(
        &self,
        readers: &[(InboxId, InboxState)],
        pool: postdesk_store::PoolUse,
        sse_clients: usize,
    ) -> String {
        for (inbox, _) in readers {
            let inbox = inbox.0;
            let _ = self
                .0
                .fetched
                .get_or_create(&FetchedLabels { inbox, via: "imap" });
            let _ = self.0.processed.get_or_create(&ProcessedLabels {
                inbox,
                outcome: "added",
            });
            let _ = self.0.quarantined.get_or_create(&InboxLabels { inbox });
        }
        for state in READER_STATES {
            let count = readers.iter().filter(|(_, s)| *s == state).count();
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.0
                .inbox_readers
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(count);
        }
        let gauge = |state| {
            self.0
                .db_connections
                .get_or_create_owned(&StateLabels { state })
        };
        gauge("in_use").set(i64::from(pool.open.saturating_sub(pool.idle)));
        gauge("idle").set(i64::from(pool.idle));
        self.0.db_connections_max.set(i64::from(pool.max));
        self.0
            .sse_clients
            .set(i64::try_from(sse_clients).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.0.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn updates_show_in_the_text_with_their_labels() {
        let metrics = Metrics::new();
        let idle = postdesk_store::PoolUse {
            open: 1,
            idle: 1,
            max: 4,
        };
        let before = metrics.render(&[], idle, 0);
        assert_eq!(
            sample(&before, "postdesk_inbox_readers{state=\"needs_reauth\"}"),
            Some(0.0),
            "every state has a series from the start:\n{before}"
        );
        assert_eq!(
            sample(&before, "postdesk_outbox_failed_total{class=\"5xx\"}"),
            Some(0.0),
            "every failure class too:\n{before}"
        );
        assert!(before.contains("# TYPE postdesk_ingest_latency_seconds histogram"));
        assert!(before.contains("postdesk_build_info{version=\""));

        metrics.fetched(InboxId(3), Via::Imap, 2);
        metrics.processed(InboxId(3), Processed::Added, Some(postdesk_store::now_ms()));
        metrics.quarantined(InboxId(3));
        metrics.outbox_queued();
        metrics.outbox_sent(postdesk_store::now_ms() - 1500);
        metrics.outbox_retried(SendFailure::of_reply(451));
        metrics.outbox_failed(SendFailure::of_reply(535));
        let after = metrics.render(
            &[
                (InboxId(3), InboxState::Idle),
                (InboxId(4), InboxState::Error),
                (InboxId(5), InboxState::Idle),
            ],
            postdesk_store::PoolUse {
                open: 3,
                idle: 1,
                max: 4,
            },
            5,
        );
        assert!(after.contains("# HELP postdesk_emails_fetched_total Emails stored raw"));
        for (series, value) in [
            (
                "postdesk_emails_fetched_total{inbox=\"3\",via=\"imap\"}",
                2.0,
            ),
            (
                "postdesk_emails_processed_total{inbox=\"3\",outcome=\"added\"}",
                1.0,
            ),
            ("postdesk_emails_quarantined_total{inbox=\"3\"}", 1.0),
            ("postdesk_emails_quarantined_total{inbox=\"4\"}", 0.0),
            (
                "postdesk_emails_fetched_total{inbox=\"5\",via=\"imap\"}",
                0.0,
            ),
            ("postdesk_ingest_latency_seconds_count", 1.0),
            ("postdesk_outbox_queued_total", 1.0),
            ("postdesk_outbox_sent_total", 1.0),
            (
                "postdesk_outbox_delivery_latency_seconds_bucket{le=\"1\"}",
                0.0,
            ),
            (
                "postdesk_outbox_delivery_latency_seconds_bucket{le=\"2.5\"}",
                1.0,
            ),
            ("postdesk_outbox_retried_total{class=\"4xx\"}", 1.0),
            ("postdesk_outbox_failed_total{class=\"auth\"}", 1.0),
            ("postdesk_inbox_readers{state=\"idle\"}", 2.0),
            ("postdesk_inbox_readers{state=\"error\"}", 1.0),
            ("postdesk_inbox_readers{state=\"connecting\"}", 0.0),
            ("postdesk_db_connections{state=\"in_use\"}", 2.0),
            ("postdesk_db_connections{state=\"idle\"}", 1.0),
            ("postdesk_db_connections_max", 4.0),
            ("postdesk_sse_clients", 5.0),
        ] {
            assert_eq!(sample(&after, series), Some(value), "{series}:\n{after}");
        }
    }

    #[test]
    fn smtp_replies_are_classed_with_sign_in_refusals_apart() {
        assert_eq!(SendFailure::of_reply(421), SendFailure::Smtp4xx);
        assert_eq!(SendFailure::of_reply(552), SendFailure::Smtp5xx);
        assert_eq!(SendFailure::of_reply(550), SendFailure::Smtp5xx);
        assert_eq!(SendFailure::of_reply(535), SendFailure::Auth);
        assert_eq!(SendFailure::of_reply(530), SendFailure::Auth);
    }
}
