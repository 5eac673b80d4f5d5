//! `tokbind proxy`: a TLS-terminating reverse proxy that makes any HTTP backend Token
//! Binding-capable (draft-ietf-tokbind-ttrp-09).
//!
//! It negotiates Token Binding, verifies `Sec-Token-Binding` with the same
//! `TokenBindingLayer` (and its per-connection cache) as a direct server — so a header
//! replayed on another connection, forged or malformed is answered with the layer's 400 and
//! never reaches the backend — then forwards the request with the verified IDs in
//! `Sec-Provided-Token-Binding-ID`, `Sec-Referred-Token-Binding-ID` and
//! `Sec-Other-Token-Binding-ID`, after removing any copies the client sent. With
//! `--client-certificates`, the certificate a client authenticated with goes along in
//! `Client-Cert` (RFC 9440), so certificate-bound tokens work behind it. Bodies stream in
//! both directions; responses (including `Include-Referred-Token-Binding-ID`) pass back
//! unchanged.
//!
//! Clients are held to the same limits as `tokbind serve` (`--header-read-timeout` and the
//! rest). Towards the backend: at most `--upstream-max-requests` requests are in flight at
//! once, each from just before it is sent (for a request with a body, once the first part
//! of it has arrived) until its response body has been forwarded (or dropped); a request that finds no place within `--upstream-connect-timeout` is a 503
//! `upstream_busy` with `Retry-After: 1`. Connecting may take `--upstream-connect-timeout`,
//! and the response headers `--upstream-timeout`; either running out is a 504
//! (`upstream_connect_timeout`, `upstream_timeout`). The response-header clock starts once
//! the request body has been handed to the backend in full (at once for a request without
//! one), as nginx's `proxy_read_timeout` counts from the last write of the request, so an
//! upload that lasts longer than the timeout is not cut off. While the body is on its way,
//! a wait for the client is bounded by the client's pace (`--progress-timeout`,
//! `--min-data-rate`; a 408 `request_body_timeout`), and a wait for the backend to take
//! more of it — hyper asking for nothing more since the body last handed it a part,
//! because the backend stopped reading — by `--upstream-timeout` (a 504 `upstream_timeout`).
//! A response that comes before the body has ended is forwarded at once.
//! `--upstream-timeout` also bounds the wait for each frame of the response body: a backend
//! that stalls mid-body has the client's response cut off (HTTP/1.1: the connection closes
//! without the final chunk; HTTP/2: the stream is reset). A backend that refuses or cannot
//! be reached is a 502 `upstream_unavailable`, one whose response cannot be read a 502
//! `upstream_bad_response`, each an `application/problem+json`. At most
//! `--upstream-max-idle` idle connections to the backend are kept, each for at most
//! `--upstream-idle-timeout`.

use std::future::Future as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::{BoxError, Router};
use http::header::{CONNECTION, HOST, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{HttpConnector, capture_connection};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokbind_proto::ConnectionInfo;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower_tokbind::TokenBindingLayer;
use tower_tokbind::TokenBindingState;
use tower_tokbind::ttrp::encode_forwarded;

use crate::Failure;
use crate::input::Timeout;
use crate::upstream_io::TimedConnector;

/// `tokbind proxy` arguments.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The backend, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    upstream: Uri,
    #[command(flatten)]
    tls: crate::tls_args::ServerTlsArgs,
    #[command(flatten)]
    limits: crate::limit_args::LimitArgs,
    /// Speak HTTP/2 to the backend (cleartext, prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    upstream_http2: bool,
    /// Give up connecting to the backend after this long (answering 504).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Duration::from_secs(5)))]
    upstream_connect_timeout: Timeout,
    /// Give up waiting for the backend's response headers after this long from the end of
    /// the request body (answering 504), for the backend to take more of the request body,
    /// and for each part of its response body (cutting the response off).
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Duration::from_secs(30)))]
    upstream_timeout: Timeout,
    /// Send at most this many requests to the backend at once, each until its response
    /// has been forwarded; one that finds no place within --upstream-connect-timeout is
    /// answered 503.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=Semaphore::MAX_PERMITS as u64))]
    upstream_max_requests: u64,
    /// Keep at most this many idle connections to the backend.
    #[arg(long, value_name = "N", default_value_t = 32)]
    upstream_max_idle: usize,
    /// Close an idle connection to the backend after this long.
    #[arg(long, value_name = "DURATION", default_value_t = Timeout(Duration::from_secs(30)))]
    upstream_idle_timeout: Timeout,
}

