//! In-memory Token Binding keys, one per origin and key parameters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokbind_proto::{KeyParameters, SignError, SigningKey};

/// Keys by origin (`https://host:port`) and key parameters, generated on first use and
/// kept for the life of the store.
///
/// RFC 8473 §2.1 asks browsers to scope keys no wider than the registered domain
/// (eTLD+1); one key per origin is narrower, which the RFC allows.
#[derive(Debug, Default)]
pub struct KeyStore {
    keys: Mutex<HashMap<(String, KeyParameters), Arc<SigningKey>>>,
}

impl KeyStore {
    /// The key for `origin` and `key_parameters`, generating it on first use.
    pub fn key_for(
        &self,
        origin: &str,
        key_parameters: KeyParameters,
    ) -> Result<Arc<SigningKey>, SignError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&(origin.to_string(), key_parameters)) {
            return Ok(Arc::clone(k));
        }
        let key = Arc::new(SigningKey::generate(key_parameters)?);
        keys.insert((origin.to_string(), key_parameters), Arc::clone(&key));
        Ok(key)
    }

    /// Forget every key: the next connection to any origin presents a new Token Binding ID.
    pub fn reset(&self) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
