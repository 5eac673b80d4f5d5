//! The error body every layer of this project answers with: an RFC 9457 problem document
//! with a stable `reason` member that says which check failed.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};

/// `{"type":"about:blank","title":…,"status":…,"reason":…,"detail":…}`.
pub fn problem_body(status: StatusCode, reason: &str, detail: &str) -> String {
    serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "reason": reason,
        "detail": detail,
    })
    .to_string()
}

/// The problem document as a response, `Content-Type: application/problem+json`.
pub fn problem_response<B: From<Bytes>>(
    status: StatusCode,
    reason: &str,
    detail: &str,
) -> Response<B> {
    let mut res = Response::new(B::from(Bytes::from(problem_body(status, reason, detail))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}
