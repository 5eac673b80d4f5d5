//! The `token_binding` TLS extension data: decode, and run both sides' negotiation rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokbind_proto::{ClientPolicy, HandshakeFacts, ServerPolicy, TokenBindingParameters};

fuzz_target!(|data: &[u8]| {
    let facts = HandshakeFacts {
        tls13: data.first().is_some_and(|b| b & 1 == 1),
        extended_master_secret: true,
        renegotiation_indication: true,
    };
    if let Ok(params) = TokenBindingParameters::decode(data) {
        assert_eq!(params.to_bytes(), data, "decode/encode must round-trip");
        for server in [
            ServerPolicy::default(),
            ServerPolicy::default().with_draft_versions(true),
        ] {
            if let Some(chosen) = server.negotiate(&params, &facts) {
                assert!(
                    params.key_parameters().contains(&chosen.key_parameters),
                    "only an offered key parameter"
                );
                assert!(
                    chosen.version <= params.version(),
                    "never above the client's version"
                );
            }
        }
    }
    let _ = ClientPolicy::default().process_server_parameters(data, &facts);
});
