//! The OAuth 2.0 Token Binding (-08) and OIDC Token Bound Authentication (draft 04)
//! examples: `cnf.tbh` values, both PKCE methods, and the two published ID tokens
//! (signatures verified with the JWKs printed in the spec).

use serde_json::Value;
use tokbind_oauth::pkce::{self, PkceError, StoredChallenge};
use tokbind_oauth::{CnfError, CnfPolicy, Confirmation, TokenVerifier, cnf};
use tokbind_proto::{ProvenKey, TokenBindingId, TokenBindingMessage, base64url};

/// The TBID of binding `index` of a message from the protocol crate's test data.
fn tbid(name: &str, index: usize) -> TokenBindingId {
    let data: Value =
        serde_json::from_str(include_str!("../../tokbind-proto/tests/data/vectors.json")).unwrap();
    let v = data["spec"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap();
    let bytes = base64url::decode(v["header"].as_str().unwrap().as_bytes()).unwrap();
    let message = TokenBindingMessage::decode(&bytes).unwrap();
    message.bindings()[index].id().into_owned()
}

#[test]
fn oauth_cnf_values_of_figures_7_10_12_13() {
    // Fig 5 → Fig 7: implicit access token bound to the referred TBID.
    let fig7 = Confirmation::token_binding(&tbid("OAUTH-3.1.1-fig5", 1));
    assert_eq!(
        serde_json::to_value(&fig7).unwrap(),
        serde_json::json!({"tbh": "vowQESa_MgbGJwIXaFm_BTN2QDPwh8PhuBm-EtUAqxc"})
    );
    // Fig 8 → Fig 10: token-endpoint access token bound to the referred TBID.
    let fig10 = Confirmation::token_binding(&tbid("OAUTH-3.2.1-fig8", 1));
    assert_eq!(
        fig10.tbh.as_deref(),
        Some("7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws")
    );
    // Fig 12 claims (with the comma the draft's Figures 12 and 13 lost after "sub"): the RS request of
    // Fig 11 proves the matching key; the client's key from Fig 5 does not.
    let fig12: Value = serde_json::from_str(
        r#"{"iss":"https://server.example.com","aud":"https://resource.example.org","sub":"brian@example.com",
            "iat":1467324320,"exp":1467324920,"cnf":{"tbh":"7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws"}}"#,
    )
    .unwrap();
    let claims: tokbind_oauth::Claims = serde_json::from_value(fig12).unwrap();
    let rs_request = ProvenKey::token_binding(&tbid("OAUTH-3.3.1-fig11", 0));
    assert_eq!(
        cnf::check(claims.cnf.as_ref(), Some(&rs_request), CnfPolicy::Required),
        Ok(())
    );
    let other = ProvenKey::token_binding(&tbid("OAUTH-3.1.1-fig5", 0));
    assert_eq!(
        cnf::check(claims.cnf.as_ref(), Some(&other), CnfPolicy::Required),
        Err(CnfError::Mismatch)
    );
    // Fig 13: introspection carries the same cnf.
    let fig13 = tokbind_oauth::metadata::Introspection::active(&claims);
    assert_eq!(
        serde_json::to_value(&fig13).unwrap()["cnf"]["tbh"],
        "7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws"
    );
}

#[test]
fn pkce_tb_s256_figures_14_15() {
    let provided = tbid("OAUTH-5.1.2.1-fig15", 0);
    assert_eq!(
        pkce::tb_s256_challenge(&provided),
        "rBlgOyMY4teiuJMDgOwkrpsAjPyI07D2WsEM-dnq6eE"
    );
    let stored = pkce::accept_challenge(
        "TB-S256",
        "rBlgOyMY4teiuJMDgOwkrpsAjPyI07D2WsEM-dnq6eE",
        None,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        pkce::verify(&stored, "provided_tb", Some(&provided)),
        Ok(())
    );
    // Another key at the token endpoint, a missing binding, or a wrong verifier: invalid_grant.
    let other = tbid("OAUTH-2.1-fig1", 0);
    for (verifier, binding) in [
        ("provided_tb", Some(&other)),
        ("provided_tb", None),
        (
            "2x6_ylS390-8V7jaT9wj.8qP9nKmYCf.V-rD9O4r_1",
            Some(&provided),
        ),
    ] {
        let err = pkce::verify(&stored, verifier, binding).unwrap_err();
        assert_eq!(err.oauth_error(), "invalid_grant");
    }
    assert_eq!(
        pkce::accept_challenge("TB-S256", "not-a-hash", None),
        Err(PkceError::MalformedChallenge("TB-S256"))
    );
    assert_eq!(
        pkce::accept_challenge("S256", "whatever", None),
        Err(PkceError::MalformedChallenge("S256")),
        "S256 needs a SHA-256 hash"
    );
    assert_eq!(
        pkce::accept_challenge("plain", "whatever", None),
        Ok(None),
        "not implemented here"
    );
}

