//! The HTTP server loop: hyper's HTTP/1 connections with the limits a public server needs,
//! which `axum::serve` does not offer.
//!
//! - **Header-read and idle timeout**: a client must send a request's headers within
//!   `POSTDESK_HTTP_HEADER_TIMEOUT_SECONDS`; hyper starts the same clock when a keep-alive
//!   connection goes idle, so an idle connection is closed after it too. Half-sent requests
//!   (slowloris) and idle sockets cannot pile up.
//! - **Body timeout**: a request's body must arrive within `POSTDESK_HTTP_BODY_TIMEOUT_SECONDS`.
//! - Each request carries the peer's address ([`axum::extract::ConnectInfo`]) for sign-in
//!   throttling, sessions and the audit log.
//! - Graceful shutdown: stop accepting, let requests in flight finish (event streams end on
//!   the server's stop signal), for at most 30 s.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// How long shutting down waits for the connections still open.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The time limits of every connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// To send a request's headers; also the idle time of a keep-alive connection.
    pub header: Duration,
    /// To send a request's body.
    pub body: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes.
///
/// # Errors
/// Never for a single connection's failure (logged at debug); only when the loop itself
/// cannot go on.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: HttpTimeouts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        timeouts.body,
    ));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("Accepting an HTTP connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            app.clone()
                .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    request
                });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.header)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("HTTP connection from {peer} ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "Some HTTP connections were still open {} s after the stop; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}
