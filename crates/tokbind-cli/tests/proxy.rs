//! `tokbind proxy` end to end: Token Binding client → `tokbind proxy` (a separate process) →
//! a plain-HTTP axum backend that trusts only the proxy's address.

mod common;

use common::{Served, spawn_listening};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use base64::Engine as _;
use http_body_util::Full;
use serde_json::{Value, json};
use tokbind_client::Client;
use tokbind_proto::ProvenKeys;
use tokbind_tls::{ConnectorBuilder, SelfSigned, ServerVerification};
use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys};
use tower_tokbind::ttrp::ForwardedTokenBindingLayer;
use tower_tokbind::{ProvidedBinding, ReferredBinding};

struct Proxy {
    _served: Served,
    url: String,
    _dir: TempDir,
    cert: Vec<u8>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_proxy(upstream: &str) -> Proxy {
    start_proxy_with(upstream, &[])
}

fn start_proxy_with(upstream: &str, extra: &[&str]) -> Proxy {
    let dir = std::env::temp_dir().join(format!(
        "tokbind-proxy-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let (cert_path, key_path) = (
        cert_path.to_str().unwrap().to_string(),
        key_path.to_str().unwrap().to_string(),
    );
    let mut args = vec![
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        upstream,
        "--upstream-timeout",
        "5",
    ];
    args.extend_from_slice(&["--cert", &cert_path, "--key", &key_path]);
    args.extend_from_slice(extra);
    let served = spawn_listening(&args);
    let url = served.url.clone();
    Proxy {
        _served: served,
        url,
        _dir: TempDir(dir),
        cert: cert.cert_pem,
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// The backend: trusts forwarded Token Binding IDs from 127.0.0.1 only.
async fn start_backend(hits: Arc<AtomicUsize>) -> SocketAddr {
    async fn whoami(
        provided: Option<ProvidedBinding>,
        referred: Option<ReferredBinding>,
        proven: Option<Extension<ProvenKeys>>,
        version: http::Version,
        headers: HeaderMap,
    ) -> axum::Json<Value> {
        let seen: Vec<String> = headers
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| k.contains("token-binding") || k.starts_with("client-cert"))
            .collect();
        let proven: Vec<String> = proven
            .iter()
            .flat_map(|Extension(keys)| keys.iter())
            .map(|k| format!("{}:{}", k.mechanism().label(), k.thumbprint()))
            .collect();
        axum::Json(json!({
            "provided": provided.map(|p| p.0.tbh().to_string()),
            "referred": referred.map(|r| r.0.tbh().to_string()),
            "proven": proven,
            "token_binding_headers_seen": seen,
            "forwarded_proto": headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()),
            "version": format!("{version:?}"),
        }))
    }
    let counted = hits.clone();
    let app = Router::new()
        .route("/", get(whoami))
        .route(
            "/login",
            get(|| async { ([(header::SET_COOKIE, "sid=abc; Path=/; HttpOnly")], "in") }),
        )
        .route(
            "/echo",
            get(|h: HeaderMap| async move {
                h.get(header::COOKIE)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            }),
        )
        .route(
            "/upload",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/redirect",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [
                        (header::LOCATION, "https://idp.example/"),
                        (
                            header::HeaderName::from_static("include-referred-token-binding-id"),
                            "true",
                        ),
                    ],
                )
                    .into_response()
            }),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ))
        .layer(BoundCookieLayer::new(CookieKeys::generate().unwrap()).only(["sid"]))
        .layer(ForwardedTokenBindingLayer::trusting(["127.0.0.1/32"]).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

fn client(proxy: &Proxy) -> Client {
    client_with(proxy, |b| b)
}

/// A client trusting the proxy's certificate, its TLS side set up by `tls`.
fn client_with(proxy: &Proxy, tls: impl FnOnce(ConnectorBuilder) -> ConnectorBuilder) -> Client {
    Client::builder()
        .server_verification(ServerVerification::Roots(proxy.cert.clone()))
        .tls(tls)
        .build()
        .unwrap()
}

/// A client that does not offer Token Binding.
fn plain_client(proxy: &Proxy) -> Client {
    client_with(proxy, |b| b.offer_token_binding(false))
}

fn req(path: &str, headers: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::default()).unwrap()
}

fn json_of(res: &http::Response<Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap_or(Value::Null)
}

