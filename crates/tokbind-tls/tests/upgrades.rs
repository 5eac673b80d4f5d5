//! A connection upgraded to another protocol (HTTP/1.1 `Upgrade`, a WebSocket say) leaves
//! hyper, but it still holds a descriptor: it keeps its place under the connection limit
//! until the application lets it go, and a graceful shutdown waits for it no longer than the
//! drain timeout.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokbind_tls::{Limits, RequestBody};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

mod common;
use common::*;

/// Answers `Upgrade: echo` with 101 and then echoes on the upgraded connection until the
/// client closes it; anything else with 200.
fn echo_app() -> impl tower::Service<
    Request<RequestBody>,
    Response = Response<Empty<bytes::Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|mut req: Request<RequestBody>| async move {
        if req.headers().get("upgrade").is_none() {
            return Ok::<_, Infallible>(Response::new(Empty::new()));
        }
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = TokioIo::new(upgrade.await.unwrap());
            let mut buf = [0u8; 64];
            loop {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if io.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut res = Response::new(Empty::new());
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        res.headers_mut()
            .insert("connection", http::HeaderValue::from_static("upgrade"));
        res.headers_mut()
            .insert("upgrade", http::HeaderValue::from_static("echo"));
        Ok(res)
    })
}

/// An upgraded connection to `server`, checked by one echo.
async fn upgraded(server: &Server) -> tokio_openssl::SslStream<tokio::net::TcpStream> {
    let mut tls = tls(server, Alpn::Http1).await;
    tls.write_all(
        b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tls.read(&mut byte).await.unwrap(),
            1,
            "the head ended early"
        );
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    tls.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tls.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
    tls
}

/// A GET on a new connection: its status, or `None` if no TLS handshake completed within
/// `within` (the server did not accept the connection).
async fn get_within(server: &Server, within: Duration) -> Option<StatusCode> {
    let tls = tokio::time::timeout(within, tls(server, Alpn::Http1))
        .await
        .ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let res = sender.send_request(get("/")).await.unwrap();
    Some(res.status())
}

#[tokio::test]
async fn an_upgraded_connection_keeps_its_place_under_the_connection_limit() {
    let limits = Limits::default().max_connections(1).unwrap();
    let (server, _task) = start_service(limits, Duration::from_secs(5), echo_app()).await;
    let echo = upgraded(&server).await;

    // The one place is the upgraded connection's: a new client waits in the backlog.
    assert_eq!(
        get_within(&server, Duration::from_millis(800)).await,
        None,
        "a second connection was accepted beside the upgraded one"
    );
    // Once the application lets the upgraded connection go, the place is free.
    drop(echo);
    assert_eq!(
        get_within(&server, Duration::from_secs(5)).await,
        Some(StatusCode::OK)
    );
}

#[tokio::test]
async fn a_graceful_shutdown_waits_for_an_upgraded_connection_at_most_the_drain_timeout() {
    let limits = Limits::default().drain_timeout(Duration::from_millis(800));
    let (server, task) = start_service(limits, Duration::from_secs(5), echo_app()).await;
    let _echo = upgraded(&server).await;
    let started = Instant::now();
    server.shut_down();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the server stops within the drain timeout")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}: it waited for the upgraded connection, then no longer than 800 ms"
    );
}
