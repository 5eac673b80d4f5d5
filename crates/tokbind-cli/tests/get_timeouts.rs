//! `tokbind get --connect-timeout` and `--response-timeout`: a server that never answers
//! the TLS handshake, or answers it and then nothing, is a failure (exit 1) after the given
//! time, not a hang.

use std::net::TcpListener;
use std::process::{Command, Output};

fn get(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokbind"))
        .arg("get")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_stalled_handshake_fails_after_the_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", listener.local_addr().unwrap());
    // Accept and hold every connection without a word (until the test process ends).
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let out = get(&[&url, "--insecure", "--connect-timeout", "300ms"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no connection within 300ms"), "{stderr}");
}

#[test]
fn a_timeout_that_is_not_a_positive_whole_duration_is_a_usage_error() {
    for bad in [
        "0",
        "0ms",
        "-1",
        "0.5",
        "abc",
        "NaN",
        "inf",
        "1e300",
        "99999999999999999999s",
        "",
    ] {
        let out = get(&["https://127.0.0.1:1/", &format!("--connect-timeout={bad}")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("--connect-timeout"), "{bad:?}: {stderr}");
    }
}

#[test]
fn a_server_that_never_answers_fails_after_the_response_timeout() {
    // A real TLS server that completes the handshake, reads the request and says nothing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = runtime.block_on(async {
        let cert = tokbind_tls::SelfSigned::generate(&["127.0.0.1"]).unwrap();
        let acceptor = tokbind_tls::TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)
            .unwrap()
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok((mut tls, _)) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 4096];
                        let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await;
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    }
                });
            }
        });
        url
    });
    let started = std::time::Instant::now();
    let out = get(&[&url, "--insecure", "--response-timeout", "500ms"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no complete response within 500ms"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
