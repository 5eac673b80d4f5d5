//! The connect timeout: a peer that accepts the TCP connection and never answers the TLS
//! handshake costs the caller the configured time, then a typed error.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use tokbind_client::{Client, ClientError, DEFAULT_CONNECT_TIMEOUT};
use tokbind_tls::ServerVerification;
use tokio::net::TcpListener;

/// A loopback listener that accepts every connection and then neither reads nor writes
/// (the connections stay open until the test ends).
async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    url
}

fn client(timeout: Option<Duration>) -> Client {
    let b = Client::builder().server_verification(ServerVerification::InsecureAcceptAnything);
    match timeout {
        Some(t) => b.connect_timeout(t),
        None => b,
    }
    .build()
    .unwrap()
}

#[tokio::test]
async fn a_stalled_handshake_fails_with_the_timeout_after_the_configured_time() {
    let url = silent_server().await;
    let timeout = Duration::from_millis(300);
    let client = client(Some(timeout));
    let started = Instant::now();
    // The outer bound only keeps a broken timeout from hanging the test.
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        client.connect(&url.parse().unwrap()),
    )
    .await
    .expect("the connect timeout fired")
    .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, ClientError::ConnectTimeout { after } if after == timeout),
        "{err:?}"
    );
    assert!(took >= timeout, "gave up early: {took:?}");
    assert_eq!(
        err.to_string(),
        "no connection within 300ms (TCP connect and TLS handshake)"
    );
    // fetch connects the same way.
    let req = http::Request::get(url)
        .body(Full::<Bytes>::default())
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), client.fetch(req))
        .await
        .expect("the connect timeout fired")
        .unwrap_err();
    assert!(matches!(err, ClientError::ConnectTimeout { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn by_default_a_stalled_handshake_gives_up_after_ten_seconds() {
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(10));
    let url = silent_server().await;
    // The clock is paused and jumps ahead whenever everything waits on the network, so
    // the default's ten seconds pass without being waited for.
    let started = tokio::time::Instant::now();
    let err = client(None)
        .connect(&url.parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ConnectTimeout { after } if after == DEFAULT_CONNECT_TIMEOUT),
        "{err:?}"
    );
    // Virtual time: exactly the timeout passed, not some other timer's.
    let waited = started.elapsed();
    assert!(
        waited >= DEFAULT_CONNECT_TIMEOUT
            && waited < DEFAULT_CONNECT_TIMEOUT + Duration::from_secs(1),
        "{waited:?}"
    );
}
