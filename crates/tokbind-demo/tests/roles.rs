//! The three docker-compose roles as separate processes on loopback: what `docker compose
//! up` runs, minus Docker (which the build machines do not have).

mod common;

use std::time::{Duration, Instant};

use common::{Killed, demo, free_port, keygen};

#[test]
fn idp_rp_and_client_as_separate_processes() {
    // Keys from configuration, as several instances of each would share them.
    let (signing, cookie, _) = keygen();
    // Two addresses: two sites, so the client keeps two keys (as with the `idp` and `rp`
    // hosts of docker-compose). Neither is 127.0.0.1, where outgoing connections take their
    // source ports, so the ports picked here stay free until the servers bind them.
    let (idp_port, rp_port) = (free_port("127.0.0.2"), free_port("127.0.0.3"));
    let idp_url = format!("https://127.0.0.2:{idp_port}");
    let rp_url = format!("https://127.0.0.3:{rp_port}");
    let (idp_listen, rp_listen) = (
        format!("127.0.0.2:{idp_port}"),
        format!("127.0.0.3:{rp_port}"),
    );
    let _idp = Killed(
        demo(&[
            "idp",
            "--listen",
            &idp_listen,
            "--public-url",
            &idp_url,
            "--rp-url",
            &rp_url,
        ])
        .env("TOKBIND_SIGNING_KEYS", &signing)
        .spawn()
        .unwrap(),
    );
    let _rp = Killed(
        demo(&[
            "rp",
            "--listen",
            &rp_listen,
            "--public-url",
            &rp_url,
            "--idp-url",
            &idp_url,
            "--insecure",
        ])
        .env("TOKBIND_COOKIE_KEYS", &cookie)
        .spawn()
        .unwrap(),
    );
    let mut client = demo(&[
        "client",
        "--rp-url",
        &rp_url,
        "--idp-url",
        &idp_url,
        "--insecure",
    ])
    .spawn()
    .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the client did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = client.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every step behaved as expected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[ ok ] stolen ID token: 401 binding_mismatch"),
        "{stdout}"
    );
}
