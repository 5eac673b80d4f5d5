//! Device Bound Session Credentials (W3C DBSC) for Tower and axum: the session protocol
//! today's Chromium speaks, as one more producer of "this request proved possession of
//! key K" for the bound cookie layer.
//!
//! DBSC proves the browser's key only at registration and at refresh; in between, a
//! short-lived cookie stands in for it. So [`DbscLayer`] records the key as proven *at
//! the cookie's minting*, and a `BoundCookieLayer` accepts that only when configured with
//! `FreshnessPolicy::Within(..)` — never by default, never for tokens.
//!
//! With the `metrics` feature the two endpoints count their answers through the
//! [`metrics`](https://docs.rs/metrics/0.24) facade, in `tokbind_dbsc_registrations_total`
//! and `tokbind_dbsc_refreshes_total`, labelled `outcome`: `accepted`, the problem's
//! `reason`, or for a refresh `session_ended` and `stolen_cookie` (the README's "Metrics"
//! lists them all).
//!
//! ```
//! use axum::{Extension, Router, routing::get};
//! use tokbind_dbsc::{DbscLayer, StartDeviceBoundSession};
//! use tokbind_proto::FreshnessPolicy;
//! use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys, UnprovenClients};
//!
//! let keys = CookieKeys::generate()?;
//! let dbsc = DbscLayer::new(keys.clone(), "https://app.example")
//!     .rebind_cookie("id", "Path=/; Secure; HttpOnly; SameSite=Lax");
//! let app: Router = Router::new()
//!     .route("/login", get(|| async { (Extension(StartDeviceBoundSession::default()), "welcome") }))
//!     .layer(BoundCookieLayer::new(keys).only(["id"])
//!         .unproven_clients(UnprovenClients::IssueUnbound)
//!         .accept_proofs(FreshnessPolicy::Within(dbsc.proof_window())))
//!     .layer(dbsc);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app_response;
mod cookies;
mod endpoint;
mod future;
pub mod header;
pub mod instructions;
mod layer;
mod markers;
mod metrics;
pub mod proof;
mod refresh;
mod register;
mod service;
mod session;
pub mod store;
#[cfg(test)]
mod testing;

pub use future::ResponseFuture;
pub use layer::DbscLayer;
pub use markers::{
    DeviceBoundSession, EndDeviceBoundSession, RefreshSkipped, RequireFreshProof,
    StartDeviceBoundSession,
};
pub use service::Dbsc;
pub use store::{DbscStore, MemoryDbscStore, StoreError};

/// The layer's configuration, built by [`DbscLayer`] and shared by every part of the layer
/// (dispatch, the two endpoints, cookies, stored state), kept in the crate root so that none
/// of them imports another for it.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) origin: String,
    pub(crate) register_path: String,
    pub(crate) refresh_path: String,
    pub(crate) cookie_name: String,
    pub(crate) cookie_attributes: String,
    pub(crate) cookie_lifetime: std::time::Duration,
    pub(crate) challenge_ttl: std::time::Duration,
    pub(crate) session_lifetime: std::time::Duration,
    pub(crate) retirement: std::time::Duration,
    pub(crate) algorithms: Vec<tokbind_jose::Algorithm>,
    pub(crate) keys: tower_tokbind::cookie::CookieKeys,
    pub(crate) rebind: Vec<(String, String)>,
    pub(crate) allowed_refresh_initiators: Vec<String>,
    pub(crate) store: std::sync::Arc<dyn DbscStore>,
}
