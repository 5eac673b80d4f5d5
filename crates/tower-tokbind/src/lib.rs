//! Tower/axum middleware for Token Binding over HTTP (RFC 8473).
//!
//! [`TokenBindingLayer`] verifies each request's `Sec-Token-Binding` header against the
//! TLS connection it arrived on, and hands the verified Token Binding IDs to handlers.
//! A header copied from another connection, signed by another key, malformed, repeated,
//! or sent without negotiation is refused with a 400 `application/problem+json` response
//! whose `reason` says which ([`RejectionKind`]).
//!
//! # Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tower_tokbind::{ProvidedBinding, TokenBindingLayer};
//!
//! async fn whoami(ProvidedBinding(id): ProvidedBinding) -> String {
//!     format!("your Token Binding hash is {}\n", id.tbh())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Router::new()
//!     .route("/", get(whoami))
//!     .layer(TokenBindingLayer::new());
//!
//! // A TLS listener that negotiates Token Binding and tells the layer about it.
//! let cert = tokbind_tls::SelfSigned::generate(&["localhost"])?;
//! let acceptor = tokbind_tls::TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! tokbind_tls::serve(listener, acceptor, app).await?;
//! # Ok(()) }
//! ```
//!
//! # What it checks
//!
//! For each request, with the connection's [`ConnectionInfo`](tokbind_proto::ConnectionInfo):
//!
//! 1. At most one Token Binding header (RFC 8473 §2: more is a 400).
//! 2. A header on a connection that did not negotiate Token Binding is refused
//!    (RFC 8471 §4.2).
//! 3. The message is decoded strictly and validated against the connection's EKM and
//!    negotiated key parameters ([`tokbind_proto::validate`](mod@tokbind_proto::validate)).
//! 4. No header on a negotiated connection is refused unless configured otherwise
//!    ([`MissingHeader`]).
//!
//! Verdicts are cached per connection (a keep-alive client repeats the same header), never
//! across connections.
//!
//! # Metrics
//!
//! With the `metrics` feature the layers count their outcomes through the
//! [`metrics`](https://docs.rs/metrics/0.24) facade, in counters with one label, `outcome`,
//! whose values are stable codes (never text from a request):
//!
//! | counter | `outcome` |
//! |---|---|
//! | `tokbind_token_binding_total` | `accepted`, `allowed_without_binding`, or a [`RejectionKind::reason`] |
//! | `tokbind_bound_cookies_presented_total` | `accepted`, or a [`cookie::DropReason::reason`] |
//! | `tokbind_bound_cookies_set_total` | `bound`, `issued_unbound`, `withheld` |
//! | `tokbind_forwarded_headers_total` | `trusted`, `ignored`, `untrusted`, `malformed_forwarded_header` |
//!
//! Without the feature nothing is counted and the counting compiles to nothing. The
//! README's "Metrics" section says what each outcome means and shows a Prometheus export.
//!
//! # Features
//!
//! - `axum` (default): [`ttrp::ForwardedTokenBindingLayer`] also reads the peer from axum's
//!   `ConnectInfo<SocketAddr>`, for a backend served by `axum::serve`. Without it the crate
//!   needs only `axum-core`, and the peer comes from the connection's
//!   [`ConnectionInfo`](tokbind_proto::ConnectionInfo) alone.
//! - `metrics`: the counters above.
//!
//! # Deployment caveat
//!
//! The layer must see the TLS connection the client signed: it needs the EKM. Behind a
//! TLS-terminating proxy it cannot verify anything; the proxy must verify and forward the
//! IDs instead (draft-ietf-tokbind-ttrp).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authorization;
pub mod cookie;
pub mod expiring;
pub mod extract;
mod future;
pub mod include_referred;
mod layer;
mod metrics;
mod mock;
pub mod possession;
pub mod problem;
mod rejection;
pub mod response;
mod service;
pub mod ttrp;

pub use extract::{
    MissingTokenBinding, ProvidedBinding, ReferredBinding, TokenBindingState, VerifiedTokenBinding,
};
pub use future::ResponseFuture;
pub use include_referred::IncludeReferredLayer;
pub use layer::TokenBindingLayer;
pub use mock::{MockConnectionInfo, MockConnectionInfoService};
pub use possession::add_proven_key;
pub use rejection::{RejectionKind, TokenBindingRejection};
pub use response::{ProblemJson, RejectionResponse};
pub use service::VerifyTokenBinding;
pub use tokbind_proto::HeaderErrorKind;

/// Configuration shared by [`TokenBindingLayer`] (the builder) and every
/// [`VerifyTokenBinding`] it makes, kept here so that neither file imports the other.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) legacy_header_name: bool,
    pub(crate) missing_header: MissingHeader,
    pub(crate) unnegotiated: Unnegotiated,
    pub(crate) options: tokbind_proto::ValidationOptions,
    pub(crate) responder: response::Responder,
}

/// What to do with a request that carries no Token Binding header on a connection that
/// negotiated Token Binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingHeader {
    /// Reject with 400 `missing_header` (the default: RFC 8473 §2 says the client MUST
    /// send it, and a client that negotiated and then omits it is broken or tampered with).
    Reject,
    /// Let the request through with no verified ID; bound cookies and tokens then fail
    /// their checks further down (RFC 8471 §5).
    Allow,
}

/// What to do with a request on a connection that did not negotiate Token Binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unnegotiated {
    /// Let it through with no verified ID (the default, so that clients without Token
    /// Binding keep working; nothing is asserted about them).
    Allow,
    /// Reject with 400 `token_binding_required`.
    Reject,
}
