//! `tokbind serve` and `tokbind proxy` (separate processes) against slow and greedy
//! clients: the limit flags, over real sockets on loopback, with limits of about a second.
//! Every test runs against both commands; the proxy's upstream limits follow.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use common::{Served, spawn_listening, spawn_listening_under, tls};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokbind_client::Client;
use tokbind_tls::ServerVerification;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug)]
enum Command {
    Serve,
    Proxy,
}

/// `tokbind serve` or `tokbind proxy` (in front of a backend answering `GET /`) with
/// `limits`, run by `wrapper`.
async fn start(command: Command, wrapper: &[&str], limits: &[&str]) -> (Served, SocketAddr) {
    let backend;
    let mut args = vec![];
    match command {
        Command::Serve => args.push("serve"),
        Command::Proxy => {
            backend = format!("http://{}", ok_backend().await);
            args.extend_from_slice(&["proxy", "--upstream", &backend]);
        }
    }
    args.extend_from_slice(&["--listen", "127.0.0.1:0"]);
    args.extend_from_slice(limits);
    let served = spawn_listening_under(wrapper, &args);
    let addr = served.addr();
    (served, addr)
}

async fn ok_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/", get(|| async { "ok" }))).await
    });
    addr
}

/// Reads (discarding what arrives) until the server closes the connection, for at most
/// `within`; how long that took.
async fn closed_after<S: AsyncRead + Unpin>(stream: &mut S, within: Duration) -> Option<Duration> {
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

/// A whole request on a fresh connection: its status.
async fn fetch(addr: SocketAddr) -> u16 {
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls(addr, true).await))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    res.into_body().collect().await.unwrap();
    status
}

fn assert_about(what: &str, took: Option<Duration>, expected: Duration) {
    assert!(
        took.is_some_and(
            |t| t + Duration::from_millis(100) >= expected && t < expected + Duration::from_secs(2)
        ),
        "{what}: after {took:?}, expected after {expected:?}"
    );
}

async fn header_drip(command: Command) {
    let (_served, addr) = start(command, &[], &["--header-read-timeout", "1s"]).await;
    let mut tls = tls(addr, true).await;
    let started = Instant::now();
    let mut closed = None;
    // One byte every 100 ms, for at most 5 s: the head never completes.
    for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        .iter()
        .chain(&[b'a'; 64])
        .take(50)
    {
        if tls.write_all(&[*byte]).await.is_err()
            || closed_after(&mut tls, Duration::from_millis(100))
                .await
                .is_some()
        {
            closed = Some(started.elapsed());
            break;
        }
    }
    assert_about("a header drip was cut off", closed, Duration::from_secs(1));
}

#[tokio::test]
async fn serve_cuts_off_a_header_drip() {
    header_drip(Command::Serve).await;
}

#[tokio::test]
async fn proxy_cuts_off_a_header_drip() {
    header_drip(Command::Proxy).await;
}

async fn silent_tls(command: Command) {
    let (_served, addr) = start(command, &[], &["--header-read-timeout", "1s"]).await;
    let mut tls = tls(addr, false).await;
    let closed = closed_after(&mut tls, Duration::from_secs(5)).await;
    assert_about(
        "a TLS connection with no request was closed",
        closed,
        Duration::from_secs(1),
    );
}

#[tokio::test]
async fn serve_closes_a_tls_connection_that_sends_no_request() {
    silent_tls(Command::Serve).await;
}

#[tokio::test]
async fn proxy_closes_a_tls_connection_that_sends_no_request() {
    silent_tls(Command::Proxy).await;
}

async fn idle_keep_alive(command: Command) {
    let (_served, addr) = start(
        command,
        &[],
        &["--header-read-timeout", "30s", "--idle-timeout", "1s"],
    )
    .await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls(addr, true).await))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
    let idle = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .ok()
        .map(|_| idle.elapsed());
    assert_about(
        "an idle keep-alive connection was closed",
        closed,
        Duration::from_secs(1),
    );
}

#[tokio::test]
async fn serve_closes_an_idle_keep_alive_connection() {
    idle_keep_alive(Command::Serve).await;
}

#[tokio::test]
async fn proxy_closes_an_idle_keep_alive_connection() {
    idle_keep_alive(Command::Proxy).await;
}

