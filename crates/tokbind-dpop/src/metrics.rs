//! `tokbind_dpop_total{outcome}` through the `metrics` facade, behind the `metrics` feature
//! (see the crate docs). Without the feature [`count`] is an empty inline function, so the
//! layer pays nothing for it. The label is `&'static str`: a stable code, never text from a
//! request, so the number of series stays bounded.

/// Add one to `tokbind_dpop_total{outcome}`.
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn count(outcome: &'static str) {
    metrics::counter!("tokbind_dpop_total", "outcome" => outcome).increment(1);
}

/// Add one to `tokbind_dpop_total{outcome}` (a no-op: the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn count(_outcome: &'static str) {}
