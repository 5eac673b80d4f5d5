//! Serve a Tower service (an axum `Router`, say) over Token Binding TLS (OpenSSL), or over
//! rustls without it: any [`Accept`].
//!
//! Each accepted connection does its TLS handshake in its own task (one slow client never
//! holds up the accept loop), then is served by hyper — HTTP/1.1 or HTTP/2, chosen by ALPN
//! — with an `Arc<`[`ConnectionInfo`](tokbind_proto::ConnectionInfo)`>` inserted into every request's extensions. That is
//! what `tower_tokbind::TokenBindingLayer` reads.
//!
//! Every connection is held to the server's [`Limits`]: at most `max_connections` at once
//! (beyond that, new clients wait in the kernel's listen backlog), a TLS handshake timeout
//! (on the acceptor), a deadline for each request head, an idle timeout between requests,
//! a pace for request bodies and for reading responses
//! ([`RequestBody`]), HTTP/2 PINGs and stream and header limits. When
//! the process runs out of file descriptors, accepting backs off and the connections with
//! no request in flight are closed, so the server recovers by itself.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::accept::Accept;
use crate::connection::{self, Shared, Signal};
use crate::limits::Limits;
use crate::request_body::RequestBody;
use crate::stream_pace::StreamExecutor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serve `service` on `listener`, each connection's TLS handshake run by `acceptor`, within
/// [`Limits::default()`] (or [`Serve::limits`]).
/// Await the result (it runs until it is shut down), or call
/// [`Serve::with_graceful_shutdown`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tokbind_tls::{serve, SelfSigned, TokenBindingAcceptor};
///
/// let cert = SelfSigned::generate(&["localhost", "127.0.0.1"])?;
/// let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// let app = tower::service_fn(|_req: http::Request<tokbind_tls::RequestBody>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
/// });
/// serve(listener, acceptor, app).await?;
/// # Ok(()) }
/// ```
pub fn serve<A: Accept, S>(listener: TcpListener, acceptor: A, service: S) -> Serve<A, S> {
    Serve {
        listener,
        acceptor,
        service,
        limits: Limits::default(),
    }
}

/// The future of [`serve`].
#[must_use = "a server does nothing until awaited"]
pub struct Serve<A, S> {
    listener: TcpListener,
    acceptor: A,
    service: S,
    limits: Limits,
}

impl<A, S> Serve<A, S> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Apply `limits` instead of [`Limits::default()`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Stop accepting when `signal` completes, then wait for open connections to finish
    /// their in-flight requests (HTTP/2 connections get a GOAWAY); idle connections and
    /// TLS handshakes in progress are closed at once. Connections still open after the
    /// [drain timeout](Limits::drain_timeout) are closed then, and the future completes.
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<A, S, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }
}

/// The future of [`Serve::with_graceful_shutdown`].
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<A, S, F> {
    serve: Serve<A, S>,
    signal: F,
}

impl<A, S, B> IntoFuture for Serve<A, S>
where
    A: Accept,
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self, std::future::pending()))
    }
}

impl<A, S, B, F> IntoFuture for WithGracefulShutdown<A, S, F>
where
    A: Accept,
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self.serve, self.signal))
    }
}

async fn run<A, S, B>(serve: Serve<A, S>, signal: impl Future<Output = ()> + Send) -> io::Result<()>
where
    A: Accept,
    S: tower::Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Serve {
        listener,
        acceptor,
        service,
        limits,
    } = serve;
    // The semaphore counts at most MAX_PERMITS and `acquire_many` a u32: both far more
    // connections than a process has descriptors for.
    let max = limits.max_connections.min(Semaphore::MAX_PERMITS);
    let max = u32::try_from(max).unwrap_or(u32::MAX);
    let places = Arc::new(Semaphore::new(max as usize));
    let (signals, _) = watch::channel(Signal::Serve);
    let shared = Arc::new(Shared {
        acceptor,
        http: http_builder(&limits),
        limits,
    });
    let mut signal = std::pin::pin!(signal);
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut last_reclaim = None;
    loop {
        let place = match Arc::clone(&places).try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                // At the limit: accept nothing (new clients wait in the kernel's listen
                // backlog) and close keep-alive connections that sit idle, as their
                // clients got what they came for. Asking wakes every connection, so it is
                // done at most once a second however fast clients arrive.
                if last_reclaim.is_none_or(|at: Instant| at.elapsed() >= RECLAIM_EVERY) {
                    tracing::warn!(
                        max,
                        "connection limit reached; closing idle keep-alive connections"
                    );
                    signals.send_replace(Signal::ReclaimKeepAlive);
                    last_reclaim = Some(Instant::now());
                }
                tokio::select! {
                    place = Arc::clone(&places).acquire_owned() => match place {
                        Ok(place) => place,
                        Err(_closed) => break, // never closed; stop rather than spin
                    },
                    () = &mut signal => break,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    conn
                }
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    if is_out_of_descriptors(&e) {
                        // Nothing frees a descriptor by itself: close the connections that
                        // have no request in flight, and try again once they are gone.
                        signals.send_replace(Signal::ReclaimIdle);
                    }
                    tracing::error!(error = %e, retry_in = ?backoff, "accept failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut signal => break,
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection::serve(
            Arc::clone(&shared),
            service.clone(),
            tcp,
            peer,
            signals.subscribe(),
            place,
        ));
    }
    drop(listener);
    signals.send_replace(Signal::ShutDown);
    // Every connection holds a place until it ends (an upgraded one, until the application
    // drops it).
    let drain = shared.limits.drain_timeout;
    if tokio::time::timeout(drain, places.acquire_many(max))
        .await
        .is_err()
    {
        let open = (max as usize).saturating_sub(places.available_permits());
        tracing::warn!(
            open,
            ?drain,
            "drain timeout: closing the connections still open"
        );
        signals.send_replace(Signal::Abort);
    }
    Ok(())
}

/// hyper configured with `limits`.
fn http_builder(limits: &Limits) -> auto::Builder<StreamExecutor> {
    // hyper runs each HTTP/2 stream as a task on this executor, which holds it to the pace.
    let mut http = auto::Builder::new(StreamExecutor {
        pace: limits.pace(),
    });
    // The header read and idle timeouts are the connection's watchdog's (`connection.rs`),
    // for both protocols and for the bytes read before the protocol is known. hyper's
    // HTTP/1.1 `header_read_timeout` would only repeat it for HTTP/1.1, later, and it
    // allocates and arms a timer for every request: with it the server spent 3.5–4.5 %
    // more CPU per keep-alive request than before the limits, without it no measurable
    // amount more (BENCHMARKS.md, "What the limits cost").
    http.http1()
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes);
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.http2_max_header_list_size)
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        // hyper adds these to the clock unchecked: a day is as good as never, and cannot
        // overflow it.
        .keep_alive_interval(limits.http2_keep_alive_interval.filter(|i| *i <= A_DAY))
        .keep_alive_timeout(limits.http2_keep_alive_timeout.min(A_DAY));
    http
}

const A_DAY: Duration = Duration::from_secs(24 * 3600);

/// How often, at most, the connection limit closes idle keep-alive connections.
const RECLAIM_EVERY: Duration = Duration::from_secs(1);

/// The first and the longest wait after a failed `accept`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Errors of one pending connection, not of the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The process or the system ran out of descriptors (or of the memory for a socket).
fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
