//! End to end over real TLS on loopback: OpenSSL handshake negotiating Token Binding →
//! `tokbind_tls::serve` → `TokenBindingLayer` → axum handler, directly and behind the
//! proxy (the app then behind `ForwardedTokenBindingLayer`). Every attack is refused
//! through the whole stack and asserted at its HTTP status and reason.

mod common;

use axum::Router;
use axum::routing::get;
use common::*;
use tokbind::proto::{
    Ekm, KeyParameters, MessageBuilder, ProtocolVersion, SigningKey, TokenBindingSigner, base64url,
};
use tokbind::tower::{MissingHeader, ProvidedBinding, TokenBindingLayer, Unnegotiated};

const EC: KeyParameters = KeyParameters::ECDSAP256;
const PKCS1: KeyParameters = KeyParameters::RSA2048_PKCS1_5;
const PSS: KeyParameters = KeyParameters::RSA2048_PSS;

fn layer() -> TokenBindingLayer {
    TokenBindingLayer::new()
}

both_deployments!(
    each_key_parameter_is_verified_end_to_end,
    server_preference_decides_the_key_parameters,
    without_negotiation_requests_pass_with_no_id,
    tls13_with_and_without_the_opt_in,
    draft_protocol_versions_when_enabled,
    resumed_connection_negotiates_again_and_refuses_the_old_header,
    forged_signature_is_refused,
    header_replayed_on_another_connection_is_refused,
    duplicate_headers_are_refused_with_400,
    garbage_headers_are_refused_with_400,
    header_without_negotiation_is_refused,
    missing_header_on_a_negotiated_connection,
    token_binding_can_be_required,
    provided_and_referred_with_different_key_parameters,
    http2_carries_token_binding_and_reuses_the_verdict,
    legacy_header_name_only_when_configured,
    extractors_say_what_is_missing,
);

async fn each_key_parameter_is_verified_end_to_end(d: Deployment) {
    for kp in [EC, PSS, PKCS1] {
        let server = d.start(|b| b.key_parameters(&[kp]).unwrap(), layer()).await;
        let client = server.client(|b| b);
        let mut conn = server.connect(&client).await;
        let res = conn.send(get_req()).await.unwrap();
        assert_eq!(res.status(), 200, "{kp}: {:?}", res.body());
        let body = json_body(&res);
        let key = conn.provided_key().unwrap();
        assert_eq!(key.key_parameters(), kp);
        assert_eq!(body["provided"]["key_parameters"], kp.to_string());
        if d.sees_the_connection() {
            assert_eq!(body["token_binding"]["key_parameters"], kp.to_string());
            assert_eq!(body["token_binding"]["version"], "1.0");
            assert_eq!(body["tls_version"], "TLSv1.2");
        }
        assert_eq!(
            body["provided"]["tbh"],
            key.token_binding_id().tbh().to_string()
        );
        assert!(body["referred"].is_null());
    }
}

async fn server_preference_decides_the_key_parameters(d: Deployment) {
    let server = d
        .start(|b| b.key_parameters(&[PSS, EC]).unwrap(), layer())
        .await;
    let client = server.client(|b| b.key_parameters(&[EC, PSS]).unwrap());
    let res = client.get(server.url()).await.unwrap();
    assert_eq!(json_body(&res)["provided"]["key_parameters"], "rsa2048_pss");
}

async fn without_negotiation_requests_pass_with_no_id(d: Deployment) {
    // No common key parameters.
    let server = d
        .start(|b| b.key_parameters(&[PKCS1]).unwrap(), layer())
        .await;
    let client = server.client(|b| b.key_parameters(&[EC]).unwrap());
    let res = client.get(server.url()).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = json_body(&res);
    assert!(
        body["token_binding"].is_null() && body["provided"].is_null(),
        "{body}"
    );

    // Client without Extended Master Secret on TLS 1.2.
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b.without_extended_master_secret().tls12_only());
    let mut conn = server.connect(&client).await;
    assert!(conn.token_binding_header().is_none());
    let res = conn.send(get_req()).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = json_body(&res);
    assert!(
        body["token_binding"].is_null() && body["provided"].is_null(),
        "{body}"
    );
}

