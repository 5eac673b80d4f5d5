//! One accepted connection's life: the TLS handshake, HTTP by hyper, and the watchdog that
//! closes the connection when a client runs out of time, when the server reclaims idle
//! connections, or when it shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tower::ServiceExt as _;

use crate::accept::{Accept, Accepted};
use crate::activity::{Activity, Tracked};
use crate::io::ServerIo;
use crate::limits::Limits;
use crate::request_body::RequestBody;
use crate::stream_pace::{SlowStreams, StreamExecutor};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a connection told to close may take to say goodbye (flush a response, send an
/// HTTP/2 GOAWAY and see it answered) before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How old a connection must be before running out of descriptors closes it. `accept`
/// reports EMFILE when no descriptor is left even if no client is waiting, so the accept
/// after the one that took the last descriptor fails at once; without this, the client
/// just accepted would be the one closed, and every new client after it.
const RECLAIM_SPARE: Duration = Duration::from_secs(1);

/// What the server asks of its connections, on one channel (so a connection watches one
/// thing besides itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Nothing (the channel's initial value).
    Serve,
    /// Close those that have served a request and have none in flight (at the connection
    /// limit).
    ReclaimKeepAlive,
    /// Close every one with no request in flight, TLS handshakes included (out of
    /// descriptors).
    ReclaimIdle,
    /// Finish the requests in flight, then close; close now if there are none.
    ShutDown,
    /// Close now, requests in flight or not (the drain timeout ran out).
    Abort,
}

/// What every connection of one server shares.
pub(crate) struct Shared<A> {
    pub(crate) acceptor: A,
    pub(crate) http: auto::Builder<StreamExecutor>,
    pub(crate) limits: Limits,
}

/// Serve one accepted TCP connection until it ends; `place` is its place under the
/// connection limit, which goes with the connection's stream (`io.rs`).
pub(crate) async fn serve<A, S, B>(
    shared: Arc<Shared<A>>,
    service: S,
    tcp: TcpStream,
    peer: SocketAddr,
    mut signals: watch::Receiver<Signal>,
    place: OwnedSemaphorePermit,
) where
    A: Accept,
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    // A connection in its handshake has no request in flight: it goes when the server
    // runs out of descriptors, or stops.
    let accepted = Instant::now();
    let reclaimable = move || accepted.elapsed() >= RECLAIM_SPARE;
    let Accepted {
        stream: tls,
        info,
        http2,
    } = tokio::select! {
        accepted = shared.acceptor.handshake(tcp) => match accepted {
            Ok(ok) => ok,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
        },
        signal = until(&mut signals, |s| match s {
            Signal::ShutDown | Signal::Abort => true,
            Signal::ReclaimIdle => reclaimable(),
            Signal::Serve | Signal::ReclaimKeepAlive => false,
        }) => {
            if signal == Signal::ReclaimIdle {
                tracing::debug!(%peer, "closed in its TLS handshake to reclaim descriptors");
            }
            return;
        }
    };

    let limits = &shared.limits;
    let pace = limits.pace();
    let info = Arc::new(info.with_peer_addr(peer));
    let service = service.map_request(move |req: Request<Incoming>| {
        let mut req = req.map(|body| RequestBody::new(body, pace));
        req.extensions_mut().insert(Arc::clone(&info));
        req
    });
    let activity = Arc::new(Activity::new());
    // Between two HTTP/1.1 requests, bytes from the client are the next head; over HTTP/2
    // they may be anything (a PING), and hyper's own limits bound a header block.
    let heard = (!http2).then(|| Arc::clone(&activity));
    let slow_streams = Arc::new(SlowStreams::default());
    let conn = shared.http.serve_connection_with_upgrades(
        TokioIo::new(ServerIo::<A>::new(tls, pace, place, heard)),
        TowerToHyperService::new(Tracked::new(service, Arc::clone(&activity))),
    );
    let mut conn = std::pin::pin!(conn);

    let (first, then) = (limits.header_read_timeout, limits.idle_timeout);
    // Requests start and end without waking the watchdog, and a request that ends moves
    // the deadline from `first` after the start to `then` after its end, which may be
    // sooner: looking again at least this often is never late.
    // (At least hourly too, so that no limit, however long, overflows the clock.)
    let recheck = first
        .min(then)
        .clamp(Duration::from_millis(10), Duration::from_secs(3600));
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
            ended = slow_streams.polling(conn.as_mut()) => {
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
            // A stream was reset because the client gave its response no room: the
            // connection goes too (`stream_pace.rs`), once its other streams are done.
            () = slow_streams.reset(), if closing.is_none() && !shutting_down => {
                tracing::debug!(%peer, "closing: an HTTP/2 stream ran out of its pace");
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + CLOSE_GRACE);
            }
            // After a shutdown the only signal left to come is `Abort`.
            signal = next_signal(&mut signals) => {
                let close = match signal {
                    Signal::Serve => false,
                    Signal::Abort => {
                        tracing::debug!(%peer, "dropped: the drain timeout ran out");
                        return;
                    }
                    Signal::ShutDown => {
                        // In-flight requests finish; idle connections close now.
                        shutting_down = true;
                        if closing.is_none() {
                            conn.as_mut().graceful_shutdown();
                        }
                        false
                    }
                    Signal::ReclaimKeepAlive => closing.is_none() && activity.is_kept_alive(),
                    Signal::ReclaimIdle => closing.is_none() && activity.is_idle() && reclaimable(),
                };
                if close {
                    tracing::debug!(%peer, ?signal, "closing an idle connection to reclaim resources");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now() + CLOSE_GRACE);
                }
            }
        }
    }
}

/// The next signal (never, if the server is gone).
async fn next_signal(signals: &mut watch::Receiver<Signal>) -> Signal {
    match signals.changed().await {
        Ok(()) => *signals.borrow_and_update(),
        Err(_) => std::future::pending().await,
    }
}

/// The next signal that `wanted`.
async fn until(signals: &mut watch::Receiver<Signal>, wanted: impl Fn(Signal) -> bool) -> Signal {
    loop {
        let signal = next_signal(signals).await;
        if wanted(signal) {
            return signal;
        }
    }
}
