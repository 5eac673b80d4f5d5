//! The connection's facts reach the layers from one place, `Arc<ConnectionInfo>`: the peer a
//! TTRP backend decides trust on, and the client certificate proven beside Token Binding.
//! Driven with `MockConnectionInfo`, as axum apps are tested with `MockConnectInfo`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use tokbind_proto::{
    ConnectionInfo, KeyParameters, Mechanism, ProvenKeys, SigningKey, TlsVersion,
    TokenBindingSigner as _, base64url,
};
use tower::{ServiceBuilder, ServiceExt as _, service_fn};
use tower_tokbind::ttrp::{ForwardedTokenBindingLayer, SEC_PROVIDED_TOKEN_BINDING_ID};
use tower_tokbind::{MockConnectionInfo, TokenBindingLayer, TokenBindingState};

/// What the app saw: the verified provided TBID (base64url), if any, and the mechanisms
/// of the keys proven for the request.
async fn seen(
    layer: impl tower_layer::Layer<
        tower::util::ServiceFn<
            fn(
                Request<Full<Bytes>>,
            ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
        >,
        Service: tower_service::Service<
            Request<Full<Bytes>>,
            Response = Response<http_body_util::Either<Full<Bytes>, Full<Bytes>>>,
            Error = Infallible,
        >,
    >,
    req: Request<Full<Bytes>>,
) -> String {
    fn app(
        req: Request<Full<Bytes>>,
    ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
        let provided = req
            .extensions()
            .get::<TokenBindingState>()
            .and_then(|s| s.verified())
            .map(|v| base64url::encode(v.provided.as_bytes()));
        let mechanisms: Vec<&str> = req
            .extensions()
            .get::<ProvenKeys>()
            .map(|k| k.iter().map(|k| k.mechanism().label()).collect())
            .unwrap_or_default();
        let body = format!("{} {}", provided.unwrap_or_default(), mechanisms.join(","));
        std::future::ready(Ok(Response::new(Full::new(Bytes::from(body)))))
    }
    let svc = layer.layer(service_fn(app as fn(_) -> _));
    let res = svc.oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn from(peer: &str) -> ConnectionInfo {
    ConnectionInfo::without_token_binding(TlsVersion::Tls13, true, false)
        .with_peer_addr(peer.parse::<SocketAddr>().unwrap())
}

fn forwarded(tbid: &str) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::default());
    req.headers_mut()
        .insert(SEC_PROVIDED_TOKEN_BINDING_ID, tbid.parse().unwrap());
    req
}

#[tokio::test]
async fn a_ttrp_backend_trusts_the_peer_the_connection_facts_name() {
    let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
    let tbid = base64url::encode(key.token_binding_id().as_bytes());
    let forwarded_layer = || ForwardedTokenBindingLayer::trusting(["10.0.0.5/32"]).unwrap();

    // From the trusted proxy: the forwarded ID is the request's provided binding.
    let trusted = ServiceBuilder::new()
        .layer(MockConnectionInfo::new(from("10.0.0.5:40000")))
        .layer(forwarded_layer());
    assert_eq!(
        seen(trusted, forwarded(&tbid)).await,
        format!("{tbid} {}", Mechanism::TokenBinding.label())
    );

    // From anyone else, the same header is removed and proves nothing.
    let untrusted = ServiceBuilder::new()
        .layer(MockConnectionInfo::new(from("10.0.0.6:40000")))
        .layer(forwarded_layer());
    assert_eq!(seen(untrusted, forwarded(&tbid)).await, " ");

    // No peer at all: trusted by nobody.
    let unknown = ServiceBuilder::new()
        .layer(MockConnectionInfo::new(
            ConnectionInfo::without_token_binding(TlsVersion::Tls13, true, false),
        ))
        .layer(forwarded_layer());
    assert_eq!(seen(unknown, forwarded(&tbid)).await, " ");
}

#[tokio::test]
async fn the_token_binding_layer_proves_the_client_certificate_of_the_connection() {
    let der: &[u8] = b"a DER certificate, as the TLS stack hands it over";
    let with_certificate = ServiceBuilder::new()
        .layer(MockConnectionInfo::new(
            from("127.0.0.1:1").with_client_certificate(der),
        ))
        .layer(TokenBindingLayer::new());
    assert_eq!(
        seen(with_certificate, Request::new(Full::default())).await,
        format!(" {}", Mechanism::MtlsCertificate.label())
    );

    let without = ServiceBuilder::new()
        .layer(MockConnectionInfo::new(from("127.0.0.1:1")))
        .layer(TokenBindingLayer::new());
    assert_eq!(seen(without, Request::new(Full::default())).await, " ");
}
