//! One accepted connection's life: the TLS handshake, HTTP by hyper, and the watchdog that
//! closes the connection when a client runs out of time, when the server reclaims idle
//! connections, or when it shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokbind_proto::ProvenKeys;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tower::ServiceExt as _;

use crate::activity::{Activity, Tracked};
use crate::limits::Limits;
use crate::server::TokenBindingAcceptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a connection told to close may take to say goodbye (flush a response, send an
/// HTTP/2 GOAWAY and see it answered) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Which connections the server asks to close to get resources back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reclaim {
    /// None (the initial value of the channel).
    Nothing,
    /// Those that have served a request and have none in flight (at the connection limit).
    KeepAlive,
    /// Every one with no request in flight, TLS handshakes included (out of descriptors).
    Idle,
}

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) acceptor: TokenBindingAcceptor,
    pub(crate) http: auto::Builder<TokioExecutor>,
    pub(crate) limits: Limits,
}

/// The server's signals to one connection.
pub(crate) struct Signals {
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) reclaim: watch::Receiver<Reclaim>,
}

/// Serve one accepted TCP connection until it ends; `_permit` is its place under the
/// connection limit.
pub(crate) async fn serve<S, B>(
    shared: Arc<Shared>,
    service: S,
    tcp: TcpStream,
    peer: SocketAddr,
    signals: Signals,
    _permit: OwnedSemaphorePermit,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Signals {
        mut shutdown,
        mut reclaim,
    } = signals;
    // A connection in its handshake has no request in flight: it goes when the server
    // runs out of descriptors, or stops.
    let (tls, info) = tokio::select! {
        accepted = shared.acceptor.accept(tcp) => match accepted {
            Ok(ok) => ok,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
        },
        () = signalled(&mut shutdown) => return,
        () = reclaimed(&mut reclaim, Reclaim::Idle) => {
            tracing::debug!(%peer, "closed in its TLS handshake to reclaim descriptors");
            return;
        }
    };

    let info = Arc::new(info);
    let certificate_key = info.client_certificate_key();
    let service = service.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(Arc::clone(&info));
        // A client certificate proves its key on every request of the connection.
        if let Some(key) = &certificate_key {
            req.extensions_mut().insert(ProvenKeys::one(key.clone()));
        }
        req
    });
    let activity = Arc::new(Activity::new());
    let conn = shared.http.serve_connection_with_upgrades(
        TokioIo::new(tls),
        TowerToHyperService::new(Tracked::new(service, Arc::clone(&activity))),
    );
    let mut conn = std::pin::pin!(conn);

    let limits = &shared.limits;
    let (first, then) = (limits.header_read_timeout, limits.idle_timeout);
    // Requests start and end without waking the watchdog, and a request that ends moves
    // the deadline from `first` after the start to `then` after its end, which may be
    // sooner: looking again at least this often is never late.
    let recheck = first.min(then).max(Duration::from_millis(10));
    // Set once the connection was told to close: when to drop it if it has not.
    let mut closing: Option<Instant> = None;
    let mut shutting_down = false;
    loop {
        let next_look = Instant::now() + recheck;
        let wake = match closing {
            Some(at) => at,
            None => activity
                .deadline(first, then)
                .map_or(next_look, |d| d.min(next_look)),
        };
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(wake.into()) => match closing {
                Some(_) if activity.is_idle() => {
                    tracing::debug!(%peer, "dropped: did not close in time");
                    return;
                }
                // A request got in before the close: hyper finishes it, then closes.
                Some(_) => closing = Some(Instant::now() + CLOSE_GRACE),
                None => {
                    if activity.deadline(first, then).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!(%peer, "closing: no request within the header read or idle timeout");
                        if !shutting_down {
                            conn.as_mut().graceful_shutdown();
                        }
                        closing = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
            },
            () = signalled(&mut shutdown), if !shutting_down => {
                // In-flight requests finish; idle connections close now.
                shutting_down = true;
                if closing.is_none() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            reason = next_reclaim(&mut reclaim), if closing.is_none() => {
                let close = match reason {
                    Reclaim::Nothing => false,
                    Reclaim::KeepAlive => activity.is_kept_alive(),
                    Reclaim::Idle => activity.is_idle(),
                };
                if close {
                    tracing::debug!(%peer, ?reason, "closing an idle connection to reclaim resources");
                    if !shutting_down {
                        conn.as_mut().graceful_shutdown();
                    }
                    closing = Some(Instant::now() + CLOSE_GRACE);
                }
            }
        }
    }
}

/// Resolves once `shutdown` is true (never if the server is gone without saying so).
async fn signalled(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The next reclaim request (never if the server is gone).
async fn next_reclaim(reclaim: &mut watch::Receiver<Reclaim>) -> Reclaim {
    match reclaim.changed().await {
        Ok(()) => *reclaim.borrow_and_update(),
        Err(_) => std::future::pending().await,
    }
}

/// Resolves at the next reclaim request of kind `kind`.
async fn reclaimed(reclaim: &mut watch::Receiver<Reclaim>, kind: Reclaim) {
    while next_reclaim(reclaim).await != kind {}
}
