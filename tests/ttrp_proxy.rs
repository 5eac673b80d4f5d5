//! What a client cannot make the proxy forward: the headers that carry the verified IDs
//! and certificate reach the app as the proxy set them, whatever the client spells
//! (draft-ietf-tokbind-ttrp-09 §2.2, RFC 9440 §4). Judged by what the app behind it sees.

mod common;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
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
        .filter(|name| FORWARDING_HEADERS.contains(&name.as_str()) || name == "token-binding")
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
        // The pre-RFC name of `Sec-Token-Binding`: the proxy verified no such header.
        .header("token-binding", "AIkAAgBBQA")
        .body(Default::default())
        .unwrap();
    let res = conn.send_as_is(req).await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body());
    assert_eq!(json_body(&res), json!([]));
}

/// The request trailers the app received: every name (so a test sees that trailers do
/// arrive), and the forwarding headers among them, `_` and `-` alike.
async fn trailers_seen(req: axum::extract::Request) -> axum::Json<Value> {
    use http_body_util::BodyExt as _;
    let collected = req.into_body().collect().await.unwrap();
    let names: Vec<String> = collected
        .trailers()
        .map(|t| t.keys().map(|n| n.as_str().to_string()).collect())
        .unwrap_or_default();
    let forwarding: Vec<&String> = names
        .iter()
        .filter(|n| {
            let n = n.replace('_', "-");
            FORWARDING_HEADERS.contains(&n.as_str()) || n.starts_with("x-forwarded-")
        })
        .collect();
    axum::Json(json!({"trailers": names, "forwarding": forwarding}))
}

#[tokio::test]
async fn a_forwarding_header_in_the_trailers_never_reaches_the_app() {
    use http_body_util::{BodyExt as _, StreamBody};
    use hyper::body::Frame;

    // The app behind the proxy, over HTTP/2, which carries request trailers as it carries
    // headers (RFC 9113 §8.1).
    let app = Router::new().route("/", axum::routing::post(trailers_seen));
    let server = behind_proxy(
        bind("127.0.0.1:0".parse().unwrap()).await,
        |b| b,
        app,
        |p| p.upstream_http2(true),
    )
    .await;

    // A client without Token Binding, over HTTP/2, whose body ends in forged trailers.
    let connector = tokbind::tls::TokenBindingConnector::builder()
        .offer_token_binding(false)
        .server_verification(tokbind::tls::ServerVerification::Roots(
            server.cert.cert_pem.clone(),
        ))
        .build()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (tls, _) = connector
        .connect(&server.addr.ip().to_string(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let id = "AgBBQKzyIrmcY_YCtHVoSHBut69vrGfFdy1_YKTZfFJv6BjrZsKD9b9FRzSBxDs1twTqnAS71M1RBumuihhI9xqxXKk";
    let mut trailers = HeaderMap::new();
    trailers.insert("sec-provided-token-binding-id", id.parse().unwrap());
    trailers.insert("sec_referred_token_binding_id", id.parse().unwrap());
    trailers.insert("client-cert", ":MAMCAQA=:".parse().unwrap());
    trailers.insert("x_forwarded_for", "10.0.0.5".parse().unwrap());
    trailers.insert("x-checksum", "1234".parse().unwrap());
    let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
        Ok(Frame::data(Bytes::from_static(b"upload"))),
        Ok(Frame::trailers(trailers)),
    ];
    let req = http::Request::post(server.url())
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 200, "{body:?}");
    let seen: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["forwarding"], json!([]), "{seen}");
    assert_eq!(
        seen["trailers"],
        json!(["x-checksum"]),
        "the other trailers arrive"
    );
    drop(server);
}

/// What the app would take for the client's address and scheme, from every header a
/// framework reads for them (CGI spellings included).
async fn origin_view(headers: HeaderMap) -> axum::Json<Value> {
    let mut seen = serde_json::Map::new();
    for (name, value) in &headers {
        let name = name.as_str().replace('_', "-");
        if name == "forwarded" || name.starts_with("x-forwarded-") || name == "x-real-ip" {
            let values = seen.entry(name).or_insert_with(|| json!([]));
            values
                .as_array_mut()
                .unwrap()
                .push(json!(value.to_str().unwrap_or("?")));
        }
    }
    axum::Json(Value::Object(seen))
}

#[tokio::test]
async fn a_client_cannot_claim_another_address_or_scheme_behind_the_proxy() {
    let app = Router::new().route("/", get(origin_view));
    let server = Deployment::BehindProxy
        .start_app(|b| b, app, TokenBindingLayer::new())
        .await;
    let client = server.client(|b| b.offer_token_binding(false).http1_only());
    let mut conn = server.connect(&client).await;
    let req = http::Request::get("/")
        .header("x-forwarded-for", "10.0.0.5")
        .header("X_Forwarded_For", "10.0.0.6")
        .header("forwarded", "for=10.0.0.5;proto=https")
        .header("x-real-ip", "10.0.0.5")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "admin.internal")
        .header("x-forwarded-port", "8443")
        .body(Default::default())
        .unwrap();
    let res = conn.send_as_is(req).await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body());
    assert_eq!(
        json_body(&res),
        json!({"x-forwarded-for": ["127.0.0.1"], "x-forwarded-proto": ["https"]}),
        "only what the proxy saw"
    );
}
