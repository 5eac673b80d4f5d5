//! [`ExpiringMap`]: the in-process state behind every "memory" store of the stack — the
//! DPoP replay cache, the DBSC store, the demo's shared store — when one instance runs.
//!
//! Entries expire; expired ones are swept as the map grows, and a full map refuses new
//! entries instead of growing without bound (the callers then fail closed), so a flood of
//! proofs or registrations costs a bounded amount of memory.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A map whose entries live for a given time, holding at most a fixed number of live
/// entries.
///
/// ```
/// use std::time::Duration;
/// use tower_tokbind::expiring::ExpiringMap;
///
/// let codes = ExpiringMap::with_capacity(10_000);
/// codes.insert("code-1".to_string(), "alice", Duration::from_secs(60))?;
/// assert_eq!(codes.take("code-1"), Some("alice"));
/// assert_eq!(codes.take("code-1"), None, "single use");
/// # Ok::<(), tower_tokbind::expiring::MapFull>(())
/// ```
pub struct ExpiringMap<K, V> {
    entries: Mutex<Entries<K, V>>,
    capacity: usize,
}

struct Entries<K, V> {
    map: HashMap<K, (V, Expiry)>,
    /// When a full map was last swept: a full map is swept at most once per
    /// [`FULL_SWEEP_INTERVAL`], so a flood against it costs a refusal, not a sweep of the
    /// whole map under the lock, per insert.
    full_sweep: Option<Instant>,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            full_sweep: None,
        }
    }
}

/// See [`Entries::full_sweep`].
const FULL_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// When an entry expires: `None` for a TTL past what `Instant` can hold (it lives as long
/// as the map), so no TTL overflows.
type Expiry = Option<Instant>;

fn is_live(expires: Expiry, now: Instant) -> bool {
    expires.is_none_or(|at| at > now)
}

/// The map holds its capacity of live entries; nothing new fits until some expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapFull;

impl fmt::Display for MapFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the in-memory store is full")
    }
}

impl std::error::Error for MapFull {}

impl<K, V> fmt::Debug for ExpiringMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiringMap")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash, V> Default for ExpiringMap<K, V> {
    /// A capacity of 2^20 live entries.
    fn default() -> Self {
        Self::with_capacity(1 << 20)
    }
}

impl<K: Eq + Hash, V> ExpiringMap<K, V> {
    /// A map of at most `capacity` live entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries<K, V>> {
        // A panic elsewhere while holding the lock cannot leave the map half-updated in a
        // way that matters here: keep serving.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Store `value` under `key` for `ttl`, replacing what was there. A `ttl` too long for
    /// the clock (e.g. `Duration::MAX`) never expires.
    pub fn insert(&self, key: K, value: V, ttl: Duration) -> Result<(), MapFull> {
        self.insert_if(key, value, ttl, false).map(drop)
    }

    /// Store `value` under `key` for `ttl` unless a live entry is there: `Ok(true)` when
    /// stored, `Ok(false)` when `key` was taken (the replay cache's "seen before").
    pub fn insert_new(&self, key: K, value: V, ttl: Duration) -> Result<bool, MapFull> {
        self.insert_if(key, value, ttl, true)
    }

    fn insert_if(&self, key: K, value: V, ttl: Duration, only_new: bool) -> Result<bool, MapFull> {
        self.insert_at(Instant::now(), key, value, ttl, only_new)
    }

    fn insert_at(
        &self,
        now: Instant,
        key: K,
        value: V,
        ttl: Duration,
        only_new: bool,
    ) -> Result<bool, MapFull> {
        let live = |(_, expires): &(V, Expiry)| is_live(*expires, now);
        let mut entries = self.lock();
        let present = entries.map.get(&key).is_some_and(live);
        if only_new && present {
            return Ok(false);
        }
        if !present {
            let len = entries.map.len();
            if len >= self.capacity {
                let swept_lately = entries
                    .full_sweep
                    .is_some_and(|at| now.saturating_duration_since(at) < FULL_SWEEP_INTERVAL);
                if swept_lately {
                    return Err(MapFull);
                }
                entries.full_sweep = Some(now);
                entries.map.retain(|_, e| live(e));
                if entries.map.len() >= self.capacity {
                    return Err(MapFull);
                }
            } else if len >= 1024 && len.is_power_of_two() {
                // Sweep now and then, so expired entries do not pile up.
                entries.map.retain(|_, e| live(e));
            }
        }
        entries.map.insert(key, (value, now.checked_add(ttl)));
        Ok(true)
    }

