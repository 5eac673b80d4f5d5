//! The bound-cookie format: arbitrary cookie values never open, never panic; a bound value
//! opens only for its own key, name and value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokbind_proto::{KeyParameters, ProvenKey, SigningKey, TokenBindingSigner};
use tower_tokbind::cookie::CookieKeys;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keys = CookieKeys::new(&[7; 32]).unwrap();
    let key = std::sync::LazyLock::force(&KEY);
    let proven = ProvenKey::token_binding(key.token_binding_id());
    let (name, value) = text.split_once('=').unwrap_or(("sid", text));
    // Random input must not verify (it has no valid MAC).
    assert!(keys.open(Some(&proven), name, value).is_err() || value.contains("~tb1."));
    let _ = keys.open(None, name, value);
    // And a real binding of the input opens to exactly the input.
    let bound = keys.bind(Some(&proven), name, value);
    assert_eq!(keys.open(Some(&proven), name, &bound), Ok(value));
    let unbound = keys.bind(None, name, value);
    assert_eq!(keys.open(None, name, &unbound), Ok(value));
    assert!(keys.open(Some(&proven), name, &unbound).is_err());
});

static KEY: std::sync::LazyLock<SigningKey> =
    std::sync::LazyLock::new(|| SigningKey::generate(KeyParameters::ECDSAP256).unwrap());
