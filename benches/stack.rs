//! `cargo bench --bench stack`
//!
//! What the DPoP and DBSC layers cost a request that uses neither — the common case when
//! one stack serves Token Binding clients, DPoP clients and browsers alike — and what the
//! bound cookie layer costs a request that carries its bound session cookie (reading the
//! header, one MAC, the rewritten header). The same Token Binding keep-alive request
//! (verdict cached for its connection, as on a real connection after its first request)
//! goes through `TokenBindingLayer` alone, and through `TokenBindingLayer` → `DpopLayer` →
//! `DbscLayer`, or → `BoundCookieLayer`. The ratio of the two is
//! measured in alternating batches in one loop (median of rounds), as the other benches
//! do, because the host's speed drifts between criterion's separate measurements.

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use http::{HeaderValue, Request, Response};
use tokbind::dbsc::DbscLayer;
use tokbind::dpop::{DpopLayer, DpopVerifier};
use tokbind::proto::{
    ConnectionInfo, Ekm, KeyParameters, MessageBuilder, ProvenKey, SigningKey, TokenBindingSigner,
};
use tokbind::tower::TokenBindingLayer;
use tokbind::tower::cookie::{BoundCookieLayer, CookieKeys};
use tokbind_bench::Side;
use tower::util::BoxCloneService;
use tower::{Service, ServiceBuilder, ServiceExt as _};

type Stack = BoxCloneService<Request<()>, Response<()>, Infallible>;

struct Fixture {
    rt: tokio::runtime::Runtime,
    info: Arc<ConnectionInfo>,
    /// Header bytes shared by every request, as hyper shares its read buffer: a
    /// layer's clone of a header value is then a reference count, as in a server.
    header: Bytes,
    cookie: Bytes,
    stacks: [Stack; 5],
}

/// Which stack: the baseline, each new layer on its own, both.
const TB: usize = 0;
const NAMES: [&str; 5] = [
    "token_binding",
    "token_binding_dpop",
    "token_binding_dbsc",
    "token_binding_dpop_dbsc",
    "token_binding_bound_cookie",
];

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ekm = [0x33; 32];
    let info = Arc::new(tokbind_bench::bound_connection(ekm));
    let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
    let header = MessageBuilder::new(&Ekm::new(ekm))
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap();
    let handler =
        tower::service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let origin = "https://app.example";
    let dpop = || DpopLayer::new(DpopVerifier::new(), origin).unwrap();
    let keys = CookieKeys::generate().unwrap();
    let dbsc =
        || DbscLayer::new(keys.clone(), origin).rebind_cookie("id", "Path=/; Secure; HttpOnly");
    let cookies = || BoundCookieLayer::new(keys.clone()).only(["id"]);
    // The session cookie as the bound cookie layer issued it to this client.
    let tbid = ProvenKey::token_binding(key.token_binding_id());
    let cookie = format!("id={}", keys.bind(Some(&tbid), "id", "session-value"));
    let tb = || ServiceBuilder::new().layer(TokenBindingLayer::new());
    let mut f = Fixture {
        rt,
        info,
        header: Bytes::from(header),
        cookie: Bytes::from(cookie),
        stacks: [
            boxed(tb().service(handler)),
            boxed(tb().layer(dpop()).service(handler)),
            boxed(tb().layer(dbsc()).service(handler)),
            boxed(tb().layer(dpop()).layer(dbsc()).service(handler)),
            boxed(tb().layer(cookies()).service(handler)),
        ],
    };
    // Prime the connection's verdict cache; every stack must accept the request.
    for (i, name) in NAMES.iter().enumerate() {
        assert_eq!(call(&mut f, i).status(), 200, "{name}");
    }
    f
}

/// The stack with its response body dropped, so all four have one type.
fn boxed<S, B>(service: S) -> Stack
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    BoxCloneService::new(service.map_response(|res| res.map(drop)))
}

fn call(f: &mut Fixture, which: usize) -> Response<()> {
    let mut req = Request::get("/me")
        .header(
            "sec-token-binding",
            HeaderValue::from_maybe_shared(f.header.clone()).unwrap(),
        )
        .header(
            "cookie",
            HeaderValue::from_maybe_shared(f.cookie.clone()).unwrap(),
        )
        .body(())
        .unwrap();
    req.extensions_mut().insert(Arc::clone(&f.info));
    let stack = &mut f.stacks[which];
    f.rt.block_on(async { stack.ready().await.unwrap().call(black_box(req)).await })
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut f = fixture();
    let mut group = c.benchmark_group("stack");
    for (i, name) in NAMES.iter().enumerate() {
        group.bench_function(*name, |b| b.iter(|| call(&mut f, i)));
    }
    group.finish();
}

criterion_group!(benches, bench);

/// Median over rounds of (`which` batch time ÷ Token Binding only batch time).
fn paired_ratio(f: &mut Fixture, which: usize) -> f64 {
    tokbind_bench::paired_median(60, 2000, |side| {
        let stack = match side {
            Side::Baseline => TB,
            Side::Measured => which,
        };
        call(f, stack);
    })
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let mut f = fixture();
    println!(
        "\nA Token Binding keep-alive request with its bound session cookie (no DPoP, no DBSC \
         cookie), per-request time ÷ TokenBindingLayer alone (paired medians)"
    );
    for (i, name) in NAMES.iter().enumerate().skip(1) {
        println!("  {name:<26} {:.3}", paired_ratio(&mut f, i));
    }
}
