//! The serve helper: connection info reaches the service, and graceful shutdown ends it.

use std::sync::Arc;
use std::time::Duration;

use tokbind_proto::ConnectionInfo;
use tokbind_tls::{SelfSigned, ServerVerification, TokenBindingAcceptor, TokenBindingConnector};

#[tokio::test]
async fn serves_connection_info_and_shuts_down_gracefully() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = tower::service_fn(|req: http::Request<tokbind_tls::RequestBody>| async move {
        let info = req.extensions().get::<Arc<ConnectionInfo>>().cloned();
        let body = match info.and_then(|i| i.negotiated()) {
            Some(n) => format!("negotiated {}", n.key_parameters),
            None => "none".to_string(),
        };
        Ok::<_, std::convert::Infallible>(http::Response::new(body))
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(std::future::IntoFuture::into_future(
        tokbind_tls::serve(listener, acceptor, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        }),
    ));

    // An HTTP/2 request (ALPN picks h2) over a Token Binding TLS connection.
    let connector = TokenBindingConnector::builder()
        .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
        .build()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tls, info) = connector.connect("127.0.0.1", tcp).await.unwrap();
    assert!(info.negotiated().is_some());
    assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("https://127.0.0.1:{}/", addr.port()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        &body[..],
        b"negotiated ecdsap256",
        "the service saw the connection's Token Binding"
    );
    drop(sender);
    let _ = conn.await;

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops after the signal")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_gets_its_whole_response_and_new_clients_are_refused() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The handler says when it has started, then waits to be released.
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
    let release = Arc::new(tokio::sync::Notify::new());
    let app = {
        let release = Arc::clone(&release);
        tower::service_fn(move |_req: http::Request<tokbind_tls::RequestBody>| {
            let (started_tx, release) = (Arc::clone(&started_tx), Arc::clone(&release));
            async move {
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                release.notified().await;
                Ok::<_, std::convert::Infallible>(http::Response::new(
                    "the whole answer".repeat(1000),
                ))
            }
        })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(std::future::IntoFuture::into_future(
        tokbind_tls::serve(listener, acceptor, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        }),
    ));

    let connector = TokenBindingConnector::builder()
        .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
        .http1_only()
        .build()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tls, _) = connector.connect("127.0.0.1", tcp).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = tokio::spawn(async move {
        let res = sender.send_request(req).await?;
        http_body_util::BodyExt::collect(res.into_body())
            .await
            .map(|b| b.to_bytes())
    });
    started.await.unwrap();

    // Shut down while the request is in flight.
    stop.send(()).unwrap();
    let refused_by = std::time::Instant::now() + Duration::from_secs(2);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            std::time::Instant::now() < refused_by,
            "new connections were still accepted 2 s after the shutdown signal"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !server.is_finished(),
        "the server waits for the request in flight"
    );
    assert!(!response.is_finished());

    release.notify_one();
    let body = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("the response arrives")
        .unwrap()
        .expect("the whole response, not a reset");
    assert_eq!(body, "the whole answer".repeat(1000));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops once the request is done")
        .unwrap()
        .unwrap();
    // The connection was closed after its last response (no keep-alive during shutdown).
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the connection was closed")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_request_that_never_finishes_holds_a_shutdown_no_longer_than_the_drain_timeout() {
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (started_tx, started) = tokio::sync::mpsc::channel::<()>(1);
    let app = tower::service_fn(move |_req: http::Request<tokbind_tls::RequestBody>| {
        let started_tx = started_tx.clone();
        async move {
            let _ = started_tx.send(()).await;
            std::future::pending::<()>().await;
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(std::future::IntoFuture::into_future(
        tokbind_tls::serve(listener, acceptor, app)
            .limits(tokbind_tls::Limits::default().drain_timeout(Duration::from_millis(800)))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            }),
    ));
    let connector = TokenBindingConnector::builder()
        .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
        .http1_only()
        .build()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tls, _) = connector.connect("127.0.0.1", tcp).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = tokio::spawn(sender.send_request(req));
    let mut started = started;
    started.recv().await.unwrap();

    let at = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops after the drain timeout")
        .unwrap()
        .unwrap();
    let took = at.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The request in flight was cut off: its connection is closed.
    let res = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("the client learns the connection is gone")
        .unwrap();
    assert!(
        res.is_err(),
        "no response to a request cut off at the drain timeout"
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
}
