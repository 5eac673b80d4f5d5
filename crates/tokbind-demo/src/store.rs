//! State that every instance of a server must see: in this process by default, or in
//! Redis when several instances run behind a load balancer.
//!
//! Token Binding itself is stateless on the server: the EKM lives in the TLS connection
//! and the cookie and token bindings are MACs and signatures under keys loaded from
//! configuration. What *is* state is the application's: the RP's sessions and pending
//! sign-ins, the IdP's authorization codes and refresh tokens. A client's next connection
//! may land on any instance, so with more than one instance these must live in a shared
//! store; [`SharedStore::connect`] picks it.
//!
//! Single use is atomic in both stores ([`SharedStore::take`] is Redis `GETDEL`), so an
//! authorization code redeemed on two instances at once is still redeemed once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokbind_dpop::{MemoryReplayCache, RedisReplayCache, ReplayCache};
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;
use tower_tokbind::expiring::ExpiringMap;

/// A store failed (Redis unreachable, or a damaged value).
#[derive(Debug, thiserror::Error)]
#[error("shared store: {0}")]
pub struct StoreError(String);

impl StoreError {
    /// A value in the store could not be read back.
    pub fn damaged(e: impl fmt::Display) -> Self {
        Self(format!("damaged value: {e}"))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        Self(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::damaged(e)
    }
}

/// A key-value store with expiry and atomic single use: this process's memory, or Redis.
/// Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct SharedStore(Backend);

/// Values and when they expire (at most 2^20 live ones: then new ones are refused).
type Entries = Arc<ExpiringMap<String, Vec<u8>>>;

#[derive(Clone)]
enum Backend {
    Memory(Entries),
    Redis(ConnectionManager),
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Backend::Memory(_) => "SharedStore::Memory",
            Backend::Redis(_) => "SharedStore::Redis",
        })
    }
}

impl Default for SharedStore {
    fn default() -> Self {
        Self::memory()
    }
}

impl SharedStore {
    /// This process's memory: right for one instance, wrong for several.
    pub fn memory() -> Self {
        Self(Backend::Memory(Arc::default()))
    }

    /// Redis at `url` (`redis://host:port/db` or `redis+unix:///path/to/socket`). The
    /// connection is multiplexed and reconnects by itself.
    pub async fn redis(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        Ok(Self(Backend::Redis(client.get_connection_manager().await?)))
    }

    /// A DPoP replay cache beside the rest of the state: in this process's memory, or in
    /// the same Redis, so that a proof used at one instance is refused at every other.
    pub fn replay_cache(&self) -> Arc<dyn ReplayCache> {
        match &self.0 {
            Backend::Memory(_) => Arc::new(MemoryReplayCache::default()),
            Backend::Redis(conn) => Arc::new(RedisReplayCache::from_connection(conn.clone())),
        }
    }

    /// Redis when a URL is given, memory otherwise.
    pub async fn connect(redis_url: Option<&str>) -> Result<Self, StoreError> {
        match redis_url {
            Some(url) => Self::redis(url).await,
            None => Ok(Self::memory()),
        }
    }