    /// The live value under `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
        V: Clone,
    {
        let now = Instant::now();
        self.lock()
            .map
            .get(key)
            .filter(|(_, expires)| is_live(*expires, now))
            .map(|(v, _)| v.clone())
    }

    /// The live value under `key`, removed in the same step (single use).
    pub fn take<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let now = Instant::now();
        self.lock()
            .map
            .remove(key)
            .filter(|(_, expires)| is_live(*expires, now))
            .map(|(v, _)| v)
    }

    /// Remove `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.lock().map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn entries_expire_and_are_taken_once() {
        let map = ExpiringMap::with_capacity(8);
        map.insert("gone", 1, Duration::ZERO).unwrap();
        assert_eq!(map.get("gone"), None, "expired at once");
        map.insert("kept", 2, MINUTE).unwrap();
        assert_eq!(map.get("kept"), Some(2));
        assert_eq!(map.take("kept"), Some(2));
        assert_eq!(map.take("kept"), None);
        map.insert("x", 3, MINUTE).unwrap();
        map.remove("x");
        assert_eq!(map.get("x"), None);
    }

    #[test]
    fn insert_new_refuses_a_live_key_but_not_an_expired_one() {
        let map = ExpiringMap::with_capacity(8);
        assert_eq!(map.insert_new([1u8; 32], (), MINUTE), Ok(true));
        assert_eq!(map.insert_new([1u8; 32], (), MINUTE), Ok(false));
        map.insert([2u8; 32], (), Duration::ZERO).unwrap();
        assert_eq!(map.insert_new([2u8; 32], (), MINUTE), Ok(true));
    }

    #[test]
    fn a_full_map_refuses_new_keys_until_entries_expire() {
        let map = ExpiringMap::with_capacity(2);
        map.insert("a", 1, MINUTE).unwrap();
        map.insert("b", 2, Duration::ZERO).unwrap();
        // Full by count, but "b" has expired: the sweep makes room.
        map.insert("c", 3, MINUTE).unwrap();
        assert_eq!(map.insert("d", 4, MINUTE), Err(MapFull));
        assert_eq!(map.insert_new("d", 4, MINUTE), Err(MapFull));
        // Replacing a live key does not grow the map.
        map.insert("a", 5, MINUTE).unwrap();
        assert_eq!(map.get("a"), Some(5));
    }

    #[test]
    fn a_full_map_is_swept_at_most_once_per_interval() {
        let map = ExpiringMap::with_capacity(2);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        map.insert_at(t0, "a", 1, ms(10), false).unwrap();
        map.insert_at(t0, "b", 2, MINUTE, false).unwrap();
        // Full, and nothing has expired: swept, refused.
        assert_eq!(
            map.insert_at(t0 + ms(5), "c", 3, MINUTE, false),
            Err(MapFull)
        );
        // "a" has expired since, but the map was swept just now: refused without a sweep
        // (a flood against a full map costs no sweep per insert).
        assert_eq!(
            map.insert_at(t0 + ms(50), "c", 3, MINUTE, false),
            Err(MapFull)
        );
        assert_eq!(map.lock().map.len(), 2, "not swept");
        // Once the interval has passed, the next insert sweeps and fits.
        let later = t0 + ms(5) + FULL_SWEEP_INTERVAL;
        assert_eq!(map.insert_at(later, "c", 3, MINUTE, false), Ok(true));
        assert_eq!(map.lock().map.len(), 2);
    }

    #[test]
    fn a_ttl_beyond_the_clock_never_expires_and_does_not_overflow() {
        let map = ExpiringMap::with_capacity(2);
        map.insert("forever", 1, Duration::MAX).unwrap();
        assert_eq!(map.insert_new("forever", 2, MINUTE), Ok(false));
        assert_eq!(map.get("forever"), Some(1));
        map.insert("long", 3, Duration::from_secs(u64::MAX))
            .unwrap();
        assert_eq!(map.insert("third", 4, MINUTE), Err(MapFull));
        assert_eq!(map.take("long"), Some(3));
    }
}