struct Proxy {
    client: Client<TimedConnector, Body>,
    upstream: Uri,
    http2: bool,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// One permit per request in flight to the backend, `max_requests` in all.
    in_flight: Arc<Semaphore>,
    max_requests: usize,
}

pub async fn run(args: ProxyArgs) -> Result<(), Failure> {
    if args.upstream.scheme_str() != Some("http") || args.upstream.authority().is_none() {
        return Err(Failure::Usage(format!(
            "--upstream must be http://HOST:PORT, got {}",
            args.upstream
        )));
    }
    let acceptor = args
        .tls
        .acceptor(args.listen, args.limits.handshake_timeout())?;
    let limits = args.limits.limits()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Rejected(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Rejected(e.to_string()))?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(args.upstream_connect_timeout.0));
    let client = Client::builder(TokioExecutor::new())
        .http2_only(args.upstream_http2)
        .pool_max_idle_per_host(args.upstream_max_idle)
        .pool_idle_timeout(args.upstream_idle_timeout.0)
        .pool_timer(TokioTimer::new())
        .build(TimedConnector {
            inner: connector,
            write_timeout: args.upstream_timeout.0,
        });
    let max_requests =
        usize::try_from(args.upstream_max_requests).unwrap_or(Semaphore::MAX_PERMITS);
    let proxy = Arc::new(Proxy {
        client,
        upstream: args.upstream,
        http2: args.upstream_http2,
        connect_timeout: args.upstream_connect_timeout.0,
        response_timeout: args.upstream_timeout.0,
        in_flight: Arc::new(Semaphore::new(max_requests)),
        max_requests,
    });
    let app = Router::new()
        .fallback(forward)
        .with_state(proxy)
        .layer(TokenBindingLayer::new());

    println!("listening on https://{addr}");
    let _ = std::io::stdout().flush();
    tokbind_tls::serve(listener, acceptor, app)
        .limits(limits)
        .with_graceful_shutdown(crate::shutdown::requested())
        .await
        .map_err(|e| Failure::Rejected(format!("proxy failed: {e}")))
}

/// Connection-level headers a proxy must not forward (RFC 9110 §7.6.1), plus any the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// A 502, 503 or 504 problem document, logged.
fn upstream_problem(status: StatusCode, reason: &str, detail: &str) -> Response {
    tracing::warn!(%status, reason, detail, "upstream failed");
    tower_tokbind::problem::problem_response(status, reason, detail)
}

/// What a failed upstream request answers: a connection that timed out (connecting, or
/// writing a request the backend stopped taking) is a 504, one that
/// failed otherwise a 502, and so is a response that could not be read. A request whose
/// client sent its body too slowly is the client's fault: a 408.
fn upstream_failure(e: &hyper_util::client::legacy::Error, proxy: &Proxy) -> Response {
    match client_body_error(e) {
        Some(true) => return request_body_timeout(),
        Some(false) => return request_body_incomplete(),
        None => {}
    }
    // A connection that timed out: connecting, or writing the request (`upstream_io.rs`),
    // which is the backend not taking more of the body.
    if cause::<std::io::Error>(e).is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
        return if e.is_connect() {
            connect_timeout(proxy)
        } else {
            Late::Body.response(proxy.response_timeout)
        };
    }
    if !e.is_connect() {
        return upstream_problem(
            StatusCode::BAD_GATEWAY,
            "upstream_bad_response",
            &format!("the backend's response could not be read: {e:?}"),
        );
    }
    upstream_problem(
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
        &format!("the backend cannot be reached: {e:?}"),
    )
}

