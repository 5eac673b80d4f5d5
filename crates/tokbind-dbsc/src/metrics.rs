//! The endpoints' outcomes through the `metrics` facade, behind the `metrics` feature (see
//! the crate docs for the names and labels). Without the feature [`tag`] and [`count`] are
//! empty inline functions, so the layer pays nothing for them.
//!
//! An answer is tagged with its outcome where it is made (a problem's reason, or a finer
//! one such as `stolen_cookie`), and counted where the layer hands it out, so that every
//! answer of an endpoint is counted once. Labels are `&'static str`: stable codes, never
//! text from a request, so the number of series stays bounded.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

/// An endpoint's answer: a success, or a refusal (the endpoints' `Answer`).
type Answer = Result<Response<Full<Bytes>>, Response<Full<Bytes>>>;

/// The registration endpoint's answers.
pub(crate) const REGISTRATIONS: &str = "tokbind_dbsc_registrations_total";
/// The refresh endpoint's answers.
pub(crate) const REFRESHES: &str = "tokbind_dbsc_refreshes_total";

/// What an answer counts as, when it is not plainly `accepted`.
#[cfg(feature = "metrics")]
#[derive(Clone, Copy)]
struct Outcome(&'static str);

/// Mark `res` as counting as `outcome` (the last mark wins).
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn tag(res: &mut Response<Full<Bytes>>, outcome: &'static str) {
    res.extensions_mut().insert(Outcome(outcome));
}

/// Add one to `name`, labelled with the answer's outcome: its mark, or `accepted` for an
/// unmarked success.
#[cfg(feature = "metrics")]
#[inline]
pub(crate) fn count(name: &'static str, answer: &Answer) {
    let (res, default) = match answer {
        Ok(res) => (res, "accepted"),
        // Every refusal is made by `endpoint::problem`, which marks it.
        Err(res) => (res, "refused"),
    };
    let outcome = res.extensions().get::<Outcome>().map_or(default, |o| o.0);
    metrics::counter!(name, "outcome" => outcome).increment(1);
}

/// Mark `res` as counting as `outcome` (a no-op: the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn tag(_res: &mut Response<Full<Bytes>>, _outcome: &'static str) {}

/// Add one to `name` (a no-op: the `metrics` feature is off).
#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn count(_name: &'static str, _answer: &Answer) {}
