//! Serve a Tower service (an axum `Router`, say) over Token Binding TLS.
//!
//! Each accepted connection does its TLS handshake in its own task (one slow client never
//! holds up the accept loop), then is served by hyper — HTTP/1.1 or HTTP/2, chosen by ALPN
//! — with an `Arc<`[`ConnectionInfo`](tokbind_proto::ConnectionInfo)`>` inserted into every request's extensions. That is
//! what `tower_tokbind::TokenBindingLayer` reads.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokbind_proto::ProvenKeys;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::server::TokenBindingAcceptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serve `service` on `listener`. Await the result (it runs until the listener fails), or
/// call [`Serve::with_graceful_shutdown`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tokbind_tls::{serve, SelfSigned, TokenBindingAcceptor};
///
/// let cert = SelfSigned::generate(&["localhost", "127.0.0.1"])?;
/// let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
/// });
/// serve(listener, acceptor, app).await?;
/// # Ok(()) }
/// ```
pub fn serve<S>(listener: TcpListener, acceptor: TokenBindingAcceptor, service: S) -> Serve<S> {
    Serve {
        listener,
        acceptor,
        service,
    }
}

/// The future of [`serve`].
#[must_use = "a server does nothing until awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    acceptor: TokenBindingAcceptor,
    service: S,
}

impl<S> Serve<S> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Stop accepting when `signal` completes, then wait for open connections to finish
    /// their in-flight requests (HTTP/2 connections get a GOAWAY).
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<S, F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }
}

/// The future of [`Serve::with_graceful_shutdown`].
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<S, F> {
    serve: Serve<S>,
    signal: F,
}

impl<S, B> IntoFuture for Serve<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self, std::future::pending()))
    }
}

impl<S, B, F> IntoFuture for WithGracefulShutdown<S, F>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self.serve, self.signal))
    }
}

async fn run<S, B>(serve: Serve<S>, signal: impl Future<Output = ()> + Send) -> io::Result<()>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Serve {
        listener,
        acceptor,
        service,
    } = serve;
    let graceful = GracefulShutdown::new();
    let http = auto::Builder::new(TokioExecutor::new());
    let mut signal = std::pin::pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, service, http) = (acceptor.clone(), service.clone(), http.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let (tls, info) = match acceptor.accept(tcp).await {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let info = Arc::new(info);
            let certificate_key = info.client_certificate_key();
            let service = service.map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(Arc::clone(&info));
                // A client certificate proves its key on every request of the connection.
                if let Some(key) = &certificate_key {
                    req.extensions_mut().insert(ProvenKeys::one(key.clone()));
                }
                req
            });
            let conn = http
                .serve_connection_with_upgrades(
                    TokioIo::new(tls),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one pending connection, not of the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
