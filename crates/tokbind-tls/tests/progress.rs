//! A request in flight is held to a pace: the client must keep sending its body and keep
//! reading its response (`Limits::progress_timeout`, `Limits::min_data_rate`), while the
//! application may take as long as it likes. Real sockets on loopback, limits of about a
//! second.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokbind_tls::{Limits, RequestBody};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;

mod common;
use common::*;

/// Reads the whole request body: 200 with its length, or 408 if the client was too slow.
fn read_body() -> Handler {
    Arc::new(|req: Request<RequestBody>| {
        Box::pin(async move {
            let (status, text) = match req.into_body().collect().await {
                Ok(body) => (StatusCode::OK, format!("{} bytes", body.to_bytes().len())),
                Err(e) if e.is_timeout() => (StatusCode::REQUEST_TIMEOUT, e.to_string()),
                Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
            };
            let mut res = Response::new(Full::new(Bytes::from(text)));
            *res.status_mut() = status;
            res
        })
    })
}

fn pace(timeout_ms: u64, min_rate: u32) -> Limits {
    Limits::default()
        .progress_timeout(Duration::from_millis(timeout_ms))
        .min_data_rate(min_rate)
}

/// Sends a POST head announcing `len` body bytes over HTTP/1.1, then `drip` one byte at a
/// time with `every` between them, then waits for the status line (for at most 10 s).
/// The status and how long it took from the head.
async fn post_dripped(
    server: &Server,
    len: usize,
    drip: usize,
    every: Duration,
) -> (u16, Duration) {
    let mut tls = tls(server, Alpn::Http1).await;
    let head = format!("POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len}\r\n\r\n");
    tls.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut read, mut write) = tokio::io::split(tls);
    let dripping = tokio::spawn(async move {
        for _ in 0..drip {
            tokio::time::sleep(every).await;
            if write.write_all(b"x").await.is_err() {
                return;
            }
        }
        // Then hold the connection open without sending the rest.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(write);
    });
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    dripping.abort();
    let status = std::str::from_utf8(&buf[..n]).unwrap()[9..12]
        .parse()
        .unwrap();
    (status, started.elapsed())
}

#[tokio::test]
async fn a_request_body_that_stops_coming_ends_at_the_progress_timeout() {
    let server = start(pace(1000, 0), Duration::from_secs(5), read_body()).await;
    // Three bytes of a hundred, then nothing.
    let (status, took) = post_dripped(&server, 100, 3, Duration::from_millis(50)).await;
    assert_eq!(status, 408, "the handler saw a timeout");
    assert!(
        took >= Duration::from_millis(1100) && took < Duration::from_secs(4),
        "{took:?}: the last byte at about 150 ms, then one timeout of 1 s"
    );
}

#[tokio::test]
async fn a_body_dripped_just_inside_the_timeout_is_cut_off_by_the_minimum_rate() {
    // Each byte comes 400 ms after the last, inside the 1 s timeout, so only the rate can
    // end it: 100 B/s earns 10 ms of waiting a byte, against 400 ms waited, so the waits
    // pass their 1 s allowance at about the third byte.
    let server = start(pace(1000, 100), Duration::from_secs(5), read_body()).await;
    let (status, took) = post_dripped(&server, 100, 100, Duration::from_millis(400)).await;
    assert_eq!(status, 408);
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test]
async fn without_a_minimum_rate_a_slow_but_steady_body_is_read_whole() {
    // The same drip with the rate off: each wait is inside the timeout, so the body is
    // read whole. (The test above fails if the rate does nothing.)
    let server = start(pace(1000, 0), Duration::from_secs(5), read_body()).await;
    let (status, took) = post_dripped(&server, 6, 6, Duration::from_millis(400)).await;
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(2400), "{took:?}");
}

#[tokio::test]
async fn a_handler_may_take_longer_than_the_progress_timeout() {
    // A long poll: the application waits 1.5 s before reading the body and answering;
    // none of that is the client's doing.
    let handler: Handler = Arc::new(|req: Request<RequestBody>| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let body = req.into_body().collect().await.unwrap().to_bytes();
            Response::new(Full::new(body))
        })
    });
    let server = start(pace(500, 100), Duration::from_secs(5), handler).await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls(&server, Alpn::Http1).await))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::post("/")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
}

#[tokio::test]
async fn an_http2_request_body_that_stops_coming_ends_at_the_progress_timeout() {
    let server = start(pace(1000, 0), Duration::from_secs(5), read_body()).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(tls(&server, Alpn::Http2).await),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // One frame of the body, then the stream stays open with nothing more.
    let (frames, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    frames.send(Bytes::from_static(b"abc")).await.unwrap();
    let body = ChannelBody(rx);
    let req = Request::post("https://127.0.0.1/").body(body).unwrap();
    let started = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    drop(frames);
}

/// A request body whose frames come from a channel, and which ends when it closes.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|frame| frame.map(|data| Ok(http_body::Frame::data(data))))
    }
}

