//! Keys in process memory: gone when the store is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokbind_proto::{KeyParameters, SigningKey, TokenBindingSigner as _};

use super::{KeyInfo, KeyStore, KeyStoreError, StoreKey};

/// Ephemeral keys, generated on first use — "private mode" (RFC 8473 §8.2): nothing is
/// written anywhere and everything is forgotten with the store.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<HashMap<(String, KeyParameters), Arc<SigningKey>>>,
}

impl KeyStore for MemoryKeyStore {
    fn key_for(
        &self,
        scope: &str,
        key_parameters: KeyParameters,
    ) -> Result<StoreKey, KeyStoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&(scope.to_string(), key_parameters)) {
            return Ok(Arc::clone(k) as StoreKey);
        }
        let key = Arc::new(SigningKey::generate(key_parameters)?);
        keys.insert((scope.to_string(), key_parameters), Arc::clone(&key));
        Ok(key)
    }

    fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<KeyInfo> = keys
            .iter()
            .map(|((scope, kp), key)| KeyInfo {
                scope: scope.clone(),
                key_parameters: *kp,
                tbh: key.token_binding_id().tbh().to_string(),
                extractable: false,
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.scope, u8::from(a.key_parameters)).cmp(&(&b.scope, u8::from(b.key_parameters)))
        });
        Ok(out)
    }

    fn reset(&self, scope: Option<&str>) -> Result<usize, KeyStoreError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let before = keys.len();
        keys.retain(|(s, _), _| scope.is_some_and(|only| s != only));
        Ok(before - keys.len())
    }
}