/// The client sent its request body too slowly (`--progress-timeout`, `--min-data-rate`).
fn request_body_timeout() -> Response {
    tracing::debug!("the client sent the request body too slowly");
    tower_tokbind::problem::problem_response(
        StatusCode::REQUEST_TIMEOUT,
        "request_body_timeout",
        "the request body came too slowly (--progress-timeout, --min-data-rate)",
    )
}

/// Waits for the first part of a request body that is still to come (at the client's
/// pace), and hands back the body with that part in front; a body already complete is
/// handed back as it is.
async fn first_part(mut body: Body) -> Result<Body, Response> {
    if body.is_end_stream() {
        return Ok(body);
    }
    match body.frame().await {
        None => Ok(Body::empty()),
        Some(Ok(first)) => Ok(Body::new(FirstPart {
            first: Some(first),
            rest: body,
        })),
        Some(Err(e)) if client_body_error(&e) == Some(true) => Err(request_body_timeout()),
        Some(Err(_)) => Err(request_body_incomplete()),
    }
}

/// The client's request body failed otherwise than by time: it was cut off (a reset
/// stream, a closed connection) or malformed. The client's fault, never the backend's.
fn request_body_incomplete() -> Response {
    tracing::debug!("the request body ended before it was complete");
    tower_tokbind::problem::problem_response(
        StatusCode::BAD_REQUEST,
        "request_body_incomplete",
        "the request body ended before it was complete",
    )
}

/// A request body whose first part has already been received.
struct FirstPart {
    first: Option<Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for FirstPart {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match this.first.take() {
            Some(first) => Poll::Ready(Some(Ok(first))),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |d| u64::try_from(d.len()).unwrap_or(u64::MAX));
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(first));
        }
        hint.set_lower(
            rest.lower()
                .saturating_add(first)
                .min(hint.upper().unwrap_or(u64::MAX)),
        );
        hint
    }
}

