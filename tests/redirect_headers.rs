//! What of the caller's request follows a redirect in `tokbind_client::Client::fetch`, over
//! real TLS between loopback servers: credentials (`Authorization`, `Proxy-Authorization`,
//! `Cookie`, `DPoP`) stay on the origin they were given for, a redirect that drops the
//! body drops its headers, and a redirect to `http` is not followed at all.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use serde_json::{Map, Value, json};
use tokbind::client::{Client, ClientError, Fetched};
use tokbind::tls::ServerVerification;
use tokbind::tower::TokenBindingLayer;

/// What a caller hands to one origin only.
const CREDENTIALS: [(&str, &str); 4] = [
    ("authorization", "Bearer alice-token"),
    ("proxy-authorization", "Basic YWxpY2U6cHJveHk="),
    ("cookie", "sid=alice-session"),
    ("dpop", "alice.dpop.proof"),
];

/// Redirects to `?to=` with status `?status=` (302 by default), or shows the request.
async fn hop(
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Some(to) = q.get("to") {
        let status = q.get("status").map_or(302, |s| s.parse().unwrap());
        let status = StatusCode::from_u16(status).unwrap();
        return (status, [(header::LOCATION, to.as_str())]).into_response();
    }
    let seen: Map<String, Value> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").into()))
        .collect();
    axum::Json(json!({"method": method.as_str(), "headers": seen})).into_response()
}

async fn server() -> Server {
    let app = Router::new()
        .route("/", any(hop))
        .layer(TokenBindingLayer::new());
    start_app(|b| b, app).await
}

fn client(servers: &[&Server], cookie_store: bool) -> Client {
    let roots: Vec<u8> = servers
        .iter()
        .flat_map(|s| s.cert.cert_pem.clone())
        .collect();
    Client::builder()
        .server_verification(ServerVerification::Roots(roots))
        .cookie_store(cookie_store)
        .build()
        .unwrap()
}

/// `{base}/?to={target}` (and `&status=`).
fn redirect(base: &str, target: &str, status: u16) -> String {
    let to: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    format!("{base}/?status={status}&to={to}")
}

/// GET `url` with the credentials and one harmless header.
async fn fetch(client: &Client, url: &str) -> Result<Fetched, ClientError> {
    let mut req = http::Request::get(url).header("x-trace", "keep-me");
    for (name, value) in CREDENTIALS {
        req = req.header(name, value);
    }
    client
        .fetch(req.body(Full::<Bytes>::default()).unwrap())
        .await
}

/// The headers the final server saw.
fn seen(fetched: &Fetched) -> Map<String, Value> {
    assert_eq!(fetched.response.status(), 200, "{:?}", fetched.hops);
    json_body(&fetched.response)["headers"]
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn credentials_follow_a_redirect_only_within_their_origin() {
    let (a, b) = (server().await, server().await);
    let port = a.addr.port();
    let client = client(&[&a, &b], false);

    // Same origin: everything follows.
    let fetched = fetch(
        &client,
        &redirect(&a.base(), &format!("{}/", a.base()), 302),
    )
    .await
    .unwrap();
    assert_eq!(fetched.hops.len(), 2);
    let headers = seen(&fetched);
    for (name, value) in CREDENTIALS {
        assert_eq!(headers[name], value, "same origin keeps {name}");
    }
    assert_eq!(headers["x-trace"], "keep-me");

    // Another origin: another port, or another host on the same port. The harmless header
    // still follows, and so does the client's own Token Binding for the new connection.
    for other in [b.base(), format!("https://localhost:{port}")] {
        for status in [301, 302, 303, 307, 308] {
            let fetched = fetch(&client, &redirect(&a.base(), &format!("{other}/"), status))
                .await
                .unwrap();
            let headers = seen(&fetched);
            for (name, _) in CREDENTIALS {
                assert!(
                    !headers.contains_key(name),
                    "{status} to {other} dropped {name}: {headers:?}"
                );
            }
            assert_eq!(headers["x-trace"], "keep-me");
            assert!(headers.contains_key("sec-token-binding"), "{headers:?}");
        }
    }

    // Out and back again: once dropped, they stay dropped.
    let back = redirect(&b.base(), &format!("{}/", a.base()), 302);
    let fetched = fetch(&client, &redirect(&a.base(), &back, 302))
        .await
        .unwrap();
    assert_eq!(fetched.hops.len(), 3);
    let headers = seen(&fetched);
    for (name, _) in CREDENTIALS {
        assert!(!headers.contains_key(name), "{name} came back: {headers:?}");
    }
}

#[tokio::test]
async fn with_a_cookie_store_the_callers_cookie_does_not_cross_origins_either() {
    let (a, b) = (server().await, server().await);
    let client = client(&[&a, &b], true);
    let fetched = fetch(
        &client,
        &redirect(&a.base(), &format!("{}/", b.base()), 302),
    )
    .await
    .unwrap();
    let headers = seen(&fetched);
    assert!(!headers.contains_key("cookie"), "{headers:?}");
    assert!(!headers.contains_key("authorization"), "{headers:?}");
}

#[tokio::test]
async fn a_redirect_that_drops_the_body_drops_its_headers() {
    let a = server().await;
    let client = client(&[&a], false);
    let post = |status: u16| {
        http::Request::post(redirect(&a.base(), &format!("{}/", a.base()), status))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CONTENT_LANGUAGE, "en")
            .body(Full::from("grant_type=x"))
            .unwrap()
    };
    // 303: GET without a body, and without the headers that described it.
    let fetched = client.fetch(post(303)).await.unwrap();
    let body = json_body(&fetched.response);
    assert_eq!(body["method"], "GET");
    let headers = body["headers"].as_object().unwrap();
    for name in ["content-type", "content-language", "content-length"] {
        assert!(!headers.contains_key(name), "{name}: {headers:?}");
    }
    // 307: the same request again, headers and all.
    let fetched = client.fetch(post(307)).await.unwrap();
    let body = json_body(&fetched.response);
    assert_eq!(body["method"], "POST");
    assert_eq!(
        body["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn a_redirect_to_http_is_refused_and_nothing_is_sent_there() {
    let a = server().await;
    let client = client(&[&a], false);
    // A plain TCP listener where the downgrade points: it must see no connection.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_url = format!("http://{}/", plain.local_addr().unwrap());
    for status in [302, 307] {
        let err = fetch(&client, &redirect(&a.base(), &http_url, status))
            .await
            .unwrap_err();
        match err {
            ClientError::InsecureRedirect(uri) => assert_eq!(uri.to_string(), http_url),
            other => panic!("{status}: {other:?}"),
        }
    }
    let accepted = tokio::time::timeout(Duration::from_millis(100), plain.accept()).await;
    assert!(accepted.is_err(), "the http target was contacted");
    // Another scheme altogether is no better.
    let err = fetch(&client, &redirect(&a.base(), "ftp://127.0.0.1/x", 302))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InsecureRedirect(_)), "{err:?}");
}
