//! This node among others on one database: who it is, and the leases that let exactly one node
//! read each inbox (the readers themselves are in [`crate::imap`]).
//!
//! A node claims the free or expired leases of active inboxes and renews the ones it holds
//! every [`HEARTBEAT`], each for [`LEASE`] by the database's clock (the store's `cluster`
//! module). It does not trust the database's clock for itself: a lease is valid, on this node,
//! until [`LEASE`] minus [`SAFETY_MARGIN`] after the moment its last successful renewal was
//! *sent*, by this process's monotonic clock ([`Lease`]). The database's lease ends later than
//! that, so another node can claim it only after this one stopped using it. A reader checks
//! its lease before every IMAP command and read ([`Fenced`]), before recording the inbox's
//! state, and stops the moment it lapses; its writes of fetched emails are also fenced in the
//! database by the lease's epoch. A process paused for longer than the lease (SIGSTOP, a
//! virtual machine's pause, a network partition) therefore finds its leases lapsed when it
//! runs again, and stops at once without touching the mailbox or the store; it reads again
//! only once it holds a lease again.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use postdesk_core::ids::InboxId;
use postdesk_store::{Fence, NodeInfo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a node says it is alive, renews its leases and claims free ones.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a lease lasts from its last renewal (by the database's clock). With
/// [`HEARTBEAT`], another node takes a dead node's inbox within `LEASE + HEARTBEAT`.
pub const LEASE: Duration = Duration::from_secs(10);

/// How much earlier than the database a node considers its own lease over: room for the
/// time between checking the lease and the command it guards, and for clocks that run at
/// slightly different speeds.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(3);

/// A node whose last heartbeat is older than this is shown as not alive.
pub const ALIVE: Duration = LEASE;

/// [`LEASE`] in ms, as the store takes it.
#[must_use]
pub fn lease_ms() -> i64 {
    i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX)
}

/// This process, as it introduces itself to the others: a random id per start, the machine,
/// the process id, the version.
#[must_use]
pub fn this_node() -> NodeInfo {
    use rand::Rng as _;
    let random: u64 = rand::thread_rng().r#gen();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    NodeInfo {
        id: format!("{random:016x}"),
        hostname,
        pid: i64::from(std::process::id()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: postdesk_store::now_ms(),
    }
}

/// The lease a reader reads under. Cheap to clone; every clone sees renewals and the end.
#[derive(Debug, Clone)]
pub struct Lease {
    held: Option<Arc<Held>>,
}

#[derive(Debug)]
struct Held {
    inbox: InboxId,
    fence: Fence,
    /// Until when the lease is valid on this node; `None` once lost.
    until: watch::Sender<Option<Instant>>,
}

impl Lease {
    /// No lease: never lapses (outside the readers: Test connection, Sent-folder copies).
    #[must_use]
    pub fn unfenced() -> Self {
        Self { held: None }
    }

    /// `node_id`'s lease of `inbox` with `epoch`, valid on this node until `until`.
    #[must_use]
    pub fn held(inbox: InboxId, node_id: &str, epoch: i64, until: Instant) -> Self {
        Self {
            held: Some(Arc::new(Held {
                inbox,
                fence: Fence {
                    node_id: node_id.to_owned(),
                    epoch,
                },
                until: watch::channel(Some(until)).0,
            })),
        }
    }

    /// Whether the lease is valid now, by this node's clock.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.held.as_ref().is_none_or(|held| {
            held.until
                .borrow()
                .is_some_and(|until| Instant::now() < until)
        })
    }

    /// The epoch, when held.
    #[must_use]
    pub fn epoch(&self) -> Option<i64> {
        self.held.as_ref().map(|held| held.fence.epoch)
    }

    /// What the store fences writes made under the lease with.
    #[must_use]
    pub fn fence(&self) -> Option<&Fence> {
        self.held.as_ref().map(|held| &held.fence)
    }

    /// A renewal sent at `sent` succeeded: valid until `sent` plus the lease, minus the
    /// margin.
    pub fn renewed(&self, sent: Instant) {
        if let Some(held) = &self.held {
            held.until.send_modify(|until| {
                if until.is_some() {
                    *until = Some(sent + LEASE - SAFETY_MARGIN);
                }
            });
        }
    }

    /// The lease is lost (another node holds it, or it was given up): it lapses now.
    pub fn lose(&self) {
        if let Some(held) = &self.held {
            held.until.send_replace(None);
        }
    }

    /// Completes when the lease lapses (never, without a lease).
    pub async fn lapsed(&self) {
        let Some(held) = &self.held else {
            return std::future::pending().await;
        };
        let mut until = held.until.subscribe();
        loop {
            let Some(at) = *until.borrow_and_update() else {
                return;
            };
            if Instant::now() >= at {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                changed = until.changed() => if changed.is_err() { return },
            }
        }
    }

    /// The error an IMAP step gets once the lease lapsed.
    fn lapsed_error(&self) -> std::io::Error {
        let inbox = self.held.as_ref().map(|h| h.inbox);
        std::io::Error::other(LeaseLapsed(inbox))
    }
}