/// Whether reading the client's request body failed (`tokbind_tls::RequestBody`), and if
/// so whether it timed out.
fn client_body_error(e: &(dyn std::error::Error + 'static)) -> Option<bool> {
    cause::<tokbind_tls::RequestBodyError>(e).map(tokbind_tls::RequestBodyError::is_timeout)
}

/// The first of `e` and its causes that is a `T`.
fn cause<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    std::iter::successors(Some(e), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

fn connect_timeout(proxy: &Proxy) -> Response {
    upstream_problem(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_connect_timeout",
        &format!(
            "no connection to the backend within {}",
            Timeout(proxy.connect_timeout)
        ),
    )
}

/// Every place for a request to the backend stayed taken for the connect timeout.
fn busy(proxy: &Proxy) -> Response {
    let mut res = upstream_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_busy",
        &format!(
            "{} requests were in flight to the backend for {}",
            proxy.max_requests,
            Timeout(proxy.connect_timeout)
        ),
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let original_host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    // Whatever the client sent about Token Binding is replaced by what was verified here.
    encode_forwarded(
        &mut parts.headers,
        parts
            .extensions
            .get::<TokenBindingState>()
            .and_then(TokenBindingState::verified)
            .map(|v| &**v),
        parts
            .extensions
            .get::<Arc<ConnectionInfo>>()
            .and_then(|info| info.client_certificate()),
    );
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("https"));
    if let Some(host) = original_host.and_then(|h| HeaderValue::try_from(h).ok()) {
        parts.headers.insert(HOST, host);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let upstream = format!(
        "{}://{}{path}",
        proxy.upstream.scheme_str().unwrap_or("http"),
        proxy.upstream.authority().map_or("", |a| a.as_str())
    );
    parts.uri = match upstream.parse() {
        Ok(u) => u,
        Err(e) => {
            return upstream_problem(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                &format!("cannot build the upstream URI: {e}"),
            );
        }
    };
    parts.version = if proxy.http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    parts.extensions = Default::default();

    // A body still to come starts coming before the request takes a place among those in
    // flight: a client holds a place only while it sends (at its pace), never for free.
    let body = match first_part(body).await {
        Ok(body) => body,
        Err(res) => return res,
    };
    // A place among the requests in flight, held by the response body until it has been
    // forwarded or dropped.
    let permit = match tokio::time::timeout(
        proxy.connect_timeout,
        Arc::clone(&proxy.in_flight).acquire_owned(),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        // The semaphore is never closed; if it were, no request could be sent either.
        Ok(Err(_)) | Err(_) => return busy(&proxy),
    };
    // A body still to come is watched on its way (a request without one goes as it is).
    let (body, sending) = if body.is_end_stream() {
        (body, None)
    } else {
        let sending = Arc::new(Mutex::new(Sending::NotAsked));
        let body = Body::new(UploadBody {
            inner: body,
            sending: Arc::clone(&sending),
        });
        (body, Some(sending))
    };
    let mut req = http::Request::from_parts(parts, body);
    let mut connected = capture_connection(&mut req);
    let mut response = std::pin::pin!(proxy.client.request(req));
    // Two clocks: one until the request has a connection (pooled or new), one from then
    // until the response headers (see `response_headers`).
    let early = tokio::time::timeout(proxy.connect_timeout, async {
        tokio::select! {
            biased;
            res = &mut response => Some(res),
            _ = connected.wait_for_connection_metadata() => None,
        }
    })
    .await;
    let res = match early {
        Err(_) => return connect_timeout(&proxy),
        Ok(Some(res)) => res,
        Ok(None) => {
            match response_headers(response, sending.as_deref(), proxy.response_timeout).await {
                Ok(res) => res,
                Err(late) => return late.response(proxy.response_timeout),
            }
        }
    };
    match res {
        Ok(res) => {
            let (mut parts, body) = res.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(
                parts,
                Body::new(UpstreamBody::new(body, proxy.response_timeout, permit)),
            )
        }
        Err(e) => upstream_failure(&e, &proxy),
    }
}

/// How far a request body has got on its way to the backend: set by its [`UploadBody`] as
/// hyper polls it, read by [`response_headers`].
#[derive(Clone, Copy, Debug)]
enum Sending {
    /// hyper has not asked for any of it yet.
    NotAsked,
    /// hyper asked for more and the body is waiting for the client to send it, which the
    /// client's pace bounds (`tokbind_tls::RequestBody`).
    WaitingOnClient,
    /// The body handed hyper a part at this instant and hyper has not asked for more
    /// since: it is waiting for the backend to take what it has.
    WaitingOnBackend(Instant),
    /// The body was handed over in full (or dropped) at this instant.
    Sent(Instant),
}

fn set(sending: &Mutex<Sending>, now: Sending) {
    let mut sending = sending.lock().unwrap_or_else(PoisonError::into_inner);
    if !matches!(*sending, Sending::Sent(_)) {
        *sending = now;
    }
}

fn get(sending: &Mutex<Sending>) -> Sending {
    *sending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request body on its way to the backend, recording in `sending` how far it has got.
struct UploadBody {
    inner: Body,
    sending: Arc<Mutex<Sending>>,
}

impl http_body::Body for UploadBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        let now = match &frame {
            Poll::Pending => Sending::WaitingOnClient,
            Poll::Ready(Some(Ok(_))) if !this.inner.is_end_stream() => {
                Sending::WaitingOnBackend(Instant::now())
            }
            // The last part, the end, or an error (which fails the request).
            Poll::Ready(_) => Sending::Sent(Instant::now()),
        };
        set(&this.sending, now);
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UploadBody {
    /// hyper drops a body it needs no more of (an HTTP/1.1 body whose `Content-Length`
    /// has been sent, a request that failed) without polling it to its end.
    fn drop(&mut self) {
        set(&self.sending, Sending::Sent(Instant::now()));
    }
}

/// Which wait for the backend ran out.
enum Late {
    /// The response headers, after the request had been sent.
    Headers,
    /// The backend taking more of the request body.
    Body,
}

impl Late {
    fn response(self, timeout: Duration) -> Response {
        let timeout = Timeout(timeout);
        let detail = match self {
            Late::Headers => format!(
                "the backend sent no response headers within {timeout} of the end of the request"
            ),
            Late::Body => format!("the backend took no more of the request body for {timeout}"),
        };
        upstream_problem(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", &detail)
    }
}

/// Waits, once the request has a connection, for the response headers: for `timeout` from
/// the end of the request body (or from now, without one). While the body is on its way
/// (`sending`), a wait for the client is the client's pace to bound, and a wait for the
/// backend to take more (hyper asking for nothing more since the body last handed it a
/// part, or since the connection before the first) is bounded by `timeout` too. A response
/// that comes first is taken.
///
/// The body's progress is not pushed here: this wakes at the deadline the progress read
/// last gave, and reads it again — a deadline only ever moves later, so none is missed.
async fn response_headers<F: Future>(
    mut response: Pin<&mut F>,
    sending: Option<&Mutex<Sending>>,
    timeout: Duration,
) -> Result<F::Output, Late> {
    let connected = Instant::now();
    loop {
        let now = Instant::now();
        let (since, late) = match sending.map_or(Sending::Sent(connected), get) {
            Sending::NotAsked => (connected, Some(Late::Body)),
            Sending::WaitingOnClient => (now, None),
            Sending::WaitingOnBackend(at) => (at, Some(Late::Body)),
            Sending::Sent(at) => (at, Some(Late::Headers)),
        };
        let Some(deadline) = since.checked_add(timeout) else {
            return Ok(response.await);
        };
        if let Some(late) = late.filter(|_| deadline <= now) {
            return Err(late);
        }
        if let Ok(res) = tokio::time::timeout_at(deadline, response.as_mut()).await {
            return Ok(res);
        }
    }
}

/// The backend's response body on its way to the client: it holds the request's place
/// among those in flight until it has been forwarded or dropped, and ends with an error
/// when the backend sends no frame for `read_timeout` — hyper then cuts the client's
/// response off instead of leaving it waiting.
struct UpstreamBody<B> {
    inner: B,
    read_timeout: Duration,
    /// Created the first time the body waits for the backend, then reset for each wait.
    idle: Option<Pin<Box<Sleep>>>,
    /// Whether `idle` is running for the current wait.
    waiting: bool,
    /// Ended by the timeout: nothing more is read.
    timed_out: bool,
    _permit: OwnedSemaphorePermit,
}

impl<B> UpstreamBody<B> {
    fn new(inner: B, read_timeout: Duration, permit: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            read_timeout,
            idle: None,
            waiting: false,
            timed_out: false,
            _permit: permit,
        }
    }
}

impl<B> http_body::Body for UpstreamBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timeout = this.read_timeout;
        let idle = match &mut this.idle {
            Some(idle) => {
                if !this.waiting {
                    // Past the end of time: leave it where it is, which is far enough.
                    if let Some(at) = tokio::time::Instant::now().checked_add(timeout) {
                        idle.as_mut().reset(at);
                    }
                }
                idle
            }
            None => this.idle.insert(Box::pin(tokio::time::sleep(timeout))),
        };
        this.waiting = true;
        if idle.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.timed_out = true;
        let timeout = Timeout(timeout);
        tracing::warn!(
            %timeout,
            "the backend sent nothing more of its response body; cutting the response off"
        );
        Poll::Ready(Some(Err(format!(
            "the backend sent nothing more of its response body for {timeout}"
        )
        .into())))
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
