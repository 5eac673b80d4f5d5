//! RFC 9449's own example proofs, checked at the time they were
//! made, and the attacks that follow from them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokbind_dpop::{
    DpopError, DpopKey, DpopVerifier, MemoryReplayCache, NonceIssuer, RequestFacts,
};

/// §4.1 / §5: the token request (authorization code).
const V1: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const V1_IAT: u64 = 1_562_262_616;
/// §5: the refresh request — the same jti as V1, 2680 s later.
const V2: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjY1Mjk2fQ.pAqut2IRDm_De6PR93SYmGBPXpwrAk90e8cP2hjiaG5QsGSuKDYW7_X620BxqhvYC8ynrrvZLTk41mSRroapUA";
const V2_IAT: u64 = 1_562_265_296;
/// §7.1: the protected resource request, with `ath` of [`TOKEN`].
const V3: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
const V3_IAT: u64 = 1_562_262_618;
const TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

const TOKEN_ENDPOINT: RequestFacts<'static> = RequestFacts {
    method: "POST",
    htu: "https://server.example.com/token",
    access_token: None,
};
const RESOURCE: RequestFacts<'static> = RequestFacts {
    method: "GET",
    htu: "https://resource.example.org/protectedresource",
    access_token: Some(TOKEN),
};

fn at(iat: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(iat + 1)
}