/// CPU time the process has used (user + system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime and stime are the
    // 12th and 13th, in clock ticks (100 a second on Linux).
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

async fn connection_limit(command: Command) {
    // 128 sockets that connect and say nothing, against a limit of 64 and a 1 s handshake
    // timeout: 64 are served (and time out) at a time, the rest wait in the backlog.
    let (served, addr) = start(
        command,
        &[],
        &["--max-connections", "64", "--handshake-timeout", "1s"],
    )
    .await;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..128 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        silent.push(tokio::spawn(async move {
            closed_after(&mut tcp, Duration::from_secs(10)).await
        }));
    }
    let fresh = tokio::spawn(async move {
        let status = fetch(addr).await;
        (status, started.elapsed())
    });
    let cpu_before = cpu_time(served.pid());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cpu_at_limit = cpu_time(served.pid()) - cpu_before;
    let first_round = silent.iter().filter(|s| s.is_finished()).count();
    assert_eq!(first_round, 64, "64 connections at a time");
    assert!(
        cpu_at_limit < Duration::from_millis(500),
        "the server used {cpu_at_limit:?} of CPU in 1.5 s at its connection limit"
    );
    let (status, served_after) = tokio::time::timeout(Duration::from_secs(5), fresh)
        .await
        .expect("the real client was not served within 5 s")
        .unwrap();
    assert_eq!(status, 200);
    assert_about(
        "a client behind 128 silent ones was served",
        Some(served_after),
        Duration::from_secs(2),
    );
}

#[tokio::test]
async fn serve_at_its_connection_limit_serves_new_clients_once_silent_ones_time_out() {
    connection_limit(Command::Serve).await;
}

#[tokio::test]
async fn proxy_at_its_connection_limit_serves_new_clients_once_silent_ones_time_out() {
    connection_limit(Command::Proxy).await;
}

async fn out_of_descriptors(command: Command) {
    // 64 descriptors in all, and 100 silent sockets: the server runs out of descriptors
    // long before its connection limit, and the silent sockets would hold them for 30 s.
    let (served, addr) = start(
        command,
        &["prlimit", "--nofile=64:64", "--"],
        &["--handshake-timeout", "30s", "--header-read-timeout", "30s"],
    )
    .await;
    let mut silent = Vec::new();
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        silent.push(tokio::spawn(async move {
            closed_after(&mut tcp, Duration::from_secs(30)).await
        }));
    }
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), fetch(addr))
        .await
        .expect("no client was served within 5 s while the server was out of descriptors");
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    let reclaimed = silent.iter().filter(|s| s.is_finished()).count();
    assert!(
        reclaimed > 0,
        "silent connections were closed to get descriptors back"
    );
    // Gone, and served again.
    for s in silent {
        s.abort();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fetch(addr).await, 200);
    drop(served);
}

#[tokio::test]
async fn serve_recovers_from_running_out_of_descriptors() {
    out_of_descriptors(Command::Serve).await;
}

#[tokio::test]
async fn proxy_recovers_from_running_out_of_descriptors() {
    out_of_descriptors(Command::Proxy).await;
}

// --- The proxy's upstream side ---------------------------------------------------------

async fn start_proxy(upstream: SocketAddr, extra: &[&str]) -> (Served, Client) {
    let upstream = format!("http://{upstream}");
    let mut args = vec!["proxy", "--listen", "127.0.0.1:0", "--upstream", &upstream];
    args.extend_from_slice(extra);
    let served = spawn_listening(&args);
    let client = Client::builder()
        .server_verification(ServerVerification::InsecureAcceptAnything)
        .build()
        .unwrap();
    (served, client)
}

