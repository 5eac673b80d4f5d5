//! Where DBSC keeps its state: registration challenges, sessions (key and refresh
//! challenges), and retired cookies. Its own key space — never inside the application's
//! session blob, which races the post-login navigation (digest §1.10).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// The store could not answer; the request is refused (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DBSC store: {0}")]
pub struct StoreError(pub String);

/// A key-value store with expiry and atomic take. Implement it over Redis (or anything
/// shared) to run several instances.
#[async_trait]
pub trait DbscStore: Send + Sync + 'static {
    /// Store `value` under `key` for `ttl`.
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError>;
    /// The value under `key`, removed in the same step (single use).
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The value under `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Remove `key`.
    async fn remove(&self, key: &str) -> Result<(), StoreError>;
}

/// In-process store: one instance only.
#[derive(Debug, Default)]
pub struct MemoryDbscStore(Mutex<HashMap<String, (Vec<u8>, Instant)>>);

impl MemoryDbscStore {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Instant)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl DbscStore for MemoryDbscStore {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut map = self.live();
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, (_, expires)| *expires > now);
        }
        map.insert(key.to_owned(), (value, now + ttl));
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = Instant::now();
        Ok(self
            .live()
            .remove(key)
            .filter(|(_, e)| *e > now)
            .map(|(v, _)| v))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = Instant::now();
        Ok(self
            .live()
            .get(key)
            .filter(|(_, e)| *e > now)
            .map(|(v, _)| v.clone()))
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.live().remove(key);
        Ok(())
    }
}
