//! A Token Binding message, as raw bytes and as a `Sec-Token-Binding` value: decode,
//! re-encode (must round-trip), and validate against a fixed EKM for every key parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokbind_proto::{Ekm, KeyParameters, TokenBindingMessage, verify_header};

fuzz_target!(|data: &[u8]| {
    let ekm = Ekm::new([0x5a; 32]);
    if let Ok(message) = TokenBindingMessage::decode(data) {
        assert_eq!(message.to_bytes(), data, "decode/encode must round-trip");
        for kp in KeyParameters::PREFERENCE {
            let _ = tokbind_proto::validate(&message, &ekm, kp);
        }
    }
    let _ = verify_header(data, &ekm, KeyParameters::ECDSAP256);
    let _ = tokbind_proto::TokenBindingId::from_bytes(data);
});
