//! Reading the layers' counters (their `metrics` feature) back: a recorder of one test's
//! own, installed for the current thread only, so tests running side by side never see
//! each other's counts. `#[tokio::test]` runs on a current-thread runtime, so every task a
//! request spawns (a server's too) is polled on the test's thread and counts here.

use std::collections::BTreeMap;
use std::sync::Mutex;

use metrics::LocalRecorderGuard;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A recorder, the thread's from [`install`](Self::install) until it is dropped, and what
/// it counted.
pub struct Counters {
    snapshotter: Snapshotter,
    /// Every count read so far, by name and `outcome`: a snapshot drains the recorder.
    totals: Mutex<BTreeMap<(String, String), u64>>,
    _installed: LocalRecorderGuard<'static>,
}

impl Counters {
    /// A recorder that has counted nothing yet, the current thread's until this is dropped.
    /// It is leaked (a few hundred bytes a test) so that the guard can borrow it for ever.
    pub fn install() -> Self {
        let recorder: &'static DebuggingRecorder = Box::leak(Box::default());
        Self {
            snapshotter: recorder.snapshotter(),
            totals: Mutex::default(),
            _installed: metrics::set_default_local_recorder(recorder),
        }
    }

    /// The counter `name`, by its `outcome` label (every counter of the layers has exactly
    /// that one label).
    pub fn by_outcome(&self, name: &str) -> BTreeMap<String, u64> {
        let mut totals = self.totals.lock().unwrap();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<_> = key.labels().collect();
            assert_eq!(labels.len(), 1, "{}: {labels:?}", key.name());
            assert_eq!(labels[0].key(), "outcome", "{}", key.name());
            let DebugValue::Counter(n) = value else {
                panic!("{} is not a counter: {value:?}", key.name());
            };
            let at = (key.name().to_string(), labels[0].value().to_string());
            *totals.entry(at).or_default() += n;
        }
        totals
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, outcome), count)| (outcome.clone(), *count))
            .collect()
    }

    /// One outcome's count (0 if it never happened).
    pub fn get(&self, name: &str, outcome: &str) -> u64 {
        self.by_outcome(name).get(outcome).copied().unwrap_or(0)
    }
}

/// `[("accepted", 1), …]` as a map, to compare with [`Counters::by_outcome`].
pub fn counts<const N: usize>(pairs: [(&str, u64); N]) -> BTreeMap<String, u64> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