/// `GET /` through the proxy: status, `reason` of a problem document, and how long it took.
async fn through(served: &Served, client: &Client) -> (u16, Value, Duration) {
    let started = Instant::now();
    let fetched = client.fetch(
        http::Request::get(format!("{}/", served.url))
            .body(Full::default())
            .unwrap(),
    );
    let res = tokio::time::timeout(Duration::from_secs(8), fetched)
        .await
        .expect("the proxy answered within 8 s")
        .unwrap()
        .response;
    let body: Value = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
    (
        res.status().as_u16(),
        body["reason"].clone(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn proxy_answers_504_when_the_backend_does_not_accept_in_time() {
    // A listener whose backlog is full: the kernel drops further SYNs, so a connection to
    // it neither succeeds nor fails.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let full = socket.listen(1).unwrap();
    let addr = full.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(tcp)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            queued.push(tcp);
        }
    }
    let (served, client) = start_proxy(
        addr,
        &[
            "--upstream-connect-timeout",
            "1s",
            "--upstream-timeout",
            "10s",
        ],
    )
    .await;
    let (status, reason, took) = through(&served, &client).await;
    assert_eq!(
        (status, reason.as_str()),
        (504, Some("upstream_connect_timeout"))
    );
    assert_about("the connect timeout", Some(took), Duration::from_secs(1));
    drop((full, queued));
}

#[tokio::test]
async fn proxy_answers_504_when_the_backend_sends_no_response_headers_in_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let slow = Router::new().route(
            "/",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        );
        axum::serve(listener, slow).await
    });
    let (served, client) = start_proxy(
        addr,
        &[
            "--upstream-connect-timeout",
            "5s",
            "--upstream-timeout",
            "1s",
        ],
    )
    .await;
    let (status, reason, took) = through(&served, &client).await;
    assert_eq!((status, reason.as_str()), (504, Some("upstream_timeout")));
    assert_about(
        "the response header timeout",
        Some(took),
        Duration::from_secs(1),
    );
}

#[tokio::test]
async fn proxy_answers_502_for_a_response_it_cannot_read() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(b"this is not HTTP\r\n\r\n").await;
            });
        }
    });
    let (served, client) = start_proxy(addr, &[]).await;
    let (status, reason, _) = through(&served, &client).await;
    assert_eq!(
        (status, reason.as_str()),
        (502, Some("upstream_bad_response"))
    );
}

/// A backend that counts its open connections; `GET /` answers after 300 ms.
async fn counting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&open);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let open = Arc::clone(&counted);
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

#[tokio::test]
async fn proxy_keeps_a_bounded_pool_of_idle_backend_connections() {
    let (backend, open) = counting_backend().await;
    let (served, client) = start_proxy(
        backend,
        &["--upstream-max-idle", "1", "--upstream-idle-timeout", "1s"],
    )
    .await;
    // Four requests at once need four backend connections.
    let burst: Vec<_> = (0..4)
        .map(|_| {
            let (client, url) = (client.clone(), served.url.clone());
            tokio::spawn(async move {
                client
                    .fetch(
                        http::Request::get(format!("{url}/"))
                            .body(Full::default())
                            .unwrap(),
                    )
                    .await
                    .unwrap()
                    .response
                    .status()
            })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), 200);
    }
    let done = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        open.load(Ordering::SeqCst),
        1,
        "one idle connection kept of the four"
    );
    while open.load(Ordering::SeqCst) > 0 {
        assert!(
            done.elapsed() < Duration::from_secs(4),
            "the idle connection was still open after 4 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done.elapsed() >= Duration::from_millis(900));
}

/// A backend speaking raw HTTP/1.1 that sends its response headers and a first chunk
/// `hello` of a chunked body at once, then `more` chunks `hello` each `gap` after the one
/// before, then the end of the body.
async fn chunked_backend(gap: Duration, more: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
                if tcp.write_all(head).await.is_err() {
                    return;
                }
                for _ in 0..more {
                    tokio::time::sleep(gap).await;
                    if tcp.write_all(b"5\r\nhello\r\n").await.is_err() {
                        return;
                    }
                }
                let _ = tcp.write_all(b"0\r\n\r\n").await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

/// `GET /` through the proxy at `addr` over HTTP/2 or HTTP/1.1: the response's status,
/// the body read before it ended, whether it ended with an error, and how long after the
/// response headers it ended (`None`: not within 5 s).
async fn body_through(addr: SocketAddr, http2: bool) -> (u16, Vec<u8>, bool, Option<Duration>) {
    let tls = TokioIo::new(tls(addr, !http2).await);
    let req = http::Request::get(format!("https://{addr}/"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let res = if http2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), tls)
                .await
                .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(tls).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    };
    let status = res.status().as_u16();
    let headers_at = Instant::now();
    let mut body = res.into_body();
    let mut read = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        read.extend_from_slice(data);
                    }
                }
                Some(Err(_)) => return true,
                None => return false,
            }
        }
    })
    .await;
    match ended {
        Ok(failed) => (status, read, failed, Some(headers_at.elapsed())),
        Err(_) => (status, read, false, None),
    }
}

