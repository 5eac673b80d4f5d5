//! Where DBSC keeps its state: registration challenges, sessions (key and refresh
//! challenges), and retired cookies. Its own key space — never inside the application's
//! session blob, which races the post-login navigation.

use std::time::Duration;

use async_trait::async_trait;
use tower_tokbind::expiring::ExpiringMap;

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

/// In-process store: one instance only. Holds at most 2^20 live entries (then refuses
/// new registrations, failing closed, until some expire).
#[derive(Debug, Default)]
pub struct MemoryDbscStore(ExpiringMap<String, Vec<u8>>);

impl MemoryDbscStore {
    /// A store of at most `capacity` live entries (challenges, sessions, retired cookies).
    pub fn with_capacity(capacity: usize) -> Self {
        Self(ExpiringMap::with_capacity(capacity))
    }
}

#[async_trait]
impl DbscStore for MemoryDbscStore {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        self.0
            .insert(key.to_owned(), value, ttl)
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.take(key))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(key))
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.0.remove(key);
        Ok(())
    }
}