#[tokio::test]
async fn backend_sees_the_verified_ids_and_never_the_clients_copies() {
    let backend = start_backend(Arc::default()).await;
    let proxy = start_proxy(&format!("http://{backend}"));
    let alice = client(&proxy);
    let mut conn = alice.connect(&proxy.url.parse().unwrap()).await.unwrap();
    let mine = conn.provided_key().unwrap().clone();
    // Alice's client also sends spoofed forwarding headers: the proxy replaces them.
    let spoof = "AgBBQKzyIrmcY_YCtHVoSHBut69vrGfFdy1_YKTZfFJv6BjrZsKD9b9FRzSBxDs1twTqnAS71M1RBumuihhI9xqxXKk";
    let res = conn
        .send(req(
            "/",
            &[
                ("sec-provided-token-binding-id", spoof),
                ("sec-referred-token-binding-id", spoof),
                ("sec-other-token-binding-id", &format!("4d.{spoof}")),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body());
    let body = json_of(&res);
    assert_eq!(
        body["provided"],
        tokbind_proto::TokenBindingSigner::token_binding_id(mine.as_ref())
            .tbh()
            .to_string()
    );
    assert!(
        body["referred"].is_null(),
        "the spoofed referred ID was removed"
    );
    assert_eq!(
        body["token_binding_headers_seen"],
        json!([]),
        "the backend layer consumed and removed them"
    );
    assert_eq!(body["forwarded_proto"], "https");
    assert_eq!(
        body["version"], "HTTP/1.1",
        "HTTP/1.1 to the backend by default"
    );

    // A client without Token Binding: its spoofed headers are removed, no ID reaches the app.
    let plain = plain_client(&proxy);
    let res = plain
        .fetch(req(
            &format!("{}/", proxy.url),
            &[("sec-provided-token-binding-id", spoof)],
        ))
        .await
        .unwrap()
        .response;
    assert!(json_of(&res)["provided"].is_null(), "{:?}", res.body());
}

#[tokio::test]
async fn rejections_happen_at_the_proxy_and_never_reach_the_backend() {
    let hits = Arc::new(AtomicUsize::new(0));
    let backend = start_backend(hits.clone()).await;
    let proxy = start_proxy(&format!("http://{backend}"));
    let alice = client(&proxy);
    let mut a = alice.connect(&proxy.url.parse().unwrap()).await.unwrap();
    let mut b = alice.connect(&proxy.url.parse().unwrap()).await.unwrap();
    assert_eq!(a.send(req("/", &[])).await.unwrap().status(), 200);
    let before = hits.load(Ordering::SeqCst);
    let stolen = a
        .token_binding_header()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let res = b
        .send_as_is(req("/", &[("sec-token-binding", &stolen)]))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        json_of(&res)["reason"],
        "invalid_signature",
        "replay on another connection through the proxy"
    );
    let res = b
        .send_as_is(req("/", &[("sec-token-binding", "AIkA")]))
        .await
        .unwrap();
    assert_eq!(json_of(&res)["reason"], "malformed_message");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "the backend saw none of them"
    );
}

