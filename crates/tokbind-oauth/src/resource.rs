//! A resource server's check of token-bound bearer JWTs (OAuth TB §3.3).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use tokbind_proto::ProvenKeys;
use tower_layer::Layer;
use tower_service::Service;
use tower_tokbind::ResponseFuture;

use crate::cnf::CnfPolicy;
use crate::jwt::{Claims, TokenVerifier};

/// Requires `Authorization: Bearer <JWT>` on every request and checks the token: signature,
/// issuer, audience, lifetime, and its `cnf.tbh` against the key the request proved (put
/// it inside `TokenBindingLayer`). The verified claims go into the request extensions as
/// [`BearerClaims`]. Failures are 401 with `WWW-Authenticate: Bearer error="invalid_token"`
/// (RFC 6750 §3) and a problem document whose `reason` says why.
#[derive(Debug, Clone)]
#[must_use]
pub struct BoundBearerLayer {
    verifier: Arc<TokenVerifier>,
    policy: CnfPolicy,
}

impl BoundBearerLayer {
    /// Check tokens with `verifier`, under the default [`CnfPolicy::Optional`].
    pub fn new(verifier: TokenVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            policy: CnfPolicy::default(),
        }
    }

    /// How unbound tokens are treated.
    pub fn policy(mut self, policy: CnfPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// The claims of the request's verified bearer token.
#[derive(Debug, Clone)]
pub struct BearerClaims(pub Arc<Claims>);

impl<S> Layer<S> for BoundBearerLayer {
    type Service = BoundBearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundBearer {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`BoundBearerLayer`].
#[derive(Debug, Clone)]
pub struct BoundBearer<S> {
    inner: S,
    layer: BoundBearerLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BoundBearer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let mut values = req.headers().get_all(AUTHORIZATION).iter();
        let token = match (values.next(), values.next()) {
            (Some(v), None) => v
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string()),
            (Some(_), Some(_)) => {
                return ResponseFuture::rejected(unauthorized(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "duplicate_authorization",
                    "send exactly one Authorization header",
                ));
            }
            (None, _) => None,
        };
        let Some(token) = token else {
            return ResponseFuture::rejected(unauthorized(
                StatusCode::UNAUTHORIZED,
                "",
                "missing_token",
                "this resource requires a bearer token",
            ));
        };
        let proven = req.extensions().get::<ProvenKeys>().into_iter().flatten();
        match self
            .layer
            .verifier
            .verify(&token, proven, self.layer.policy)
        {
            Ok(claims) => {
                req.extensions_mut().insert(BearerClaims(Arc::new(claims)));
                ResponseFuture::inner(self.inner.call(req))
            }
            Err(e) => {
                tracing::debug!(reason = e.reason(), error = %e, "bearer token refused");
                ResponseFuture::rejected(unauthorized(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    e.reason(),
                    &e.to_string(),
                ))
            }
        }
    }
}

/// An RFC 6750 error response with a problem document.
fn unauthorized(
    status: StatusCode,
    error: &str,
    reason: &str,
    detail: &str,
) -> Response<Full<Bytes>> {
    let challenge = if error.is_empty() {
        "Bearer".to_string()
    } else {
        format!(
            "Bearer error=\"{error}\", error_description=\"{}\"",
            detail.replace('"', "'")
        )
    };
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "reason": reason,
        "detail": detail,
    });
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}
