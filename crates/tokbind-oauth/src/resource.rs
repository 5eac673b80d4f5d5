//! A resource server's check of token-bound bearer JWTs (OAuth TB §3.3).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use tokbind_proto::{Mechanism, ProvenKeys};
use tower_layer::Layer;
use tower_service::Service;
use tower_tokbind::ResponseFuture;
use tower_tokbind::authorization::{MultipleAuthorization, TokenScheme, access_token};
use tower_tokbind::problem::problem_response;

use crate::cnf::CnfPolicy;
use crate::jwt::{Claims, TokenVerifier};

/// Requires `Authorization: Bearer <JWT>` (or `DPoP <JWT>`) on every request and checks the
/// token: signature, issuer, audience, lifetime, and its `cnf` (`tbh`, `jkt`, `x5t#S256`)
/// against the keys the request proved (put it inside `TokenBindingLayer` and/or
/// `tokbind_dpop::DpopLayer`). A DPoP-bound token presented as `Bearer` is refused (RFC
/// 9449 §7.2), and so is the `DPoP` scheme for a token that is not DPoP-bound. The
/// verified claims go into the request extensions as [`BearerClaims`]. Failures are 401
/// with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3; `DPoP …` for the
/// DPoP scheme) and a problem document whose `reason` says why.
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
        let token = match access_token(req.headers()) {
            Ok(token) => token,
            Err(MultipleAuthorization) => {
                return ResponseFuture::rejected(unauthorized(
                    StatusCode::BAD_REQUEST,
                    TokenScheme::Bearer,
                    "invalid_request",
                    "duplicate_authorization",
                    "send exactly one Authorization header",
                ));
            }
        };
        let Some((scheme, token)) = token else {
            return ResponseFuture::rejected(unauthorized(
                StatusCode::UNAUTHORIZED,
                TokenScheme::Bearer,
                "",
                "missing_token",
                "this resource requires a bearer token",
            ));
        };
        let keys = req.extensions().get::<ProvenKeys>();
        let refuse_as = |scheme: TokenScheme, reason: &str, detail: &str| {
            tracing::debug!(reason, detail, "access token refused");
            ResponseFuture::rejected(unauthorized(
                StatusCode::UNAUTHORIZED,
                scheme,
                "invalid_token",
                reason,
                detail,
            ))
        };
        let refuse = |reason: &str, detail: &str| refuse_as(scheme, reason, detail);
        // The DPoP scheme means "checked by DpopLayer": without its proof, fail closed.
        if scheme == TokenScheme::Dpop && keys.and_then(|k| k.by(Mechanism::Dpop)).is_none() {
            return refuse(
                "dpop_proof_missing",
                "a DPoP token needs a verified DPoP proof (is DpopLayer in front of this layer?)",
            );
        }
        let claims =
            match self
                .layer
                .verifier
                .verify(token, keys.into_iter().flatten(), self.layer.policy)
            {
                Ok(claims) => claims,
                Err(e) => return refuse(e.reason(), &e.to_string()),
            };
        let dpop_bound = claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some());
        match (scheme, dpop_bound) {
            // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is a downgrade.
            // The challenge names the scheme the token needs.
            (TokenScheme::Bearer, true) => {
                return refuse_as(
                    TokenScheme::Dpop,
                    "dpop_token_as_bearer",
                    "a DPoP-bound token must be presented with the DPoP scheme",
                );
            }
            (TokenScheme::Dpop, false) => {
                return refuse(
                    "not_dpop_bound",
                    "the DPoP scheme is for tokens bound to a DPoP key (cnf.jkt)",
                );
            }
            _ => {}
        }
        req.extensions_mut().insert(BearerClaims(Arc::new(claims)));
        ResponseFuture::inner(self.inner.call(req))
    }
}

/// An RFC 6750 error response with a problem document.
fn unauthorized(
    status: StatusCode,
    scheme: TokenScheme,
    error: &str,
    reason: &str,
    detail: &str,
) -> Response<Full<Bytes>> {
    let scheme = match scheme {
        TokenScheme::Bearer => "Bearer",
        TokenScheme::Dpop => "DPoP",
    };
    let challenge = if error.is_empty() {
        scheme.to_string()
    } else {
        format!(
            "{scheme} error=\"{error}\", error_description=\"{}\"",
            detail.replace('"', "'")
        )
    };
    let mut res: Response<Full<Bytes>> = problem_response(status, reason, detail);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}
