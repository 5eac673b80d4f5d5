//! Proofs no honest client makes, correctly signed by the attacker's own key: their claims
//! are read only after the signature verifies, so every check below runs on input the
//! attacker fully controls. Each is a refusal with its reason, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokbind_dpop::{DpopError, DpopKey, DpopVerifier, RequestFacts};

const HTU: &str = "https://api.example/v1/me";
const FACTS: RequestFacts<'static> = RequestFacts {
    method: "GET",
    htu: HTU,
    access_token: None,
};

/// A proof with `iat` written as the raw JSON text `iat` (or none when `None`).
fn proof_with_iat(key: &DpopKey, iat: Option<&str>) -> String {
    let iat = iat.map_or(String::new(), |t| format!(r#","iat":{t}"#));
    let jti = format!("{:x}", rand_u64());
    key.proof_with_claims(&format!(
        r#"{{"jti":"{jti}","htm":"GET","htu":"{HTU}"{iat}}}"#
    ))
}

/// Distinct jtis without a dependency: the clock's nanoseconds and a counter.
fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into());
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn an_iat_out_of_range_is_refused_not_a_panic() {
    let key = DpopKey::generate().unwrap();
    let verifier = DpopVerifier::new();
    for iat in [
        "18446744073709551615",   // u64::MAX
        "18446744073709551616",   // u64::MAX + 1 (a float to a JSON parser)
        "9223372036854775808",    // 2^63 = i64::MAX + 1: where SystemTime overflows
        "9223372036854775807",    // i64::MAX
        "253402300800",           // one second past 9999-12-31T23:59:59Z
        "1e300",                  // a float far out of range
        "1.7976931348623157e308", // f64::MAX
        "-1",                     // before the epoch
        "-9223372036854775808",   // i64::MIN
        "-1e300",                 // a negative float
        "\"1700000000\"",         // a string, not a number
        "null",                   // present but empty
    ] {
        let proof = proof_with_iat(&key, Some(iat));
        let err = verifier
            .verify(&proof, &FACTS, SystemTime::now())
            .await
            .unwrap_err();
        assert!(matches!(err, DpopError::Iat(_)), "iat {iat}: {err:?}");
        assert_eq!(err.reason(), "dpop_bad_iat", "iat {iat}");
        assert_eq!(err.error_code(), "invalid_dpop_proof", "iat {iat}");
        let res = err.resource_response(&verifier, SystemTime::now());
        assert_eq!(res.status(), 401, "iat {iat}");
    }
    // No iat at all.
    let err = verifier
        .verify(&proof_with_iat(&key, None), &FACTS, SystemTime::now())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "dpop_bad_iat");
    // A number too large for any JSON number type: the payload itself does not parse.
    let err = verifier
        .verify(
            &proof_with_iat(&key, Some("1e400")),
            &FACTS,
            SystemTime::now(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "dpop_bad_claims", "{err}");
}

#[tokio::test]
async fn the_signature_is_checked_before_the_claims() {
    // The hostile proofs above are refused for their iat, not their signature: the same
    // proof with its signature broken is refused for that instead.
    let key = DpopKey::generate().unwrap();
    let mut proof = proof_with_iat(&key, Some("18446744073709551615"));
    let last = proof.pop().unwrap();
    proof.push(if last == 'A' { 'B' } else { 'A' });
    let err = DpopVerifier::new()
        .check(&proof, &FACTS, SystemTime::now())
        .unwrap_err();
    assert_eq!(err.reason(), "dpop_bad_signature");
}

#[tokio::test]
async fn times_in_range_keep_their_meaning() {
    let key = DpopKey::generate().unwrap();
    let verifier = DpopVerifier::new();
    let now = now_secs();
    let reason = |proof: String| {
        verifier
            .check(&proof, &FACTS, SystemTime::now())
            .map(|_| ())
            .map_err(|e| e.reason())
    };
    // The last representable second is merely in the future; the epoch merely stale.
    assert_eq!(
        reason(proof_with_iat(&key, Some("253402300799"))),
        Err("dpop_future")
    );
    assert_eq!(reason(proof_with_iat(&key, Some("0"))), Err("dpop_stale"));
    // A NumericDate may have a fraction (RFC 7519 §2): it is dropped.
    let fractional = format!("{now}.75");
    assert_eq!(reason(proof_with_iat(&key, Some(&fractional))), Ok(()));
    let proof = proof_with_iat(&key, Some(&format!("{now}.75")));
    let verified = verifier
        .verify(&proof, &FACTS, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(verified.iat, UNIX_EPOCH + Duration::from_secs(now));
}

#[tokio::test]
async fn a_token_request_with_an_iat_out_of_range_is_an_oauth_error() {
    let key = DpopKey::generate().unwrap();
    let verifier = DpopVerifier::new();
    let endpoint = "https://as.example/token";
    let claims =
        format!(r#"{{"jti":"t-1","htm":"POST","htu":"{endpoint}","iat":9223372036854775808}}"#);
    let parts = http::Request::post("/token")
        .header("dpop", key.proof_with_claims(&claims))
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let err = verifier
        .check_token_request(&parts, endpoint)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "dpop_bad_iat");
    let res = err.token_endpoint_response(&verifier, SystemTime::now());
    assert_eq!(res.status(), 400);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("iat is after 9999"),
        "{body}"
    );
}
