//! What a refused request is answered with: [`RejectionResponse`], pluggable on
//! [`TokenBindingLayer::rejection_response`](crate::TokenBindingLayer::rejection_response),
//! with an RFC 9457 problem document ([`ProblemJson`]) by default.
//!
//! Whatever the response, the layer puts the [`TokenBindingRejection`] in its extensions, so
//! outer layers (logging, metrics) and tests can see why.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use crate::rejection::TokenBindingRejection;

/// Turns a rejection into the response the client gets.
///
/// Any `Fn(&TokenBindingRejection) -> Response<Full<Bytes>>` is one:
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use http_body_util::Full;
/// use tower_tokbind::{TokenBindingLayer, TokenBindingRejection};
///
/// // Plain text instead of problem+json; the status and the reason stay.
/// let layer = TokenBindingLayer::new().rejection_response(|r: &TokenBindingRejection| {
///     Response::builder()
///         .status(r.status())
///         .header("content-type", "text/plain")
///         .body(Full::new(Bytes::from(format!("refused: {}\n", r.reason()))))
///         .unwrap()
/// });
/// ```
pub trait RejectionResponse: Send + Sync + 'static {
    /// The response for `rejection`.
    fn response(&self, rejection: &TokenBindingRejection) -> Response<Full<Bytes>>;
}

impl<F> RejectionResponse for F
where
    F: Fn(&TokenBindingRejection) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    fn response(&self, rejection: &TokenBindingRejection) -> Response<Full<Bytes>> {
        self(rejection)
    }
}

/// The default: `application/problem+json` (RFC 9457) with the rejection's status, a
/// `reason` member holding its stable code and a `detail` saying what to fix.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProblemJson;

impl RejectionResponse for ProblemJson {
    fn response(&self, rejection: &TokenBindingRejection) -> Response<Full<Bytes>> {
        crate::problem::problem_response(rejection.status(), rejection.reason(), rejection.detail())
    }
}

/// The configured hook, shared by every clone of the layer and its services.
#[derive(Clone)]
pub(crate) struct Responder(pub(crate) Arc<dyn RejectionResponse>);

impl Responder {
    /// The response for `rejection`, with the rejection in its extensions.
    pub(crate) fn respond(&self, rejection: TokenBindingRejection) -> Response<Full<Bytes>> {
        let mut res = self.0.response(&rejection);
        res.extensions_mut().insert(rejection);
        res
    }
}

impl axum_core::response::IntoResponse for TokenBindingRejection {
    fn into_response(self) -> axum_core::response::Response {
        Responder::default()
            .respond(self)
            .map(axum_core::body::Body::new)
    }
}

impl Default for Responder {
    fn default() -> Self {
        Self(Arc::new(ProblemJson))
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectionResponse")
    }
}
