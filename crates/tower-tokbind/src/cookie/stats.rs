//! Counters of what [`BoundCookieLayer`](super::BoundCookieLayer) did.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::binding::DropReason;

/// Counters, by outcome. Read them for metrics; they only ever grow.
#[derive(Debug, Default)]
pub struct CookieStats {
    accepted: AtomicU64,
    bound: AtomicU64,
    issued_unbound: AtomicU64,
    withheld: AtomicU64,
    dropped_unbound: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_mismatch: AtomicU64,
    dropped_no_proof: AtomicU64,
}

impl CookieStats {
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }

    pub(crate) fn bound(&self) {
        self.bound.fetch_add(1, Relaxed);
    }

    pub(crate) fn issued_unbound(&self) {
        self.issued_unbound.fetch_add(1, Relaxed);
    }

    pub(crate) fn withheld(&self) {
        self.withheld.fetch_add(1, Relaxed);
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        self.drop_counter(reason).fetch_add(1, Relaxed);
    }

    fn drop_counter(&self, reason: DropReason) -> &AtomicU64 {
        match reason {
            DropReason::Unbound => &self.dropped_unbound,
            DropReason::Malformed => &self.dropped_malformed,
            DropReason::Mismatch => &self.dropped_mismatch,
            DropReason::NoProof => &self.dropped_no_proof,
        }
    }

    /// Presented cookies whose binding verified.
    pub fn accepted_count(&self) -> u64 {
        self.accepted.load(Relaxed)
    }

    /// Presented cookies removed for `reason`.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.drop_counter(reason).load(Relaxed)
    }

    /// Every counter as `(name, value)`, for exporting to a metrics system.
    pub fn snapshot(&self) -> [(&'static str, u64); 8] {
        [
            ("accepted", self.accepted.load(Relaxed)),
            ("bound", self.bound.load(Relaxed)),
            ("issued_unbound", self.issued_unbound.load(Relaxed)),
            ("withheld", self.withheld.load(Relaxed)),
            ("dropped_unbound", self.dropped_unbound.load(Relaxed)),
            (
                "dropped_malformed_binding",
                self.dropped_malformed.load(Relaxed),
            ),
            (
                "dropped_binding_mismatch",
                self.dropped_mismatch.load(Relaxed),
            ),
            ("dropped_no_proof", self.dropped_no_proof.load(Relaxed)),
        ]
    }
}
