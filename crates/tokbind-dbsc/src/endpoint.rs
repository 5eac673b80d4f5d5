//! What the two endpoints share: reading the proof, and the shape of their answers.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, X_FRAME_OPTIONS};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use serde_json::Value;
use tower_tokbind::problem::problem_response;

use crate::header;
use crate::header::bare_or_string;
use crate::metrics;
use crate::proof::ProofError;
use crate::store::StoreError;

pub(crate) type Answer = Result<Response<Full<Bytes>>, Response<Full<Bytes>>>;

/// An endpoint's answer, which no other origin may frame or read: the browser's refresh
/// is implicitly credentialed: the browser sends it with its cookies on its own (README, "Today's browsers: DBSC").
pub(crate) fn guarded(a: Answer) -> Response<Full<Bytes>> {
    const CORP: HeaderName = HeaderName::from_static("cross-origin-resource-policy");
    let mut res = a.unwrap_or_else(|e| e);
    let headers = res.headers_mut();
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CORP, HeaderValue::from_static("same-origin"));
    res
}

pub(crate) fn answer<B>(a: Answer) -> Response<Either<B, Full<Bytes>>> {
    a.unwrap_or_else(|e| e).map(Either::Right)
}

pub(crate) fn store_failure(e: StoreError) -> Response<Full<Bytes>> {
    tracing::error!("{e}");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "dbsc_store_unavailable",
        "the session store cannot be reached",
    )
}

pub(crate) fn problem(
    status: StatusCode,
    reason: &'static str,
    detail: &str,
) -> Response<Full<Bytes>> {
    let mut res: Response<Full<Bytes>> = problem_response(status, reason, detail);
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    metrics::tag(&mut res, reason);
    res
}

pub(crate) fn json_response(status: StatusCode, body: Option<Value>) -> Response<Full<Bytes>> {
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let mut res = Response::new(Full::new(bytes));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(crate) fn with_challenge(
    mut res: Response<Full<Bytes>>,
    challenge: &str,
    sid: &str,
) -> Response<Full<Bytes>> {
    if let Ok(v) = HeaderValue::from_str(&header::challenge(challenge, sid)) {
        res.headers_mut().insert(header::CHALLENGE, v);
    }
    res
}

pub(crate) fn proof_refused(e: &ProofError) -> Response<Full<Bytes>> {
    tracing::debug!(error = %e, "DBSC proof refused");
    let status = if e.is_bad_signature() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    problem(status, "dbsc_proof_refused", &e.to_string())
}

/// The proof JWT, quoted or bare.
pub(crate) fn proof_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::RESPONSE)
        .and_then(|v| v.to_str().ok())
        .and_then(bare_or_string)
}
