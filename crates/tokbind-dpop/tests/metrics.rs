//! With the `metrics` feature, `DpopLayer` counts its verdicts by stable code. Real proofs
//! (a fresh key, real signatures) go through the real layer, and the counters are read
//! back from a recorder of the test's own.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use tokbind_dpop::{DpopKey, DpopLayer, DpopVerifier};
use tokbind_testkit::counters::{Counters, counts};
use tower::ServiceExt as _;

const ORIGIN: &str = "https://api.example.com";

async fn send(app: &Router, headers: &[(&str, &str)]) -> StatusCode {
    let mut req = Request::get("/api/me");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn dpop_verdicts_are_counted_by_reason() {
    let app = Router::new()
        .route("/api/me", get(|| async { "hello" }))
        .layer(DpopLayer::new(DpopVerifier::new(), ORIGIN).unwrap());
    let key = DpopKey::generate().unwrap();
    let url = format!("{ORIGIN}/api/me");
    let counters = Counters::install();
    let proof = key.proof("GET", &url, None, None);
    assert_eq!(send(&app, &[("dpop", &proof)]).await, StatusCode::OK);
    // The same proof again (RFC 9449 §11.1), and one made for another method.
    let replayed = send(&app, &[("dpop", &proof)]).await;
    assert_eq!(replayed, StatusCode::UNAUTHORIZED);
    let post = key.proof("POST", &url, None, None);
    assert_eq!(
        send(&app, &[("dpop", &post)]).await,
        StatusCode::UNAUTHORIZED
    );
    // A DPoP token without a proof; a request with no DPoP at all is not counted.
    let token = [("authorization", "DPoP some-token")];
    assert_eq!(send(&app, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&app, &[]).await, StatusCode::OK);
    assert_eq!(
        counters.by_outcome("tokbind_dpop_total"),
        counts([
            ("accepted", 1),
            ("dpop_htm_mismatch", 1),
            ("dpop_proof_missing", 1),
            ("dpop_replay", 1),
        ])
    );
}
