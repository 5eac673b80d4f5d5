//! Every published Token Binding message we know of (the OAuth, OIDC, TTRP and HTTPS specs' figures and captured cases, copied into
//! `tests/data/vectors.json`): decoded, re-encoded byte-identically, and verified — or
//! rejected with the expected reason.

use serde_json::Value;
use tokbind_proto::{
    Ekm, HeaderError, KeyParameters, TokenBindingMessage, TokenBindingType, base64url,
    verify_header,
};

fn data() -> Value {
    serde_json::from_str(include_str!("data/vectors.json")).unwrap()
}

fn ekm(hex_str: &str) -> Ekm {
    Ekm::from_slice(&hex::decode(hex_str).unwrap()).unwrap()
}

fn kp(v: &Value) -> KeyParameters {
    KeyParameters::from(v.as_u64().unwrap() as u8)
}

fn outcome(r: &Result<tokbind_proto::VerifiedBindings, HeaderError>) -> &'static str {
    match r {
        Ok(_) => "valid",
        Err(e) => e.reason(),
    }
}

#[test]
fn spec_vectors_decode_reencode_and_verify() {
    let data = data();
    let vectors = data["spec"].as_array().unwrap();
    assert_eq!(vectors.len(), 26);
    let mut verified = 0;
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let header = v["header"].as_str().unwrap();
        let bytes = base64url::decode(header.as_bytes()).unwrap();
        let message = TokenBindingMessage::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));

        // Byte-identical round trip, in both encodings.
        assert_eq!(message.to_bytes(), bytes, "{name}");
        assert_eq!(base64url::encode(&message.to_bytes()), header, "{name}");

        // The TBIDs and tbh values printed in the sources.
        let expected = v["bindings"].as_array().unwrap();
        if !expected.is_empty() {
            assert_eq!(message.bindings().len(), expected.len(), "{name}");
        }
        for (b, e) in message.bindings().iter().zip(expected) {
            assert_eq!(
                u8::from(b.binding_type()) as u64,
                e["type"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(b.id().key_parameters(), kp(&e["key_parameters"]), "{name}");
            assert_eq!(
                base64url::encode(b.id().as_bytes()),
                e["tbid"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                b.id().tbh().to_string(),
                e["tbh"].as_str().unwrap(),
                "{name}"
            );
        }

        let expect = v["expect"].as_str().unwrap();
        if expect == "parse_only" {
            continue;
        }
        let ekm = ekm(v["ekm"].as_str().unwrap());
        let result = verify_header(header.as_bytes(), &ekm, kp(&v["negotiated"]));
        assert_eq!(outcome(&result), expect, "{name}: {result:?}");
        let Ok(ok) = result else { continue };
        verified += 1;

        // The verified IDs are exactly the bindings of the message, by role.
        for (b, e) in message.bindings().iter().zip(expected) {
            let known = KeyParameters::from(e["key_parameters"].as_u64().unwrap() as u8).is_known();
            match b.binding_type() {
                TokenBindingType::PROVIDED => assert_eq!(ok.provided, b.id(), "{name}"),
                TokenBindingType::REFERRED if known => {
                    assert_eq!(
                        ok.referred.as_ref().unwrap(),
                        &b.id().into_owned(),
                        "{name}"
                    )
                }
                TokenBindingType::REFERRED => assert!(ok.referred.is_none(), "{name}"),
                other => assert!(ok.others.contains(&(other, b.id().into_owned())), "{name}"),
            }
        }

        // The same header over any other connection's EKM is refused.
        let mut other = *ekm.as_bytes();
        other[31] ^= 1;
        let replay = verify_header(header.as_bytes(), &Ekm::new(other), kp(&v["negotiated"]));
        assert_eq!(outcome(&replay), "invalid_signature", "{name}");
    }
    assert_eq!(verified, 21);
}

fn spec_binding(name: &str, index: usize) -> (String, String) {
    let data = data();
    let v = data["spec"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
        .clone();
    let header = v["header"].as_str().unwrap();
    let bytes = base64url::decode(header.as_bytes()).unwrap();
    let message = TokenBindingMessage::decode(&bytes).unwrap();
    let id = message.bindings()[index].id();
    (base64url::encode(id.as_bytes()), id.tbh().to_string())
}

/// Relations between figures that the OAuth, OIDC and TTRP documents print.
#[test]
fn printed_cross_document_values_are_reproduced() {
    // OAuth TB -08 Fig 7 / Fig 10: tbh of the referred TBID.
    assert_eq!(
        spec_binding("OAUTH-3.1.1-fig5", 1).1,
        "vowQESa_MgbGJwIXaFm_BTN2QDPwh8PhuBm-EtUAqxc"
    );
    assert_eq!(
        spec_binding("OAUTH-3.2.1-fig8", 1).1,
        "7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws"
    );
    // Fig 11: the RS sees the same key as provided -> the binding check passes.
    assert_eq!(
        spec_binding("OAUTH-3.3.1-fig11", 0).1,
        "7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws"
    );
    // Fig 1 and Fig 3: the same provided TBID on two connections.
    assert_eq!(
        spec_binding("OAUTH-2.1-fig1", 0).0,
        spec_binding("OAUTH-2.1-fig3", 0).0
    );
    // PKCE TB-S256 (Fig 14/15): code_challenge = tbh of the provided TBID.
    assert_eq!(
        spec_binding("OAUTH-5.1.2.1-fig15", 0).1,
        "rBlgOyMY4teiuJMDgOwkrpsAjPyI07D2WsEM-dnq6eE"
    );
    // PKCE referred_tb (Fig 17/18/19): code_verifier = the referred TBID = the next provided TBID.
    let verifier = "AgBBQHVBU530AA5J9bg20J7yRJOqELN_C_doL_ijvqpWGnS6AyCntoed4UoisCD_fIkY_7p3nZDZADMoPXtpmOBqe1s";
    assert_eq!(spec_binding("OAUTH-5.2.1.1-fig17", 1).0, verifier);
    assert_eq!(spec_binding("OAUTH-5.2.2.1-fig18", 0).0, verifier);
    // OIDC TBA A.1: RP provided tbh = OP referred tbh = the ID Token's cnf.tbh.
    let cnf_tbh = "suMuxh_IlrP-Zrj33LuQOQ5rX039cmBe-wt2df3BrUQ";
    assert_eq!(spec_binding("OIDC-A.1-rp", 0).1, cnf_tbh);
    assert_eq!(spec_binding("OIDC-A.1-idp", 1).1, cnf_tbh);
    // TTRP -09 §2.4: the backend header values are the TBIDs.
    assert_eq!(
        spec_binding("TTRP-2.4.2-fig5", 0).0,
        "AgBBQCfsI1D1sTq5mvT_2H_dihNIvuHJCHGjHPJchPavNbGrOo26-2JgT_IsbvZd4daDFbirYBIwJ-TK1rh8FzrC-ps"
    );
    assert_eq!(
        spec_binding("TTRP-2.4.2-fig5", 1).0,
        spec_binding("TTRP-2.4.1-fig3", 0).0
    );
    assert_eq!(
        spec_binding("TTRP-2.4.3-fig7", 1).0,
        "AgBBQEevBm3SEMqx6pKKyRdLHpGCb3_IldN6GxsW2lm6gBCXrbGMaawenNzMeSgxwRmY7BW3hVuV3nPxGsV9B8N0Zic"
    );
    // Derived ecdsap256 vector: static EC key 1 is the TTRP 2.4.3 provided key.
    assert_eq!(
        spec_binding("DERIVED-ecdsap256", 0).0,
        spec_binding("TTRP-2.4.3-fig7", 0).0
    );
}

#[test]
fn pingidentity_captures_get_our_verdicts() {
    let data = data();
    let cases = data["pingidentity"].as_array().unwrap();
    assert_eq!(cases.len(), 40);
    for c in cases {
        let name = c["test"].as_str().unwrap();
        let message = hex::decode(c["message"].as_str().unwrap()).unwrap();
        let header = c["header"].as_str().unwrap();
        assert_eq!(base64url::encode(&message), header, "{name}");
        let result = verify_header(
            header.as_bytes(),
            &ekm(c["ekm"].as_str().unwrap()),
            kp(&c["negotiated"]),
        );
        assert_eq!(
            outcome(&result),
            c["expect"].as_str().unwrap(),
            "{name}: {result:?}"
        );

        // Cross-check against the independent Python verifier: when we accept, every
        // binding it could evaluate it found valid, and every binding with unknown key
        // parameters is reported as unverified, never trusted.
        if let Ok(ok) = &result {
            let py = c["py"].as_str().unwrap();
            let unknown = py
                .split(' ')
                .filter(|v| v.ends_with(":unknown-params"))
                .count();
            assert_eq!(ok.unverified.len(), unknown, "{name}");
            assert!(
                !py.contains(":invalid"),
                "{name}: we accepted what py rejects"
            );
            if py.contains("referred:params") {
                assert!(ok.referred.is_none(), "{name}");
            }
        }
    }
}
