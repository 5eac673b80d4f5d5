//! `cargo bench -p tower-tokbind --bench layer`
//!
//! `TokenBindingLayer` in a Tower stack, no network: a bare service (the baseline), the
//! layer on a keep-alive connection (the header's verdict is cached for the connection),
//! and the layer on a new connection (full verification). Ratios are printed at the end.

use std::convert::Infallible;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group};
use http::{Request, Response};
use tokbind_proto::{ConnectionInfo, Ekm, KeyParameters, MessageBuilder, SigningKey};
use tower::{Service, ServiceExt as _};
use tower_tokbind::TokenBindingLayer;

fn connection(ekm: [u8; 32]) -> Arc<ConnectionInfo> {
    Arc::new(tokbind_bench::bound_connection(ekm))
}

fn request(info: &Arc<ConnectionInfo>, header: &str) -> Request<()> {
    let mut req = Request::get("/")
        .header("sec-token-binding", header)
        .body(())
        .unwrap();
    req.extensions_mut().insert(Arc::clone(info));
    req
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inner = tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let mut layered = tower::ServiceBuilder::new()
        .layer(TokenBindingLayer::new())
        .service(inner);
    let mut bare = inner;

    let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
    let ekm = [0x33; 32];
    let info = connection(ekm);
    let header = MessageBuilder::new(&Ekm::new(ekm))
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap();
    // Prime the connection's cache, and check the stack accepts the request.
    let res = rt
        .block_on(layered.ready())
        .unwrap()
        .call(request(&info, &header));
    assert_eq!(rt.block_on(res).unwrap().status(), 200);

    let mut group = c.benchmark_group("layer");
    group.bench_function("no_layer", |b| {
        b.iter(|| {
            rt.block_on(bare.call(black_box(request(&info, &header))))
                .unwrap()
        })
    });
    group.bench_function("layer_keepalive", |b| {
        b.iter(|| {
            rt.block_on(layered.call(black_box(request(&info, &header))))
                .unwrap()
        })
    });
    group.bench_function("layer_new_connection", |b| {
        b.iter_batched(
            || request(&connection(ekm), &header),
            |req| rt.block_on(layered.call(req)).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);

fn median_ns(id: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let text = std::fs::read_to_string(
        target
            .join("criterion/layer")
            .join(id)
            .join("new/estimates.json"),
    )
    .ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["median"]["point_estimate"].as_f64()
}

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let (bare, keep, new) = (
        median_ns("no_layer"),
        median_ns("layer_keepalive"),
        median_ns("layer_new_connection"),
    );
    if let (Some(bare), Some(keep), Some(new)) = (bare, keep, new) {
        println!("\nTokenBindingLayer in a Tower stack (medians, same run)");
        println!("  bare service            {:>9.3} µs", bare / 1000.0);
        println!(
            "  layer, keep-alive       {:>9.3} µs   (+{:.3} µs per request)",
            keep / 1000.0,
            (keep - bare) / 1000.0
        );
        println!(
            "  layer, new connection   {:>9.3} µs   (one full verification)",
            new / 1000.0
        );
        println!(
            "  per-connection state    {:>9} bytes (ConnectionInfo, goal P4 <= 256)",
            std::mem::size_of::<ConnectionInfo>()
        );
    }
}
