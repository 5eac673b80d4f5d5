//! [`DpopLayer`]: a resource server's check of DPoP proofs (RFC 9449 §7).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tower_tokbind::add_proven_key;
use tower_tokbind::authorization::{TokenScheme, access_token};

use crate::error::{DPOP_NONCE, DpopError};
use crate::htu::{self, HtuError};
use crate::metrics::count;
use crate::proof::{DpopVerifier, RequestFacts};

/// The `DPoP` request header.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");

/// Checks the `DPoP` proof of every request that carries one or that presents a token with
/// the `DPoP` scheme; requests with neither pass untouched.
///
/// A valid proof — signature, `typ`, `alg`, public `jwk`, `htm`, `htu` against the
/// configured public origin (never the `Host` header), `iat` window, `ath` for the token,
/// server nonce when required, single use — adds the key to the request's
/// [`ProvenKeys`](tokbind_proto::ProvenKeys) (`Mechanism::Dpop`, proven for this request)
/// and the [`DpopProof`](crate::DpopProof) to its extensions. The token itself, and its
/// `cnf.jkt`, are checked by the token layer inside (`tokbind_oauth::BoundBearerLayer`),
/// exactly as `cnf.tbh` is for Token Binding; a bound cookie layer inside binds cookies to
/// the DPoP key alike.
///
/// Refusals are 401 with `WWW-Authenticate: DPoP algs="…", error="invalid_dpop_proof"`
/// (or `use_dpop_nonce` with a `DPoP-Nonce` header), 400 for `Bearer` and `DPoP` together,
/// and 503 if the replay cache cannot answer.
///
/// ```
/// use axum::{Router, routing::get};
/// use tokbind_dpop::{DpopLayer, DpopVerifier};
///
/// let app: Router = Router::new()
///     .route("/api/me", get(|| async { "hello" }))
///     .layer(DpopLayer::new(DpopVerifier::new(), "https://api.example.com")?);
/// # Ok::<(), tokbind_dpop::htu::HtuError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct DpopLayer {
    verifier: Arc<DpopVerifier>,
    origin: Arc<str>,
}

impl DpopLayer {
    /// Check proofs with `verifier`, for requests addressed to `public_origin` (scheme,
    /// host and port as clients see them, e.g. `https://api.example.com`).
    pub fn new(verifier: DpopVerifier, public_origin: &str) -> Result<Self, HtuError> {
        Self::shared(Arc::new(verifier), public_origin)
    }

    /// As [`new`](Self::new), sharing a verifier (and so its replay cache) with a token
    /// endpoint.
    pub fn shared(verifier: Arc<DpopVerifier>, public_origin: &str) -> Result<Self, HtuError> {
        htu::expected(public_origin, "/")?;
        Ok(Self {
            verifier,
            origin: public_origin.trim_end_matches('/').into(),
        })
    }
}

impl<S> Layer<S> for DpopLayer {
    type Service = Dpop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dpop {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`DpopLayer`].
#[derive(Debug, Clone)]
pub struct Dpop<S> {
    inner: S,
    layer: DpopLayer,
}

pin_project! {
    /// The response future of [`Dpop`]: requests without DPoP, and those refused before any
    /// proof is checked, are not boxed; only the proof check (which may ask a shared
    /// replay cache) is.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

/// The boxed proof check and the inner call after it.
type Checking<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<Either<B, Full<Bytes>>>, E>> + Send>>;

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Direct { #[pin] future: tower_tokbind::ResponseFuture<F> },
        Checking { future: Checking<B, E> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Either<B, Full<Bytes>>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Direct { future } => future.poll(cx),
            KindProj::Checking { future } => future.as_mut().poll(cx),
        }
    }
}

/// The single `DPoP` header value (RFC 9449 §4.3 step 1), for the layer and the token
/// endpoint alike.
pub(crate) fn single_proof(headers: &HeaderMap) -> Result<Option<&str>, DpopError> {
    let mut values = headers.get_all(&DPOP).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => match v.to_str() {
            // A comma means a combined list of several proofs.
            Ok(text) if !text.contains(',') => Ok(Some(text.trim())),
            _ => Err(DpopError::MultipleProofs),
        },
        (Some(_), Some(_)) => Err(DpopError::MultipleProofs),
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Dpop<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let direct = |future| ResponseFuture {
            kind: Kind::Direct { future },
        };
        let refuse = |e: DpopError| {
            count(e.reason());
            let response = e.resource_response(&self.layer.verifier, SystemTime::now());
            direct(tower_tokbind::ResponseFuture::rejected(response))
        };
        // What the headers ask for is settled first, borrowing them: the common request
        // with no DPoP at all goes straight to the inner service. Bearer and DPoP together
        // (or twice) is a malformed request (RFC 9449 §7.2).
        let auth = access_token(req.headers()).map_err(|_| DpopError::ConflictingSchemes);
        let (proof, access_token) = match auth.and_then(|a| Ok((a, single_proof(req.headers())?))) {
            Err(e) => return refuse(e),
            Ok((auth, Some(proof))) => (proof.to_owned(), auth.map(|(_, t)| t.to_owned())),
            Ok((Some((TokenScheme::Dpop, _)), None)) => return refuse(DpopError::MissingProof),
            Ok((_, None)) => {
                return direct(tower_tokbind::ResponseFuture::inner(self.inner.call(req)));
            }
        };

        // The service that was polled ready handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        let future = Box::pin(async move {
            let now = SystemTime::now();
            let verifier = &layer.verifier;
            // Normalised once, by the check (the origin was validated in `new`).
            let htu = htu::target(&layer.origin, req.uri().path());
            let facts = RequestFacts {
                method: req.method().as_str(),
                htu: &htu,
                access_token: access_token.as_deref(),
            };
            let (verified, nonce) = match verifier.verify_with_nonce(&proof, &facts, now).await {
                Ok(v) => v,
                Err(e) => {
                    count(e.reason());
                    tracing::debug!(reason = e.reason(), error = %e, "DPoP proof refused");
                    return Ok(e.resource_response(verifier, now).map(Either::Right));
                }
            };
            count("accepted");
            add_proven_key(req.extensions_mut(), verified.proven_key());
            req.extensions_mut().insert(verified);
            let mut res = inner.call(req).await?.map(Either::Left);
            if verifier.nonce_wants_rotation(nonce.as_deref(), now)
                && let Some(v) = verifier
                    .fresh_nonce(now)
                    .and_then(|n| HeaderValue::from_str(&n).ok())
            {
                res.headers_mut().insert(DPOP_NONCE, v);
            }
            Ok(res)
        });
        ResponseFuture {
            kind: Kind::Checking { future },
        }
    }
}
