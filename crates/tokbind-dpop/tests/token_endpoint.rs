//! The authorization server's side: the token request's proof, and `dpop_jkt`.

use http::Request;
use tokbind_dpop::{DpopError, DpopKey, DpopVerifier};

const TOKEN_ENDPOINT: &str = "https://as.example/token";

fn parts(proofs: &[&str]) -> http::request::Parts {
    let mut b = Request::post("/token");
    for p in proofs {
        b = b.header("dpop", *p);
    }
    b.body(()).unwrap().into_parts().0
}

#[tokio::test]
async fn a_token_request_binds_to_its_proof_key() {
    let verifier = DpopVerifier::new();
    let key = DpopKey::generate().unwrap();
    // No proof: the caller issues Bearer tokens.
    assert!(
        verifier
            .check_token_request(&parts(&[]), TOKEN_ENDPOINT)
            .await
            .unwrap()
            .is_none()
    );
    let proof = key.proof("POST", TOKEN_ENDPOINT, None, None);
    let checked = verifier
        .check_token_request(&parts(&[&proof]), TOKEN_ENDPOINT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checked.jkt, key.jkt());
    // The same proof again: replay.
    let again = verifier
        .check_token_request(&parts(&[&proof]), TOKEN_ENDPOINT)
        .await;
    assert_eq!(again.unwrap_err(), DpopError::Replay);
    // Two proofs, or a proof made for another endpoint.
    let (a, b) = (
        key.proof("POST", TOKEN_ENDPOINT, None, None),
        key.proof("POST", TOKEN_ENDPOINT, None, None),
    );
    let two = verifier
        .check_token_request(&parts(&[&a, &b]), TOKEN_ENDPOINT)
        .await;
    assert_eq!(two.unwrap_err(), DpopError::MultipleProofs);
    let elsewhere = key.proof("POST", "https://as.example/par", None, None);
    let wrong = verifier
        .check_token_request(&parts(&[&elsewhere]), TOKEN_ENDPOINT)
        .await;
    assert_eq!(wrong.unwrap_err(), DpopError::UriMismatch);
    let res =
        DpopError::UriMismatch.token_endpoint_response(&verifier, std::time::SystemTime::now());
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_needs_that_key() {
    let verifier = DpopVerifier::new();
    let (key, other) = (DpopKey::generate().unwrap(), DpopKey::generate().unwrap());
    let proof = |k: &DpopKey| k.proof("POST", TOKEN_ENDPOINT, None, None);
    let mine = verifier
        .check_token_request(&parts(&[&proof(&key)]), TOKEN_ENDPOINT)
        .await
        .unwrap();
    assert_eq!(
        DpopVerifier::check_dpop_jkt(&key.jkt(), mine.as_ref()),
        Ok(())
    );
    let theirs = verifier
        .check_token_request(&parts(&[&proof(&other)]), TOKEN_ENDPOINT)
        .await
        .unwrap();
    assert_eq!(
        DpopVerifier::check_dpop_jkt(&key.jkt(), theirs.as_ref()),
        Err(DpopError::KeyNotBound)
    );
    assert_eq!(
        DpopVerifier::check_dpop_jkt(&key.jkt(), None),
        Err(DpopError::MissingProof)
    );
    // RFC 9449 §10's example value is the RFC 7638 example key's thumbprint.
    assert_eq!(
        DpopVerifier::check_dpop_jkt("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", mine.as_ref()),
        Err(DpopError::KeyNotBound)
    );
}
