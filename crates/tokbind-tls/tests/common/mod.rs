//! What the serve tests share: a server on loopback with given limits, TLS clients, and a
//! clock for closed connections.
#![allow(dead_code)] // each test file uses a part

use std::convert::Infallible;
use std::future::{Future, IntoFuture as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokbind_tls::{
    Limits, RequestBody, SelfSigned, ServerVerification, TokenBindingAcceptor,
    TokenBindingConnector,
};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_openssl::SslStream;

/// A server on 127.0.0.1:0; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub cert_pem: Vec<u8>,
    _stop: oneshot::Sender<()>,
}

pub type Handler = Arc<
    dyn Fn(Request<RequestBody>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

pub fn ok() -> Handler {
    Arc::new(|_req| Box::pin(async { Response::new(Full::new(Bytes::from_static(b"ok"))) }))
}

pub async fn start(limits: Limits, handshake_timeout: Duration, handler: Handler) -> Server {
    let app = tower::service_fn(move |req: Request<RequestBody>| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(handler(req).await) }
    });
    start_service(limits, handshake_timeout, app).await.0
}

/// [`start`] for any service; also the server's task, which ends when the server has
/// stopped.
pub async fn start_service<S, B>(
    limits: Limits,
    handshake_timeout: Duration,
    app: S,
) -> (Server, tokio::task::JoinHandle<std::io::Result<()>>)
where
    S: tower::Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .handshake_timeout(handshake_timeout)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        tokbind_tls::serve(listener, acceptor, app)
            .limits(limits)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let server = Server {
        addr,
        cert_pem: cert.cert_pem,
        _stop: stop,
    };
    (server, task)
}

impl Server {
    /// Begin a graceful shutdown.
    pub fn shut_down(self) {
        let _ = self._stop.send(());
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Alpn {
    Http1,
    Http2,
}

/// A finished TLS handshake with the server, offering `alpn`.
pub async fn tls(server: &Server, alpn: Alpn) -> SslStream<TcpStream> {
    tls_to(server.addr, &server.cert_pem, alpn).await
}

/// A finished TLS handshake with whatever listens on `addr` (the server, or a relay to
/// it), offering `alpn`.
pub async fn tls_to(addr: SocketAddr, cert_pem: &[u8], alpn: Alpn) -> SslStream<TcpStream> {
    let mut connector = TokenBindingConnector::builder()
        .server_verification(ServerVerification::Roots(cert_pem.to_vec()));
    if let Alpn::Http1 = alpn {
        connector = connector.http1_only();
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (tls, _) = connector
        .build()
        .unwrap()
        .connect("127.0.0.1", tcp)
        .await
        .unwrap();
    let expected: &[u8] = match alpn {
        Alpn::Http1 => b"http/1.1",
        Alpn::Http2 => b"h2",
    };
    assert_eq!(tls.ssl().selected_alpn_protocol(), Some(expected));
    tls
}

/// Reads (discarding what the server sends) until the server closes the connection, for
/// at most `within`; how long that took.
pub async fn closed_after<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::default())
        .unwrap()
}
