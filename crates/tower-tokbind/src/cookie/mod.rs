//! Bound cookies: a cookie copied to another machine is worthless (RFC 8471 §5,
//! RFC 8473 §4).
//!
//! [`BoundCookieLayer`] binds each cookie the application sets to the key the request
//! proved possession of — with Token Binding, the verified provided Token Binding ID — by
//! appending a MAC over the key's ID, the cookie's name and its value. On later requests a
//! cookie is handed to the application (with its original value) only if its MAC verifies
//! for the key *that* request proves. A stolen cookie presented by another client, a
//! tampered value or MAC, a cookie with its binding stripped, and a bound cookie on a
//! connection without Token Binding are all removed before the application sees them,
//! with a `tracing` event and a [`CookieStats`] counter by reason.
//!
//! The binding is stateless: any instance with the same [`CookieKeys`] checks any cookie.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_tokbind::TokenBindingLayer;
//! use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys};
//!
//! # fn keys_from_config() -> Vec<u8> { vec![7; 32] }
//! let keys = CookieKeys::new(&keys_from_config()).expect("32 or more random bytes");
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     // Inner to outer: the session (or whatever sets the cookie), then the binding, then
//!     // the verification that produces the proven key.
//!     .layer(BoundCookieLayer::new(keys).only(["id"]))
//!     .layer(TokenBindingLayer::new());
//! ```
//!
//! # Format
//!
//! `Set-Cookie: id=abc; Path=/; HttpOnly` becomes
//! `Set-Cookie: id=abc~tb1.<43 characters>; Path=/; HttpOnly; Secure` — attributes are
//! kept exactly as written and `Secure` is added when missing. Cookies that delete
//! themselves pass unchanged. See [`CookieKeys`] for rotation.
//!
//! # Clients without Token Binding
//!
//! By default ([`UnprovenClients::Refuse`]) they get no bound cookie and every configured
//! cookie they send is removed: fail closed. [`UnprovenClients::IssueUnbound`] lets a
//! mixed population in: their cookies are marked as issued unbound, which a stolen bound
//! cookie can never be turned into.

mod binding;
mod layer;
mod service;
mod stats;

pub use binding::{CookieKeyError, CookieKeys, DropReason, MIN_KEY_LEN};
pub use layer::{BoundCookieLayer, UnprovenClients};
pub use service::{BoundCookies, ResponseFuture};
pub use stats::CookieStats;