fn proxy_at(served: &Served) -> SocketAddr {
    served.addr()
}

async fn stalled_mid_body(http2: bool) {
    // One chunk, then nothing for 30 s.
    let backend = chunked_backend(Duration::from_secs(30), 1).await;
    let (served, _) = start_proxy(backend, &["--upstream-timeout", "500ms"]).await;
    let (status, read, failed, took) = body_through(proxy_at(&served), http2).await;
    assert_eq!(status, 200);
    assert_eq!(read, b"hello", "the part the backend sent was forwarded");
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(400) && t < Duration::from_secs(3)),
        "the stalled response ended after {took:?}, expected after about 500 ms"
    );
    assert!(
        failed,
        "the stalled response ended with an error, not cleanly"
    );
}

#[tokio::test]
async fn proxy_cuts_off_an_http1_response_whose_backend_stalls_mid_body() {
    stalled_mid_body(false).await;
}

#[tokio::test]
async fn proxy_resets_an_http2_stream_whose_backend_stalls_mid_body() {
    stalled_mid_body(true).await;
}

#[tokio::test]
async fn proxy_forwards_a_slow_body_whose_chunks_each_come_within_the_upstream_timeout() {
    // Six chunks 300 ms apart: 1.5 s in all, three times the timeout, which bounds only the
    // gap between two.
    let backend = chunked_backend(Duration::from_millis(300), 5).await;
    let (served, _) = start_proxy(backend, &["--upstream-timeout", "500ms"]).await;
    let (status, read, failed, took) = body_through(proxy_at(&served), false).await;
    assert_eq!(status, 200);
    assert!(!failed, "the slow response ended with an error");
    assert_eq!(read, b"hello".repeat(6));
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(1400)),
        "{took:?}"
    );
}

/// A backend speaking raw HTTP/1.1 (keep-alive) that counts the requests it has received
/// and answers each with its response headers and the first chunk of its body at once,
/// and the rest of the body only once `release` is sent `true`.
async fn holding_backend() -> (
    SocketAddr,
    Arc<AtomicUsize>,
    tokio::sync::watch::Sender<bool>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let (release, released) = tokio::sync::watch::channel(false);
    let counted = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let (received, mut released) = (Arc::clone(&counted), released.clone());
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    // One request head (GETs, no body) at a time.
                    let end = loop {
                        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                    };
                    pending.drain(..end);
                    received.fetch_add(1, Ordering::SeqCst);
                    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n";
                    if tcp.write_all(head).await.is_err()
                        || released.wait_for(|go| *go).await.is_err()
                        || tcp.write_all(b"1\r\nk\r\n0\r\n\r\n").await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, received, release)
}

#[tokio::test]
async fn proxy_answers_503_when_its_requests_in_flight_to_the_backend_are_all_held() {
    let (backend, received, release) = holding_backend().await;
    let (served, client) = start_proxy(
        backend,
        &[
            "--upstream-max-requests",
            "2",
            "--upstream-connect-timeout",
            "1s",
            "--upstream-timeout",
            "10s",
        ],
    )
    .await;
    let get = |client: Client, url: String| async move {
        client
            .fetch(
                http::Request::get(format!("{url}/"))
                    .body(Full::default())
                    .unwrap(),
            )
            .await
            .unwrap()
            .response
    };
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(get(client.clone(), served.url.clone())))
        .collect();
    let started = Instant::now();
    while received.load(Ordering::SeqCst) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the backend did not receive the two requests within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Both have their response headers, not their whole bodies: their places are still
    // taken. A third request waits the connect timeout for one and never reaches the
    // backend.
    let started = Instant::now();
    let res = tokio::time::timeout(
        Duration::from_secs(8),
        get(client.clone(), served.url.clone()),
    )
    .await
    .expect("the proxy answered the third request within 8 s");
    let took = started.elapsed();
    let problem: Value = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
    assert_eq!(
        (res.status().as_u16(), problem["reason"].as_str()),
        (503, Some("upstream_busy"))
    );
    assert_eq!(
        res.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_about("the wait for a place", Some(took), Duration::from_secs(1));
    assert_eq!(
        received.load(Ordering::SeqCst),
        2,
        "the third request did not reach the backend"
    );

    // Released, the held requests are answered, and their places serve new requests.
    release.send_replace(true);
    for request in held {
        let res = tokio::time::timeout(Duration::from_secs(5), request)
            .await
            .expect("the held requests were answered within 5 s once released")
            .unwrap();
        assert_eq!((res.status().as_u16(), &res.body()[..]), (200, &b"ok"[..]));
    }
    let (status, _, _) = through(&served, &client).await;
    assert_eq!(status, 200);
    assert_eq!(received.load(Ordering::SeqCst), 3);
}

