//! The listeners' bounds. Every connection costs the daemon a file descriptor, and a client can
//! hold one open for free by sending half a request line. With no bound, ~1,100 such clients
//! under the usual service limit of 1,024 descriptors left steward unable to accept `/healthz`,
//! the webhooks or `daemon.sock`, or to open its own files. So:
//!
//! - hyper's header-read timeout closes a connection that has not sent a request's headers
//!   within `serve.header_read_timeout_secs` of being accepted or of its previous answer (hyper
//!   starts that clock whenever it waits for a request head, so it is the idle timeout of a
//!   kept-alive connection too);
//! - each listener holds a semaphore of connection slots: a connection is accepted only with a
//!   slot and gives it back when it closes. Past the cap, new connections wait in the kernel's
//!   backlog, which costs steward no descriptor;
//! - the caps are derived from the open-file limit (`RLIMIT_NOFILE`, soft) at start, so that a
//!   reserve of descriptors always stays for steward's own files, runs and probes, and the local
//!   socket has slots of its own that the TCP listener cannot take.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::Listener;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};

use crate::config::ServeConfig;

/// The most connections `daemon.sock` holds at once: triggers hand over one signal each.
const LOCAL_MAX_CONNECTIONS: usize = 64;

/// The fewest descriptors kept for steward's own use, whatever the limit: the event log, state
/// and queue files, and a run's pipes (claude, probes run in parallel, checks).
const MIN_RESERVE: u64 = 64;
/// The most kept: past this, a higher limit goes to connections (up to the configured cap).
const MAX_RESERVE: u64 = 1024;

/// How long a stopping listener waits for its open connections to finish their requests; the
/// timeouts end every connection within about this anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("cannot read the open-file limit (RLIMIT_NOFILE): {0}")]
    Limit(nix::Error),
    #[error(
        "the open-file limit (RLIMIT_NOFILE) is {soft}: after the {reserve} descriptors kept for \
         steward's own files none is left for connections (raise LimitNOFILE=)"
    )]
    TooFew { soft: u64, reserve: u64 },
}

/// How many connections each listener may hold, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Caps {
    /// The soft open-file limit the caps were derived from.
    pub nofile: u64,
    /// Descriptors kept for steward's own files.
    pub reserve: u64,
    pub tcp: usize,
    pub local: usize,
    /// `serve.max_connections` was lowered to fit the limit.
    pub lowered: bool,
}

impl Caps {
    /// The caps for this process's open-file limit.
    pub fn for_this_process(cfg: &ServeConfig) -> Result<Caps, ConnError> {
        let (soft, _hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .map_err(ConnError::Limit)?;
        Caps::derive(soft, cfg.max_connections)
    }

    /// A quarter of the limit is kept (64 to 1,024 descriptors); the local socket gets up to a
    /// quarter of the rest (at most 64), the TCP listener what remains, up to `max_connections`.
    pub fn derive(soft: u64, max_connections: usize) -> Result<Caps, ConnError> {
        let reserve = (soft / 4).clamp(MIN_RESERVE, MAX_RESERVE);
        let left = usize::try_from(soft.saturating_sub(reserve)).unwrap_or(usize::MAX);
        let local = (left / 4).min(LOCAL_MAX_CONNECTIONS);
        let tcp_room = left - local;
        if local == 0 || tcp_room == 0 {
            return Err(ConnError::TooFew { soft, reserve });
        }
        Ok(Caps {
            nofile: soft,
            reserve,
            tcp: max_connections.min(tcp_room),
            local,
            lowered: max_connections > tcp_room,
        })
    }
}

/// What every connection of a listener is held to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` over HTTP/1 until `stop` turns true, within `bounds`; then waits
/// (at most [`SHUTDOWN_WAIT`]) for the requests in progress.
pub async fn serve<L>(mut listener: L, app: Router, bounds: Bounds, mut stop: watch::Receiver<bool>)
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    let slots = Arc::new(Semaphore::new(bounds.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_read_timeout);
    loop {
        // A slot first: without one, the next connection stays in the kernel's backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        // axum's accept retries errors itself (after a second when out of descriptors).
        let io = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (io, addr) = io;
        let service = WithPeer {
            inner: TowerToHyperService::new(app.clone()),
            peer: addr,
        };
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // A timeout, a reset, a malformed request: the client's business, not an error.
                tracing::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_WAIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {} s after the stop: left to end with the process",
            SHUTDOWN_WAIT.as_secs()
        );
    }
}

/// A connection's service that gives each request its peer address (axum's `ConnectInfo`): the
/// page's login limits count failures per address, and its approvals ask who is calling.
struct WithPeer<S, A> {
    inner: S,
    peer: A,
}

impl<S, A, B> hyper::service::Service<hyper::Request<B>> for WithPeer<S, A>
where
    S: hyper::service::Service<hyper::Request<B>>,
    A: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: hyper::Request<B>) -> Self::Future {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer.clone()));
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_keep_a_reserve_and_slots_for_the_local_socket() {
        // systemd's default for services.
        let c = Caps::derive(1024, 512).unwrap();
        assert_eq!(
            (c.reserve, c.local, c.tcp, c.lowered),
            (256, 64, 512, false)
        );
        assert!(c.tcp + c.local + c.reserve as usize <= 1024);
        let c = Caps::derive(256, 512).unwrap();
        assert_eq!((c.reserve, c.local, c.tcp, c.lowered), (64, 48, 144, true));
        assert!(c.tcp + c.local + c.reserve as usize <= 256);
        let c = Caps::derive(1_048_576, 512).unwrap();
        assert_eq!((c.reserve, c.local, c.tcp), (1024, 64, 512));
        let c = Caps::derive(1_048_576, 100_000).unwrap();
        assert_eq!(c.tcp, 100_000);
        assert!(Caps::derive(64, 512).is_err());
        let c = Caps::derive(72, 512).unwrap();
        assert_eq!((c.local, c.tcp), (2, 6));
    }
}
