//! The serve helper's limits against slow and greedy clients, over real sockets on
//! loopback. Each test sets short limits (about a second) and checks both that the limit
//! acts and that it acts no sooner than configured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokbind_tls::Limits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

mod common;
use common::*;

/// Sends a request head that never ends, a byte every 100 ms, for at most 5 s: how long
/// after its first byte the server closed the connection.
async fn drip_head<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    tls: &mut S,
) -> Duration {
    let started = Instant::now();
    for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        .iter()
        .chain([b'a'; 64].iter())
        .take(50)
    {
        if tls.write_all(&[*byte]).await.is_err()
            || closed_after(&mut *tls, Duration::from_millis(100))
                .await
                .is_some()
        {
            return started.elapsed();
        }
    }
    panic!("the connection was still open after 5 s of dripping");
}

#[tokio::test]
async fn a_header_sent_a_byte_at_a_time_is_cut_off_at_the_header_read_timeout() {
    let limits = Limits::default().header_read_timeout(Duration::from_secs(1));
    let server = start(limits, Duration::from_secs(10), ok()).await;
    let mut tls = tls(&server, Alpn::Http1).await;
    let closed = drip_head(&mut tls).await;
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
        "closed after {closed:?}, expected at the 1 s header read timeout"
    );
}

#[tokio::test]
async fn a_second_header_sent_a_byte_at_a_time_is_cut_off_at_the_header_read_timeout_too() {
    // The idle timeout is far longer: only the header read timeout can close it in time.
    let limits = Limits::default()
        .header_read_timeout(Duration::from_secs(1))
        .idle_timeout(Duration::from_secs(8));
    let server = start(limits, Duration::from_secs(10), ok()).await;
    let mut tls = tls(&server, Alpn::Http1).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tls.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    // The next head, dripped.
    let closed = drip_head(&mut tls).await;
    // The watchdog looks at least once a header read timeout: at most one more second.
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_millis(3500),
        "closed after {closed:?}, expected at the 1 s header read timeout"
    );
}

#[tokio::test]
async fn a_next_header_begun_with_the_request_before_is_held_no_longer_than_an_idle_connection() {
    // The serve loop cannot see where hyper's parser split one read into a request and the
    // start of the next: those bytes get the idle timeout (README, "Limits"), never more.
    let limits = Limits::default()
        .header_read_timeout(Duration::from_secs(30))
        .idle_timeout(Duration::from_secs(1));
    let server = start(limits, Duration::from_secs(10), ok()).await;
    let mut tls = tls(&server, Alpn::Http1).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET / HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tls.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let closed = closed_after(&mut tls, Duration::from_secs(5)).await;
    // The watchdog looks at least once an idle timeout: at most one more second.
    assert!(
        closed.is_some_and(|c| c >= Duration::from_millis(800) && c < Duration::from_millis(3500)),
        "closed after {closed:?}, expected at the 1 s idle timeout"
    );
}

#[tokio::test]
async fn a_tls_connection_that_sends_no_request_is_closed_at_the_header_read_timeout() {
    let limits = Limits::default().header_read_timeout(Duration::from_secs(1));
    let server = start(limits, Duration::from_secs(10), ok()).await;
    for alpn in [Alpn::Http1, Alpn::Http2] {
        let mut tls = tls(&server, alpn).await;
        let closed = closed_after(&mut tls, Duration::from_secs(5)).await;
        assert!(
            closed.is_some_and(|c| c >= Duration::from_millis(900) && c < Duration::from_secs(3)),
            "{alpn:?}: closed after {closed:?}, expected at the 1 s header read timeout"
        );
    }
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_at_the_idle_timeout() {
    // The header read timeout is far longer: only the idle timeout can close it in time.
    let limits = Limits::default()
        .header_read_timeout(Duration::from_secs(30))
        .idle_timeout(Duration::from_secs(1));
    let server = start(limits, Duration::from_secs(10), ok()).await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls(&server, Alpn::Http1).await))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    for _ in 0..2 {
        let res = sender.send_request(get("/")).await.unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
    }
    let idle = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle connection was still open after 5 s")
        .unwrap()
        .unwrap();
    let closed = idle.elapsed();
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
        "closed after {closed:?} idle, expected at the 1 s idle timeout"
    );
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_at_the_idle_timeout() {
    let limits = Limits::default()
        .header_read_timeout(Duration::from_secs(30))
        .idle_timeout(Duration::from_secs(1));
    let server = start(limits, Duration::from_secs(10), ok()).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(tls(&server, Alpn::Http2).await),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let res = sender
        .send_request(get("https://127.0.0.1/"))
        .await
        .unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
    let idle = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle connection was still open after 5 s")
        .unwrap()
        .unwrap();
    let closed = idle.elapsed();
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
        "closed after {closed:?} idle, expected at the 1 s idle timeout"
    );
}

