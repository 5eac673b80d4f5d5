//! The handler: each request, rewritten for the backend and sent, its response forwarded.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::header::{CONNECTION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use http_body::Body as _;
use hyper_util::client::legacy::connect::capture_connection;
use tokbind_proto::ConnectionInfo;
use tokio::time::Instant;
use tower_tokbind::TokenBindingState;
use tower_tokbind::ttrp::{encode_forwarded, remove_every_spelling};

use crate::body::{Sending, UploadBody, UpstreamBody, first_part, get};
use crate::problem::{Late, busy, connect_timeout, upstream_failure, upstream_problem};
use crate::{ORIGIN_HEADERS, Upstream};

pub(crate) async fn forward(State(proxy): State<Arc<Upstream>>, req: Request) -> Response {
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
    // Hop-by-hop headers go first, then the verified IDs are set: a `Connection` header
    // naming them cannot remove them after they were set.
    strip_hop_by_hop(&mut parts.headers);
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
    // Where the request came from, as this proxy saw it: the client's own claims about
    // earlier hops are dropped, as there are none (it spoke TLS to this proxy directly).
    remove_every_spelling(&mut parts.headers, &ORIGIN_HEADERS);
    if let Some(peer) = parts
        .extensions
        .get::<Arc<ConnectionInfo>>()
        .and_then(|info| info.peer_addr())
    {
        // An IPv4 client on a dual-stack socket is named as IPv4.
        if let Ok(value) = HeaderValue::try_from(peer.ip().to_canonical().to_string()) {
            parts.headers.insert("x-forwarded-for", value);
        }
    }
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("https"));
    if let Some(host) = original_host.and_then(|h| HeaderValue::try_from(h).ok()) {
        parts.headers.insert(HOST, host);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let upstream = format!(
        "{}://{}{path}",
        proxy.uri.scheme_str().unwrap_or("http"),
        proxy.uri.authority().map_or("", |a| a.as_str())
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
