//! The proofs Chromium 156 really sent (captured from the browser, copied into this
//! repository's test data), and the negative cases derived from them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokbind_dbsc::proof::{ProofError, verify_refresh, verify_registration};
use tokbind_jose::Algorithm;
use tokbind_jose::jws::JwsError;

const ENDPOINT: &str = "https://dbsc.test:8606/dbsc/register";
const OFFERED: &[Algorithm] = &[Algorithm::ES256, Algorithm::RS256];

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/chromium156-dbsc-vectors.json")).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn es256_registration_then_three_refreshes() {
    let v = vectors();
    let session = &v["es256_session"];
    let reg = verify_registration(s(&session["registration_jwt"]), OFFERED, ENDPOINT).unwrap();
    assert_eq!(reg.alg, Algorithm::ES256);
    assert_eq!(reg.challenge, "reg-chal-1");
    assert_eq!(reg.authorization.as_deref(), Some("authz-xyz"));
    assert_eq!(reg.key.thumbprint(), s(&session["jwk_thumbprint_rfc7638"]));
    for refresh in session["refresh_jwts"].as_array().unwrap() {
        let p = verify_refresh(s(&refresh["jwt"]), &reg.key, OFFERED, ENDPOINT).unwrap();
        assert_eq!(p.challenge, s(&refresh["challenge"]));
        assert_eq!(p.authorization, None);
    }
}

#[test]
fn rs256_registration() {
    let v = vectors();
    let reg = verify_registration(
        s(&v["rs256_registration"]["registration_jwt"]),
        OFFERED,
        ENDPOINT,
    )
    .unwrap();
    assert_eq!(reg.alg, Algorithm::RS256);
    assert_eq!(reg.challenge, "reg-chal-1");
    // Not offered: refused.
    let es_only = verify_registration(
        s(&v["rs256_registration"]["registration_jwt"]),
        &[Algorithm::ES256],
        ENDPOINT,
    );
    assert!(matches!(
        es_only,
        Err(ProofError::Jws(JwsError::Algorithm(_)))
    ));
}

fn with_header(jwt: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let (header, rest) = jwt.split_once('.').unwrap();
    let mut h: serde_json::Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    edit(&mut h);
    format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap())
    )
}

#[test]
fn the_derived_negative_cases_are_refused() {
    let v = vectors();
    let session = &v["es256_session"];
    let registration = s(&session["registration_jwt"]);
    let refresh = s(&session["refresh_jwts"][0]["jwt"]);
    let key = verify_registration(registration, OFFERED, ENDPOINT)
        .unwrap()
        .key;

    // V-DBSC-1 with one signature character changed.
    let mut forged = registration.to_string();
    let c = if forged.ends_with('g') { "h" } else { "g" };
    forged.replace_range(forged.len() - 1.., c);
    let err = verify_registration(&forged, OFFERED, ENDPOINT).unwrap_err();
    assert!(err.is_bad_signature(), "{err:?}");
    // V-DBSC-2 against another key (the RS256 session's).
    let other = verify_registration(
        s(&v["rs256_registration"]["registration_jwt"]),
        OFFERED,
        ENDPOINT,
    )
    .unwrap()
    .key;
    assert!(matches!(
        verify_refresh(refresh, &other, OFFERED, ENDPOINT),
        Err(ProofError::Jws(JwsError::KeyMismatch))
    ));
    // V-DBSC-2 presented as a registration (no jwk).
    assert_eq!(
        verify_registration(refresh, OFFERED, ENDPOINT).unwrap_err(),
        ProofError::Jws(JwsError::MissingKey)
    );
    // V-DBSC-1 presented as a refresh (jwk present).
    assert_eq!(
        verify_refresh(registration, &key, OFFERED, ENDPOINT).unwrap_err(),
        ProofError::Jws(JwsError::UnexpectedKey)
    );
    // alg rewritten to none, signature emptied.
    let none = with_header(refresh, |h| {
        h.insert("alg".into(), "none".into());
    });
    let none = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert!(verify_refresh(&none, &key, OFFERED, ENDPOINT).is_err());
    // typ rewritten to jwt: refused for the typ, before the signature is looked at.
    let jwt_typ = with_header(refresh, |h| {
        h.insert("typ".into(), "jwt".into());
    });
    assert!(matches!(
        verify_refresh(&jwt_typ, &key, OFFERED, ENDPOINT),
        Err(ProofError::Jws(JwsError::WrongType { .. }))
    ));
}
