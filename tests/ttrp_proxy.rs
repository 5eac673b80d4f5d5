//! What a client cannot make the proxy forward: the headers that carry the verified IDs
//! and certificate reach the app as the proxy set them, whatever the client spells
//! (draft-ietf-tokbind-ttrp-09 §2.2, RFC 9440 §4). Judged by what the app behind it sees.

mod common;

use axum::Router;
use axum::routing::get;
use common::*;
use http::HeaderMap;
use serde_json::{Value, json};
use tokbind::proto::ProvenKeys;
use tokbind::tls::SelfSigned;
use tokbind::tower::ttrp::FORWARDING_HEADERS;
use tokbind::tower::{ProvidedBinding, TokenBindingLayer};

both_deployments!(a_connection_header_cannot_remove_the_verified_id_or_certificate);

/// The provided ID and the keys the request proved, as the app sees them.
async fn proven(
    provided: Option<ProvidedBinding>,
    keys: Option<axum::Extension<ProvenKeys>>,
) -> axum::Json<Value> {
    axum::Json(json!({
        "provided": provided.map(|p| p.0.tbh().to_string()),
        "proven": keys.map_or(0, |k| k.0.iter().count()),
    }))
}

async fn a_connection_header_cannot_remove_the_verified_id_or_certificate(d: Deployment) {
    let app = Router::new().route("/", get(proven));
    let server = d
        .start_app(
            |b| b.request_client_certificates(true),
            app,
            TokenBindingLayer::new(),
        )
        .await;
    let cert = SelfSigned::generate(&["client"]).unwrap();
    let client = server.client(|b| {
        b.http1_only()
            .client_certificate(&cert.cert_pem, &cert.key_pem)
            .unwrap()
    });
    let mut conn = server.connect(&client).await;
    let tbh = conn
        .provided_key()
        .unwrap()
        .token_binding_id()
        .tbh()
        .to_string();
    // The hop-by-hop rule (RFC 9110 §7.6.1) removes what `Connection` names: never the
    // headers the proxy sets after it.
    let req = with_header("connection", "sec-provided-token-binding-id, client-cert");
    let res = conn.send(req).await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body());
    assert_eq!(
        json_body(&res),
        json!({"provided": tbh, "proven": 2}),
        "the Token Binding ID and the certificate"
    );
}

/// The forwarding headers the app would find if it read headers as CGI, WSGI and Rack do,
/// with `_` and `-` alike (RFC 3875 §4.1.18).
async fn cgi_view(headers: HeaderMap) -> axum::Json<Vec<String>> {
    let found = headers
        .keys()
        .map(|name| name.as_str().replace('_', "-"))
        .filter(|name| FORWARDING_HEADERS.contains(&name.as_str()))
        .collect();
    axum::Json(found)
}

#[tokio::test]
async fn an_underscore_spelling_of_a_forwarded_header_never_reaches_the_app() {
    let app = Router::new().route("/", get(cgi_view));
    let server = Deployment::BehindProxy
        .start_app(|b| b, app, TokenBindingLayer::new())
        .await;
    // Without Token Binding: the proxy forwards no ID of its own.
    let client = server.client(|b| b.offer_token_binding(false).http1_only());
    let mut conn = server.connect(&client).await;
    let id = "AgBBQKzyIrmcY_YCtHVoSHBut69vrGfFdy1_YKTZfFJv6BjrZsKD9b9FRzSBxDs1twTqnAS71M1RBumuihhI9xqxXKk";
    let req = http::Request::get("/")
        .header("sec_provided_token_binding_id", id)
        .header("Sec-Referred_Token-Binding-ID", id)
        .header("client_cert", ":MAMCAQA=:")
        .body(Default::default())
        .unwrap();
    let res = conn.send_as_is(req).await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body());
    assert_eq!(json_body(&res), json!([]));
}
