//! Certificate-bound tokens and cookies (RFC 8705 §3) over real mutual TLS: a client
//! certificate is one more proof of possession, and the same token and cookie layers check
//! `cnf.x5t#S256` exactly as they check `cnf.tbh` and `cnf.jkt` — directly, and behind the
//! proxy, which forwards the certificate in `Client-Cert` (RFC 9440), and over rustls.

mod common;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use base64::Engine as _;
use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::Value;
use tokbind::client::Client;
use tokbind::oauth::{BoundBearerLayer, CnfPolicy, TokenIssuer, TokenVerifier};
use tokbind::tls::SelfSigned;
use tokbind::tower::TokenBindingLayer;
use tokbind::tower::cookie::{BoundCookieLayer, CookieKeys};

both_deployments!(certificate_bound_tokens_and_cookies_need_that_certificate,);

over_rustls!(certificate_bound_tokens_and_cookies_need_that_certificate);

async fn server(d: Deployment) -> Server {
    let issuer = std::sync::Arc::new(TokenIssuer::generate("https://as.example").unwrap());
    let tokens = TokenVerifier::new(&issuer.jwks(), issuer.issuer(), "api").unwrap();
    let api = Router::new()
        .route("/api/me", get(|| async { "hello, certificate holder" }))
        .route_layer(BoundBearerLayer::new(tokens).policy(CnfPolicy::Required));
    let app = Router::new()
        .route("/token", bound_token_endpoint(issuer, "api"))
        .route(
            "/login",
            get(|| async { ([(header::SET_COOKIE, "sid=alice; Path=/")], "in") }),
        )
        .route("/echo", get(echo_cookie))
        .merge(api)
        .layer(BoundCookieLayer::new(CookieKeys::generate().unwrap()).only(["sid"]));
    d.start_app(
        |b| b.request_client_certificates(true),
        app,
        TokenBindingLayer::new(),
    )
    .await
}

fn client(s: &Server, cert: Option<&SelfSigned>) -> Client {
    s.client(|b| {
        let b = b.offer_token_binding(false);
        match cert {
            Some(c) => b.client_certificate(&c.cert_pem, &c.key_pem).unwrap(),
            None => b,
        }
    })
}

async fn send(s: &Server, c: &Client, req: Request<Full<Bytes>>) -> Response<Bytes> {
    s.connect(c).await.send(req).await.unwrap()
}

fn get_with(path: &str, name: header::HeaderName, value: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(name, value)
        .body(Full::default())
        .unwrap()
}

async fn certificate_bound_tokens_and_cookies_need_that_certificate(d: Deployment) {
    let s = server(d).await;
    let alice_cert = SelfSigned::generate(&["alice"]).unwrap();
    let mallory_cert = SelfSigned::generate(&["mallory"]).unwrap();
    let (alice, mallory, none) = (
        client(&s, Some(&alice_cert)),
        client(&s, Some(&mallory_cert)),
        client(&s, None),
    );

    let res = send(
        &s,
        &alice,
        Request::post("/token").body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", res.body());
    let issued: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(issued["token_type"], "Bearer");
    let token = issued["access_token"].as_str().unwrap().to_string();
    // cnf.x5t#S256 is base64url(SHA-256(certificate DER)), computed here independently.
    let der = openssl::x509::X509::from_pem(&alice_cert.cert_pem)
        .unwrap()
        .to_der()
        .unwrap();
    let expected =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(openssl::sha::sha256(&der));
    assert_eq!(jwt_claims(&token)["cnf"]["x5t#S256"], expected.as_str());

    let auth = format!("Bearer {token}");
    let res = send(
        &s,
        &alice,
        get_with("/api/me", header::AUTHORIZATION, &auth),
    )
    .await;
    assert_eq!(res.status(), 200, "the holder, on a new connection");
    let res = send(
        &s,
        &mallory,
        get_with("/api/me", header::AUTHORIZATION, &auth),
    )
    .await;
    assert_eq!(
        (res.status().as_u16(), reason(&res).as_str()),
        (401, "binding_mismatch")
    );
    let res = send(&s, &none, get_with("/api/me", header::AUTHORIZATION, &auth)).await;
    assert_eq!(
        (res.status().as_u16(), reason(&res).as_str()),
        (401, "no_proof")
    );

    // The cookie layer binds to the certificate too.
    let res = send(
        &s,
        &alice,
        Request::get("/login").body(Full::default()).unwrap(),
    )
    .await;
    let cookie = set_cookie_pair(&res);
    assert!(cookie.contains("~tb1."), "{cookie}");
    let echo = |c: &str| get_with("/echo", header::COOKIE, c);
    assert_eq!(
        send(&s, &alice, echo(&cookie)).await.body().as_ref(),
        b"sid=alice"
    );
    assert_eq!(send(&s, &mallory, echo(&cookie)).await.body().as_ref(), b"");
    assert_eq!(send(&s, &none, echo(&cookie)).await.body().as_ref(), b"");
}
