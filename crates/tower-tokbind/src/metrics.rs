//! Counters through the `metrics` facade, behind the `metrics` feature (see the crate docs
//! for the names and labels). Without the feature [`count`] is an empty inline function, so
//! the layers pay nothing for it.
//!
//! Label values are `&'static str`: stable codes chosen here, never text from a request,
//! so a client cannot make a metric grow a series per value it sends.

/// `TokenBindingLayer`'s verdicts.
pub(crate) const TOKEN_BINDING: &str = "tokbind_token_binding_total";
/// `BoundCookieLayer`: cookies the request presented.
pub(crate) const COOKIES_PRESENTED: &str = "tokbind_bound_cookies_presented_total";
/// `BoundCookieLayer`: cookies the response set.
pub(crate) const COOKIES_SET: &str = "tokbind_bound_cookies_set_total";
/// `ForwardedTokenBindingLayer`'s trust decisions.
pub(crate) const FORWARDED: &str = "tokbind_forwarded_headers_total";

/// Add one to the counter `name` with the label `outcome`.
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn count(name: &'static str, outcome: &'static str) {
    metrics::counter!(name, "outcome" => outcome).increment(1);
}

/// Add one to the counter `name` with the label `outcome` (a no-op: the `metrics` feature is
/// off).
#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn count(_name: &'static str, _outcome: &'static str) {}
