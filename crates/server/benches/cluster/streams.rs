//! Many `GET /api/v1/events` streams at once, read as cheaply as possible: one tokio task and
//! one HTTP/1.1 connection each, on one reqwest client. A stream does not parse the events'
//! JSON; it only notes, for each event of the kind it watches, its `id:` and when its bytes
//! were read, and counts the rest (and any `resync`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What one stream received.
#[derive(Debug, Default)]
pub struct Received {
    /// Each watched event: its SSE id and when its bytes were read.
    pub watched: Vec<(u64, Instant)>,
    /// Events of other kinds.
    pub others: usize,
    /// `resync` events: the server dropped events for this stream.
    pub resyncs: usize,
    /// Why the stream ended before it was stopped, if it did.
    pub ended: Option<String>,
}

/// Open streams, read in the background until [`Streams::stop`].
pub struct Streams {
    tasks: Vec<JoinHandle<Received>>,
    stop: watch::Sender<bool>,
    /// Watched events received so far, over every stream.
    pub count: Arc<AtomicUsize>,
}

impl Streams {
    /// Opens one stream per token to `base` (at most `parallel` being opened at a time) and
    /// returns once every one has its response headers: from then on it hears every event
    /// (the server subscribes a stream before it answers). `watch` is the event kind noted.
    pub async fn open(
        base: &str,
        tokens: &[String],
        watch: &'static str,
        parallel: usize,
    ) -> anyhow::Result<Streams> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let count = Arc::new(AtomicUsize::new(0));
        let url = format!("{base}/api/v1/events");
        let opened = futures::stream::iter(tokens.iter().cloned())
            .map(|token| {
                let request = client.get(&url).bearer_auth(token);
                async move {
                    let response = request.send().await?.error_for_status()?;
                    anyhow::Ok(response)
                }
            })
            .buffered(parallel.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut tasks = Vec::with_capacity(tokens.len());
        for response in opened {
            let response = response.context("opening an event stream failed")?;
            tasks.push(tokio::spawn(read(
                response,
                watch,
                stopped.clone(),
                count.clone(),
            )));
        }
        Ok(Streams { tasks, stop, count })
    }

    /// How many streams are open.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Waits until `total` watched events were received over every stream, or `within`
    /// passed; answers whether they all came.
    pub async fn wait_for(&self, total: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.count.load(Ordering::Relaxed) < total {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Closes every stream and answers what each received.
    pub async fn stop(self) -> Vec<Received> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            out.push(task.await.unwrap_or_default());
        }
        out
    }
}

/// Reads one stream until stopped. Blocks end with an empty line; only the `id:` and
/// `event:` lines are looked at.
async fn read(
    response: reqwest::Response,
    watch: &'static str,
    mut stopped: watch::Receiver<bool>,
    count: Arc<AtomicUsize>,
) -> Received {
    let mut received = Received::default();
    let mut body = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            _ = stopped.changed() => return received,
        };
        let at = Instant::now();
        let chunk = match chunk {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                received.ended = Some(e.to_string());
                return received;
            }
            None => {
                received.ended = Some("the server ended the stream".into());
                return received;
            }
        };
        buffer.extend_from_slice(&chunk);
        let mut consumed = 0;
        while let Some(end) = find_block_end(&buffer[consumed..]) {
            let block = &buffer[consumed..consumed + end];
            consumed += end + 2;
            let (mut id, mut kind): (Option<u64>, &[u8]) = (None, b"");
            for line in block.split(|b| *b == b'\n') {
                if let Some(v) = line.strip_prefix(b"id:") {
                    id = std::str::from_utf8(v)
                        .ok()
                        .and_then(|v| v.trim().parse().ok());
                } else if let Some(v) = line.strip_prefix(b"event:") {
                    kind = v.trim_ascii();
                }
            }
            if kind == watch.as_bytes() {
                received.watched.push((id.unwrap_or(0), at));
                count.fetch_add(1, Ordering::Relaxed);
            } else if kind == b"resync" {
                received.resyncs += 1;
            } else if !kind.is_empty() {
                received.others += 1;
            }
        }
        buffer.drain(..consumed);
    }
}

/// Where the first `\n\n` starts.
fn find_block_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n")
}
