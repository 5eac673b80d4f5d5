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
    /// One per [`DropReason::ALL`], in that order.
    dropped: [AtomicU64; DropReason::ALL.len()],
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
        let i = DropReason::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("DropReason::ALL lists every reason");
        &self.dropped[i]
    }

    /// Presented cookies whose binding verified.
    pub fn accepted_count(&self) -> u64 {
        self.accepted.load(Relaxed)
    }

    /// Presented cookies (or unreadable pieces of the header) removed for `reason`.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.drop_counter(reason).load(Relaxed)
    }

    /// Every counter as `(name, value)`, for exporting to a metrics system: `accepted`,
    /// `bound`, `issued_unbound`, `withheld`, then `dropped_<reason>` for each
    /// [`DropReason::ALL`].
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        const DROPPED: [&str; DropReason::ALL.len()] = [
            "dropped_unbound",
            "dropped_malformed_binding",
            "dropped_binding_mismatch",
            "dropped_no_proof",
            "dropped_conflicting_copies",
            "dropped_disguised_name",
            "dropped_not_utf8",
            "dropped_bad_escape",
            "dropped_not_a_pair",
        ];
        let mut all = vec![
            ("accepted", self.accepted.load(Relaxed)),
            ("bound", self.bound.load(Relaxed)),
            ("issued_unbound", self.issued_unbound.load(Relaxed)),
            ("withheld", self.withheld.load(Relaxed)),
        ];
        all.extend(
            DROPPED
                .into_iter()
                .zip(&self.dropped)
                .map(|(n, c)| (n, c.load(Relaxed))),
        );
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter_named_after_its_code() {
        let stats = CookieStats::default();
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                stats.dropped(reason);
            }
        }
        let snapshot = stats.snapshot();
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(stats.dropped_count(reason), i as u64 + 1);
            let name = format!("dropped_{}", reason.reason());
            assert!(snapshot.contains(&(name.as_str(), i as u64 + 1)), "{name}");
        }
    }
}
