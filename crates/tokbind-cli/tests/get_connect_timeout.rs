//! `tokbind get --connect-timeout`: a server that accepts and never answers the TLS
//! handshake is a failure (exit 1) after the given time, not a hang.

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