#[test]
fn proxy_refuses_an_upstream_max_requests_of_0() {
    let out = common::tokbind_env(
        &[
            "proxy",
            "--upstream",
            "http://127.0.0.1:1",
            "--upstream-max-requests",
            "0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream-max-requests"));
}

/// A backend that answers `GET /` with `ok`, and a `POST /` once it has read the whole
/// request body, with its length.
async fn body_length_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let app = Router::new().route(
            "/",
            get(|| async { "ok" }).post(|body: Bytes| async move { body.len().to_string() }),
        );
        axum::serve(listener, app).await
    });
    addr
}

/// Sends a POST head announcing 100 body bytes, then three, then nothing; the status line
/// that comes back and how long it took.
async fn stalled_upload(addr: SocketAddr) -> (String, Duration) {
    let mut tls = tls(addr, true).await;
    tls.write_all(b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
        .await
        .expect("an answer within 10 s")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    (
        text.lines().next().unwrap_or("").to_string(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn proxy_answers_408_to_a_client_whose_upload_stalls() {
    let backend = format!("http://{}", body_length_backend().await);
    let served = spawn_listening(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &backend,
        "--progress-timeout",
        "1s",
    ]);
    let addr = served.addr();
    let (status, took) = stalled_upload(addr).await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

// --- Uploads through the proxy: --upstream-timeout counts from the end of the body ------

/// Reads one HTTP/1.1 answer: its status line and body (as far as it came before the
/// connection closed).
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> (String, String) {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let mut wanted = None;
    loop {
        let head_end = read.windows(4).position(|w| w == b"\r\n\r\n");
        if let (None, Some(end)) = (wanted, head_end) {
            let head = String::from_utf8_lossy(&read[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            wanted = Some(end + 4 + length);
        }
        if wanted.is_some_and(|w| read.len() >= w) {
            break;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&read).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// POSTs `chunks` chunks of 10,000 bytes, one every 100 ms (100 KB/s, far above the
/// minimum data rate), through the proxy at `addr` over HTTP/1.1, then reads the answer:
/// its status line, its body, and how long after the last byte was sent it came.
async fn paced_upload(addr: SocketAddr, chunks: usize) -> (String, String, Duration) {
    let mut tls = tls(addr, true).await;
    let head = format!(
        "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n\r\n",
        chunks * 10_000
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..chunks {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tls.write_all(&[b'x'; 10_000]).await.is_err() {
            break;
        }
    }
    let sent = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut tls))
        .await
        .expect("an answer within 10 s of the end of the upload");
    (status, body, sent.elapsed())
}

async fn slow_upload(http2: bool) {
    let backend = body_length_backend().await;
    let mut flags = vec!["--upstream-timeout", "500ms"];
    if http2 {
        flags.push("--upstream-http2");
    }
    let (served, _) = start_proxy(backend, &flags).await;
    // 150 KB over 1.5 s, three times the upstream timeout: the backend answers only once
    // it has the whole body.
    let (status, body, _) = paced_upload(proxy_at(&served), 15).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(body, "150000");
}

#[tokio::test]
async fn proxy_forwards_an_upload_that_takes_longer_than_the_upstream_timeout() {
    slow_upload(false).await;
}

#[tokio::test]
async fn proxy_forwards_an_upload_that_takes_longer_than_the_upstream_timeout_over_http2() {
    slow_upload(true).await;
}

#[tokio::test]
async fn proxy_answers_504_when_the_backend_has_the_whole_body_and_does_not_answer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let silent = Router::new().route(
            "/",
            axum::routing::post(|_body: Bytes| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            }),
        );
        axum::serve(listener, silent).await
    });
    let (served, _) = start_proxy(backend, &["--upstream-timeout", "500ms"]).await;
    let (status, body, after_body) = paced_upload(proxy_at(&served), 10).await;
    assert_eq!(status, "HTTP/1.1 504 Gateway Timeout", "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["reason"], "upstream_timeout");
    assert!(
        after_body >= Duration::from_millis(400) && after_body < Duration::from_secs(2),
        "the 504 came {after_body:?} after the end of the body, expected about 500 ms"
    );
}

#[tokio::test]
async fn proxy_gives_up_on_a_backend_that_stops_reading_the_request_body() {
    // A backend that reads the request head, then neither reads the body nor answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(tcp);
            });
        }
    });
    let (served, _) = start_proxy(backend, &["--upstream-timeout", "1s"]).await;
    // 256 MB as fast as it goes: far more than the buffers on the way can hold.
    let (mut reader, mut writer) = tokio::io::split(tls(proxy_at(&served), true).await);
    let started = Instant::now();
    let upload = tokio::spawn(async move {
        let head = "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 268435456\r\n\r\n";
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..4096 {
            writer.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let answer = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut reader))
        .await
        .expect("the proxy answered or closed the connection within 10 s");
    let took = started.elapsed();
    upload.abort();
    let (status, body) = answer;
    // The 504 (or, if the connection was reset before it could be read, the close).
    if !status.is_empty() {
        assert_eq!(status, "HTTP/1.1 504 Gateway Timeout", "{body}");
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["reason"], "upstream_timeout");
    }
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "the proxy gave up after {took:?}, expected after about 1 s"
    );
}

