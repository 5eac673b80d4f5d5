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
use common::{Served, spawn_listening, spawn_listening_under};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokbind_client::Client;
use tokbind_tls::{ServerVerification, TokenBindingConnector};
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
    let addr = served
        .url
        .strip_prefix("https://")
        .unwrap()
        .parse()
        .unwrap();
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

/// A finished TLS handshake, offering `h2` or only `http/1.1` (and no Token Binding, so
/// that a request without `Sec-Token-Binding` is served).
async fn tls(
    addr: SocketAddr,
    http1_only: bool,
) -> impl AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {
    let mut connector = TokenBindingConnector::builder()
        .server_verification(ServerVerification::InsecureAcceptAnything)
        .offer_token_binding(false);
    if http1_only {
        connector = connector.http1_only();
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (tls, _) = connector
        .build()
        .unwrap()
        .connect("127.0.0.1", tcp)
        .await
        .unwrap();
    tls
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
