//! A TLS-terminating reverse proxy that makes any HTTP backend Token Binding-capable
//! (draft-ietf-tokbind-ttrp-09): the library behind `tokbind proxy`.
//!
//! ```no_run
//! use tokbind_proxy::Proxy;
//! use tokbind_tls::{SelfSigned, TokenBindingAcceptor};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cert = SelfSigned::generate(&["localhost"])?;
//! let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
//! let app = Proxy::new("http://127.0.0.1:8080".parse()?)?.into_router();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! tokbind_tls::serve(listener, acceptor, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The router negotiates nothing itself: the TLS listener (`tokbind_tls::serve`) does, and
//! the router's [`TokenBindingLayer`] verifies `Sec-Token-Binding` exactly as on a direct
//! server, with the same per-connection cache — so a header replayed on another
//! connection, forged or malformed is answered with the layer's 400 and never reaches the
//! backend. The request then goes on with the verified IDs in
//! `Sec-Provided-Token-Binding-ID`, `Sec-Referred-Token-Binding-ID` and
//! `Sec-Other-Token-Binding-ID`, after any copies the client sent have been removed
//! ([`tower_tokbind::ttrp::encode_forwarded`]). The certificate a client authenticated with
//! (when the listener asks for one) goes along in `Client-Cert` (RFC 9440), so
//! certificate-bound tokens work behind it. The backend decodes them with
//! [`tower_tokbind::ttrp::ForwardedTokenBindingLayer`], trusting this proxy's address only.
//! What a client claims about earlier hops (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`) is
//! removed, and `X-Forwarded-For` (the client's address) and `X-Forwarded-Proto: https`
//! are set; the same headers in request trailers are removed too.
//! Bodies stream in both directions; responses (including
//! `Include-Referred-Token-Binding-ID`) pass back unchanged.
//!
//! Clients are held to the listener's limits (`tokbind_tls::Limits`). Towards the backend:
//! at most [`Proxy::upstream_max_requests`] requests are in flight at once, each from just
//! before it is sent (for a request with a body, once the first part of it has arrived)
//! until its response body has been forwarded (or dropped); a request that finds no place
//! within the connect timeout is a 503 `upstream_busy` with `Retry-After: 1`. Connecting
//! may take [`Proxy::upstream_connect_timeout`], and the response headers
//! [`Proxy::upstream_timeout`]; either running out is a 504 (`upstream_connect_timeout`,
//! `upstream_timeout`). The response-header clock starts once the request body has been
//! handed to the backend in full (at once for a request without one), as nginx's
//! `proxy_read_timeout` counts from the last write of the request, so an upload that lasts
//! longer than the timeout is not cut off. While the body is on its way, a wait for the
//! client is bounded by the client's pace (the listener's progress timeout and minimum data
//! rate; a 408 `request_body_timeout`), and a wait for the backend to take more of it —
//! hyper asking for nothing more since the body last handed it a part, because the backend
//! stopped reading — by the upstream timeout (a 504 `upstream_timeout`). A response that
//! comes before the body has ended is forwarded at once. The upstream timeout also bounds
//! the wait for each frame of the response body: a backend that stalls mid-body has the
//! client's response cut off (HTTP/1.1: the connection closes without the final chunk;
//! HTTP/2: the stream is reset). A backend that refuses or cannot be reached is a 502
//! `upstream_unavailable`, one whose response cannot be read a 502
//! `upstream_bad_response`, each an `application/problem+json`.

mod body;
mod forward;
mod problem;
mod upstream_io;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::Semaphore;
use tower_tokbind::TokenBindingLayer;

use crate::forward::forward;
use crate::upstream_io::TimedConnector;

/// Headers that say where a request came from, which backends and their frameworks read
/// for the client's address, scheme and host (RFC 7239 `Forwarded` and the de facto
/// `X-Forwarded-*`, `X-Real-IP`): a client's own are removed, and the proxy sets
/// `X-Forwarded-For` (the peer's address) and `X-Forwarded-Proto` from what it saw; `Host`
/// goes on as the client sent it.
const ORIGIN_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

/// The backend, and how requests go to it.
pub(crate) struct Upstream {
    pub(crate) client: Client<TimedConnector, Body>,
    pub(crate) uri: Uri,
    pub(crate) http2: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// One permit per request in flight to the backend, `max_requests` in all.
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) max_requests: usize,
}