/// A response body of `chunks` × 64 KiB that reports when it is dropped.
struct Endless {
    left: usize,
    dropped: Option<oneshot::Sender<Instant>>,
}

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        if let Some(tx) = self.dropped.take() {
            let _ = tx.send(Instant::now());
        }
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_closed_at_the_progress_timeout() {
    // 64 MiB answer; the client reads nothing, so the socket buffers fill and the server's
    // writes wait on the client.
    let (dropped_tx, dropped) = oneshot::channel::<Instant>();
    let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    let answered = Arc::new(AtomicBool::new(false));
    let app = {
        let answered = Arc::clone(&answered);
        tower::service_fn(move |_req: Request<RequestBody>| {
            answered.store(true, Ordering::SeqCst);
            let dropped = dropped_tx.lock().unwrap().take();
            async move {
                Ok::<_, Infallible>(Response::new(Endless {
                    left: 1024,
                    dropped,
                }))
            }
        })
    };
    let (server, _task) = start_service(pace(1000, 0), Duration::from_secs(5), app).await;
    let mut tls = tls(&server, Alpn::Http1).await;
    tls.write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    let dropped_at = tokio::time::timeout(Duration::from_secs(10), dropped)
        .await
        .expect("the server let go of the response within 10 s")
        .unwrap();
    assert!(answered.load(Ordering::SeqCst));
    let took = dropped_at - sent;
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}: buffers fill at once, then one progress timeout"
    );
    // Closed with a reset: the server's end of the connection is gone at once, not left
    // to the kernel in FIN-WAIT-1 with megabytes still queued for the same slow reader.
    let client_port = tls.get_ref().local_addr().unwrap().port();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        tcp_state(server.addr.port(), client_port),
        None,
        "the server's socket lingers (state from /proc/net/tcp)"
    );
    // The connection is gone: at most what the buffers held, then the end.
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was closed");
    assert!(
        total < 64 << 20,
        "the response was cut short ({total} bytes)"
    );
}

#[tokio::test]
async fn an_http2_stream_whose_window_the_client_keeps_shut_is_reset_at_the_progress_timeout_and_its_connection_closed()
 {
    // The client allows no DATA at all (SETTINGS_INITIAL_WINDOW_SIZE 0) and never opens a
    // window, while its connection answers PINGs: nothing waits on the socket, so only the
    // stream's own pace can end it.
    let (dropped_tx, dropped) = oneshot::channel::<Instant>();
    let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    let app = tower::service_fn(move |_req: Request<RequestBody>| {
        let dropped = dropped_tx.lock().unwrap().take();
        async move {
            Ok::<_, Infallible>(Response::new(Endless {
                left: 1024,
                dropped,
            }))
        }
    });
    let limits = pace(1000, 0).http2_keep_alive(Duration::from_millis(200), Duration::from_secs(5));
    let (server, _task) = start_service(limits, Duration::from_secs(5), app).await;
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(TokioIo::new(tls(&server, Alpn::Http2).await))
        .await
        .unwrap();
    let connection = tokio::spawn(conn);
    let req = Request::get("https://127.0.0.1/")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let sent = Instant::now();
    assert_eq!(res.status(), StatusCode::OK, "the head needs no window");
    let dropped_at = tokio::time::timeout(Duration::from_secs(10), dropped)
        .await
        .expect("the server let go of the response within 10 s")
        .unwrap();
    let took = dropped_at - sent;
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let body = tokio::time::timeout(Duration::from_secs(5), res.into_body().collect())
        .await
        .expect("the client learns the stream is gone");
    assert!(body.is_err(), "the stream was reset, not ended");
    // And the connection goes, so that opening a new stream for each one reset cannot
    // hold a place under the connection limit (the idle timeout, 60 s, is far off).
    tokio::time::timeout(Duration::from_secs(3), connection)
        .await
        .expect("the server closed the connection after resetting its stream")
        .unwrap()
        .ok();
    let again = Request::get("https://127.0.0.1/")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    assert!(
        sender.send_request(again).await.is_err(),
        "no new stream on it"
    );
}

/// The state (as /proc/net/tcp numbers it; 04 is FIN-WAIT-1) of the socket from
/// 127.0.0.1:`local` to 127.0.0.1:`remote`, if there is one.
fn tcp_state(local: u16, remote: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let (local, remote) = (
        format!("0100007F:{local:04X}"),
        format!("0100007F:{remote:04X}"),
    );
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| fields[3].to_string())
    })
}