#[tokio::test]
async fn the_three_examples_verify() {
    let verifier = DpopVerifier::new();
    for (proof, facts, iat) in [
        (V1, TOKEN_ENDPOINT, V1_IAT),
        (V2, TOKEN_ENDPOINT, V2_IAT),
        (V3, RESOURCE, V3_IAT),
    ] {
        let p = verifier.verify(proof, &facts, at(iat)).await.unwrap();
        assert_eq!(p.jkt, JKT);
        assert_eq!(p.proven_key().thumbprint().to_string(), JKT);
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused_within_its_window() {
    let verifier = DpopVerifier::new();
    verifier.verify(V3, &RESOURCE, at(V3_IAT)).await.unwrap();
    assert_eq!(
        verifier
            .verify(V3, &RESOURCE, at(V3_IAT))
            .await
            .unwrap_err(),
        DpopError::Replay
    );
    // V2 reuses V1's jti 2680 s later: out of V1's window, so a window-scoped cache takes it.
    verifier
        .verify(V1, &TOKEN_ENDPOINT, at(V1_IAT))
        .await
        .unwrap();
    verifier
        .verify(V2, &TOKEN_ENDPOINT, at(V2_IAT))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_replay_cache_shared_by_two_instances_refuses_the_replay_at_the_other() {
    let cache = Arc::new(MemoryReplayCache::default());
    let one = DpopVerifier::new().replay_cache(cache.clone());
    let two = DpopVerifier::new().replay_cache(cache);
    one.verify(V3, &RESOURCE, at(V3_IAT)).await.unwrap();
    assert_eq!(
        two.verify(V3, &RESOURCE, at(V3_IAT)).await.unwrap_err(),
        DpopError::Replay
    );
}

#[test]
fn each_mismatch_is_refused_for_its_reason() {
    let v = DpopVerifier::new();
    let check =
        |proof, facts: RequestFacts<'_>, now| v.check(proof, &facts, now).map(|_| ()).unwrap_err();
    let other_token = RequestFacts {
        access_token: Some("other"),
        ..RESOURCE
    };
    assert_eq!(check(V3, other_token, at(V3_IAT)), DpopError::AthMismatch);
    let no_token_ath = RequestFacts {
        access_token: Some(TOKEN),
        ..TOKEN_ENDPOINT
    };
    assert_eq!(check(V1, no_token_ath, at(V1_IAT)), DpopError::AthMissing);
    assert_eq!(
        check(V1, TOKEN_ENDPOINT, at(V1_IAT + 300)),
        DpopError::Stale
    );
    assert_eq!(
        check(V1, TOKEN_ENDPOINT, at(V1_IAT - 60)),
        DpopError::FromTheFuture
    );
    let get = RequestFacts {
        method: "GET",
        ..TOKEN_ENDPOINT
    };
    assert_eq!(check(V1, get, at(V1_IAT)), DpopError::MethodMismatch);
    let token2 = RequestFacts {
        htu: "https://server.example.com/token2",
        ..TOKEN_ENDPOINT
    };
    assert_eq!(check(V1, token2, at(V1_IAT)), DpopError::UriMismatch);
    // Lenient verifiers accept this one, but an empty path segment makes a
    // different URI.
    let double_slash = RequestFacts {
        htu: "https://resource.example.org//protectedresource",
        ..RESOURCE
    };
    assert_eq!(check(V3, double_slash, at(V3_IAT)), DpopError::UriMismatch);
    // Equivalent spellings of the same URI are the same URI.
    let equivalent = RequestFacts {
        htu: "HTTPS://Server.Example.com:443/./token?x=1",
        ..TOKEN_ENDPOINT
    };
    assert!(v.check(V1, &equivalent, at(V1_IAT)).is_ok());
    // Signature: one character changed.
    let mut forged = V1.to_string();
    forged.replace_range(forged.len() - 2..forged.len() - 1, "A");
    assert_eq!(
        check(&forged, TOKEN_ENDPOINT, at(V1_IAT)).reason(),
        "dpop_bad_signature"
    );
    // An algorithm the server does not allow.
    let rs_only = DpopVerifier::new().algorithms([tokbind_dpop_alg::RS256]);
    assert_eq!(
        rs_only
            .check(V1, &TOKEN_ENDPOINT, at(V1_IAT))
            .map(|_| ())
            .unwrap_err()
            .reason(),
        "dpop_bad_alg"
    );
}

mod tokbind_dpop_alg {
    pub use tokbind_jose::Algorithm::RS256;
}

#[tokio::test]
async fn nonces_are_demanded_then_accepted() {
    let issuer = NonceIssuer::generate(Duration::from_secs(300)).unwrap();
    let verifier = DpopVerifier::new().nonces(issuer.clone());
    let key = DpopKey::generate().unwrap();
    let facts = RequestFacts {
        method: "POST",
        htu: "https://as.example/token",
        access_token: None,
    };
    let now = SystemTime::now();
    // Without a nonce: use_dpop_nonce, and the response carries one.
    let no_nonce = key.proof("POST", "https://as.example/token", None, None);
    let err = verifier.verify(&no_nonce, &facts, now).await.unwrap_err();
    assert_eq!(err, DpopError::UseNonce);
    let res = err.token_endpoint_response(&verifier, now);
    assert_eq!(res.status(), 400);
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_string();
    // A made-up nonce, or an expired one, is no better (RFC 9449 §11.3: no downgrade).
    let made_up = key.proof(
        "POST",
        "https://as.example/token",
        None,
        Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"),
    );
    assert_eq!(
        verifier.verify(&made_up, &facts, now).await.unwrap_err(),
        DpopError::UseNonce
    );
    let old = issuer.issue(now - Duration::from_secs(400));
    let stale_nonce = key.proof("POST", "https://as.example/token", None, Some(&old));
    assert_eq!(
        verifier
            .verify(&stale_nonce, &facts, now)
            .await
            .unwrap_err(),
        DpopError::UseNonce
    );
    // With the server's nonce: accepted.
    let with_nonce = key.proof("POST", "https://as.example/token", None, Some(&nonce));
    assert_eq!(
        verifier.verify(&with_nonce, &facts, now).await.unwrap().jkt,
        key.jkt()
    );
}

#[tokio::test]
async fn the_client_key_makes_proofs_the_verifier_accepts() {
    let key = DpopKey::generate().unwrap();
    let verifier = DpopVerifier::new();
    let proof = key.proof("GET", "https://api.example/v1/me?page=2", Some("tok"), None);
    let facts = RequestFacts {
        method: "GET",
        htu: "https://api.example/v1/me",
        access_token: Some("tok"),
    };
    let p = verifier
        .verify(&proof, &facts, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(p.jkt, key.jkt());
    assert_eq!(p.htu, "https://api.example/v1/me");
    // Another key's token: the proof is fine, the binding is the token layer's to refuse.
    assert_ne!(DpopKey::generate().unwrap().jkt(), key.jkt());
}

#[test]
fn resource_errors_carry_the_dpop_challenge() {
    let verifier = DpopVerifier::new();
    let res = DpopError::Replay.resource_response(&verifier, SystemTime::now());
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP algs=\"ES256 ES384 PS256 RS256 EdDSA\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    let res = DpopError::ConflictingSchemes.resource_response(&verifier, SystemTime::now());
    assert_eq!(res.status(), 400);
}
