//! The README's Prometheus export ("Metrics"), as written: the recorder installed for the
//! process, `/metrics` beside the app, and a scrape after real Token Binding requests over
//! TLS shows each verdict under its code.

mod common;

use axum::Router;
use axum::routing::get;
use common::*;
use http::{Request, StatusCode};
use tokbind::tower::TokenBindingLayer;

#[tokio::test]
async fn the_readme_prometheus_export_serves_each_verdict_under_its_code() {
    // The process's recorder: this test binary holds no other test.
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(TokenBindingLayer::new());
    let app = app.route(
        "/metrics",
        get(move || std::future::ready(prometheus.render())),
    );
    let server = start_app(|b| b, app).await;

    // A verified binding, then a header on a connection that did not negotiate one.
    let bound = server.client(|b| b);
    let res = server.connect(&bound).await.send(get_req()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let plain = server.client(|b| b.offer_token_binding(false));
    let mut conn = server.connect(&plain).await;
    let res = conn
        .send(with_header("sec-token-binding", "AIkA"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let scrape = Request::get("/metrics").body(Default::default()).unwrap();
    let res = conn.send(scrape).await.unwrap();
    let text = String::from_utf8(res.body().to_vec()).unwrap();
    for line in [
        r#"tokbind_token_binding_total{outcome="accepted"} 1"#,
        r#"tokbind_token_binding_total{outcome="not_negotiated"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}
