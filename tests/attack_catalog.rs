//! The attack catalog: every attack and bad input we know of against Token Binding, its
//! bound cookies and tokens, and a TLS-terminating proxy's headers, each run end to end over
//! real TLS through the whole stack and asserted at its outcome — the HTTP status and
//! reason, a dropped cookie, a refused token — and never a panic or a 5xx.
//!
//! Run with `--nocapture` to print the catalog as a table.
//!
//! The other proofs of possession keep their attacks beside their flows, through the same
//! stack: DPoP (stolen token or cookie with another key, replayed or forged proof, wrong
//! `htu`/`htm`/`ath`, stale, downgraded to Bearer, duplicate headers) in `dpop.rs`; DBSC
//! (stolen cookies, hijacked registration, forged refresh, forged short-lived cookie) in
//! `device_bound_sessions.rs` and, with a real browser, `chromium_dbsc.rs`; certificate-bound
//! tokens in `mtls.rs`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use bytes::Bytes;
use common::*;
use http::Response;
use http_body_util::Full;
use serde_json::Value;
use tokbind::client::{Client, Connection, MemoryKeyStore};
use tokbind::dpop::DpopKey;
use tokbind::proto::{
    Ekm, Extensions, KeyParameters, MessageBuilder, SigningKey, TokenBinding, TokenBindingIdRef,
    TokenBindingMessage, TokenBindingSigner, TokenBindingType, base64url,
};
use tokbind::tls::ServerVerification;
use tokbind::tower::TokenBindingLayer;
use tokbind::tower::cookie::{BoundCookieLayer, CookieKeys};
use tokbind::tower::ttrp::ForwardedTokenBindingLayer;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

/// What must happen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// A 4xx with this status and `reason`.
    Refused(u16, &'static str),
    /// The request is served, and the application's own session lookup (`tower-sessions`)
    /// finds no session: the stolen cookie opened nothing.
    NoSession,
    /// The request is served with no Token Binding ID for the application.
    NoId,
    /// The TLS handshake fails.
    HandshakeRefused,
    /// Refused below the application: HTTP/2 GOAWAY from hyper's header-list limit, or
    /// our 400 `header_too_long` over HTTP/1.1.
    HttpLayerRefused,
}

struct Catalog {
    rows: Vec<(&'static str, &'static str, Outcome, bool, String)>,
}

impl Catalog {
    fn record(
        &mut self,
        group: &'static str,
        name: &'static str,
        expected: Outcome,
        observed: Result<Outcome, String>,
        detail: String,
    ) {
        let ok = observed.as_ref().is_ok_and(|o| *o == expected);
        self.rows
            .push((group, name, expected, ok, format!("{observed:?} {detail}")));
    }

    fn response(
        &mut self,
        group: &'static str,
        name: &'static str,
        expected: Outcome,
        res: &Response<Bytes>,
    ) {
        assert!(res.status().as_u16() < 500, "{name}: a 5xx: {res:?}");
        let body: Value = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
        let observed = match expected {
            Outcome::NoSession => {
                if res.status() == 200 && body["user"].is_null() {
                    Ok(Outcome::NoSession)
                } else {
                    Err(format!("{} {body}", res.status()))
                }
            }
            Outcome::NoId => {
                if res.status() == 200 && body["provided"].is_null() {
                    Ok(Outcome::NoId)
                } else {
                    Err(format!("{} {body}", res.status()))
                }
            }
            _ => {
                let reason = body["reason"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("-")
                    .to_string();
                Ok(Outcome::Refused(
                    res.status().as_u16(),
                    Box::leak(reason.into_boxed_str()),
                ))
            }
        };
        self.record(group, name, expected, observed, String::new());
    }
}

/// The target app: reports the verified ID and the user of the `tower-sessions` session the
/// request opened; `/login` signs the victim in (the session cookie `id`, bound).
fn app() -> Router {
    async fn report(
        provided: Option<tokbind::tower::ProvidedBinding>,
        session: Session,
    ) -> axum::Json<Value> {
        axum::Json(serde_json::json!({
            "provided": provided.map(|p| p.0.tbh().to_string()),
            "user": session.get::<String>("user").await.unwrap(),
        }))
    }
    async fn login(session: Session) -> &'static str {
        session.insert("user", "victim").await.unwrap();
        "ok"
    }
    Router::new()
        .route("/", get(report))
        .route("/login", get(login))
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(true))
        .layer(BoundCookieLayer::new(CookieKeys::generate().unwrap()).only(["id"]))
        .layer(TokenBindingLayer::new().legacy_header_name(true))
}

fn req(headers: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    req_bytes("/", &headers)
}

/// Header names and values of any bytes a header can carry.
type Headers<'a> = Vec<(&'a str, Vec<u8>)>;

