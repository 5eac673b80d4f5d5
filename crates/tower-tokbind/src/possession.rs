//! Adding proven keys to a request, whichever layer proved them.

use http::Extensions;
use tokbind_proto::{ProvenKey, ProvenKeys};

/// Add `key` to the request's [`ProvenKeys`] (creating the set if this is the first proof).
/// Every layer that checks a proof of possession — Token Binding, a trusted proxy's
/// forwarded IDs, DPoP, DBSC — records it this way, so consumers see all of them.
pub fn add_proven_key(extensions: &mut Extensions, key: ProvenKey) {
    match extensions.get_mut::<ProvenKeys>() {
        Some(keys) => keys.push(key),
        None => {
            extensions.insert(ProvenKeys::one(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokbind_proto::TokenBindingId;

    #[test]
    fn keys_accumulate() {
        let mut ext = Extensions::new();
        add_proven_key(
            &mut ext,
            ProvenKey::token_binding(&TokenBindingId::ecdsap256(&[1; 64])),
        );
        add_proven_key(
            &mut ext,
            ProvenKey::token_binding(&TokenBindingId::ecdsap256(&[2; 64])),
        );
        assert_eq!(ext.get::<ProvenKeys>().unwrap().iter().count(), 2);
    }
}