async fn tls13_with_and_without_the_opt_in(d: Deployment) {
    let server = d.start(|b| b.tls13_token_binding(true), layer()).await;
    let client = server.client(|b| b);
    let body = json_body(&client.get(server.url()).await.unwrap());
    if d.sees_the_connection() {
        assert_eq!(body["tls_version"], "TLSv1.3");
    }
    assert!(body["provided"]["tbh"].is_string(), "{body}");

    let server = d.start(|b| b, layer()).await;
    let body = json_body(&server.client(|b| b).get(server.url()).await.unwrap());
    if d.sees_the_connection() {
        assert_eq!(
            body["tls_version"], "TLSv1.2",
            "capped at 1.2 so Token Binding works"
        );
    }
    assert!(body["provided"]["tbh"].is_string());

    let server = d
        .start(|b| b.cap_at_tls12_for_token_binding(false), layer())
        .await;
    let body = json_body(&server.client(|b| b).get(server.url()).await.unwrap());
    if d.sees_the_connection() {
        assert_eq!(body["tls_version"], "TLSv1.3");
    }
    assert!(body["token_binding"].is_null() && body["provided"].is_null());
}

async fn draft_protocol_versions_when_enabled(d: Deployment) {
    let server = d.start(|b| b.draft_versions(true), layer()).await;
    let v = ProtocolVersion::new(0, 13);
    let client = server.client(|b| b.protocol_versions(v, v));
    let body = json_body(&client.get(server.url()).await.unwrap());
    if d.sees_the_connection() {
        assert_eq!(body["token_binding"]["version"], "0.13");
    }
    assert!(body["provided"]["tbh"].is_string());

    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b.protocol_versions(v, v));
    let body = json_body(&client.get(server.url()).await.unwrap());
    assert!(
        body["token_binding"].is_null() && body["provided"].is_null(),
        "{body}"
    );
}

async fn resumed_connection_negotiates_again_and_refuses_the_old_header(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b.resume_sessions(true).tls12_only());
    let mut first = server.connect(&client).await;
    let old_header = first.token_binding_header().unwrap().clone();
    assert_eq!(first.send(get_req()).await.unwrap().status(), 200);
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await; // let close_notify go out

    let mut second = server.connect(&client).await;
    assert!(second.info().session_reused(), "session resumed");
    assert_ne!(
        second.token_binding_header().unwrap(),
        &old_header,
        "fresh EKM, fresh signature"
    );
    let res = second.send(get_req()).await.unwrap();
    assert_eq!(res.status(), 200);
    if d.sees_the_connection() {
        assert_eq!(json_body(&res)["resumed"], true);
    }
    let replay = second
        .send_as_is(with_header(
            "sec-token-binding",
            old_header.to_str().unwrap(),
        ))
        .await
        .unwrap();
    assert_rejected(&replay, "invalid_signature");
}

async fn forged_signature_is_refused(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b);
    let mut conn = server.connect(&client).await;
    // The client's TBID, but signed by an attacker's key: the signature cannot verify.
    let attacker = SigningKey::generate(EC).unwrap();
    let ekm = conn.info().ekm().unwrap().clone();
    let genuine = base64url::decode(conn.token_binding_header().unwrap().as_bytes()).unwrap();
    let forged_sig = attacker
        .sign(&ekm.signed_input(tokbind::proto::TokenBindingType::PROVIDED, EC))
        .unwrap();
    let mut forged = genuine.clone();
    forged[73..137].copy_from_slice(&forged_sig);
    let res = conn
        .send_as_is(with_header(
            "sec-token-binding",
            &base64url::encode(&forged),
        ))
        .await
        .unwrap();
    assert_rejected(&res, "invalid_signature");
    // Flipping one bit of the genuine signature is refused too.
    let mut flipped = genuine;
    flipped[100] ^= 0x01;
    let res = conn
        .send_as_is(with_header(
            "sec-token-binding",
            &base64url::encode(&flipped),
        ))
        .await
        .unwrap();
    assert_rejected(&res, "invalid_signature");
    // And the genuine header still works on the same connection afterwards.
    assert_eq!(conn.send(get_req()).await.unwrap().status(), 200);
}

