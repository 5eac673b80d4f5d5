//! `tokbind serve` in one process, `tokbind get` in another, as a newcomer would run them.

mod common;

use std::process::Command;

use common::{get, get_with_env, json, serve};

#[test]
fn get_shows_the_verified_tbh_from_serve() {
    let server = serve(&[]);
    let out = get(&[&format!("{}/", server.url), "--insecure"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = json(&out);
    assert_eq!(body["tls_version"], "TLSv1.2");
    assert_eq!(body["token_binding"]["version"], "1.0");
    assert_eq!(body["token_binding"]["key_parameters"], "ecdsap256");
    assert_eq!(body["provided"]["tbh"].as_str().unwrap().len(), 43);
    assert!(
        body["provided"]["tbid"]
            .as_str()
            .unwrap()
            .starts_with("AgBBQ")
    );
    assert!(body["referred"].is_null());

    // Each run of `get` is a fresh in-memory key: a different ID.
    let again = json(&get(&[&format!("{}/", server.url), "--insecure"]));
    assert_ne!(again["provided"]["tbh"], body["provided"]["tbh"]);
}

#[test]
fn a_dpop_proof_from_get_is_verified_by_serve() {
    let server = serve(&[]);
    let url = format!("{}/", server.url);
    let out = get(&[&url, "--insecure", "--dpop"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let jkt = stderr
        .lines()
        .find_map(|l| l.strip_prefix("dpop jkt: "))
        .unwrap_or_else(|| panic!("no jkt in: {stderr}"));
    let body = json(&out);
    assert_eq!(body["dpop"]["jkt"], jkt);
    assert!(body["provided"]["tbh"].is_string(), "and Token Binding too");
    assert!(json(&get(&[&url, "--insecure"]))["dpop"].is_null());

    // The proof names the URL the client used; a server that answers for another origin
    // refuses it.
    let elsewhere = serve(&["--public-origin", "https://app.example"]);
    let out = get(&[&format!("{}/", elsewhere.url), "--insecure", "--dpop"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert_eq!(json(&out)["reason"], "dpop_htu_mismatch");
}

#[test]
fn key_parameters_and_tls13_options() {
    let server = serve(&[
        "--key-parameters",
        "rsa2048_pkcs1.5,ecdsap256",
        "--tls13-token-binding",
    ]);
    let body = json(&get(&[
        &server.url,
        "--insecure",
        "--key-parameters",
        "ecdsap256,rsa2048_pkcs1.5",
    ]));
    assert_eq!(
        body["token_binding"]["key_parameters"], "rsa2048_pkcs1.5",
        "server preference"
    );
    assert_eq!(body["tls_version"], "TLSv1.3");
    assert!(body["provided"]["tbh"].is_string());
}

#[test]
fn cacert_pins_the_server_certificate() {
    let dir = std::env::temp_dir().join(format!("tokbind-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = tokbind_tls_cert(&dir);
    let server = serve(&[
        "--cert",
        cert.0.to_str().unwrap(),
        "--key",
        cert.1.to_str().unwrap(),
    ]);
    let ok = get(&[&server.url, "--cacert", cert.0.to_str().unwrap()]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(json(&ok)["provided"]["tbh"].is_string());
    // Without --insecure or the right root, the self-signed server is refused.
    let refused = get(&[&server.url]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("TLS handshake"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_certificate_is_presented_and_its_thumbprint_shown() {
    let dir = std::env::temp_dir().join(format!("tokbind-cli-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = tokbind_tls_cert(&dir);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // x5t#S256 = base64url(SHA-256(DER)), computed here with OpenSSL directly.
    let der = openssl::x509::X509::from_pem(&std::fs::read(cert).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let x5t = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(openssl::sha::sha256(&der))
    };

    let server = serve(&["--client-certificates"]);
    let out = get(&[
        &server.url,
        "--insecure",
        "--client-cert",
        cert,
        "--client-key",
        key,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["client_certificate"]["x5t#S256"], x5t.as_str());
    // Without one, nothing is claimed; a server that does not ask gets none.
    let none = json(&get(&[&server.url, "--insecure"]));
    assert!(none["client_certificate"].is_null(), "{none}");
    let not_asked = serve(&[]);
    let out = get(&[
        &not_asked.url,
        "--insecure",
        "--client-cert",
        cert,
        "--client-key",
        key,
    ]);
    assert!(json(&out)["client_certificate"].is_null());
    // A key without its certificate, or an unreadable one, is a usage error.
    assert_eq!(
        get(&[&server.url, "--client-key", key]).status.code(),
        Some(2)
    );
    assert_eq!(
        get(&[&server.url, "--client-cert", key, "--client-key", key])
            .status
            .code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cacert_trusts_that_root_only_not_the_systems_too() {
    let dir = std::env::temp_dir().join(format!("tokbind-cli-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server_cert = tokbind_tls_cert(&dir);
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let other_cert = tokbind_tls_cert(&other);
    let server = serve(&[
        "--cert",
        server_cert.0.to_str().unwrap(),
        "--key",
        server_cert.1.to_str().unwrap(),
    ]);
    // The server's certificate made a root of "the system's" store (OpenSSL reads
    // SSL_CERT_FILE for it), as a publicly trusted certificate for the name would be.
    let system = [
        ("SSL_CERT_FILE", server_cert.0.to_str().unwrap()),
        ("SSL_CERT_DIR", other.to_str().unwrap()),
    ];
    let trusted_by_system = get_with_env(&[&server.url], &system);
    assert_eq!(
        trusted_by_system.status.code(),
        Some(0),
        "the system store is what SSL_CERT_FILE says: {}",
        String::from_utf8_lossy(&trusted_by_system.stderr)
    );
    // Pinned to another root, the client refuses it all the same.
    let pinned = get_with_env(
        &[&server.url, "--cacert", other_cert.0.to_str().unwrap()],
        &system,
    );
    assert_eq!(
        pinned.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&pinned.stdout)
    );
    assert!(String::from_utf8_lossy(&pinned.stderr).contains("TLS handshake"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Write a certificate and key for 127.0.0.1, made by the same library the server uses.
fn tokbind_tls_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let c = tokbind_tls::SelfSigned::generate(&["127.0.0.1"]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert_pem).unwrap();
    std::fs::write(&key, c.key_pem).unwrap();
    (cert, key)
}

#[test]
fn usage_and_transport_errors() {
    assert_eq!(
        get(&["https://127.0.0.1:1/", "--insecure"]).status.code(),
        Some(1)
    );
    assert_eq!(get(&["http://127.0.0.1/"]).status.code(), Some(1));
    assert_eq!(
        get(&["https://x/", "--insecure", "--cacert", "x.pem"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        get(&["https://x/", "--key-parameters", "nope"])
            .status
            .code(),
        Some(2)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tokbind"))
        .args([
            "serve",
            "--cert",
            "/nonexistent.pem",
            "--key",
            "/nonexistent.pem",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_tokbind"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-origin",
            "not an origin",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--public-origin"), "{stderr}");
}
