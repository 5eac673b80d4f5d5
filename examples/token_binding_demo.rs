//! End-to-end demo: a Token Binding server (OpenSSL TLS + `TokenBindingLayer` + axum) and
//! the Token Binding client, over real TLS on loopback. Shows the verified binding, then
//! the attacks Token Binding exists to stop, each refused by the server.
//!
//! `cargo run --release --example token_binding_demo`
//!
//! Exits 0 only if every step behaved as expected.

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::{Value, json};
use tokbind::client::Client;
use tokbind::proto::{
    ConnectionInfo, Ekm, KeyParameters, MessageBuilder, SigningKey, TokenBindingSigner,
    TokenBindingType, base64url,
};
use tokbind::tls::{SelfSigned, ServerVerification, TokenBindingAcceptor};
use tokbind::tower::{ProvidedBinding, TokenBindingLayer};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The protected resource: who does this request prove to be?
async fn whoami(
    Extension(info): Extension<Arc<ConnectionInfo>>,
    provided: Option<ProvidedBinding>,
) -> Json<Value> {
    Json(json!({
        "tls_version": info.tls_version().to_string(),
        "token_binding": info.negotiated().map(|n| format!("{} {}", n.version, n.key_parameters)),
        "tbh": provided.map(|p| p.0.tbh().to_string()),
    }))
}

struct Transcript {
    failures: usize,
}

impl Transcript {
    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Display) {
        println!("  [{}] {what}: {detail}", if ok { " ok " } else { "FAIL" });
        if !ok {
            self.failures += 1;
        }
    }
}

fn reason(res: &Response<Bytes>) -> String {
    let body: Value = serde_json::from_slice(res.body()).unwrap_or_default();
    format!(
        "{} {}",
        res.status().as_u16(),
        body["reason"].as_str().unwrap_or("-")
    )
}