/// A request whose header values may be any bytes a header can carry (not only text).
fn req_bytes(path: &str, headers: &[(&str, &[u8])]) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, http::HeaderValue::from_bytes(v).unwrap());
    }
    b.body(Full::default()).unwrap()
}

fn binding<'a>(t: TokenBindingType, tbid: &'a [u8], sig: &'a [u8]) -> TokenBinding<'a> {
    TokenBinding::new(
        t,
        TokenBindingIdRef::decode(tbid).unwrap(),
        sig,
        Extensions::EMPTY,
    )
    .unwrap()
}

fn encode(bindings: Vec<TokenBinding<'_>>) -> String {
    base64url::encode(&TokenBindingMessage::new(bindings).unwrap().to_bytes())
}

fn raw_message(bindings_bytes: &[u8]) -> String {
    let mut m = (bindings_bytes.len() as u16).to_be_bytes().to_vec();
    m.extend_from_slice(bindings_bytes);
    base64url::encode(&m)
}

async fn send(conn: &mut Connection, headers: &[(&str, &str)]) -> Response<Bytes> {
    conn.send_as_is(req(headers)).await.unwrap()
}

#[tokio::test]
async fn attack_catalog() {
    let mut c = Catalog { rows: Vec::new() };
    let server = start_app(|b| b, app()).await;
    let client = server.client(|b| b);
    let mut conn = server.connect(&client).await;
    let ekm = conn.info().ekm().unwrap().clone();
    let key = conn.provided_key().unwrap().clone();
    let tbid = key.token_binding_id().as_bytes().to_vec();
    let good = conn
        .token_binding_header()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let sign = |k: &dyn TokenBindingSigner, t: TokenBindingType, e: &Ekm| {
        k.sign(&e.signed_input(t, k.key_parameters())).unwrap()
    };
    let sig = sign(key.as_ref(), TokenBindingType::PROVIDED, &ekm);
    let other_ekm = Ekm::new([0x42; 32]);
    let mallory = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
    const P: TokenBindingType = TokenBindingType::PROVIDED;
    const R: TokenBindingType = TokenBindingType::REFERRED;
    const U: fn(u8) -> TokenBindingType = TokenBindingType::new;
    let st = "sec-token-binding";

    // --- RFC 8471 §4.2 / RFC 8473 §2: the message and its signatures -------------------
    let g = "message";
    let forged = encode(vec![binding(P, &tbid, &sign(&mallory, P, &ekm))]);
    c.response(
        g,
        "forged signature (another key, the victim's ID)",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut conn, &[(st, &forged)]).await,
    );
    let mut flipped = sig.clone();
    flipped[40] ^= 1;
    c.response(
        g,
        "bit-flipped signature",
        Outcome::Refused(400, "invalid_signature"),
        &send(
            &mut conn,
            &[(st, &encode(vec![binding(P, &tbid, &flipped)]))],
        )
        .await,
    );
    let wrong_type = encode(vec![binding(P, &tbid, &sign(key.as_ref(), R, &ekm))]);
    c.response(
        g,
        "signature made for the referred type",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut conn, &[(st, &wrong_type)]).await,
    );
    let other_connection = encode(vec![binding(P, &tbid, &sign(key.as_ref(), P, &other_ekm))]);
    c.response(
        g,
        "signature over another connection's EKM",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut conn, &[(st, &other_connection)]).await,
    );
    let der = openssl::ecdsa::EcdsaSig::from_private_components(
        openssl::bn::BigNum::from_slice(&sig[..32]).unwrap(),
        openssl::bn::BigNum::from_slice(&sig[32..]).unwrap(),
    )
    .unwrap()
    .to_der()
    .unwrap();
    c.response(
        g,
        "DER-encoded ECDSA signature",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut conn, &[(st, &encode(vec![binding(P, &tbid, &der)]))]).await,
    );
    let mut off_curve = tbid.clone();
    off_curve[4..].copy_from_slice(&[0x11; 64]);
    c.response(
        g,
        "public key not on the curve",
        Outcome::Refused(400, "invalid_public_key"),
        &send(
            &mut conn,
            &[(st, &encode(vec![binding(P, &off_curve, &sig)]))],
        )
        .await,
    );
    let rsa = SigningKey::generate(KeyParameters::RSA2048_PSS).unwrap();
    let rsa_hdr = MessageBuilder::new(&ekm)
        .provided(&rsa)
        .unwrap()
        .to_header_value()
        .unwrap();
    c.response(
        g,
        "provided key parameters other than negotiated",
        Outcome::Refused(400, "key_parameters_mismatch"),
        &send(&mut conn, &[(st, &rsa_hdr)]).await,
    );
    let unknown_kp = [0x58u8, 0, 3, 1, 2, 3];
    c.response(
        g,
        "provided binding with unknown key parameters",
        Outcome::Refused(400, "key_parameters_mismatch"),
        &send(
            &mut conn,
            &[(st, &encode(vec![binding(P, &unknown_kp, &[0; 64])]))],
        )
        .await,
    );
    let only_referred = encode(vec![binding(R, &tbid, &sign(key.as_ref(), R, &ekm))]);
    c.response(
        g,
        "no provided binding (referred only)",
        Outcome::Refused(400, "missing_provided"),
        &send(&mut conn, &[(st, &only_referred)]).await,
    );
    let only_unknown = encode(vec![binding(
        U(77),
        &tbid,
        &sign(key.as_ref(), U(77), &ekm),
    )]);
    c.response(
        g,
        "no provided binding (unknown type only)",
        Outcome::Refused(400, "missing_provided"),
        &send(&mut conn, &[(st, &only_unknown)]).await,
    );
    c.response(
        g,
        "two provided bindings",
        Outcome::Refused(400, "duplicate_provided"),
        &send(
            &mut conn,
            &[(
                st,
                &encode(vec![binding(P, &tbid, &sig), binding(P, &tbid, &sig)]),
            )],
        )
        .await,
    );
    let rsig = sign(key.as_ref(), R, &ekm);
    c.response(
        g,
        "two referred bindings",
        Outcome::Refused(400, "duplicate_referred"),
        &send(
            &mut conn,
            &[(
                st,
                &encode(vec![
                    binding(P, &tbid, &sig),
                    binding(R, &tbid, &rsig),
                    binding(R, &tbid, &rsig),
                ]),
            )],
        )
        .await,
    );
    let usig = sign(key.as_ref(), U(9), &ekm);
    let five = encode(vec![
        binding(P, &tbid, &sig),
        binding(U(9), &tbid, &usig),
        binding(U(9), &tbid, &usig),
        binding(U(9), &tbid, &usig),
        binding(U(9), &tbid, &usig),
    ]);
    c.response(
        g,
        "too many bindings (signature-check amplification)",
        Outcome::Refused(400, "too_many_bindings"),
        &send(&mut conn, &[(st, &five)]).await,
    );
    let bad_referred = encode(vec![
        binding(P, &tbid, &sig),
        binding(
            R,
            mallory.token_binding_id().as_bytes(),
            &sign(&mallory, R, &other_ekm),
        ),
    ]);
    c.response(
        g,
        "referred binding signed over another EKM",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut conn, &[(st, &bad_referred)]).await,
    );
    let bad_unknown = encode(vec![
        binding(P, &tbid, &sig),
        binding(U(0x4d), &tbid, &sign(key.as_ref(), U(0x0b), &ekm)),
    ]);
    c.response(
        g,
        "unknown-type binding with a bad signature",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut conn, &[(st, &bad_unknown)]).await,
    );

    // --- Malformed messages ------------------------------------------------------------
    let g = "malformed";
    let good_bytes = base64url::decode(good.as_bytes()).unwrap();
    let mut trailing = good_bytes.clone();
    trailing.push(0);
    let mut long_outer = good_bytes.clone();
    long_outer[1] += 1;
    let mut prefixed_point = vec![0u8, 2, 0, 66, 65, 4];
    prefixed_point.extend_from_slice(&tbid[4..]);
    prefixed_point.extend_from_slice(&[0, 64]);
    prefixed_point.extend_from_slice(&sig);
    prefixed_point.extend_from_slice(&[0, 0]);
    let rsa_tbid = |modulus_first: u8, exponent: &[u8]| {
        let mut key = vec![1u8, 0];
        key.push(modulus_first);
        key.extend_from_slice(&[0xab; 255]);
        key.push(exponent.len() as u8);
        key.extend_from_slice(exponent);
        let mut b = vec![0u8, 1];
        b.extend_from_slice(&(key.len() as u16).to_be_bytes());
        b.extend_from_slice(&key);
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&[0x77; 256]);
        b.extend_from_slice(&[0, 0]);
        raw_message(&b)
    };
    let mut short_sig = vec![0u8];
    short_sig.extend_from_slice(&tbid);
    short_sig.extend_from_slice(&[0, 63]);
    short_sig.extend_from_slice(&[1; 63]);
    short_sig.extend_from_slice(&[0, 0]);
    let mut bad_ext = good_bytes[2..good_bytes.len() - 2].to_vec();
    bad_ext.extend_from_slice(&[0, 3, 0x99, 0, 5]);
    for (name, header) in [
        ("empty message", base64url::encode(&[0, 0])),
        (
            "truncated message",
            base64url::encode(&good_bytes[..good_bytes.len() - 3]),
        ),
        (
            "trailing bytes after the message",
            base64url::encode(&trailing),
        ),
        (
            "outer length longer than the message",
            base64url::encode(&long_outer),
        ),
        ("EC point with a 0x04 prefix", raw_message(&prefixed_point)),
        ("RSA modulus of 2047 bits", rsa_tbid(0x7f, &[1, 0, 1])),
        (
            "RSA modulus with a leading zero",
            rsa_tbid(0x00, &[1, 0, 1]),
        ),
        ("RSA even exponent", rsa_tbid(0xc5, &[1, 0, 0])),
        ("signature shorter than 64 bytes", raw_message(&short_sig)),
        ("malformed extension list", raw_message(&bad_ext)),
    ] {
        c.response(
            g,
            name,
            Outcome::Refused(400, "malformed_message"),
            &send(&mut conn, &[(st, &header)]).await,
        );
    }

    // --- Header abuse -------------------------------------------------------------------
    let g = "header";
    c.response(
        g,
        "two Sec-Token-Binding headers",
        Outcome::Refused(400, "duplicate_header"),
        &send(&mut conn, &[(st, &good), (st, &good)]).await,
    );
    c.response(
        g,
        "RFC and legacy names together",
        Outcome::Refused(400, "duplicate_header"),
        &send(&mut conn, &[(st, &good), ("token-binding", &good)]).await,
    );
    c.response(
        g,
        "comma-joined list",
        Outcome::Refused(400, "invalid_base64url"),
        &send(&mut conn, &[(st, &format!("{good},{good}"))]).await,
    );
    c.response(
        g,
        "padded base64url",
        Outcome::Refused(400, "invalid_base64url"),
        &send(&mut conn, &[(st, &format!("{good}="))]).await,
    );
    c.response(
        g,
        "standard base64 alphabet",
        Outcome::Refused(400, "invalid_base64url"),
        &send(
            &mut conn,
            &[(
                st,
                &base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    [0xfb_u8; 139],
                ),
            )],
        )
        .await,
    );
    c.response(
        g,
        "whitespace inside the value",
        Outcome::Refused(400, "invalid_base64url"),
        &send(
            &mut conn,
            &[(st, &format!("{} {}", &good[..40], &good[40..]))],
        )
        .await,
    );
    let non_ascii = http::HeaderValue::from_bytes(&[0xc3, 0xa9, b'A', b'A']).unwrap();
    let res = conn
        .send_as_is(
            http::Request::get("/")
                .header(st, non_ascii)
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    c.response(
        g,
        "non-ASCII bytes",
        Outcome::Refused(400, "invalid_base64url"),
        &res,
    );
    c.response(
        g,
        "no header on a negotiated connection",
        Outcome::Refused(400, "missing_header"),
        &send(&mut conn, &[]).await,
    );
    let huge = "A".repeat(tokbind::proto::header::MAX_HEADER_VALUE_LEN + 4);
    let mut sacrificial = server.connect(&client).await;
    let observed = match sacrificial.send_as_is(req(&[(st, &huge)])).await {
        Ok(res)
            if res.status() == 400
                && serde_json::from_slice::<Value>(res.body()).unwrap()["reason"]
                    == "header_too_long" =>
        {
            Ok(Outcome::HttpLayerRefused)
        }
        Ok(res) => Err(format!("{res:?}")),
        Err(e) if format!("{e:?}").contains("ENHANCE_YOUR_CALM") => Ok(Outcome::HttpLayerRefused),
        Err(e) => Err(e.to_string()),
    };
    c.record(
        g,
        "oversize header value",
        Outcome::HttpLayerRefused,
        observed,
        String::new(),
    );

    // --- Replay across connections -------------------------------------------------------
    let g = "replay";
    let mut second = server.connect(&client).await;
    c.response(
        g,
        "header replayed on another connection of the same client",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut second, &[(st, &good)]).await,
    );
    let thief = server.client(|b| b);
    let mut t = server.connect(&thief).await;
    c.response(
        g,
        "header replayed on the thief's connection",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut t, &[(st, &good)]).await,
    );
    drop(conn);
    let mut later = server.connect(&client).await;
    c.response(
        g,
        "header replayed after its connection closed",
        Outcome::Refused(400, "invalid_signature"),
        &send(&mut later, &[(st, &good)]).await,
    );

    // --- Negotiation edge cases: a header where Token Binding was not negotiated ----------
    let g = "negotiation";
    let stray = MessageBuilder::new(&Ekm::new([9; 32]))
        .provided(&mallory)
        .unwrap()
        .to_header_value()
        .unwrap();
    for (name, tls) in [
        (
            "client without Extended Master Secret",
            (|b: tokbind::tls::ConnectorBuilder| b.without_extended_master_secret().tls12_only())
                as fn(_) -> _,
        ),
        ("client offering only version 0.9", |b| {
            b.protocol_versions(
                tokbind::proto::ProtocolVersion::new(0, 9),
                tokbind::proto::ProtocolVersion::new(0, 9),
            )
        }),
        ("client offering a draft version to a strict server", |b| {
            b.protocol_versions(
                tokbind::proto::ProtocolVersion::new(0, 13),
                tokbind::proto::ProtocolVersion::new(0, 13),
            )
        }),
        ("client not offering Token Binding", |b| {
            b.offer_token_binding(false)
        }),
        ("TLS 1.3 client, server not opted in", |b| b.tls13_only()),
    ] {
        let client = server.client(tls);
        let mut conn = server.connect(&client).await;
        assert!(conn.info().negotiated().is_none(), "{name}");
        c.response(
            g,
            name,
            Outcome::Refused(400, "not_negotiated"),
            &send(&mut conn, &[(st, &stray)]).await,
        );
    }
    let pkcs_only = start_app(
        |b| b.key_parameters(&[KeyParameters::RSA2048_PKCS1_5]).unwrap(),
        app(),
    )
    .await;
    let client = pkcs_only.client(|b| b.key_parameters(&[KeyParameters::ECDSAP256]).unwrap());
    let mut conn = pkcs_only.connect(&client).await;
    c.response(
        g,
        "no common key parameters",
        Outcome::Refused(400, "not_negotiated"),
        &send(&mut conn, &[(st, &stray)]).await,
    );
    let untrusted = Client::builder()
        .server_verification(ServerVerification::Roots(
            tokbind::tls::SelfSigned::generate(&["127.0.0.1"])
                .unwrap()
                .cert_pem,
        ))
        .build()
        .unwrap();
    let handshake = untrusted.connect(&server.url()).await;
    c.record(
        g,
        "server impersonation (untrusted certificate)",
        Outcome::HandshakeRefused,
        if handshake.is_err() {
            Ok(Outcome::HandshakeRefused)
        } else {
            Err("connected".into())
        },
        String::new(),
    );

    // --- Bound cookies: judged by the application's own session lookup -----------------
    let g = "cookie";
    let alice = server.client(|b| b);
    let mut a = server.connect(&alice).await;
    let set = a
        .send(http::Request::get("/login").body(Full::default()).unwrap())
        .await
        .unwrap();
    let cookie = set_cookie_pair(&set);
    let value = cookie.trim_start_matches("id=");
    let bare = value.split('~').next().unwrap();
    // Control: the victim's own cookie opens the victim's session.
    let own = a.send(req(&[("cookie", &cookie)])).await.unwrap();
    assert_eq!(json_body(&own)["user"], "victim", "the victim's own cookie");
    let mallory_client = server.client(|b| b);
    let mut m = server.connect(&mallory_client).await;
    let plain_client = server.client(|b| b.offer_token_binding(false));
    let mut p = server.connect(&plain_client).await;
    c.response(
        g,
        "stolen bound cookie, another key",
        Outcome::NoSession,
        &m.send(req(&[("cookie", &cookie)])).await.unwrap(),
    );
    c.response(
        g,
        "bound cookie without Token Binding",
        Outcome::NoSession,
        &p.send(req(&[("cookie", &cookie)])).await.unwrap(),
    );
    c.response(
        g,
        "bound cookie with the binding stripped",
        Outcome::NoSession,
        &m.send(req(&[("cookie", &format!("id={bare}"))]))
            .await
            .unwrap(),
    );
    c.response(
        g,
        "bound cookie relabelled as issued-unbound",
        Outcome::NoSession,
        &p.send(req(&[("cookie", &cookie.replace("~tb1.", "~tb0."))]))
            .await
            .unwrap(),
    );
    let mut tampered = value.to_string();
    let flip = if tampered.starts_with('A') { "B" } else { "A" };
    tampered.replace_range(..1, flip);
    c.response(
        g,
        "bound cookie with a tampered value",
        Outcome::NoSession,
        &a.send(req(&[("cookie", &format!("id={tampered}"))]))
            .await
            .unwrap(),
    );
    // The same stripped cookie, spelled so that some application parser reads it as `id`
    // while a layer comparing raw text would not: every one is read as the parsers read
    // it, checked, and dropped (tests/cookie_header.rs runs these classes and more against
    // every parser).
    let stripped = format!("id={bare}");
    let spellings: [(&'static str, Headers); 9] = [
        (
            "stripped, name percent-encoded (i%64)",
            vec![("cookie", format!("i%64={bare}").into_bytes())],
        ),
        (
            "stripped, beside a non-ASCII pair (UTF-8)",
            vec![(
                "cookie",
                format!("{stripped}; lang=fran\u{e7}ais").into_bytes(),
            )],
        ),
        (
            "stripped, beside a Latin-1 pair",
            vec![(
                "cookie",
                [stripped.as_bytes(), b"; lang=fran\xe7ais"].concat(),
            )],
        ),
        (
            "stripped, no-break space before the name",
            vec![("cookie", format!("\u{a0}{stripped}").into_bytes())],
        ),
        (
            "stripped, tab around =",
            vec![("cookie", format!("id\t=\t{bare}").into_bytes())],
        ),
        (
            "stripped, after a forged copy",
            vec![("cookie", format!("id=forged; {stripped}").into_bytes())],
        ),
        (
            "stripped, in a second Cookie header",
            vec![
                ("cookie", b"lang=fr\xe7".to_vec()),
                ("cookie", stripped.clone().into_bytes()),
            ],
        ),
        (
            "whole bound cookie, quoted",
            vec![("cookie", format!("id=\"{value}\"").into_bytes())],
        ),
        (
            "stripped, among stray semicolons",
            vec![("cookie", format!(";;{stripped};;").into_bytes())],
        ),
    ];
    for (name, headers) in &spellings {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, &v[..])).collect();
        c.response(
            g,
            name,
            Outcome::NoSession,
            &m.send(req_bytes("/", &headers)).await.unwrap(),
        );
    }
    dbsc_rows(&mut c).await;

    // --- OAuth / OIDC tokens (the federated demo's IdP and RP) ----------------------------
    let g = "token";
    let demo = tokbind_demo::start_in_process().await.unwrap();
    let keys: Arc<dyn tokbind::client::KeyStore> = Arc::new(MemoryKeyStore::default());
    let browser = |keys: Arc<dyn tokbind::client::KeyStore>, tb: bool| {
        Client::builder()
            .server_verification(demo.verification())
            .keys(keys)
            .cookie_store(true)
            .tls(move |b| b.offer_token_binding(tb))
            .build()
            .unwrap()
    };
    let alice = browser(keys.clone(), true);
    let page = alice
        .fetch(
            http::Request::get(format!("{}/login", demo.rp_url))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap()
        .response;
    let page: Value = serde_json::from_slice(page.body()).unwrap();
    let (id_token, access) = (
        page["id_token"].as_str().unwrap().to_string(),
        page["access_token"].as_str().unwrap().to_string(),
    );
    let thief = browser(Arc::new(MemoryKeyStore::default()), true);
    let no_tb = browser(Arc::new(MemoryKeyStore::default()), false);
    c.response(
        g,
        "stolen access token, another key",
        Outcome::Refused(401, "binding_mismatch"),
        &fetch_as(
            &thief,
            format!("{}/api/me", demo.rp_url),
            Some(format!("Bearer {access}")),
        )
        .await,
    );
    c.response(
        g,
        "stolen access token without Token Binding",
        Outcome::Refused(401, "no_proof"),
        &fetch_as(
            &no_tb,
            format!("{}/api/me", demo.rp_url),
            Some(format!("Bearer {access}")),
        )
        .await,
    );
    c.response(
        g,
        "stolen ID token",
        Outcome::Refused(401, "binding_mismatch"),
        &fetch_as(
            &thief,
            format!("{}/login/id_token?id_token={id_token}", demo.rp_url),
            None,
        )
        .await,
    );
    let mut tampered = access.clone();
    tampered.insert(tampered.len() / 2, 'x');
    c.response(
        g,
        "tampered access token",
        Outcome::Refused(401, "invalid_token"),
        &fetch_as(
            &alice,
            format!("{}/api/me", demo.rp_url),
            Some(format!("Bearer {tampered}")),
        )
        .await,
    );
    let halfway = Client::builder()
        .server_verification(demo.verification())
        .keys(keys.clone())
        .max_redirects(1)
        .build()
        .unwrap();
    let res = halfway
        .fetch(
            http::Request::get(format!("{}/login", demo.rp_url))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap()
        .response;
    let callback = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    c.response(
        g,
        "intercepted authorization code",
        Outcome::Refused(401, "invalid_grant"),
        &fetch_as(&thief, callback, None).await,
    );

    // --- Proxy headers (draft-ietf-tokbind-ttrp) ------------------------------------------
    let g = "proxy";
    let backend = start_ttrp_backend().await;
    let spoof = mallory.token_binding_id().to_base64url();
    let (status, body) = plain_http(
        backend,
        "127.0.0.2",
        &[("sec-provided-token-binding-id", &spoof)],
    )
    .await;
    c.record(
        g,
        "Sec-Provided-Token-Binding-ID from an untrusted peer",
        Outcome::NoId,
        (status == 200 && body["provided"].is_null())
            .then_some(Outcome::NoId)
            .ok_or(format!("{status} {body}")),
        String::new(),
    );
    let (status, body) = plain_http(
        backend,
        "127.0.0.2",
        &[
            ("provided-token-binding-id", &spoof),
            ("sec-token-binding", &stray),
        ],
    )
    .await;
    c.record(
        g,
        "draft-era and raw Token Binding headers to a backend",
        Outcome::NoId,
        (status == 200 && body["provided"].is_null())
            .then_some(Outcome::NoId)
            .ok_or(format!("{status} {body}")),
        String::new(),
    );
    let (status, body) = plain_http(
        backend,
        "127.0.0.1",
        &[("sec-provided-token-binding-id", "not base64!")],
    )
    .await;
    c.record(
        g,
        "malformed forwarded header from the trusted proxy",
        Outcome::Refused(400, "malformed_forwarded_header"),
        Ok(refused_by_backend(status, &body)),
        String::new(),
    );
    let (status, body) = plain_http(
        backend,
        "127.0.0.1",
        &[("sec-referred-token-binding-id", &spoof)],
    )
    .await;
    c.record(
        g,
        "referred ID without a provided one from the proxy",
        Outcome::Refused(400, "malformed_forwarded_header"),
        Ok(refused_by_backend(status, &body)),
        String::new(),
    );

    // RFC 9440: a client certificate is proven only by a handshake the trusted proxy saw.
    // (Control: from the trusted proxy, the same header does count.)
    let (status, body) = plain_http(backend, "127.0.0.1", &[("client-cert", ":MIIBCv8A:")]).await;
    assert_eq!((status, body["proven"].clone()), (200, 1.into()), "{body}");
    let (status, body) = plain_http(backend, "127.0.0.2", &[("client-cert", ":MIIBCv8A:")]).await;
    c.record(
        g,
        "Client-Cert from an untrusted peer",
        Outcome::NoId,
        (status == 200 && body["proven"] == 0)
            .then_some(Outcome::NoId)
            .ok_or(format!("{status} {body}")),
        String::new(),
    );
    let (status, body) = plain_http(backend, "127.0.0.1", &[("client-cert", "MIIBCv8A")]).await;
    c.record(
        g,
        "malformed Client-Cert from the trusted proxy",
        Outcome::Refused(400, "malformed_forwarded_header"),
        Ok(refused_by_backend(status, &body)),
        String::new(),
    );

    // --- The verdict ------------------------------------------------------------------------
    println!(
        "\n{:<12} {:<58} {:<40} result",
        "group", "attack", "expected"
    );
    for (group, name, expected, ok, observed) in &c.rows {
        println!(
            "{group:<12} {name:<58} {:<40} {}",
            format!("{expected:?}"),
            if *ok {
                "ok".to_string()
            } else {
                format!("FAILED: {observed}")
            }
        );
    }
    let failed: Vec<_> = c.rows.iter().filter(|r| !r.3).map(|r| r.1).collect();
    println!(
        "{} attacks, {} refused as expected",
        c.rows.len(),
        c.rows.len() - failed.len()
    );
    assert!(failed.is_empty(), "not refused as expected: {failed:?}");
    assert!(c.rows.len() >= 40, "the catalog names at least 40 attacks");
}

async fn fetch_as(c: &Client, path: String, auth: Option<String>) -> Response<Bytes> {
    let mut b = http::Request::get(path);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    c.fetch(b.body(Full::default()).unwrap())
        .await
        .unwrap()
        .response
}

/// DBSC, through the README's whole stack (`bound_session_app`): the login cookie's unbound
/// form after registration, in every spelling, and the re-binding attack.
async fn dbsc_rows(c: &mut Catalog) {
    use common::dbsc::*;
    let g = "dbsc cookie";
    // Short-lived cookies of 3 s, to watch one expire.
    let s = site(std::time::Duration::from_secs(3)).await;
    let client = s.plain();
    let (unbound_id, challenge) = login(&s, &client).await;
    let (alice, _) = register(&s, &client, &DbscBrowser::new(), &unbound_id, &challenge).await;
    let session = |cookies: &[&str]| get("/session", cookies);
    let own = s
        .send(&client, session(&[&alice.bound_id, &alice.dbsc]))
        .await;
    assert_eq!(json_body(&own)["user"], "alice", "alice's own cookies");

    // The login cookie as it was before registration: retired, in every spelling.
    let thief = s.plain();
    let v = unbound_id.trim_start_matches("id=");
    let revivals: [(&'static str, Vec<u8>); 8] = [
        (
            "pre-registration login cookie",
            unbound_id.clone().into_bytes(),
        ),
        (
            "pre-registration login cookie, space before =",
            format!("id ={v}").into_bytes(),
        ),
        (
            "pre-registration login cookie, spaces around =",
            format!("id = {v} ").into_bytes(),
        ),
        (
            "pre-registration login cookie, name percent-encoded",
            format!("i%64={v}").into_bytes(),
        ),
        (
            "pre-registration login cookie, behind another copy",
            format!("id=x; id={v}").into_bytes(),
        ),
        (
            "pre-registration login cookie, tab before the name",
            format!("\tid={v}").into_bytes(),
        ),
        (
            "pre-registration login cookie, no-break space",
            format!("\u{a0}id={v}").into_bytes(),
        ),
        (
            "pre-registration login cookie, beside Latin-1",
            [format!("id={v}; x=").as_bytes(), b"\xe9"].concat(),
        ),
    ];
    for (name, cookie) in &revivals {
        let res = s
            .send(&thief, req_bytes("/session", &[("cookie", cookie)]))
            .await;
        c.response(g, name, Outcome::NoSession, &res);
    }

    // Re-binding: the victim's DBSC cookies, stolen inside the short-lived cookie's lifetime,
    // plus a fresh DPoP proof by the thief's own key, on a route that sets `id` again. The
    // cookies work for now (the theft DBSC bounds); the re-set `id` stays bound to the
    // victim's DBSC key, so once the short-lived cookie expires the thief has nothing.
    let dpop = DpopKey::generate().unwrap();
    let with_dpop = |path: &str, cookies: &[&str]| {
        let mut r = get(path, cookies);
        let proof = dpop.proof("GET", &format!("{}{path}", s.server.base()), None, None);
        r.headers_mut().insert("dpop", proof.parse().unwrap());
        r
    };
    // The same with the thief's own `id` (bound to their key, its session ended) in front:
    // copies of one cookie bound to different keys are all dropped, since the session the
    // application loads and the key a re-set cookie would get could belong to either.
    let tb_thief = s.server.client(|b| b);
    for (name, client, dpop_proof) in [
        (
            "duplicate id: the thief's own (Token Binding) before the victim's DBSC cookies",
            &tb_thief,
            false,
        ),
        (
            "duplicate id: the thief's own (DPoP) before the victim's DBSC cookies",
            &thief,
            true,
        ),
    ] {
        let request = |path: &str, cookies: &[&str]| {
            if dpop_proof {
                with_dpop(path, cookies)
            } else {
                get(path, cookies)
            }
        };
        let res = s.send(client, request("/login", &[])).await;
        let own = set_cookie(&res, "id").expect("the thief's own session cookie");
        s.send(client, request("/logout", &[&own])).await;
        let res = s
            .send(
                client,
                request("/cycle", &[&own, &alice.bound_id, &alice.dbsc]),
            )
            .await;
        c.response(g, name, Outcome::NoSession, &res);
    }

    let res = s
        .send(&thief, with_dpop("/cycle", &[&alice.bound_id, &alice.dbsc]))
        .await;
    assert_eq!(json_body(&res)["user"], "alice", "inside the window");
    let reissued = set_cookie(&res, "id").expect("the session cookie, set again");
    let expiry: u64 = alice.dbsc.split('.').nth(1).unwrap().parse().unwrap();
    let expires = std::time::UNIX_EPOCH + std::time::Duration::from_secs(expiry);
    if let Ok(wait) = expires.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait + std::time::Duration::from_millis(50)).await;
    }
    c.response(
        g,
        "re-binding: DBSC cookies + thief's DPoP key re-set `id`; thief alone after expiry",
        Outcome::NoSession,
        &s.send(&thief, with_dpop("/session", &[&reissued, &alice.dbsc]))
            .await,
    );
}

fn refused_by_backend(status: u16, body: &Value) -> Outcome {
    let reason = body["reason"].as_str().unwrap_or("-").to_string();
    Outcome::Refused(status, Box::leak(reason.into_boxed_str()))
}

/// A plain-HTTP backend trusting forwarded IDs and certificates from 127.0.0.1 only;
/// reports the provided ID and how many keys the request proved.
async fn start_ttrp_backend() -> SocketAddr {
    let app = Router::new()
        .route(
            "/",
            get(
                |p: Option<tokbind::tower::ProvidedBinding>,
                 keys: Option<axum::Extension<tokbind::proto::ProvenKeys>>| async move {
                    axum::Json(serde_json::json!({
                        "provided": p.map(|p| p.0.tbh().to_string()),
                        "proven": keys.map_or(0, |k| k.0.iter().count()),
                    }))
                },
            ),
        )
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

/// One plain HTTP/1.1 GET to `backend` from source address `from`.
async fn plain_http(backend: SocketAddr, from: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(backend).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut b = http::Request::get("/").header("host", "backend");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let res = sender
        .send_request(b.body(Full::<Bytes>::default()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}
