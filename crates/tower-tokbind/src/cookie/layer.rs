//! [`BoundCookieLayer`]: configuration.

use std::collections::HashSet;
use std::sync::Arc;

use tokbind_proto::FreshnessPolicy;
use tower_layer::Layer;

use super::binding::CookieKeys;
use super::jar::is_cookie_name;
use super::service::BoundCookies;
use super::{Config, UnprovenClients};

/// Binds cookies to the key the request proved possession of (a verified provided Token
/// Binding ID) and removes cookies that do not match.
///
/// Put it inside [`TokenBindingLayer`](crate::TokenBindingLayer) (so it runs after the
/// verification) and outside the layer that reads and sets the cookies (e.g. a session
/// manager). See the [module docs](super) for the format and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct BoundCookieLayer {
    pub(crate) config: Arc<Config>,
}

impl BoundCookieLayer {
    /// Bind every cookie, with MACs made by `keys`. A presented cookie whose name is
    /// written with a percent-escape (`a%20b`: some parsers decode it, others do not)
    /// cannot be read alike by every parser, and is removed.
    pub fn new(keys: CookieKeys) -> Self {
        Self {
            config: Arc::new(Config {
                keys,
                names: None,
                unproven: UnprovenClients::Refuse,
                freshness: FreshnessPolicy::ThisRequest,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Bind only the cookies with these names; others pass both ways as they came (read
    /// and rewritten as the [`jar`](super::jar) module says).
    ///
    /// A pair is checked as one of these cookies when any application parser reads it so:
    /// `i%64=…` is `id` to `tower-cookies`. Only the exact spelling can pass the check.
    ///
    /// # Panics
    ///
    /// If a name is not a cookie name every parser reads alike (an RFC 9110 token without
    /// `%`, see [`jar::is_cookie_name`](super::jar::is_cookie_name)): such a cookie could
    /// never be checked. A configuration error, found when the layer is built.
    pub fn only<I, N>(self, names: I) -> Self
    where
        I: IntoIterator<Item = N>,
        N: Into<String>,
    {
        let names: HashSet<String> = names.into_iter().map(Into::into).collect();
        if let Some(bad) = names.iter().find(|n| !is_cookie_name(n)) {
            panic!(
                "BoundCookieLayer::only: {bad:?} is not a cookie name (an RFC 9110 token without '%')"
            );
        }
        self.with(|c| c.names = Some(names))
    }

    /// What to do for clients that prove no key (default [`UnprovenClients::Refuse`]).
    pub fn unproven_clients(self, policy: UnprovenClients) -> Self {
        self.with(|c| c.unproven = policy)
    }

    /// Which proofs of possession count (default [`FreshnessPolicy::ThisRequest`]: only a
    /// key proven for this very request, as Token Binding and DPoP prove it). A DBSC
    /// session proves its key only when it refreshes its short-lived cookie; accept it with
    /// [`FreshnessPolicy::Within`] the cookie's lifetime, knowingly.
    pub fn accept_proofs(self, policy: FreshnessPolicy) -> Self {
        self.with(|c| c.freshness = policy)
    }
}

impl<S> Layer<S> for BoundCookieLayer {
    type Service = BoundCookies<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundCookies {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