    /// Store `value` under `key` for `ttl`, replacing what was there.
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put_bytes(key, serde_json::to_vec(value)?, ttl, false)
            .await
            .map(drop)
    }

    /// The value under `key`, removed in the same step: a second `take` (on any instance)
    /// finds nothing.
    pub async fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        decode(self.take_bytes(key).await?)
    }

    async fn take_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(match &self.0 {
            Backend::Memory(map) => map.take(key),
            Backend::Redis(conn) => conn.clone().get_del(key).await?,
        })
    }

    /// The value under `key`, left in place.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        decode(self.get_bytes(key).await?)
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(match &self.0 {
            Backend::Memory(map) => map.get(key),
            Backend::Redis(conn) => conn.clone().get(key).await?,
        })
    }

    /// Remove `key`.
    pub async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match &self.0 {
            Backend::Memory(map) => {
                map.remove(key);
            }
            Backend::Redis(conn) => conn.clone().del::<_, ()>(key).await?,
        }
        Ok(())
    }

    /// Set `key` (only if absent when `only_new`); `Ok(false)` when it was present.
    async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        only_new: bool,
    ) -> Result<bool, StoreError> {
        // Redis rounds a zero expiry to an error; a value that expires now is simply absent.
        let ttl = ttl.max(Duration::from_millis(1));
        match &self.0 {
            Backend::Memory(map) => {
                let key = key.to_owned();
                let stored = if only_new {
                    map.insert_new(key, bytes, ttl)
                } else {
                    map.insert(key, bytes, ttl).map(|()| true)
                };
                stored.map_err(|e| StoreError(e.to_string()))
            }
            Backend::Redis(conn) => {
                let mut options = redis::SetOptions::default().with_expiration(
                    redis::SetExpiry::PX(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
                );
                if only_new {
                    options = options.conditional_set(redis::ExistenceCheck::NX);
                }
                let set: Option<String> = conn.clone().set_options(key, bytes, options).await?;
                Ok(set.is_some())
            }
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    Ok(bytes.map(|b| serde_json::from_slice(&b)).transpose()?)
}

fn session_key(id: &Id) -> String {
    format!("session:{id}")
}

fn session_ttl(record: &Record) -> Duration {
    let left = record.expiry_date - tower_sessions::cookie::time::OffsetDateTime::now_utc();
    Duration::try_from(left).unwrap_or(Duration::ZERO)
}

fn backend_error(e: StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// `tower-sessions` sessions in the shared store, under `session:<id>`, expiring with the
/// session.
#[async_trait]
impl SessionStore for SharedStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let bytes = serde_json::to_vec(&*record)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        // A fresh random ID never collides in practice; if it does, draw another rather
        // than overwrite someone else's session.
        while !self
            .put_bytes(
                &session_key(&record.id),
                bytes.clone(),
                session_ttl(record),
                true,
            )
            .await
            .map_err(backend_error)?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let bytes =
            serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        self.put_bytes(&session_key(&record.id), bytes, session_ttl(record), false)
            .await
            .map(drop)
            .map_err(backend_error)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.get(&session_key(id)).await.map_err(backend_error)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.remove(&session_key(id)).await.map_err(backend_error)
    }
}

/// DBSC challenges and sessions in the shared store, so every instance can answer any
/// registration or refresh.
#[async_trait]
impl tokbind_dbsc::DbscStore for SharedStore {
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), tokbind_dbsc::StoreError> {
        self.put_bytes(key, value, ttl, false)
            .await
            .map(drop)
            .map_err(dbsc_error)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, tokbind_dbsc::StoreError> {
        self.take_bytes(key).await.map_err(dbsc_error)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, tokbind_dbsc::StoreError> {
        self.get_bytes(key).await.map_err(dbsc_error)
    }

    async fn remove(&self, key: &str) -> Result<(), tokbind_dbsc::StoreError> {
        SharedStore::remove(self, key).await.map_err(dbsc_error)
    }
}

fn dbsc_error(e: StoreError) -> tokbind_dbsc::StoreError {
    tokbind_dbsc::StoreError(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn take_is_single_use_and_expiry_hides_values() {
        let store = SharedStore::memory();
        store
            .put("code:a", &"x", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.get::<String>("code:a").await.unwrap().as_deref(),
            Some("x")
        );
        assert_eq!(
            store.take::<String>("code:a").await.unwrap().as_deref(),
            Some("x")
        );
        assert_eq!(store.take::<String>("code:a").await.unwrap(), None);

        store
            .put("code:b", &"y", Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.get::<String>("code:b").await.unwrap(), None);
        assert_eq!(store.take::<String>("code:b").await.unwrap(), None);
    }

    #[tokio::test]
    async fn damaged_values_are_errors() {
        let store = SharedStore::memory();
        store
            .put("k", &"text", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(store.get::<u32>("k").await.is_err());
    }
}