async fn header_replayed_on_another_connection_is_refused(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b);
    let mut a = server.connect(&client).await;
    let mut b = server.connect(&client).await;
    let stolen = a
        .token_binding_header()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.send(get_req()).await.unwrap().status(),
        200,
        "verified (and cached) on A"
    );
    let res = b
        .send_as_is(with_header("sec-token-binding", &stolen))
        .await
        .unwrap();
    assert_rejected(&res, "invalid_signature");
    // The thief's own connection from another client: same refusal.
    let thief = server.client(|b| b);
    let mut t = server.connect(&thief).await;
    let res = t
        .send_as_is(with_header("sec-token-binding", &stolen))
        .await
        .unwrap();
    assert_rejected(&res, "invalid_signature");
}

async fn duplicate_headers_are_refused_with_400(d: Deployment) {
    let server = d.start(|b| b, layer().legacy_header_name(true)).await;
    let client = server.client(|b| b);
    let mut conn = server.connect(&client).await;
    let value = conn.token_binding_header().unwrap().clone();
    let req = http::Request::get("/")
        .header("sec-token-binding", value.clone())
        .header("sec-token-binding", value.clone())
        .body(Default::default())
        .unwrap();
    assert_rejected(&conn.send_as_is(req).await.unwrap(), "duplicate_header");
    let req = http::Request::get("/")
        .header("sec-token-binding", value.clone())
        .header("token-binding", value.clone())
        .body(Default::default())
        .unwrap();
    assert_rejected(&conn.send_as_is(req).await.unwrap(), "duplicate_header");
    // A comma-joined pair in one header is not a message either.
    let joined = format!("{0},{0}", value.to_str().unwrap());
    assert_rejected(
        &conn
            .send_as_is(with_header("sec-token-binding", &joined))
            .await
            .unwrap(),
        "invalid_base64url",
    );
}

async fn garbage_headers_are_refused_with_400(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b);
    let mut conn = server.connect(&client).await;
    let value = conn
        .token_binding_header()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let bytes = base64url::decode(value.as_bytes()).unwrap();
    let truncated = base64url::encode(&bytes[..bytes.len() - 3]);
    let mut trailing = bytes.clone();
    trailing.push(0);
    let trailing = base64url::encode(&trailing);
    for (header, reason) in [
        ("not base64!", "invalid_base64url"),
        (&format!("{value}="), "invalid_base64url"),
        // 139 bytes end in a 2-character group whose last character has 4 padding bits;
        // `B` sets one of them: a non-canonical encoding.
        (
            &format!("{}B", &value[..value.len() - 1]),
            "invalid_base64url",
        ),
        ("AAAA", "malformed_message"),
        ("AAA", "malformed_message"),
        (&truncated, "malformed_message"),
        (&trailing, "malformed_message"),
    ] {
        let res = conn
            .send_as_is(with_header("sec-token-binding", header))
            .await
            .unwrap();
        assert_rejected(&res, reason);
    }
}

async fn header_without_negotiation_is_refused(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b.offer_token_binding(false));
    let mut conn = server.connect(&client).await;
    assert!(conn.info().negotiated().is_none());
    let key = SigningKey::generate(EC).unwrap();
    let header = MessageBuilder::new(&Ekm::new([3; 32]))
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap();
    let res = conn
        .send_as_is(with_header("sec-token-binding", &header))
        .await
        .unwrap();
    assert_rejected(&res, "not_negotiated");
    // Without the header the same connection is served (with no ID).
    assert_eq!(conn.send(get_req()).await.unwrap().status(), 200);
}

async fn missing_header_on_a_negotiated_connection(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b);
    let mut conn = server.connect(&client).await;
    assert_rejected(&conn.send_as_is(get_req()).await.unwrap(), "missing_header");

    let server = d
        .start(|b| b, layer().missing_header(MissingHeader::Allow))
        .await;
    let mut conn = server.connect(&server.client(|b| b)).await;
    let res = conn.send_as_is(get_req()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(json_body(&res)["provided"].is_null());
}

