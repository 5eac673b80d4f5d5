//! [`MockConnectionInfo`]: connection facts for tests, as axum's `MockConnectInfo` gives
//! `ConnectInfo` to a router driven without a server.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tokbind_proto::ConnectionInfo;
use tower_layer::Layer;
use tower_service::Service;

/// Puts the same `Arc<`[`ConnectionInfo`]`>` in every request that has none, so the layers
/// can be driven with [`tower::ServiceExt::oneshot`](https://docs.rs/tower/latest/tower/trait.ServiceExt.html#method.oneshot)
/// and no TLS listener. A request that already carries connection facts keeps them.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::get, body::Body};
/// use http::{Request, StatusCode};
/// use tokbind_proto::{ConnectionInfo, TlsVersion};
/// use tower::ServiceExt as _;
/// use tower_tokbind::{MockConnectionInfo, TokenBindingLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let plain = ConnectionInfo::without_token_binding(TlsVersion::Tls13, true, false)
///     .with_peer_addr(([127, 0, 0, 1], 50000).into());
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(TokenBindingLayer::new())
///     .layer(MockConnectionInfo::new(plain));
///
/// // A Token Binding header on a connection that did not negotiate it is refused.
/// let req = Request::get("/").header("sec-token-binding", "AIkA").body(Body::empty()).unwrap();
/// assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::BAD_REQUEST);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MockConnectionInfo(Arc<ConnectionInfo>);

impl MockConnectionInfo {
    /// Every request gets `info`.
    pub fn new(info: ConnectionInfo) -> Self {
        Self(Arc::new(info))
    }
}

impl<S> Layer<S> for MockConnectionInfo {
    type Service = MockConnectionInfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MockConnectionInfoService {
            inner,
            info: Arc::clone(&self.0),
        }
    }
}

/// The service made by [`MockConnectionInfo`].
#[derive(Debug, Clone)]
pub struct MockConnectionInfoService<S> {
    inner: S,
    info: Arc<ConnectionInfo>,
}

impl<S, B> Service<Request<B>> for MockConnectionInfoService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if req.extensions().get::<Arc<ConnectionInfo>>().is_none() {
            req.extensions_mut().insert(Arc::clone(&self.info));
        }
        self.inner.call(req)
    }
}