/// The upstream is not an `http://HOST:PORT` URI (the proxy speaks cleartext to its
/// backend, on a network the deployment trusts).
#[derive(Debug, thiserror::Error)]
#[error("the upstream must be http://HOST:PORT, got {0}")]
pub struct InvalidUpstream(pub Uri);

/// The proxy's configuration; [`Proxy::into_router`] makes the router to serve.
#[derive(Debug, Clone)]
#[must_use]
pub struct Proxy {
    upstream: Uri,
    http2: bool,
    connect_timeout: Duration,
    upstream_timeout: Duration,
    max_requests: usize,
    max_idle: usize,
    idle_timeout: Duration,
    token_binding: TokenBindingLayer,
}

impl Proxy {
    /// A proxy to `upstream` (`http://HOST:PORT`), speaking HTTP/1.1 to it, with a 5 s
    /// connect timeout, a 30 s upstream timeout, at most 256 requests in flight and at most
    /// 32 idle connections kept for 30 s, verifying with `TokenBindingLayer::new()`.
    pub fn new(upstream: Uri) -> Result<Self, InvalidUpstream> {
        if upstream.scheme_str() != Some("http") || upstream.authority().is_none() {
            return Err(InvalidUpstream(upstream));
        }
        Ok(Self {
            upstream,
            http2: false,
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(30),
            max_requests: 256,
            max_idle: 32,
            idle_timeout: Duration::from_secs(30),
            token_binding: TokenBindingLayer::new(),
        })
    }

    /// Speak HTTP/2 to the backend (cleartext, prior knowledge) instead of HTTP/1.1.
    pub fn upstream_http2(mut self, http2: bool) -> Self {
        self.http2 = http2;
        self
    }

    /// Give up connecting to the backend, or waiting for a place among the requests in
    /// flight, after this long.
    pub fn upstream_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Give up waiting for the backend's response headers after this long from the end of
    /// the request body, for the backend to take more of the request body, and for each
    /// part of its response body.
    pub fn upstream_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_timeout = timeout;
        self
    }

    /// Send at most this many requests to the backend at once (at least 1, at most
    /// `tokio::sync::Semaphore::MAX_PERMITS`).
    pub fn upstream_max_requests(mut self, max: usize) -> Self {
        self.max_requests = max.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Keep at most this many idle connections to the backend.
    pub fn upstream_max_idle(mut self, max: usize) -> Self {
        self.max_idle = max;
        self
    }

    /// Close an idle connection to the backend after this long.
    pub fn upstream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How `Sec-Token-Binding` is verified before the request is forwarded (its policies
    /// for clients without Token Binding, its rejection responses).
    pub fn token_binding(mut self, layer: TokenBindingLayer) -> Self {
        self.token_binding = layer;
        self
    }

    /// The router that forwards every request: serve it with `tokbind_tls::serve`, which
    /// gives it the connection facts the Token Binding layer verifies against.
    pub fn into_router(self) -> Router {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(self.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .http2_only(self.http2)
            .pool_max_idle_per_host(self.max_idle)
            .pool_idle_timeout(self.idle_timeout)
            .pool_timer(TokioTimer::new())
            .build(TimedConnector {
                inner: connector,
                write_timeout: self.upstream_timeout,
            });
        let upstream = Arc::new(Upstream {
            client,
            uri: self.upstream,
            http2: self.http2,
            connect_timeout: self.connect_timeout,
            response_timeout: self.upstream_timeout,
            in_flight: Arc::new(Semaphore::new(self.max_requests)),
            max_requests: self.max_requests,
        });
        Router::new()
            .fallback(forward)
            .with_state(upstream)
            .layer(self.token_binding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_http_upstream_with_an_authority() {
        for bad in ["https://127.0.0.1:8080", "/path", "ftp://h:1"] {
            assert!(Proxy::new(bad.parse().unwrap()).is_err(), "{bad}");
        }
        assert!(Proxy::new("http://127.0.0.1:8080".parse().unwrap()).is_ok());
    }

    #[test]
    fn max_requests_is_at_least_one() {
        let p = Proxy::new("http://h:1".parse().unwrap()).unwrap();
        assert_eq!(p.clone().upstream_max_requests(0).max_requests, 1);
        assert_eq!(
            p.upstream_max_requests(usize::MAX).max_requests,
            Semaphore::MAX_PERMITS
        );
    }
}
