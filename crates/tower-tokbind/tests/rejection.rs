//! Rejections: every kind has its own documented code, and whatever the response hook
//! answers, the rejection travels in the response's extensions.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokbind_proto::negotiation::{Negotiated, ProtocolVersion};
use tokbind_proto::{ConnectionInfo, Ekm, KeyParameters, MessageBuilder, SigningKey, TlsVersion};
use tower::{ServiceExt as _, service_fn};
use tower_layer::Layer as _;
use tower_tokbind::{HeaderErrorKind, RejectionKind, TokenBindingLayer, TokenBindingRejection};

fn connection(ekm: [u8; 32]) -> Arc<ConnectionInfo> {
    let negotiated = Negotiated {
        version: ProtocolVersion::new(1, 0),
        key_parameters: KeyParameters::ECDSAP256,
    };
    Arc::new(ConnectionInfo::with_token_binding(
        TlsVersion::Tls12,
        true,
        false,
        negotiated,
        Ekm::new(ekm),
    ))
}

async fn send(layer: &TokenBindingLayer, header: Option<&str>) -> Response<Bytes> {
    let app = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"app"))))
    }));
    let mut req = Request::new(Full::default());
    if let Some(h) = header {
        req.headers_mut()
            .insert("sec-token-binding", h.parse().unwrap());
    }
    req.extensions_mut().insert(connection([1; 32]));
    let res = app.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

#[test]
fn every_kind_has_a_distinct_code_documented_in_the_readme() {
    let readme = include_str!("../../../README.md");
    let mut seen = HashSet::new();
    for kind in RejectionKind::all() {
        let code = kind.reason();
        assert!(seen.insert(code), "{kind:?} shares the code {code}");
        assert!(
            readme.contains(&format!("`{code}`")),
            "the README does not document `{code}` ({kind:?})"
        );
    }
    assert_eq!(seen.len(), 6 + HeaderErrorKind::ALL.len());
}

#[tokio::test]
async fn the_rejection_is_in_the_extensions_of_the_default_response() {
    let res = send(&TokenBindingLayer::new(), Some("AIkA")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let rejection = res.extensions().get::<TokenBindingRejection>().unwrap();
    assert_eq!(
        rejection.kind(),
        RejectionKind::Header(HeaderErrorKind::MalformedMessage)
    );
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["reason"], "malformed_message");
}

#[tokio::test]
async fn a_custom_hook_chooses_the_form_and_the_rejection_still_travels() {
    let layer = TokenBindingLayer::new().rejection_response(|r: &TokenBindingRejection| {
        Response::builder()
            .status(r.status())
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(format!("refused: {}", r.reason()))))
            .unwrap()
    });

    // A real header, signed by a real key, but over another connection's EKM.
    let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
    let header = MessageBuilder::new(&Ekm::new([2; 32]))
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap();
    let res = send(&layer, Some(&header)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(&res.body()[..], b"refused: invalid_signature");
    assert_eq!(
        res.extensions()
            .get::<TokenBindingRejection>()
            .unwrap()
            .kind(),
        RejectionKind::Header(HeaderErrorKind::InvalidSignature)
    );

    // The same key over this connection's EKM passes the hook by.
    let header = MessageBuilder::new(&Ekm::new([1; 32]))
        .provided(&key)
        .unwrap()
        .to_header_value()
        .unwrap();
    let res = send(&layer, Some(&header)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(&res.body()[..], b"app");
    assert!(res.extensions().get::<TokenBindingRejection>().is_none());

    // No header on a connection that negotiated: the layer's own kind.
    let res = send(&layer, None).await;
    assert_eq!(&res.body()[..], b"refused: missing_header");
    assert_eq!(
        res.extensions()
            .get::<TokenBindingRejection>()
            .unwrap()
            .kind(),
        RejectionKind::MissingHeader
    );
}
