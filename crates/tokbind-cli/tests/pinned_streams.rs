//! HTTP/2 clients that keep their streams' flow-control windows shut, so that no response
//! can be sent, hold `tokbind serve`'s descriptors only until the progress timeout (5 s
//! here, so that every pin is made before the first runs out): then
//! their streams are reset, their connections are idle, and running out of descriptors
//! closes them to serve a new client.

mod common;
use common::tls;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// An HTTP/2 connection whose client allows no DATA (SETTINGS_INITIAL_WINDOW_SIZE 0), with
/// one `GET /` whose response head has arrived and whose body never can; held by the task
/// returned. `None` if the server did not take the connection within a second.
async fn pinned(addr: SocketAddr) -> Option<tokio::task::JoinHandle<()>> {
    let pin = async {
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(0)
            .handshake(TokioIo::new(tls(addr, false).await))
            .await
            .ok()?;
        tokio::spawn(conn);
        let req = http::Request::get(format!("https://{addr}/"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.ok()?;
        Some(tokio::spawn(async move {
            // Hold the response (and the connection) until the server gives up on it.
            let _ = res.into_body().collect().await;
            let _sender = sender;
            std::future::pending::<()>().await;
        }))
    };
    tokio::time::timeout(Duration::from_secs(1), pin)
        .await
        .ok()?
}

async fn fetch(addr: SocketAddr) -> u16 {
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls(addr, true).await))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    res.status().as_u16()
}

#[tokio::test]
async fn streams_held_shut_stop_holding_descriptors_at_the_progress_timeout() {
    let served = common::spawn_listening_under(
        &["prlimit", "--nofile=64:64", "--"],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--progress-timeout",
            "5s",
        ],
    );
    let addr: SocketAddr = served.addr();
    // Pinned connections, one after the other, until the server has no descriptor left
    // for another (64 in all, a few of them its own).
    let mut pins = Vec::new();
    while let Some(pin) = pinned(addr).await {
        pins.push(pin);
        assert!(pins.len() < 64, "the descriptor limit did not act");
    }
    assert!(pins.len() > 40, "only {} connections pinned", pins.len());
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(12), fetch(addr))
        .await
        .expect("a new client was served while pinned streams held the descriptors");
    assert_eq!(status, 200);
    let took = started.elapsed();
    // The first pins run out of time 5 s after they were made, which was before `started`.
    assert!(took < Duration::from_secs(6), "{took:?}");
    for pin in pins {
        pin.abort();
    }
    drop(served);
}
