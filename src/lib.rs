//! Token Binding for Rust: bind cookies and OAuth/OIDC tokens to the client's TLS key, so a
//! stolen cookie or token is useless on another machine.
//!
//! This crate re-exports each layer of the design; depend on it, or on the layer you need.
//!
//! | layer | crate | RFC |
//! |---|---|---|
//! | protocol core (sans-IO): codec, signatures, validation, negotiation logic | [`proto`] (`tokbind-proto`) | RFC 8471, RFC 8472, RFC 8473 §2 |
//! | TLS: OpenSSL listener and connector negotiating `token_binding`, EKM, serve helper | [`tls`] (`tokbind-tls`) | RFC 8472, draft-ietf-tokbind-tls13 |
//! | Tower/axum layer verifying `Sec-Token-Binding`, extractors, rejections | [`tower`] (`tower-tokbind`) | RFC 8473 |
//! | HTTPS client that signs `Sec-Token-Binding`, follows redirects with referred bindings | [`client`] (`tokbind-client`) | RFC 8473 §2, §5 |
//! | OAuth/OIDC: `cnf` (`tbh`, `jkt`, `x5t#S256`), PKCE, bound JWTs and grants, resource-server layer | [`oauth`] (`tokbind-oauth`) | OAuth TB -08, OIDC TBA 04, RFC 7800 |
//! | Public JWKs, RFC 7638 thumbprints, strict proof-JWS checks | [`jose`] (`tokbind-jose`) | RFC 7517, RFC 7638 |
//! | DPoP: proof validation, replay cache, nonces, resource-server layer, token endpoint | [`dpop`] (`tokbind-dpop`) | RFC 9449 |
//! | DBSC: registration, refresh, short-lived bound cookies | [`dbsc`] (`tokbind-dbsc`) | W3C DBSC |
//! | TLS-terminating reverse proxy forwarding the verified IDs to any backend | [`proxy`] (`tokbind-proxy`) | draft-ietf-tokbind-ttrp-09 |
//!
//! Features: `redis` (the DPoP replay cache shared by several instances,
//! `dpop::RedisReplayCache`) and `metrics` (every layer counts its outcomes through the
//! [`metrics`](https://docs.rs/metrics/0.24) facade; the README's "Metrics" lists the
//! counters).
//!
//! ```
//! use tokbind::proto::{verify_header, Ekm, KeyParameters, MessageBuilder, SigningKey};
//!
//! let ekm = Ekm::new([1; 32]);
//! let key = SigningKey::generate(KeyParameters::ECDSAP256)?;
//! let header = MessageBuilder::new(&ekm).provided(&key)?.to_header_value()?;
//! let verified = verify_header(header.as_bytes(), &ekm, KeyParameters::ECDSAP256)?;
//! println!("tbh = {}", verified.provided.tbh());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub use tokbind_client as client;
pub use tokbind_dbsc as dbsc;
pub use tokbind_dpop as dpop;
pub use tokbind_jose as jose;
pub use tokbind_oauth as oauth;
pub use tokbind_proto as proto;
pub use tokbind_proxy as proxy;
pub use tokbind_tls as tls;
pub use tower_tokbind as tower;
