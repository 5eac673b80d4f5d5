//! The `jti` replay cache (RFC 9449 §11.1): every proof is accepted once per target URI
//! and key, within the acceptance window. In memory for one instance; in Redis (feature
//! `redis`) for several, because a proof replayed at another instance must be refused too.

use std::time::Duration;

use async_trait::async_trait;
use tower_tokbind::expiring::ExpiringMap;

/// The replay cache could not answer; the proof is refused (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the DPoP replay cache is unavailable: {0}")]
pub struct ReplayError(pub String);

/// Remembers which proofs were used.
#[async_trait]
pub trait ReplayCache: Send + Sync + 'static {
    /// Record `key` (a hash identifying one proof) for `ttl`; `Ok(true)` the first time,
    /// `Ok(false)` for a replay.
    async fn first_use(&self, key: [u8; 32], ttl: Duration) -> Result<bool, ReplayError>;
}

/// In-process replay cache. Holds at most `capacity` live entries (default 2^20), refusing
/// proofs (fail closed) rather than growing without bound under a flood.
#[derive(Debug, Default)]
pub struct MemoryReplayCache(ExpiringMap<[u8; 32], ()>);

impl MemoryReplayCache {
    /// A cache of at most `capacity` live entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(ExpiringMap::with_capacity(capacity))
    }
}

#[async_trait]
impl ReplayCache for MemoryReplayCache {
    async fn first_use(&self, key: [u8; 32], ttl: Duration) -> Result<bool, ReplayError> {
        self.0
            .insert_new(key, (), ttl)
            .map_err(|_| ReplayError("in-memory replay cache full".into()))
    }
}

/// A replay cache in Redis, shared by every instance: `SET dpop:jti:<hex> 1 NX PX <ttl>`.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisReplayCache {
    conn: redis::aio::ConnectionManager,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisReplayCache")
    }
}

#[cfg(feature = "redis")]
impl RedisReplayCache {
    /// Connect to Redis at `url`.
    pub async fn connect(url: &str) -> Result<Self, ReplayError> {
        let client = redis::Client::open(url).map_err(|e| ReplayError(e.to_string()))?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(|e| ReplayError(e.to_string()))?;
        Ok(Self::from_connection(conn))
    }

    /// Over a connection the application already holds (its session store's, say).
    pub fn from_connection(conn: redis::aio::ConnectionManager) -> Self {
        Self { conn }
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl ReplayCache for RedisReplayCache {
    async fn first_use(&self, key: [u8; 32], ttl: Duration) -> Result<bool, ReplayError> {
        use redis::AsyncCommands as _;
        let name = format!("dpop:jti:{}", hex(&key));
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(
                u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            ));
        let set: Option<String> = self
            .conn
            .clone()
            .set_options(name, 1, options)
            .await
            .map_err(|e| ReplayError(e.to_string()))?;
        Ok(set.is_some())
    }
}

#[cfg(feature = "redis")]
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_proof_is_used_once_and_the_cache_stays_bounded() {
        let cache = MemoryReplayCache::with_capacity(2);
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.first_use([1; 32], ttl).await, Ok(true));
        assert_eq!(cache.first_use([1; 32], ttl).await, Ok(false));
        assert_eq!(cache.first_use([2; 32], ttl).await, Ok(true));
        assert!(cache.first_use([3; 32], ttl).await.is_err());
        // Expired entries make room.
        let short = MemoryReplayCache::with_capacity(1);
        assert_eq!(
            short.first_use([1; 32], Duration::from_millis(1)).await,
            Ok(true)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(short.first_use([2; 32], ttl).await, Ok(true));
        assert!(short.first_use([1; 32], ttl).await.is_err());
    }
}