/// Copies bytes between a client and the server until told to freeze, then holds both
/// sockets open without moving a byte: a peer that went away without closing.
async fn freezable_relay(server: SocketAddr) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (freeze, frozen) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = TcpStream::connect(server).await.unwrap();
        let (cr, cw) = client.into_split();
        let (ur, uw) = upstream.into_split();
        let pipe = |mut from: tokio::net::tcp::OwnedReadHalf,
                    mut to: tokio::net::tcp::OwnedWriteHalf,
                    mut frozen: tokio::sync::watch::Receiver<bool>| async move {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = tokio::select! {
                    read = from.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return (from, to),
                        Ok(n) => n,
                    },
                    _ = frozen.wait_for(|f| *f) => return (from, to),
                };
                if to.write_all(&buf[..n]).await.is_err() {
                    return (from, to);
                }
            }
        };
        let a = tokio::spawn(pipe(cr, uw, frozen.clone()));
        let b = tokio::spawn(pipe(ur, cw, frozen));
        // Keep every half open (no FIN, no RST) until the test is over.
        let held = (a.await.unwrap(), b.await.unwrap());
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(held);
    });
    (addr, freeze)
}

#[tokio::test]
async fn http2_pings_find_a_peer_that_went_away_mid_request() {
    let limits = Limits::default()
        .header_read_timeout(Duration::from_secs(30))
        .idle_timeout(Duration::from_secs(30))
        .http2_keep_alive(Duration::from_millis(300), Duration::from_millis(300));
    let (entered_tx, mut entered) = tokio::sync::mpsc::channel::<()>(1);
    let (dropped_tx, mut dropped) = tokio::sync::mpsc::channel::<()>(1);
    // Never answers; says when it starts and when hyper drops it.
    let handler: Handler = Arc::new(move |_req| {
        let (entered, dropped) = (entered_tx.clone(), dropped_tx.clone());
        Box::pin(async move {
            struct OnDrop(tokio::sync::mpsc::Sender<()>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    let _ = self.0.try_send(());
                }
            }
            let _guard = OnDrop(dropped);
            entered.send(()).await.unwrap();
            std::future::pending().await
        })
    });
    let server = start(limits, Duration::from_secs(10), handler).await;
    let (relay, freeze) = freezable_relay(server.addr).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(tls_to(relay, &server.cert_pem, Alpn::Http2).await),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    tokio::spawn(async move { sender.send_request(get("https://127.0.0.1/")).await });
    entered.recv().await.unwrap();
    freeze.send_replace(true);
    let frozen = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), dropped.recv())
        .await
        .expect("the server still served a peer that answered no PING after 5 s");
    assert!(
        frozen.elapsed() >= Duration::from_millis(250),
        "dropped after {:?}",
        frozen.elapsed()
    );
}

#[tokio::test]
async fn http2_max_concurrent_streams_bounds_the_requests_in_flight() {
    let limits = Limits::default().http2_max_concurrent_streams(4);
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, m) = (Arc::clone(&now), Arc::clone(&most));
    let handler: Handler = Arc::new(move |_req| {
        let (now, most) = (Arc::clone(&n), Arc::clone(&m));
        Box::pin(async move {
            let current = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(current, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Response::new(Full::new(Bytes::from_static(b"ok")))
        })
    });
    let server = start(limits, Duration::from_secs(10), handler).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(tls(&server, Alpn::Http2).await),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // One request first, so the client has the server's SETTINGS before the burst.
    sender
        .send_request(get("https://127.0.0.1/"))
        .await
        .unwrap();
    most.store(0, Ordering::SeqCst);
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move { sender.send_request(get("https://127.0.0.1/")).await })
        })
        .collect();
    for request in burst {
        let res = tokio::time::timeout(Duration::from_secs(5), request)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        4,
        "at most 4 of the 12 requests were in flight at once"
    );
}