#[tokio::test]
async fn bound_cookies_streaming_and_redirects_through_the_proxy() {
    let backend = start_backend(Arc::default()).await;
    let proxy = start_proxy(&format!("http://{backend}"));
    let alice = client(&proxy);
    let res = alice
        .fetch(req(&format!("{}/login", proxy.url), &[]))
        .await
        .unwrap()
        .response;
    let set = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.contains("~tb1.") && set.ends_with("; Secure"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let res = alice
        .fetch(req(&format!("{}/echo", proxy.url), &[("cookie", &cookie)]))
        .await
        .unwrap()
        .response;
    assert_eq!(
        res.body(),
        "sid=abc",
        "bound cookie accepted on a new connection with the same key"
    );
    let mallory = client(&proxy);
    let res = mallory
        .fetch(req(&format!("{}/echo", proxy.url), &[("cookie", &cookie)]))
        .await
        .unwrap()
        .response;
    assert_eq!(res.body(), "", "stolen cookie dropped behind the proxy too");

    // A 1 MiB upload streams through.
    let upload = http::Request::post(format!("{}/upload", proxy.url))
        .body(Full::new(Bytes::from(vec![7u8; 1 << 20])))
        .unwrap();
    let res = alice.fetch(upload).await.unwrap().response;
    assert_eq!(res.body(), "1048576");

    // Include-Referred-Token-Binding-ID from the backend reaches the client.
    let res = Client::builder()
        .server_verification(ServerVerification::Roots(proxy.cert.clone()))
        .max_redirects(0)
        .build()
        .unwrap()
        .fetch(req(&format!("{}/redirect", proxy.url), &[]))
        .await
        .unwrap();
    assert_eq!(
        res.response.headers()["include-referred-token-binding-id"],
        "true"
    );
    assert!(res.hops[0].include_referred);
}

#[tokio::test]
async fn spoofed_headers_straight_to_the_backend_from_an_untrusted_peer_are_stripped() {
    let backend = start_backend(Arc::default()).await;
    // Connect from 127.0.0.2: not the trusted 127.0.0.1.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = socket.connect(backend).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let spoof = "AgBBQKzyIrmcY_YCtHVoSHBut69vrGfFdy1_YKTZfFJv6BjrZsKD9b9FRzSBxDs1twTqnAS71M1RBumuihhI9xqxXKk";
    let request = http::Request::get("/")
        .header("host", "backend")
        .header("sec-provided-token-binding-id", spoof)
        .header("provided-token-binding-id", spoof)
        .header("sec-token-binding", "AIkA")
        .header("client-cert", ":MIIBCv8A:")
        .header("client-cert-chain", ":MIIBCv8A:")
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = sender.send_request(request).await.unwrap();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["provided"].is_null(), "{body}");
    assert_eq!(
        body["proven"],
        json!([]),
        "no key from a spoofed Client-Cert"
    );
    assert_eq!(body["token_binding_headers_seen"], json!([]));
}

#[tokio::test]
async fn the_client_certificate_goes_along_in_client_cert_and_is_never_spoofed() {
    let backend = start_backend(Arc::default()).await;
    let proxy = start_proxy_with(&format!("http://{backend}"), &["--client-certificates"]);
    let alice_cert = SelfSigned::generate(&["alice"]).unwrap();
    let alice = client_with(&proxy, |b| {
        b.offer_token_binding(false)
            .client_certificate(&alice_cert.cert_pem, &alice_cert.key_pem)
            .unwrap()
    });
    let der = openssl::x509::X509::from_pem(&alice_cert.cert_pem)
        .unwrap()
        .to_der()
        .unwrap();
    // x5t#S256, computed here independently of the library.
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(openssl::sha::sha256(&der));
    let res = alice
        .fetch(req(&format!("{}/", proxy.url), &[]))
        .await
        .unwrap()
        .response;
    let body = json_of(&res);
    assert_eq!(body["proven"], json!([format!("mtls:{x5t}")]), "{body}");
    assert_eq!(body["token_binding_headers_seen"], json!([]), "consumed");

    // Mallory has no certificate and sends Alice's (it is public) as the header: the proxy
    // replaces what clients send with what the handshake proved, here nothing.
    let forged = format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    let mallory = plain_client(&proxy);
    let res = mallory
        .fetch(req(
            &format!("{}/", proxy.url),
            &[("client-cert", &forged), ("client-cert-chain", &forged)],
        ))
        .await
        .unwrap()
        .response;
    let body = json_of(&res);
    assert_eq!(body["proven"], json!([]), "{body}");
    assert_eq!(body["token_binding_headers_seen"], json!([]));
}

#[tokio::test]
async fn upstream_down_is_a_502_not_a_hang() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = start_proxy(&format!("http://{closed}"));
    let started = std::time::Instant::now();
    let res = client(&proxy)
        .fetch(req(&format!("{}/", proxy.url), &[]))
        .await
        .unwrap()
        .response;
    assert_eq!(res.status(), 502);
    assert_eq!(json_of(&res)["reason"], "upstream_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn http2_to_the_upstream() {
    let backend = start_backend(Arc::default()).await;
    let proxy = start_proxy_with(&format!("http://{backend}"), &["--upstream-http2"]);
    let alice = client(&proxy);
    let mut conn = alice.connect(&proxy.url.parse().unwrap()).await.unwrap();
    let res = conn.send(req("/", &[])).await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body());
    assert!(json_of(&res)["provided"].is_string());
    assert_eq!(
        json_of(&res)["version"],
        "HTTP/2.0",
        "the backend was spoken to over HTTP/2"
    );
}
