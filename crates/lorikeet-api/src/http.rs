//! The HTTP connection loop: warp's filter served by hyper, as `warp::serve` does,
//! but with our own handling of connection errors. warp logs every failed
//! connection at ERROR, including a client that simply went away (an event-stream
//! client closing its tab: `hyper::Error(IncompleteMessage)`), which is nothing
//! for an operator to act on. Here a client leaving is logged at debug; anything
//! else a connection fails with (a malformed request, an HTTP/2 protocol error) is
//! a misbehaving peer and logged at warn; a failing `accept` is ours and logged at
//! error.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tracing::{debug, error, warn};
use warp::{Filter, Reply};

/// Serves `filter` on `listener` until `shutdown` completes, then stops accepting
/// and waits for the connections in flight (streams end when their handlers see
/// the shutdown).
pub async fn serve_filter<F, R>(
    listener: TcpListener,
    filter: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter<Extract = (R,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let service = warp::service(filter);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(service.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                connection_failed(peer, &*e);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// How a connection ended badly.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// The client closed or reset the connection, or stopped reading: normal for
    /// streams and impatient clients.
    ClientLeft,
    /// Anything else (malformed request, protocol error).
    Other,
}

fn classify(e: &(dyn std::error::Error + 'static)) -> Failure {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message()
                || h.is_canceled()
                || h.is_closed()
                || h.is_body_write_aborted()
                || h.is_timeout()
            {
                return Failure::ClientLeft;
            }
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut
            ) {
                return Failure::ClientLeft;
            }
        }
        cause = c.source();
    }
    Failure::Other
}

fn connection_failed(peer: SocketAddr, e: &(dyn std::error::Error + 'static)) {
    match classify(e) {
        Failure::ClientLeft => debug!(%peer, "HTTP client closed the connection: {e}"),
        Failure::Other => warn!(%peer, "HTTP connection failed: {e}"),
    }
}

async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    // A connection that died between SYN and accept: nothing to do.
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    // E.g. EMFILE (too many open files): the operator must act; back off so the
    // loop does not spin while the condition lasts.
    error!("cannot accept HTTP connections: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_connection_is_a_client_leaving() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&io), Failure::ClientLeft);
        let other = std::io::Error::other("something else");
        assert_eq!(classify(&other), Failure::Other);
    }
}
