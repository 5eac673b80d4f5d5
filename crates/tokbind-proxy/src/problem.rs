//! What the proxy answers when a request cannot be forwarded: problem documents with a
//! stable `reason` (see the crate docs), logged.

use std::time::Duration;

use axum::response::Response;
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};

use crate::Upstream;

/// A 502, 503 or 504 problem document, logged.
pub(crate) fn upstream_problem(status: StatusCode, reason: &str, detail: &str) -> Response {
    tracing::warn!(%status, reason, detail, "upstream failed");
    tower_tokbind::problem::problem_response(status, reason, detail)
}

/// What a failed upstream request answers: a connection that timed out (connecting, or
/// writing a request the backend stopped taking) is a 504, one that
/// failed otherwise a 502, and so is a response that could not be read. A request whose
/// client sent its body too slowly is the client's fault: a 408.
pub(crate) fn upstream_failure(
    e: &hyper_util::client::legacy::Error,
    proxy: &Upstream,
) -> Response {
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

/// The client sent its request body too slowly (the listener's progress timeout or
/// minimum data rate).
pub(crate) fn request_body_timeout() -> Response {
    tracing::debug!("the client sent the request body too slowly");
    tower_tokbind::problem::problem_response(
        StatusCode::REQUEST_TIMEOUT,
        "request_body_timeout",
        "the request body came too slowly",
    )
}

/// The client's request body failed otherwise than by time: it was cut off (a reset
/// stream, a closed connection) or malformed. The client's fault, never the backend's.
pub(crate) fn request_body_incomplete() -> Response {
    tracing::debug!("the request body ended before it was complete");
    tower_tokbind::problem::problem_response(
        StatusCode::BAD_REQUEST,
        "request_body_incomplete",
        "the request body ended before it was complete",
    )
}

/// Whether reading the client's request body failed (`tokbind_tls::RequestBody`), and if
/// so whether it timed out.
pub(crate) fn client_body_error(e: &(dyn std::error::Error + 'static)) -> Option<bool> {
    cause::<tokbind_tls::RequestBodyError>(e).map(tokbind_tls::RequestBodyError::is_timeout)
}

/// The first of `e` and its causes that is a `T`.
pub(crate) fn cause<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    std::iter::successors(Some(e), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

pub(crate) fn connect_timeout(proxy: &Upstream) -> Response {
    upstream_problem(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_connect_timeout",
        &format!(
            "no connection to the backend within {:?}",
            proxy.connect_timeout
        ),
    )
}

/// Every place for a request to the backend stayed taken for the connect timeout.
pub(crate) fn busy(proxy: &Upstream) -> Response {
    let mut res = upstream_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_busy",
        &format!(
            "{} requests were in flight to the backend for {:?}",
            proxy.max_requests, proxy.connect_timeout
        ),
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// Which wait for the backend ran out.
pub(crate) enum Late {
    /// The response headers, after the request had been sent.
    Headers,
    /// The backend taking more of the request body.
    Body,
}

impl Late {
    pub(crate) fn response(self, timeout: Duration) -> Response {
        let detail = match self {
            Late::Headers => format!(
                "the backend sent no response headers within {timeout:?} of the end of the request"
            ),
            Late::Body => format!("the backend took no more of the request body for {timeout:?}"),
        };
        upstream_problem(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", &detail)
    }
}
