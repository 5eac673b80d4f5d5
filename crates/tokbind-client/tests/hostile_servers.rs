//! The client against hostile servers on loopback: one that stalls after the handshake,
//! one that drips its answer, one that sends more than the client will hold, and one that
//! redirects for ever. Each server holds its connections for at most 30 s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokbind_client::{Client, ClientError};
use tokbind_tls::{SelfSigned, ServerVerification, TokenBindingAcceptor};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A TLS server that completes every handshake (offering `h2` and `http/1.1` as ALPN,
/// as the client prefers) and then does `then` with the connection.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn tls_server<F, Fut>(then: F) -> SocketAddr
where
    F: Fn(Box<dyn Io>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let cert = SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let then = std::sync::Arc::new(then);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, then) = (acceptor.clone(), std::sync::Arc::clone(&then));
            tokio::spawn(async move {
                if let Ok((tls, _)) = acceptor.accept(tcp).await {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(30), then(Box::new(tls))).await;
                }
            });
        }
    });
    addr
}

/// A client that speaks HTTP/1.1 only (the servers here write HTTP/1.1 by hand), with a
/// response timeout of 1 s.
fn client() -> Client {
    Client::builder()
        .tls(|b| b.http1_only())
        .server_verification(ServerVerification::InsecureAcceptAnything)
        .connect_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
        .build()
        .unwrap()
}

/// `Client::get(url)` ends with the response timeout of 1 s, not later.
async fn times_out(client: &Client, url: &http::Uri) {
    let started = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(5), client.get(url.clone()))
        .await
        .expect("Client::get still waiting after 5 s");
    assert!(
        matches!(got, Err(ClientError::ResponseTimeout { after }) if after == Duration::from_secs(1)),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_stalls_after_the_handshake_is_a_response_timeout() {
    // Reads the request, answers nothing, keeps the connection.
    let addr = tls_server(|mut tls| async move {
        let mut buf = [0u8; 4096];
        let _ = tls.read(&mut buf).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let url: http::Uri = format!("https://{addr}/").parse().unwrap();
    // HTTP/2 as the client prefers it (the server reads the preface and the request and
    // answers neither), and HTTP/1.1.
    let h2 = Client::builder()
        .server_verification(ServerVerification::InsecureAcceptAnything)
        .response_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for client in [h2, client()] {
        times_out(&client, &url).await;
    }
}

#[tokio::test]
async fn a_server_that_drips_its_answer_is_a_response_timeout() {
    // A head, then one body byte every 200 ms of an endless chunked body: every read is
    // quick, the response never ends.
    let addr = tls_server(|mut tls| async move {
        let mut buf = [0u8; 4096];
        let _ = tls.read(&mut buf).await;
        let _ = tls
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        for _ in 0..100 {
            if tls.write_all(b"1\r\nx\r\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let url: http::Uri = format!("https://{addr}/").parse().unwrap();
    times_out(&client(), &url).await;
}

#[tokio::test]
async fn a_response_larger_than_the_limit_is_refused_not_buffered() {
    // 8 MiB of chunked body against a limit of 1 MiB.
    let addr = tls_server(|mut tls| async move {
        let mut buf = [0u8; 4096];
        let _ = tls.read(&mut buf).await;
        let _ = tls
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let chunk = {
            let mut c = b"100000\r\n".to_vec(); // 1 MiB
            c.extend(std::iter::repeat_n(b'x', 1 << 20));
            c.extend_from_slice(b"\r\n");
            c
        };
        for _ in 0..8 {
            if tls.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = tls.write_all(b"0\r\n\r\n").await;
    })
    .await;
    let url: http::Uri = format!("https://{addr}/").parse().unwrap();
    let small = Client::builder()
        .tls(|b| b.http1_only())
        .server_verification(ServerVerification::InsecureAcceptAnything)
        .max_response_bytes(1 << 20)
        .build()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), small.get(url))
        .await
        .expect("within 10 s");
    assert!(
        matches!(got, Err(ClientError::ResponseTooLarge { limit }) if limit == 1 << 20),
        "{:?}",
        got.map(|r| r.body().len())
    );
}

#[tokio::test]
async fn a_redirect_chain_is_bounded() {
    // Every answer redirects to the same URL again.
    let addr = tls_server(|mut tls| async move {
        let mut buf = [0u8; 4096];
        for _ in 0..50 {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if tls
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
        }
    })
    .await;
    let req = http::Request::get(format!("https://{addr}/"))
        .body(http_body_util::Full::default())
        .unwrap();
    let fetched = tokio::time::timeout(Duration::from_secs(5), client().fetch(req))
        .await
        .expect("within 5 s")
        .unwrap();
    assert_eq!(fetched.response.status(), 302);
    assert_eq!(fetched.hops.len(), 11, "the first request and 10 redirects");
}
