//! The headers a TLS-terminating proxy forwards (draft-ietf-tokbind-ttrp-09): each input
//! line is `name: value`.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_tokbind::ttrp::{decode_forwarded, encode_others};

const NAMES: [&str; 3] = [
    "sec-provided-token-binding-id",
    "sec-referred-token-binding-id",
    "sec-other-token-binding-id",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(HeaderName::from_static(NAMES[i % 3]), value);
        }
    }
    if let Ok(Some(v)) = decode_forwarded(&headers) {
        // What decodes must encode back to something that decodes to the same.
        let mut again = HeaderMap::new();
        again.insert(
            NAMES[0],
            HeaderValue::from_str(&v.provided.to_base64url()).unwrap(),
        );
        if let Some(r) = &v.referred {
            again.insert(NAMES[1], HeaderValue::from_str(&r.to_base64url()).unwrap());
        }
        if let Some(o) = encode_others(&v.others) {
            again.insert(NAMES[2], HeaderValue::from_str(&o).unwrap());
        }
        assert_eq!(decode_forwarded(&again).unwrap(), Some(v));
    }
});