fn with_header(value: &str) -> Request<Full<Bytes>> {
    Request::get("/")
        .header("sec-token-binding", value)
        .body(Full::default())
        .expect("request")
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut t = Transcript { failures: 0 };

    // --- The server: an axum app behind the verifying layer, on a Token Binding listener.
    let cert = SelfSigned::generate(&["localhost", "127.0.0.1"])?;
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url: http::Uri = format!("https://{}/", listener.local_addr()?).parse()?;
    let app = Router::new()
        .route("/", get(whoami))
        .layer(TokenBindingLayer::new());
    tokio::spawn(async move { tokbind::tls::serve(listener, acceptor, app).await });
    println!("server listening on {url}\n");

    let roots = ServerVerification::Roots(cert.cert_pem.clone());
    let new_client = || Client::builder().server_verification(roots.clone()).build();

    // --- 1. A client negotiates Token Binding and proves its key.
    println!("1. Alice's client connects");
    let alice = new_client()?;
    let mut conn = alice.connect(&url).await?;
    let negotiated = conn.info().negotiated();
    let what = negotiated.map_or("none".to_string(), |n| {
        format!("Token Binding {} with {}", n.version, n.key_parameters)
    });
    t.check(
        "TLS handshake negotiated Token Binding",
        negotiated.is_some(),
        format!("{}, {what}", conn.info().tls_version()),
    );
    let alice_key = conn.provided_key().ok_or("no key")?.clone();
    let res = conn.send(Request::get("/").body(Full::default())?).await?;
    let body: Value = serde_json::from_slice(res.body())?;
    let alice_tbh = alice_key.token_binding_id().tbh().to_string();
    t.check(
        "server verified Alice's provided binding",
        res.status() == 200 && body["tbh"] == alice_tbh.as_str(),
        format!("tbh {}", body["tbh"]),
    );
    for _ in 0..2 {
        let again = conn.send(Request::get("/").body(Full::default())?).await?;
        t.check(
            &format!(
                "keep-alive request on the same {} connection",
                if conn.is_http2() {
                    "HTTP/2"
                } else {
                    "HTTP/1.1"
                }
            ),
            again.status() == 200,
            "verdict reused from the per-connection cache",
        );
    }

    // --- 2. The attacks.
    println!("\n2. Mallory copies Alice's Sec-Token-Binding header");
    let stolen = conn
        .token_binding_header()
        .ok_or("no header")?
        .to_str()?
        .to_string();
    let mallory = new_client()?;
    let mut m = mallory.connect(&url).await?;
    let res = m.send_as_is(with_header(&stolen)).await?;
    t.check(
        "replayed on Mallory's own connection",
        reason(&res) == "400 invalid_signature",
        reason(&res),
    );

    println!("\n3. Mallory signs with her own key but claims Alice's Token Binding ID");
    let ekm = m.info().ekm().ok_or("no ekm")?.clone();
    let mallory_key = SigningKey::generate(KeyParameters::ECDSAP256)?;
    let mut forged = base64url::decode(stolen.as_bytes())?;
    let sig = mallory_key
        .sign(&ekm.signed_input(TokenBindingType::PROVIDED, KeyParameters::ECDSAP256))?;
    forged[73..137].copy_from_slice(&sig); // the signature field of a one-binding ecdsap256 message
    let res = m
        .send_as_is(with_header(&base64url::encode(&forged)))
        .await?;
    t.check(
        "forged signature",
        reason(&res) == "400 invalid_signature",
        reason(&res),
    );
    let res = m.send(Request::get("/").body(Full::default())?).await?;
    let body: Value = serde_json::from_slice(res.body())?;
    t.check(
        "with her own header she is only herself",
        res.status() == 200 && body["tbh"] != alice_tbh.as_str(),
        format!("tbh {}", body["tbh"]),
    );

    println!("\n4. Malformed and out-of-place headers");
    let res = m
        .send_as_is(
            Request::get("/")
                .header("sec-token-binding", &stolen)
                .header("sec-token-binding", &stolen)
                .body(Full::default())?,
        )
        .await?;
    t.check(
        "two Sec-Token-Binding headers",
        reason(&res) == "400 duplicate_header",
        reason(&res),
    );
    let res = m.send_as_is(with_header("AIkA==")).await?;
    t.check(
        "padded base64",
        reason(&res) == "400 invalid_base64url",
        reason(&res),
    );
    let res = m.send_as_is(with_header("AIkA")).await?;
    t.check(
        "truncated message",
        reason(&res) == "400 malformed_message",
        reason(&res),
    );
    let res = m
        .send_as_is(Request::get("/").body(Full::default())?)
        .await?;
    t.check(
        "no header on a negotiated connection",
        reason(&res) == "400 missing_header",
        reason(&res),
    );
    let plain = Client::builder()
        .server_verification(roots.clone())
        .tls(|b| b.offer_token_binding(false))
        .build()?;
    let mut p = plain.connect(&url).await?;
    let header = MessageBuilder::new(&Ekm::new([7; 32]))
        .provided(&mallory_key)?
        .to_header_value()?;
    let res = p.send_as_is(with_header(&header)).await?;
    t.check(
        "header on a connection that did not negotiate",
        reason(&res) == "400 not_negotiated",
        reason(&res),
    );

    println!("\n5. Every key parameter");
    for kp in KeyParameters::PREFERENCE {
        let c = Client::builder()
            .server_verification(roots.clone())
            .key_parameters(&[kp])?
            .build()?;
        let mut conn = c.connect(&url).await?;
        let res = conn.send(Request::get("/").body(Full::default())?).await?;
        let body: Value = serde_json::from_slice(res.body())?;
        let ok = res.status() == 200
            && body["tbh"].is_string()
            && conn.info().negotiated().map(|n| n.key_parameters) == Some(kp);
        t.check(&format!("{kp}"), ok, format!("tbh {}", body["tbh"]));
    }

    println!();
    if t.failures == 0 {
        println!("every step behaved as expected");
        Ok(())
    } else {
        Err(format!("{} step(s) did not behave as expected", t.failures).into())
    }
}