/// This node's lease of an inbox lapsed: its reader stops.
#[derive(Debug, thiserror::Error)]
#[error("this node's lease of inbox {} lapsed: another node may read it now", .0.map_or_else(String::new, |i| i.to_string()))]
pub struct LeaseLapsed(pub Option<InboxId>);

/// A connection to the mail server that works only while its lease is valid: once the lease
/// lapsed, every read and write fails (closing still works), so no IMAP command goes out and
/// nothing the server sends is taken in.
#[derive(Debug)]
pub struct Fenced<S> {
    inner: S,
    lease: Lease,
}

impl<S> Fenced<S> {
    /// `inner`, fenced by `lease`.
    pub fn new(inner: S, lease: Lease) -> Self {
        Self { inner, lease }
    }

    fn check(&self) -> Result<(), std::io::Error> {
        if self.lease.is_valid() {
            Ok(())
        } else {
            Err(self.lease.lapsed_error())
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Fenced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Fenced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn a_lease_lapses_by_this_nodes_clock_unless_renewed() {
        let lease = Lease::held(InboxId(1), "n", 3, Instant::now() + 100 * MS);
        assert!(lease.is_valid());
        assert_eq!(lease.epoch(), Some(3));
        assert_eq!(lease.fence().unwrap().node_id, "n");
        // A renewal sent long ago ends its lease 150 ms from now.
        lease.renewed(Instant::now() + 150 * MS - (LEASE - SAFETY_MARGIN));
        tokio::time::sleep(120 * MS).await;
        assert!(lease.is_valid(), "renewed past its first end");
        let watcher = tokio::spawn({
            let lease = lease.clone();
            async move { lease.lapsed().await }
        });
        tokio::time::timeout(Duration::from_secs(2), watcher)
            .await
            .expect("lapsed() completes when the time comes")
            .unwrap();
        assert!(!lease.is_valid());
        // Lost: no renewal brings it back, and lapsed() completes at once.
        let lost = Lease::held(InboxId(1), "n", 4, Instant::now() + LEASE);
        lost.lose();
        lost.renewed(Instant::now());
        assert!(!lost.is_valid());
        tokio::time::timeout(MS * 100, lost.lapsed()).await.unwrap();
        assert!(Lease::unfenced().is_valid());
        assert!(
            tokio::time::timeout(MS * 50, Lease::unfenced().lapsed())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_fenced_connection_neither_reads_nor_writes_once_its_lease_lapsed() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let lease = Lease::held(InboxId(7), "n", 1, Instant::now() + 200 * MS);
        let mut fenced = Fenced::new(ours, lease);
        fenced.write_all(b"a1 NOOP\r\n").await.unwrap();
        let mut got = [0u8; 9];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"a1 NOOP\r\n");
        theirs.write_all(b"* 3 EXISTS\r\n").await.unwrap();
        tokio::time::sleep(250 * MS).await;
        let mut buf = [0u8; 16];
        let read = fenced.read(&mut buf).await.unwrap_err();
        assert!(read.to_string().contains("lapsed"), "{read}");
        let write = fenced.write_all(b"a2 DONE\r\n").await.unwrap_err();
        assert!(write.to_string().contains("inbox 7"), "{write}");
        drop(fenced);
        let mut rest = Vec::new();
        theirs.read_to_end(&mut rest).await.unwrap();
        assert!(
            rest.is_empty(),
            "nothing was sent after the lapse: {rest:?}"
        );
    }
}