#[test]
fn pkce_referred_tb_figures_16_to_19() {
    let fig19_verifier = "AgBBQHVBU530AA5J9bg20J7yRJOqELN_C_doL_ijvqpWGnS6AyCntoed4UoisCD_fIkY_7p3nZDZADMoPXtpmOBqe1s";
    // Fig 17: the authorization request's referred TBID is remembered.
    let referred = tbid("OAUTH-5.2.1.1-fig17", 1);
    let stored = pkce::accept_challenge("referred_tb", "referred_tb", Some(&referred))
        .unwrap()
        .unwrap();
    assert_eq!(stored, StoredChallenge::ReferredTb(referred.clone()));
    // Fig 18/19: the client's verifier is the browser's provided TBID on its callback.
    let callback_provided = tbid("OAUTH-5.2.2.1-fig18", 0);
    assert_eq!(
        pkce::referred_tb_verifier(&callback_provided),
        fig19_verifier
    );
    assert_eq!(pkce::verify(&stored, fig19_verifier, None), Ok(()));
    let wrong = tbid("OAUTH-5.2.1.1-fig17", 0).to_base64url();
    assert_eq!(
        pkce::verify(&stored, &wrong, None),
        Err(PkceError::InvalidGrant)
    );
    assert_eq!(
        pkce::verify(&stored, "referred_tb", None),
        Err(PkceError::InvalidGrant)
    );
    assert_eq!(
        pkce::accept_challenge("referred_tb", "referred_tb", None),
        Err(PkceError::NoReferredBinding)
    );
    assert_eq!(
        pkce::accept_challenge("referred_tb", fig19_verifier, Some(&referred)),
        Err(PkceError::MalformedChallenge("referred_tb"))
    );
}

fn id_tokens() -> Vec<Value> {
    let data: Value = serde_json::from_str(include_str!("data/oidc_tba_id_tokens.json")).unwrap();
    data["id_tokens"].as_array().unwrap().clone()
}

#[test]
fn oidc_a2_es256_id_token_verifies_and_binds_to_the_rp_key() {
    let v = id_tokens()
        .into_iter()
        .find(|t| t["name"] == "OIDC-TBA-04-A.2")
        .unwrap();
    let mut jwk = v["jwk"].clone();
    jwk["alg"] = "ES256".into();
    let verifier = TokenVerifier::new(
        &serde_json::json!({"keys": [jwk]}),
        "https://idp.example.com",
        "example-client-id",
    )
    .unwrap()
    .insecure_ignore_expiry();
    let token = v["id_token"].as_str().unwrap();
    let rp_provided = tbid("OIDC-A.1-rp", 0);
    let claims = verifier
        .verify_id_token(
            token,
            "AH34XsFUVdieZU-joDxNFx4TmYOCpMo-Klik3Z6CV2k",
            Some(&rp_provided),
            CnfPolicy::Enforced,
        )
        .unwrap();
    assert_eq!(
        claims.cnf.unwrap().tbh.as_deref(),
        Some("suMuxh_IlrP-Zrj33LuQOQ5rX039cmBe-wt2df3BrUQ")
    );
    // The OP's own key (the provided ID on the OP request) is not the RP key: refused.
    let op_provided = tbid("OIDC-A.1-idp", 0);
    let err = verifier
        .verify_id_token(
            token,
            "AH34XsFUVdieZU-joDxNFx4TmYOCpMo-Klik3Z6CV2k",
            Some(&op_provided),
            CnfPolicy::Enforced,
        )
        .unwrap_err();
    assert_eq!(err.reason(), "binding_mismatch");
    // Wrong nonce, tampered payload.
    assert_eq!(
        verifier
            .verify_id_token(token, "other", Some(&rp_provided), CnfPolicy::Enforced)
            .unwrap_err()
            .reason(),
        "nonce_mismatch"
    );
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = parts[1].replacen('W', "X", 1);
    assert_eq!(
        verifier.decode(&parts.join(".")).unwrap_err().reason(),
        "invalid_token"
    );
    // And with expiry checked, as a server would: this 2017 token is expired.
    let strict = TokenVerifier::new(
        &serde_json::json!({"keys": [v["jwk"].clone()]}),
        "https://idp.example.com",
        "example-client-id",
    )
    .unwrap();
    assert_eq!(strict.decode(token).unwrap_err().reason(), "token_expired");
}