async fn token_binding_can_be_required(d: Deployment) {
    let server = d
        .start(|b| b, layer().unnegotiated(Unnegotiated::Reject))
        .await;
    let res = server
        .client(|b| b.offer_token_binding(false))
        .get(server.url())
        .await
        .unwrap();
    assert_rejected(&res, "token_binding_required");
    assert_eq!(
        server
            .client(|b| b)
            .get(server.url())
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn provided_and_referred_with_different_key_parameters(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b);
    let mut conn = server.connect(&client).await;
    let ekm = conn.info().ekm().unwrap().clone();
    let provided = conn.provided_key().unwrap().clone();
    let referred = SigningKey::generate(PSS).unwrap(); // the key used with another server
    let header = MessageBuilder::new(&ekm)
        .provided(provided.as_ref())
        .unwrap()
        .referred(&referred)
        .unwrap()
        .to_header_value()
        .unwrap();
    let res = conn
        .send_as_is(with_header("sec-token-binding", &header))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body());
    let body = json_body(&res);
    assert_eq!(
        body["provided"]["tbh"],
        provided.token_binding_id().tbh().to_string()
    );
    assert_eq!(
        body["referred"]["tbh"],
        referred.token_binding_id().tbh().to_string()
    );

    // The provided binding itself must use the negotiated key parameters.
    let wrong = MessageBuilder::new(&ekm)
        .provided(&referred)
        .unwrap()
        .to_header_value()
        .unwrap();
    let res = conn
        .send_as_is(with_header("sec-token-binding", &wrong))
        .await
        .unwrap();
    assert_rejected(&res, "key_parameters_mismatch");
}

async fn http2_carries_token_binding_and_reuses_the_verdict(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let client = server.client(|b| b);
    let mut conn = server.connect(&client).await;
    assert!(conn.is_http2(), "ALPN selected h2");
    for _ in 0..3 {
        let res = conn.send(get_req()).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            json_body(&res)["provided"]["tbh"],
            conn.provided_key()
                .unwrap()
                .token_binding_id()
                .tbh()
                .to_string()
        );
    }
    // A stream with a forged header on the same HTTP/2 connection is refused, others are not.
    let res = conn
        .send_as_is(with_header("sec-token-binding", "AIkA"))
        .await
        .unwrap();
    assert_rejected(&res, "malformed_message");
    assert_eq!(conn.send(get_req()).await.unwrap().status(), 200);
}

async fn legacy_header_name_only_when_configured(d: Deployment) {
    let server = d.start(|b| b, layer()).await;
    let mut conn = server.connect(&server.client(|b| b)).await;
    let value = conn
        .token_binding_header()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // Not configured: `Token-Binding` is not the header, so the negotiated connection
    // has none.
    assert_rejected(
        &conn
            .send_as_is(with_header("token-binding", &value))
            .await
            .unwrap(),
        "missing_header",
    );

    let server = d.start(|b| b, layer().legacy_header_name(true)).await;
    let mut conn = server.connect(&server.client(|b| b)).await;
    let value = conn
        .token_binding_header()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let res = conn
        .send_as_is(with_header("token-binding", &value))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(json_body(&res)["provided"]["tbh"].is_string());
}

async fn bound(ProvidedBinding(id): ProvidedBinding) -> String {
    id.tbh().to_string()
}

async fn extractors_say_what_is_missing(d: Deployment) {
    // With the layer: an unbound client gets 403 from the extractor.
    let app = Router::new().route("/", get(bound));
    let server = d.start_app(|b| b, app, layer()).await;
    let res = server
        .client(|b| b.offer_token_binding(false))
        .get(server.url())
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(json_body(&res)["reason"], "token_binding_missing");
    let res = server.client(|b| b).get(server.url()).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn without_the_layer_the_extractor_names_it() {
    // Without the layer: a 500 that names the missing layer, never a silent pass.
    let server = start_app(|b| b, Router::new().route("/", get(bound))).await;
    let res = server.client(|b| b).get(server.url()).await.unwrap();
    assert_eq!(res.status(), 500);
    let body = json_body(&res);
    assert_eq!(body["reason"], "token_binding_layer_missing");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("TokenBindingLayer")
    );
}
