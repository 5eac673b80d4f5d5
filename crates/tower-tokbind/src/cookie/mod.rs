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
//! with a `tracing` event and, with the `metrics` feature, a counter by reason
//! (`tokbind_bound_cookies_presented_total`, see the [crate docs](crate#metrics)).
//!
//! The binding is stateless: any instance with the same [`CookieKeys`] checks any cookie.
//!
//! # Reading the `Cookie` header as the application will
//!
//! The layer reads the header the way `tower-cookies` (and so `tower-sessions`),
//! `axum-extra`'s `CookieJar` and the `cookie` crate's parsers do ([`jar`] cites their
//! source), and hands the application a header it rebuilt from what it read and judged —
//! never the original. So no spelling gets a cookie past the check:
//!
//! * a name is checked if *any* of those parsers reads it as a bound cookie's name
//!   (`i%64`, ` id `, `id` after a no-break space are all `id` to some of them), and only
//!   the exact spelling can pass;
//! * every copy of a duplicated name is checked on its own, and if copies open with
//!   different keys none is handed on (parsers disagree on which copy counts);
//! * pieces the parsers cannot agree on — bytes that are not UTF-8, escapes that do not
//!   decode, pieces with no `name=` — are removed (counted by [`DropReason::Unreadable`]);
//! * several `Cookie` headers become one; empty pieces and stray `;` vanish; values keep
//!   their quotes and inner spaces, exactly as the parsers read them.
//!
//! # Which key a new `Set-Cookie` is bound to
//!
//! A cookie never moves to another key on a request that did not prove the key it is
//! bound to now:
//!
//! 1. A cookie the request presented, and that opened with key K, is bound to K again when
//!    the response sets it (a rotated session id, say).
//! 2. Other cookies the response sets go with the key the request's cookies opened with —
//!    the session's key — when there is one; when they opened with different keys, new
//!    cookies are withheld (either key's authority could be in them).
//! 3. Otherwise with a key proven for this very request, preferring the Token Binding
//!    provided ID, then a client certificate, then a DPoP key. A DBSC key, proven only
//!    within its short-lived cookie's window, never binds a cookie it did not open.
//!
//! So a thief holding a victim's DBSC cookies, who adds a DPoP proof of their own, cannot
//! get the victim's session re-issued to their key: it stays bound to the victim's DBSC
//! key and dies with the short-lived cookie.
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
pub mod jar;
mod layer;
mod service;

use std::collections::HashSet;

use tokbind_proto::FreshnessPolicy;

pub use binding::{CookieKeyError, CookieKeys, DropReason, MIN_KEY_LEN};
pub use jar::Unreadable;
pub use layer::BoundCookieLayer;
pub use service::{BoundCookies, ResponseFuture};

/// What to do for clients whose request proves no key (no Token Binding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnprovenClients {
    /// The default, fail closed: bound cookies are never issued to them (their
    /// `Set-Cookie` is withheld) and every configured cookie they present is removed. A
    /// client without Token Binding cannot hold a protected cookie.
    Refuse,
    /// Opt-in for a mixed population: such clients get cookies marked as *issued unbound*
    /// (MACed, but tied to no key) and may present those. Cookies bound to a key are still
    /// refused without the key, and a bound cookie with its binding stripped is not an
    /// unbound one, so this never weakens the protection of Token Binding clients — but
    /// the unbound clients' cookies are plain bearer cookies.
    IssueUnbound,
}

/// The layer's configuration, shared by the builder and every service it makes.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) keys: CookieKeys,
    pub(crate) names: Option<HashSet<String>>,
    pub(crate) unproven: UnprovenClients,
    pub(crate) freshness: FreshnessPolicy,
}

impl Config {
    pub(crate) fn covers(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|n| n.contains(name))
    }
}