#[test]
fn oidc_a1_es512_id_token_verifies_with_the_printed_p521_key() {
    use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED, UnparsedPublicKey};
    let v = id_tokens()
        .into_iter()
        .find(|t| t["name"] == "OIDC-TBA-04-A.1")
        .unwrap();
    let token = v["id_token"].as_str().unwrap();
    let (signing_input, sig) = token.rsplit_once('.').unwrap();
    let x = base64url::decode(v["jwk"]["x"].as_str().unwrap().as_bytes()).unwrap();
    let y = base64url::decode(v["jwk"]["y"].as_str().unwrap().as_bytes()).unwrap();
    let point = [&[0x04][..], &x, &y].concat();
    let sig = base64url::decode(sig.as_bytes()).unwrap();
    UnparsedPublicKey::new(&ECDSA_P521_SHA512_FIXED, &point)
        .verify(signing_input.as_bytes(), &sig)
        .expect("the ES512 signature verifies with the printed JWK");
    let payload = signing_input.split('.').nth(1).unwrap();
    let claims: tokbind_oauth::Claims =
        serde_json::from_slice(&base64url::decode(payload.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        claims.nonce.as_deref(),
        Some("i87yhOySCQCGYQwXbFKK7aDhqDIyERH0G2AfDaWSCYg")
    );
    let rp = ProvenKey::token_binding(&tbid("OIDC-A.1-rp", 0));
    assert_eq!(
        cnf::check(claims.cnf.as_ref(), Some(&rp), CnfPolicy::Enforced),
        Ok(())
    );
    let op = ProvenKey::token_binding(&tbid("OIDC-A.1-idp", 0));
    assert_eq!(
        cnf::check(claims.cnf.as_ref(), Some(&op), CnfPolicy::Enforced),
        Err(CnfError::Mismatch)
    );
}

#[test]
fn signing_keys_from_configuration_rotate() {
    use std::time::Duration;
    use tokbind_oauth::TokenIssuer;
    let (old, new) = (
        TokenIssuer::generate_config_value().unwrap(),
        TokenIssuer::generate_config_value().unwrap(),
    );
    let before = TokenIssuer::from_config("https://idp.example", &old).unwrap();
    let token = before
        .token(
            "alice",
            "rp",
            Duration::from_secs(60),
            None,
            None,
            Default::default(),
        )
        .unwrap();
    // Two instances with the same configuration: interchangeable.
    let twin = TokenIssuer::from_config("https://idp.example", &old).unwrap();
    assert_eq!(twin.jwks(), before.jwks());
    // After rotation the new key signs and the old one is still published.
    let rotated = TokenIssuer::from_config("https://idp.example", &format!("{new},{old}")).unwrap();
    assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
    let verifier = TokenVerifier::new(&rotated.jwks(), "https://idp.example", "rp").unwrap();
    assert_eq!(
        verifier.decode(&token).unwrap().sub,
        "alice",
        "a token from before the rotation"
    );
    let fresh = rotated
        .token(
            "alice",
            "rp",
            Duration::from_secs(60),
            None,
            None,
            Default::default(),
        )
        .unwrap();
    assert!(verifier.decode(&fresh).is_ok());
    let old_only = TokenVerifier::new(&before.jwks(), "https://idp.example", "rp").unwrap();
    assert!(old_only.decode(&fresh).is_err(), "the new key signs");
    assert!(TokenIssuer::from_config("x", "").is_err());
    assert!(TokenIssuer::from_config("x", "not-a-key").is_err());
}
