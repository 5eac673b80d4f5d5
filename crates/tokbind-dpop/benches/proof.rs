//! `cargo bench -p tokbind-dpop --bench proof`
//!
//! `raw_es256` is the ES256 signature check alone (aws-lc-rs, key already parsed): the floor.
//! `check_proof` is every sans-IO check of a DPoP proof with `ath` (RFC 9449 §4.3 but the
//! replay cache): base64url, JSON header and claims, JWK checks and RFC 7638 thumbprint,
//! key import, signature, `htm`/`htu` normalisation, `iat`, `ath`. The ratio of the two,
//! measured in alternating batches (see tokbind-proto's `verify` bench), is printed last.

use std::hint::black_box;
use std::time::SystemTime;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group};
use tokbind_bench::Side;
use tokbind_dpop::{DpopKey, DpopVerifier, RequestFacts};

const URI: &str = "https://api.example/v1/me";
const TOKEN: &str = "an-access-token";

struct Fixture {
    proof: String,
    verifier: DpopVerifier,
    point: Vec<u8>,
    input: Vec<u8>,
    signature: Vec<u8>,
}

fn fixture() -> Fixture {
    let key = DpopKey::generate().unwrap();
    let proof = key.proof("GET", URI, Some(TOKEN), None);
    let (input, signature) = proof.rsplit_once('.').unwrap();
    let jwk = key.public_jwk().canonical().to_string();
    let jwk: serde_json::Value = serde_json::from_str(&jwk).unwrap();
    let coord = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
    let point = [vec![4], coord("x"), coord("y")].concat();
    Fixture {
        input: input.as_bytes().to_vec(),
        signature: URL_SAFE_NO_PAD.decode(signature).unwrap(),
        proof,
        verifier: DpopVerifier::new(),
        point,
    }
}

const FACTS: RequestFacts<'static> = RequestFacts {
    method: "GET",
    htu: URI,
    access_token: Some(TOKEN),
};

fn raw(f: &Fixture) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(&f.point))
        .verify(black_box(&f.input), black_box(&f.signature))
        .is_ok()
}

fn full(f: &Fixture, now: SystemTime) -> bool {
    f.verifier.check(black_box(&f.proof), &FACTS, now).is_ok()
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let now = SystemTime::now();
    assert!(raw(&f) && full(&f, now));
    let mut group = c.benchmark_group("dpop");
    group.bench_function("raw_es256", |b| b.iter(|| raw(&f)));
    group.bench_function("check_proof", |b| b.iter(|| full(&f, now)));
    group.finish();
}

criterion_group!(benches, bench);

/// Median over rounds of (check_proof batch time ÷ raw batch time), batches alternating.
fn paired_ratio() -> f64 {
    let f = fixture();
    let now = SystemTime::now();
    tokbind_bench::paired_median(40, 100, |side| match side {
        Side::Baseline => assert!(raw(&f)),
        Side::Measured => assert!(full(&f, now)),
    })
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!(
        "\nDPoP proof check vs raw ES256 verify, same run (paired median): {:.3}",
        paired_ratio()
    );
}
