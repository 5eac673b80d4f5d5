//! DPoP — Demonstrating Proof of Possession (RFC 9449) — for Tower and axum.
//!
//! A DPoP client signs a short proof for every request with its own key; tokens issued to
//! it carry the key's thumbprint in `cnf.jkt`. Like Token Binding, a stolen token is
//! useless without the key; unlike Token Binding, it needs nothing from TLS.
//!
//! * [`DpopVerifier`]: every check of RFC 9449 §4.3 — `typ`, `alg` allow-list, public-only
//!   `jwk`, signature, `htm`, strictly normalised `htu`, `iat` window, `ath`, server
//!   nonces ([`NonceIssuer`], stateless, shared by instances), and single use
//!   ([`ReplayCache`]: in memory, or Redis with the `redis` feature).
//! * [`DpopLayer`]: the resource server. A valid proof adds the key to the request's
//!   `ProvenKeys`, so the same `tokbind_oauth::BoundBearerLayer` that checks `cnf.tbh`
//!   checks `cnf.jkt`, and the same `BoundCookieLayer` binds cookies to the DPoP key.
//! * [`DpopVerifier::check_token_request`]: the authorization server's token endpoint.
//! * [`DpopKey`]: the client's key and proofs.
//!
//! With the `metrics` feature, [`DpopLayer`] counts each request that carries DPoP in
//! `tokbind_dpop_total{outcome}` through the [`metrics`](https://docs.rs/metrics/0.24)
//! facade: `accepted`, or the refusal's [`DpopError::reason`] (the README's "Metrics").
//!
//! ```
//! use axum::{Router, routing::get};
//! use tokbind_dpop::{DpopLayer, DpopVerifier};
//! use tokbind_oauth::{BoundBearerLayer, CnfPolicy, TokenVerifier};
//! # fn app(tokens: TokenVerifier) -> Result<Router, Box<dyn std::error::Error>> {
//! let app = Router::new()
//!     .route("/api/me", get(|| async { "hello" }))
//!     .layer(BoundBearerLayer::new(tokens).policy(CnfPolicy::Required)) // checks cnf.jkt
//!     .layer(DpopLayer::new(DpopVerifier::new(), "https://api.example.com")?); // checks the proof
//! # Ok(app) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod error;
pub mod htu;
mod layer;
mod metrics;
pub mod nonce;
mod proof;
pub mod replay;
mod token_endpoint;

pub use client::{DpopKey, DpopKeyError};
pub use error::{DPOP_NONCE, DpopError};
pub use layer::{DPOP, Dpop, DpopLayer, ResponseFuture};
pub use nonce::NonceIssuer;
pub use proof::{DpopProof, DpopVerifier, MAX_JTI_LEN, RequestFacts, TYP};
#[cfg(feature = "redis")]
pub use replay::RedisReplayCache;
pub use replay::{MemoryReplayCache, ReplayCache, ReplayError};
