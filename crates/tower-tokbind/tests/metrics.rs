//! With the `metrics` feature every layer counts its outcomes by stable code. Real Token
//! Binding messages (real keys, signed over the connection's EKM) go through the real
//! layers, and the counters are read back from a recorder (`counters`).

// Shared with the other crates' tests (tokbind-testkit, which depends on this crate).
#[allow(dead_code)]
#[path = "../../tokbind-testkit/src/counters.rs"]
mod counters;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::routing::get;
use counters::{Counters, counts};
use http::{Request, StatusCode};
use tokbind_proto::negotiation::{Negotiated, ProtocolVersion};
use tokbind_proto::{
    ConnectionInfo, Ekm, KeyParameters, MessageBuilder, SigningKey, TlsVersion, TokenBindingSigner,
};
use tower::ServiceExt as _;
use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys};
use tower_tokbind::ttrp::{ForwardedTokenBindingLayer, SEC_PROVIDED_TOKEN_BINDING_ID};
use tower_tokbind::{MockConnectionInfo, ProvidedBinding, TokenBindingLayer};

const EKM: [u8; 32] = [7; 32];

fn negotiated() -> ConnectionInfo {
    let negotiated = Negotiated {
        version: ProtocolVersion::new(1, 0),
        key_parameters: KeyParameters::ECDSAP256,
    };
    ConnectionInfo::with_token_binding(TlsVersion::Tls12, true, false, negotiated, Ekm::new(EKM))
}

fn plain(peer: SocketAddr) -> ConnectionInfo {
    ConnectionInfo::without_token_binding(TlsVersion::Tls13, true, false).with_peer_addr(peer)
}

fn key() -> SigningKey {
    SigningKey::generate(KeyParameters::ECDSAP256).unwrap()
}

/// `key`'s `Sec-Token-Binding` over `ekm`.
fn header(key: &SigningKey, ekm: [u8; 32]) -> String {
    MessageBuilder::new(&Ekm::new(ekm))
        .provided(key)
        .unwrap()
        .to_header_value()
        .unwrap()
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(Body::empty()).unwrap()
}

async fn status(app: &Router, req: Request<Body>) -> StatusCode {
    app.clone().oneshot(req).await.unwrap().status()
}

const TOKEN_BINDING: &str = "tokbind_token_binding_total";

#[tokio::test]
async fn token_binding_verdicts_are_counted_by_reason() {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(TokenBindingLayer::new())
        .layer(MockConnectionInfo::new(negotiated()));
    let alice = key();
    let counters = Counters::install();
    let good = header(&alice, EKM);
    assert_eq!(
        status(&app, get_with("/", &[("sec-token-binding", &good)])).await,
        StatusCode::OK
    );
    // Signed over another connection's EKM: what a replayed header looks like.
    let replayed = header(&alice, [8; 32]);
    let res = status(&app, get_with("/", &[("sec-token-binding", &replayed)])).await;
    assert_eq!(res, StatusCode::BAD_REQUEST);
    let twice = [("sec-token-binding", good.as_str()); 2];
    assert_eq!(
        status(&app, get_with("/", &twice)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(&app, get_with("/", &[])).await,
        StatusCode::BAD_REQUEST
    );
    // On a connection without Token Binding: let through without a header, refused
    // with one.
    let mut req = get_with("/", &[]);
    let peer = ([192, 0, 2, 1], 50000).into();
    req.extensions_mut().insert(Arc::new(plain(peer)));
    assert_eq!(status(&app, req).await, StatusCode::OK);
    let mut req = get_with("/", &[("sec-token-binding", &good)]);
    req.extensions_mut().insert(Arc::new(plain(peer)));
    assert_eq!(status(&app, req).await, StatusCode::BAD_REQUEST);
    assert_eq!(
        counters.by_outcome(TOKEN_BINDING),
        counts([
            ("accepted", 1),
            ("allowed_without_binding", 1),
            ("duplicate_header", 1),
            ("invalid_signature", 1),
            ("missing_header", 1),
            ("not_negotiated", 1),
        ])
    );
}

#[tokio::test]
async fn bound_cookies_are_counted_when_accepted_dropped_bound_and_withheld() {
    let app = Router::new()
        .route(
            "/login",
            get(|| async { ([(SET_COOKIE, "id=s1; Path=/")], "in") }),
        )
        .route(
            "/echo",
            get(|headers: http::HeaderMap| async move {
                headers
                    .get(COOKIE)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            }),
        )
        .layer(BoundCookieLayer::new(CookieKeys::generate().unwrap()).only(["id"]))
        .layer(TokenBindingLayer::new())
        .layer(MockConnectionInfo::new(negotiated()));
    let (alice, mallory) = (key(), key());
    let counters = Counters::install();
    let res = app
        .clone()
        .oneshot(get_with(
            "/login",
            &[("sec-token-binding", &header(&alice, EKM))],
        ))
        .await
        .unwrap();
    let set = res.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = set[..set.find(';').unwrap()].to_string();
    assert!(cookie.starts_with("id=s1~tb1."), "{cookie}");
    for who in [&alice, &mallory] {
        let req = get_with(
            "/echo",
            &[
                ("sec-token-binding", &header(who, EKM)),
                ("cookie", &cookie),
            ],
        );
        app.clone().oneshot(req).await.unwrap();
    }
    // A client without Token Binding is not given the protected cookie.
    let mut req = get_with("/login", &[]);
    req.extensions_mut()
        .insert(Arc::new(plain(([192, 0, 2, 1], 50000).into())));
    let res = app.clone().oneshot(req).await.unwrap();
    assert!(res.headers().get(SET_COOKIE).is_none());
    assert_eq!(
        counters.by_outcome("tokbind_bound_cookies_presented_total"),
        counts([("accepted", 1), ("binding_mismatch", 1)])
    );
    assert_eq!(
        counters.by_outcome("tokbind_bound_cookies_set_total"),
        counts([("bound", 1), ("withheld", 1)])
    );
}

#[tokio::test]
async fn forwarded_headers_are_counted_trusted_ignored_untrusted_and_refused() {
    let proxy: SocketAddr = ([10, 0, 0, 5], 40000).into();
    let stranger: SocketAddr = ([192, 0, 2, 1], 50000).into();
    let app = Router::new()
        .route(
            "/",
            get(|id: Option<ProvidedBinding>| async move { id.is_some().to_string() }),
        )
        .layer(ForwardedTokenBindingLayer::trusting(["10.0.0.5/32"]).unwrap());
    let send = |peer: SocketAddr, forwarded: Option<&str>| {
        let mut req = get_with("/", &[]);
        if let Some(id) = forwarded {
            req.headers_mut()
                .insert(SEC_PROVIDED_TOKEN_BINDING_ID, id.parse().unwrap());
        }
        req.extensions_mut().insert(Arc::new(plain(peer)));
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.unwrap();
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let id = key().token_binding_id().to_base64url();
    let counters = Counters::install();
    assert_eq!(
        send(proxy, Some(&id)).await,
        (StatusCode::OK, "true".into())
    );
    assert_eq!(
        send(stranger, Some(&id)).await,
        (StatusCode::OK, "false".into())
    );
    assert_eq!(send(stranger, None).await, (StatusCode::OK, "false".into()));
    let (status, _) = send(proxy, Some("not base64url!")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        counters.by_outcome("tokbind_forwarded_headers_total"),
        counts([
            ("ignored", 1),
            ("malformed_forwarded_header", 1),
            ("trusted", 1),
            ("untrusted", 1),
        ])
    );
}
