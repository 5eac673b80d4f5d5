//! [`VerifyTokenBinding`]: the middleware service.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{Either, Full};
use tokbind_proto::header::{LEGACY_TOKEN_BINDING, SEC_TOKEN_BINDING};
use tokbind_proto::{ConnectionInfo, ProvenKey};
use tower_service::Service;

use crate::extract::TokenBindingState;
use crate::future::ResponseFuture;
use crate::metrics::{TOKEN_BINDING, count};
use crate::possession::add_proven_key;
use crate::rejection::{RejectionKind, TokenBindingRejection};
use crate::{Config, MissingHeader, Unnegotiated};

/// The service made by [`TokenBindingLayer`](crate::TokenBindingLayer).
#[derive(Debug, Clone)]
pub struct VerifyTokenBinding<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S> VerifyTokenBinding<S> {
    /// Decide on one request: the state to hand to the inner service, or why not.
    pub fn verify<B>(&self, req: &Request<B>) -> Result<TokenBindingState, TokenBindingRejection> {
        let header = self.single_header(req.headers())?;
        let Some(info) = req.extensions().get::<Arc<ConnectionInfo>>() else {
            tracing::error!(
                "no ConnectionInfo in the request: serve the app with tokbind_tls::serve (or insert Arc<ConnectionInfo> per connection)"
            );
            return Err(TokenBindingRejection::new(
                RejectionKind::MissingConnectionInfo,
                "the server cannot verify Token Binding: its TLS listener provides no connection information",
            ));
        };
        let negotiated = info.negotiated().is_some();
        match (header, negotiated) {
            (Some(value), _) => match info.verify_header(value.as_bytes(), &self.config.options) {
                Ok(Ok(verified)) => {
                    tracing::trace!(tbh = %verified.provided.tbh(), referred = verified.referred.is_some(), "Token Binding verified");
                    Ok(TokenBindingState::Verified(verified))
                }
                Ok(Err(e)) => Err(TokenBindingRejection::from_header_error(&e)),
                Err(_) => Err(TokenBindingRejection::new(
                    RejectionKind::NotNegotiated,
                    "a Token Binding header was sent on a connection that did not negotiate Token Binding",
                )),
            },
            (None, true) => match self.config.missing_header {
                MissingHeader::Reject => Err(TokenBindingRejection::new(
                    RejectionKind::MissingHeader,
                    "the connection negotiated Token Binding, so every request must carry a Sec-Token-Binding header",
                )),
                MissingHeader::Allow => Ok(TokenBindingState::HeaderMissing),
            },
            (None, false) => match self.config.unnegotiated {
                Unnegotiated::Allow => Ok(TokenBindingState::NotNegotiated),
                Unnegotiated::Reject => Err(TokenBindingRejection::new(
                    RejectionKind::TokenBindingRequired,
                    "this server requires Token Binding; the TLS connection did not negotiate it",
                )),
            },
        }
    }

    /// The one Token Binding header value, if any. Two or more (across the RFC name and,
    /// when accepted, the legacy name) is a 400 (RFC 8473 §2).
    fn single_header<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> Result<Option<&'h http::HeaderValue>, TokenBindingRejection> {
        let mut values = headers.get_all(SEC_TOKEN_BINDING).iter();
        let legacy = self
            .config
            .legacy_header_name
            .then(|| headers.get_all(LEGACY_TOKEN_BINDING).iter())
            .into_iter()
            .flatten();
        let mut all = values.by_ref().chain(legacy);
        let first = all.next();
        if all.next().is_some() {
            return Err(TokenBindingRejection::new(
                RejectionKind::DuplicateHeader,
                "a request may carry exactly one Sec-Token-Binding header",
            ));
        }
        Ok(first)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyTokenBinding<S>
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
        match self.verify(&req) {
            Ok(state) => {
                count(
                    TOKEN_BINDING,
                    match state {
                        TokenBindingState::Verified(_) => "accepted",
                        // Let through by `MissingHeader::Allow` or `Unnegotiated::Allow`.
                        TokenBindingState::NotNegotiated | TokenBindingState::HeaderMissing => {
                            "allowed_without_binding"
                        }
                    },
                );
                // A client certificate proves its key on every request of its connection
                // (RFC 8705 §3): the connection's other proof, made beside Token Binding's.
                let certificate = req
                    .extensions()
                    .get::<Arc<ConnectionInfo>>()
                    .and_then(|info| info.client_certificate_key());
                if let Some(key) = certificate {
                    add_proven_key(req.extensions_mut(), key);
                }
                if let Some(v) = state.verified() {
                    add_proven_key(req.extensions_mut(), ProvenKey::token_binding(&v.provided));
                }
                req.extensions_mut().insert(state);
                ResponseFuture::inner(self.inner.call(req))
            }
            Err(rejection) => {
                count(TOKEN_BINDING, rejection.reason());
                tracing::debug!(
                    reason = rejection.reason(),
                    detail = rejection.detail(),
                    "request rejected"
                );
                ResponseFuture::rejected(self.config.responder.respond(rejection))
            }
        }
    }
}
