//! Reading the verified Token Binding IDs in handlers.
//!
//! [`TokenBindingLayer`](crate::TokenBindingLayer) puts a [`TokenBindingState`] in every
//! request it lets through. The axum extractors here read it:
//!
//! | extractor | when there is no verified binding |
//! |---|---|
//! | [`ProvidedBinding`] | 403 `token_binding_missing` |
//! | `Option<ProvidedBinding>` | `None` |
//! | [`ReferredBinding`] | 403 `referred_binding_missing` |
//! | `Option<ReferredBinding>` | `None` |
//! | [`VerifiedTokenBinding`] | 403, like `ProvidedBinding` |
//!
//! Without the layer every one of them fails with 500 `token_binding_layer_missing`, so a
//! forgotten layer never looks like an unbound client.

use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use tokbind_proto::{TokenBindingId, VerifiedBindings};

/// What the layer established for a request it let through.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TokenBindingState {
    /// The header was verified: these IDs are proven for this request.
    Verified(Arc<VerifiedBindings>),
    /// The connection did not negotiate Token Binding (allowed by the layer's policy).
    NotNegotiated,
    /// The connection negotiated it but the request had no header (allowed by policy).
    HeaderMissing,
}

impl TokenBindingState {
    /// The verified bindings, if any.
    pub fn verified(&self) -> Option<&Arc<VerifiedBindings>> {
        match self {
            Self::Verified(v) => Some(v),
            _ => None,
        }
    }
}

/// The verified provided Token Binding ID: the key the client holds for this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedBinding(pub TokenBindingId);

/// The verified referred Token Binding ID: the key the client holds for the server that
/// redirected it here with `Include-Referred-Token-Binding-ID` (RFC 8473 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferredBinding(pub TokenBindingId);

/// Everything the layer verified for this request.
#[derive(Debug, Clone)]
pub struct VerifiedTokenBinding(pub Arc<VerifiedBindings>);

/// An extractor found no (suitable) verified Token Binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingTokenBinding {
    /// The layer is not installed in front of this handler (500).
    LayerMissing,
    /// The request has no verified provided binding (403).
    NotBound,
    /// The request has no verified referred binding (403).
    NoReferred,
}

impl MissingTokenBinding {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// The stable code.
    pub fn reason(self) -> &'static str {
        match self {
            Self::LayerMissing => "token_binding_layer_missing",
            Self::NotBound => "token_binding_missing",
            Self::NoReferred => "referred_binding_missing",
        }
    }

    /// What to fix.
    pub fn body_text(self) -> &'static str {
        match self {
            Self::LayerMissing => {
                "Token Binding extractor used without the layer. Is `TokenBindingLayer` enabled for this route?"
            }
            Self::NotBound => {
                "this resource requires Token Binding; the request carries no verified Token Binding"
            }
            Self::NoReferred => {
                "this resource requires a referred Token Binding (sent after a redirect with Include-Referred-Token-Binding-ID)"
            }
        }
    }
}

impl std::fmt::Display for MissingTokenBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.body_text())
    }
}

impl std::error::Error for MissingTokenBinding {}

impl IntoResponse for MissingTokenBinding {
    fn into_response(self) -> Response {
        if self == Self::LayerMissing {
            tracing::error!("{}", self.body_text());
        }
        crate::problem::problem_response(self.status(), self.reason(), self.body_text())
    }
}

fn state(parts: &Parts) -> Result<&TokenBindingState, MissingTokenBinding> {
    parts
        .extensions
        .get::<TokenBindingState>()
        .ok_or(MissingTokenBinding::LayerMissing)
}

fn verified(parts: &Parts) -> Result<Option<&Arc<VerifiedBindings>>, MissingTokenBinding> {
    state(parts).map(TokenBindingState::verified)
}

impl<S: Sync> FromRequestParts<S> for VerifiedTokenBinding {
    type Rejection = MissingTokenBinding;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        verified(parts)?
            .map(|v| Self(Arc::clone(v)))
            .ok_or(MissingTokenBinding::NotBound)
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for VerifiedTokenBinding {
    type Rejection = MissingTokenBinding;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(verified(parts)?.map(|v| Self(Arc::clone(v))))
    }
}

impl<S: Sync> FromRequestParts<S> for ProvidedBinding {
    type Rejection = MissingTokenBinding;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        verified(parts)?
            .map(|v| Self(v.provided.clone()))
            .ok_or(MissingTokenBinding::NotBound)
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for ProvidedBinding {
    type Rejection = MissingTokenBinding;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(verified(parts)?.map(|v| Self(v.provided.clone())))
    }
}

impl<S: Sync> FromRequestParts<S> for ReferredBinding {
    type Rejection = MissingTokenBinding;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match verified(parts)? {
            None => Err(MissingTokenBinding::NotBound),
            Some(v) => v
                .referred
                .clone()
                .map(Self)
                .ok_or(MissingTokenBinding::NoReferred),
        }
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for ReferredBinding {
    type Rejection = MissingTokenBinding;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(verified(parts)?.and_then(|v| v.referred.clone().map(Self)))
    }
}