/// Sends a POST head announcing `len` body bytes and nothing of the body; the connection,
/// held open.
async fn silent_upload(addr: SocketAddr, len: usize) -> impl AsyncRead + Unpin {
    let mut tls = tls(addr, true).await;
    let head = format!("POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len}\r\n\r\n");
    tls.write_all(head.as_bytes()).await.unwrap();
    tls
}

#[tokio::test]
async fn proxy_uploads_that_send_nothing_take_no_place_towards_the_backend() {
    // Every place among the requests in flight is wanted by a silent upload: they are
    // the client's pace to end (3 s here), and until their bodies start coming they hold
    // none of the places, so an ordinary request is served at once, not a 503. (Were they
    // forwarded, the backend would wait for their bodies and hold both places.)
    let backend = body_length_backend().await;
    let (served, client) = start_proxy(
        backend,
        &[
            "--upstream-max-requests",
            "2",
            "--upstream-connect-timeout",
            "1s",
            "--progress-timeout",
            "3s",
        ],
    )
    .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(silent_upload(served.addr(), 1_000_000).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, reason, took) = through(&served, &client).await;
    assert_eq!((status, reason), (200, Value::Null));
    assert!(took < Duration::from_millis(900), "{took:?}");

    // And one that has started its body is answered at the client's pace: a 408.
    let (status, took) = stalled_upload(served.addr()).await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    drop(silent);
}

/// Sockets of this machine whose remote end is 127.0.0.1:`port` (IPv4, any state): the
/// client sides of connections to a server listening there.
fn sockets_to(port: u16) -> usize {
    let remote = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(2) == Some(remote.as_str()))
        .count()
}

#[tokio::test]
async fn proxy_drops_a_backend_connection_that_answered_early_and_stopped_reading() {
    // The backend answers 401 to the request head, reads nothing of the body and keeps
    // the connection: hyper would go on writing the upload to it for ever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = vec![0u8; 4096];
            let _ = socket.read(&mut head).await;
            let _ = socket
                .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                .await;
            held.push(socket);
        }
    });
    let (served, _client) = start_proxy(backend, &["--upstream-timeout", "1s"]).await;

    // A client uploads until the proxy stops taking more (or closes, once it has sent
    // the 401), reads the 401 and goes.
    let mut tls = tls(served.addr(), true).await;
    let head = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 50000000\r\n\r\n";
    tls.write_all(head).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while tls.write_all(&chunk).await.is_ok() {}
    })
    .await;
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(3), tls.read(&mut answer))
        .await
        .expect("the 401 came")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
    drop(tls);

    // Within the upstream timeout of the backend's last read, the proxy lets go of it.
    // (The client's part is over: whether the proxy still holds the connection now
    // depends on how far hyper got with the upload, not on the client.)
    let started = Instant::now();
    while sockets_to(backend.port()) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the proxy still holds its connection to a backend that reads nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
