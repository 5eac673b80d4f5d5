//! The serve loop over rustls (`RustlsAcceptor`): the connection facts the layers read, and
//! the same limits as over OpenSSL, against a real OpenSSL client on loopback.

use std::convert::Infallible;
use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokbind_tls::{
    ConnectionInfo, Limits, RequestBody, RustlsAcceptor, SelfSigned, ServerVerification,
    TlsVersion, TokenBindingConnector,
};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// A rustls server that answers with what the handshake told it:
/// `version negotiated client-cert-bytes peer-is-set`.
async fn start(limits: Limits, handshake_timeout: Duration) -> (SocketAddr, SelfSigned) {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let acceptor = RustlsAcceptor::builder(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .request_client_certificates(true)
        .handshake_timeout(handshake_timeout)
        .build()
        .unwrap();
    let app = tower::service_fn(|req: Request<RequestBody>| async move {
        let info = req.extensions().get::<Arc<ConnectionInfo>>().unwrap();
        let facts = format!(
            "{} {} {} {}",
            info.tls_version(),
            info.negotiated().is_some(),
            info.client_certificate().map_or(0, <[u8]>::len),
            info.peer_addr().is_some(),
        );
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(facts))))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tokbind_tls::serve(listener, acceptor, app)
            .limits(limits)
            .into_future(),
    );
    (addr, cert)
}

/// One HTTP/1.1 request from an OpenSSL client offering Token Binding, with `client_cert`.
async fn facts(addr: SocketAddr, cert: &SelfSigned, client_cert: Option<&SelfSigned>) -> String {
    let mut connector = TokenBindingConnector::builder()
        .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
        .http1_only();
    if let Some(c) = client_cert {
        connector = connector
            .client_certificate(&c.cert_pem, &c.key_pem)
            .unwrap();
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (tls, client_info) = connector
        .build()
        .unwrap()
        .connect("127.0.0.1", tcp)
        .await
        .unwrap();
    assert!(
        client_info.negotiated().is_none(),
        "rustls cannot negotiate Token Binding"
    );
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "127.0.0.1")
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn the_layers_get_the_tls_version_and_the_client_certificate() {
    let (addr, cert) = start(Limits::default(), Duration::from_secs(10)).await;
    assert_eq!(facts(addr, &cert, None).await, "TLSv1.3 false 0 true");
    let client = SelfSigned::generate(&["client"]).unwrap();
    let der = openssl::x509::X509::from_pem(&client.cert_pem)
        .unwrap()
        .to_der()
        .unwrap();
    assert_eq!(
        facts(addr, &cert, Some(&client)).await,
        format!("TLSv1.3 false {} true", der.len())
    );
    assert_eq!(TlsVersion::Tls13.to_string(), "TLSv1.3");
}

#[tokio::test]
async fn a_client_that_never_says_hello_is_closed_at_the_handshake_timeout() {
    let (addr, _cert) = start(Limits::default(), Duration::from_millis(500)).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "closed, not answered: {read:?}"
    );
    let closed = started.elapsed();
    assert!(
        closed >= Duration::from_millis(400) && closed < Duration::from_secs(3),
        "closed after {closed:?}, expected at the 500 ms handshake timeout"
    );
}

#[tokio::test]
async fn a_tls_connection_that_sends_no_request_is_closed_at_the_header_read_timeout() {
    let limits = Limits::default().header_read_timeout(Duration::from_secs(1));
    let (addr, cert) = start(limits, Duration::from_secs(10)).await;
    let connector = TokenBindingConnector::builder()
        .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
        .http1_only()
        .build()
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut tls, _) = connector.connect("127.0.0.1", tcp).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "closed: {read:?}");
    let closed = started.elapsed();
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
        "closed after {closed:?}, expected at the 1 s header read timeout"
    );
}
