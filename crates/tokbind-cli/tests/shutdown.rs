//! How `tokbind proxy` and `tokbind serve` stop: the first SIGINT or SIGTERM lets requests
//! in flight finish for at most `--drain-timeout`, a second one stops the process at once.
//! The request held in flight is one the proxy's backend never answers.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Served, spawn_listening};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A backend that accepts requests and never answers them.
async fn silent_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await;
            held.push(tcp);
        }
    });
    addr
}

/// `tokbind proxy` in front of a silent backend, with one request in flight through it.
async fn proxy_with_a_request_in_flight(extra: &[&str]) -> (Served, impl tokio::io::AsyncWrite) {
    let backend = format!("http://{}", silent_backend().await);
    let mut args = vec![
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &backend,
        "--upstream-timeout",
        "60s",
    ];
    args.extend_from_slice(extra);
    let served = spawn_listening(&args);
    let addr: SocketAddr = served.addr();
    let connector = tokbind_tls::TokenBindingConnector::builder()
        .server_verification(tokbind_tls::ServerVerification::InsecureAcceptAnything)
        .offer_token_binding(false)
        .http1_only()
        .build()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut tls, _) = connector.connect("127.0.0.1", tcp).await.unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // Give the proxy time to forward it (the backend then holds it).
    tokio::time::sleep(Duration::from_millis(300)).await;
    (served, tls)
}

#[tokio::test]
async fn a_request_in_flight_holds_a_shutdown_for_at_most_the_drain_timeout() {
    let (mut proxy, _tls) = proxy_with_a_request_in_flight(&["--drain-timeout", "1s"]).await;
    let at = Instant::now();
    proxy.signal("TERM");
    // Still draining a little later: the request in flight has its time.
    assert!(proxy.exited_within(Duration::from_millis(500)).is_none());
    let status = proxy
        .exited_within(Duration::from_secs(10))
        .expect("the proxy stopped after the drain timeout");
    let took = at.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_second_signal_stops_at_once() {
    let (mut proxy, _tls) = proxy_with_a_request_in_flight(&["--drain-timeout", "60s"]).await;
    proxy.signal("INT");
    assert!(
        proxy.exited_within(Duration::from_millis(500)).is_none(),
        "the first signal only begins the drain"
    );
    let at = Instant::now();
    proxy.signal("INT");
    let status = proxy
        .exited_within(Duration::from_secs(5))
        .expect("the second signal stopped the proxy");
    assert!(at.elapsed() < Duration::from_secs(2));
    assert_eq!(status.code(), Some(130));
}

#[tokio::test]
async fn an_idle_server_stops_at_once() {
    let mut serve = common::serve(&[]);
    let at = Instant::now();
    serve.signal("INT");
    let status = serve
        .exited_within(Duration::from_secs(5))
        .expect("serve stopped");
    assert!(status.success(), "{status}");
    assert!(at.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_signal_as_soon_as_the_server_listens_is_a_graceful_shutdown() {
    // "listening on" is the contract a supervisor waits for: a SIGTERM right after it must
    // not meet the default disposition. Forty tries, to catch the window if there is one.
    for round in 0..40 {
        for command in [
            &["serve"][..],
            &["proxy", "--upstream", "http://127.0.0.1:9"][..],
        ] {
            let mut args = command.to_vec();
            args.extend(["--listen", "127.0.0.1:0"]);
            let mut served = spawn_listening(&args);
            served.signal("TERM");
            let status = served
                .exited_within(Duration::from_secs(5))
                .expect("stopped");
            assert!(status.success(), "{command:?}, round {round}: {status}");
        }
    }
}