/// Sends `GET /` with one header of `size` bytes on a new connection.
async fn with_header(server: &Server, alpn: Alpn, size: usize) -> Result<StatusCode, String> {
    let tls = tls(server, alpn).await;
    let req = Request::get("https://127.0.0.1/")
        .header("host", "127.0.0.1")
        .header("x-large", "a".repeat(size))
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = match alpn {
        Alpn::Http1 => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await
        }
        Alpn::Http2 => {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await
        }
    };
    res.map(|r| r.status()).map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn max_header_bytes_answers_431_over_http1() {
    let limits = Limits::default().max_header_bytes(16 * 1024).unwrap();
    let server = start(limits, Duration::from_secs(10), ok()).await;
    assert_eq!(
        with_header(&server, Alpn::Http1, 8 * 1024).await,
        Ok(StatusCode::OK)
    );
    assert_eq!(
        with_header(&server, Alpn::Http1, 24 * 1024).await,
        Ok(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    );

    // The default lets the largest Sec-Token-Binding value through to the application,
    // whose TokenBindingLayer answers it (400 header_too_long).
    let server = start(Limits::default(), Duration::from_secs(10), ok()).await;
    let largest = tokbind_proto::header::MAX_HEADER_VALUE_LEN + 4;
    assert_eq!(
        with_header(&server, Alpn::Http1, largest).await,
        Ok(StatusCode::OK)
    );
}

#[tokio::test]
async fn http2_max_header_list_size_refuses_a_larger_header_block() {
    let limits = Limits::default().http2_max_header_list_size(4 * 1024);
    let server = start(limits, Duration::from_secs(10), ok()).await;
    assert_eq!(
        with_header(&server, Alpn::Http2, 2 * 1024).await,
        Ok(StatusCode::OK)
    );
    let refused = with_header(&server, Alpn::Http2, 8 * 1024).await;
    assert!(
        matches!(
            &refused,
            Ok(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE) | Err(_)
        ),
        "an 8 KiB header block over a 4 KiB limit: {refused:?}"
    );
}

#[tokio::test]
async fn at_the_connection_limit_new_clients_wait_in_the_backlog() {
    // 128 sockets that connect and say nothing against a limit of 64: the server holds 64
    // (each until the 1 s handshake timeout), the kernel's backlog the rest.
    let handshake_timeout = Duration::from_secs(1);
    let limits = Limits::default().max_connections(64).unwrap();
    let server = start(limits, handshake_timeout, ok()).await;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..128 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        silent.push(tokio::spawn(async move {
            closed_after(&mut tcp, Duration::from_secs(10)).await;
            started.elapsed()
        }));
    }
    // A real client behind them: served once two rounds of silent sockets have timed out.
    let fresh = tokio::spawn({
        let (addr, cert_pem) = (server.addr, server.cert_pem.clone());
        async move {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(
                tls_to(addr, &cert_pem, Alpn::Http1).await,
            ))
            .await
            .unwrap();
            tokio::spawn(conn);
            let res = sender.send_request(get("/")).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            started.elapsed()
        }
    });
    tokio::time::sleep(handshake_timeout * 3 / 2).await;
    let closed_in_first_round = silent.iter().filter(|s| s.is_finished()).count();
    assert_eq!(
        closed_in_first_round, 64,
        "only the 64 accepted sockets were served (and timed out) in the first second"
    );
    let served = tokio::time::timeout(Duration::from_secs(5), fresh)
        .await
        .expect("the real client was not served within 5 s")
        .unwrap();
    assert!(
        served >= handshake_timeout * 2 - Duration::from_millis(100)
            && served < handshake_timeout * 2 + Duration::from_secs(1),
        "served after {served:?}: expected after two handshake timeouts (2 s)"
    );
}

#[tokio::test]
async fn at_the_connection_limit_idle_keep_alive_connections_make_room() {
    // Eight clients got their answer and keep their connections open; the idle timeout is
    // far away. A ninth is served at once: the idle ones are closed to make room.
    let limits = Limits::default()
        .max_connections(8)
        .unwrap()
        .idle_timeout(Duration::from_secs(30))
        .header_read_timeout(Duration::from_secs(30));
    let server = start(limits, Duration::from_secs(10), ok()).await;
    let mut kept = Vec::new();
    for _ in 0..8 {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls(&server, Alpn::Http1).await))
                .await
                .unwrap();
        let conn = tokio::spawn(conn);
        assert_eq!(sender.send_request(get("/")).await.unwrap().status(), 200);
        kept.push((sender, conn));
    }
    let started = Instant::now();
    let ninth = async {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls(&server, Alpn::Http1).await))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender.send_request(get("/")).await.unwrap().status()
    };
    let status = tokio::time::timeout(Duration::from_secs(3), ninth)
        .await
        .expect("the ninth client was not served within 3 s");
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    let closed = kept.iter().filter(|(_, conn)| conn.is_finished()).count();
    assert!(closed >= 1, "an idle keep-alive connection was closed");
}

#[tokio::test]
async fn limits_at_the_end_of_time_serve_requests_and_panic_nothing() {
    let forever = Duration::MAX;
    let limits = Limits::default()
        .header_read_timeout(forever)
        .idle_timeout(forever)
        .progress_timeout(forever)
        .drain_timeout(forever)
        .http2_keep_alive(forever, forever);
    let server = start(limits, forever, ok()).await;
    for alpn in [Alpn::Http1, Alpn::Http2] {
        let tls = tls(&server, alpn).await;
        let status = match alpn {
            Alpn::Http1 => {
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                sender.send_request(get("/")).await.unwrap().status()
            }
            Alpn::Http2 => {
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let req = Request::get("https://127.0.0.1/")
                    .body(Full::<Bytes>::default())
                    .unwrap();
                sender.send_request(req).await.unwrap().status()
            }
        };
        assert_eq!(status, StatusCode::OK, "{alpn:?}");
    }
}
