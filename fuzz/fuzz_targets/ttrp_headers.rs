//! The headers a TLS-terminating proxy forwards (draft-ietf-tokbind-ttrp-09, and RFC 9440's
//! `Client-Cert`): each input line is one header value, the names taken in turn.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_tokbind::ttrp::{
    decode_client_cert, decode_forwarded, encode_client_cert, encode_others,
};

const NAMES: [&str; 4] = [
    "sec-provided-token-binding-id",
    "sec-referred-token-binding-id",
    "sec-other-token-binding-id",
    "client-cert",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(HeaderName::from_static(NAMES[i % NAMES.len()]), value);
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
    if let Ok(Some(der)) = decode_client_cert(&headers) {
        // A certificate that decodes is re-encoded canonically and decodes to itself.
        let mut again = HeaderMap::new();
        again.insert(NAMES[3], encode_client_cert(&der));
        assert_eq!(decode_client_cert(&again).unwrap(), Some(der));
    }
});
