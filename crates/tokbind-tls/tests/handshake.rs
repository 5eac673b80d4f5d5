//! Real TLS handshakes on loopback: both ends agree on what was negotiated and export the
//! same EKM.

use tokbind_proto::{KeyParameters, Negotiated, ProtocolVersion, TlsVersion};
use tokbind_tls::{SelfSigned, ServerVerification, TokenBindingAcceptor, TokenBindingConnector};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};

struct Pair {
    server: tokbind_proto::ConnectionInfo,
    client: Result<tokbind_proto::ConnectionInfo, tokbind_tls::HandshakeError>,
}

async fn handshake(acceptor: TokenBindingAcceptor, connector: TokenBindingConnector) -> Pair {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Both ends close with close_notify: OpenSSL never resumes a session whose connection
    // was dropped without it.
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut tls, info) = acceptor.accept(tcp).await?;
        let _ = tls.shutdown().await;
        Ok::<_, tokbind_tls::HandshakeError>(info)
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = match connector.connect("127.0.0.1", tcp).await {
        Ok((mut tls, info)) => {
            let _ = tls.shutdown().await;
            Ok(info)
        }
        Err(e) => Err(e),
    };
    let server = server.await.unwrap();
    Pair {
        server: server.expect("server handshake"),
        client,
    }
}

fn cert() -> SelfSigned {
    SelfSigned::generate(&["localhost", "127.0.0.1"]).unwrap()
}

fn connector(cert: &SelfSigned) -> tokbind_tls::ConnectorBuilder {
    TokenBindingConnector::builder()
        .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
}

#[tokio::test]
async fn tls12_negotiates_and_both_ends_export_the_same_ekm() {
    let cert = cert();
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let pair = handshake(acceptor, connector(&cert).build().unwrap()).await;
    let client = pair.client.unwrap();
    let expected = Negotiated {
        version: ProtocolVersion::V1_0,
        key_parameters: KeyParameters::ECDSAP256,
    };
    assert_eq!(pair.server.negotiated(), Some(expected));
    assert_eq!(client.negotiated(), Some(expected));
    // The default acceptor caps Token Binding clients at TLS 1.2.
    assert_eq!(pair.server.tls_version(), TlsVersion::Tls12);
    assert!(pair.server.extended_master_secret());
    assert_eq!(pair.server.ekm(), client.ekm());
    assert!(pair.server.ekm().is_some());
}

const EC: KeyParameters = KeyParameters::ECDSAP256;
const PKCS1: KeyParameters = KeyParameters::RSA2048_PKCS1_5;
const PSS: KeyParameters = KeyParameters::RSA2048_PSS;

fn acceptor(cert: &SelfSigned) -> tokbind_tls::AcceptorBuilder {
    TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem).unwrap()
}

#[tokio::test]
async fn each_key_parameter_and_server_preference_over_client_order() {
    let cert = cert();
    for (server, client, expected) in [
        (&[EC][..], &[EC, PSS, PKCS1][..], Some(EC)),
        (&[PSS], &[EC, PSS, PKCS1], Some(PSS)),
        (&[PKCS1], &[EC, PSS, PKCS1], Some(PKCS1)),
        (&[PSS, EC], &[EC, PSS], Some(PSS)), // server preference wins
        (&[PKCS1, EC], &[EC, PKCS1], Some(PKCS1)),
        (&[EC, PSS], &[PSS], Some(PSS)),
        (&[PKCS1], &[EC, PSS], None), // nothing in common: not negotiated
    ] {
        let a = acceptor(&cert)
            .key_parameters(server)
            .unwrap()
            .build()
            .unwrap();
        let c = connector(&cert)
            .key_parameters(client)
            .unwrap()
            .build()
            .unwrap();
        let pair = handshake(a, c).await;
        let got = pair.server.negotiated().map(|n| n.key_parameters);
        assert_eq!(got, expected, "server {server:?} client {client:?}");
        assert_eq!(
            pair.client.unwrap().negotiated().map(|n| n.key_parameters),
            expected
        );
        assert_eq!(pair.server.ekm().is_some(), expected.is_some());
    }
}

#[tokio::test]
async fn client_without_extended_master_secret_gets_no_token_binding() {
    let cert = cert();
    let a = acceptor(&cert).build().unwrap();
    let c = connector(&cert)
        .without_extended_master_secret()
        .build()
        .unwrap();
    let pair = handshake(a, c).await;
    assert_eq!(pair.server.tls_version(), TlsVersion::Tls12);
    assert!(!pair.server.extended_master_secret());
    assert_eq!(pair.server.negotiated(), None);
    assert_eq!(pair.client.unwrap().negotiated(), None);
}

#[tokio::test]
async fn tls13_token_binding_is_opt_in() {
    let cert = cert();
    // Opted in: negotiated in EncryptedExtensions on TLS 1.3.
    let pair = handshake(
        acceptor(&cert).tls13_token_binding(true).build().unwrap(),
        connector(&cert).build().unwrap(),
    )
    .await;
    assert_eq!(pair.server.tls_version(), TlsVersion::Tls13);
    assert!(pair.server.negotiated().is_some());
    let client = pair.client.unwrap();
    assert_eq!(client.negotiated(), pair.server.negotiated());
    assert_eq!(client.ekm(), pair.server.ekm());

    // Not opted in (default): a Token Binding client is capped at TLS 1.2 and gets it.
    let pair = handshake(
        acceptor(&cert).build().unwrap(),
        connector(&cert).build().unwrap(),
    )
    .await;
    assert_eq!(pair.server.tls_version(), TlsVersion::Tls12);
    assert!(pair.server.negotiated().is_some());

    // …a client that does not offer it keeps TLS 1.3.
    let pair = handshake(
        acceptor(&cert).build().unwrap(),
        connector(&cert).offer_token_binding(false).build().unwrap(),
    )
    .await;
    assert_eq!(pair.server.tls_version(), TlsVersion::Tls13);
    assert_eq!(pair.server.negotiated(), None);

    // Not opted in and the cap turned off: TLS 1.3 without Token Binding.
    let a = acceptor(&cert)
        .cap_at_tls12_for_token_binding(false)
        .build()
        .unwrap();
    let pair = handshake(a, connector(&cert).build().unwrap()).await;
    assert_eq!(pair.server.tls_version(), TlsVersion::Tls13);
    assert_eq!(pair.server.negotiated(), None);
    assert_eq!(pair.client.unwrap().negotiated(), None);

    // A TLS 1.3-only client against a server that is not opted in: no Token Binding.
    let pair = handshake(
        acceptor(&cert).build().unwrap(),
        connector(&cert).tls13_only().build().unwrap(),
    )
    .await;
    assert_eq!(pair.server.tls_version(), TlsVersion::Tls13);
    assert_eq!(pair.server.negotiated(), None);
}

#[tokio::test]
async fn protocol_version_offers() {
    let cert = cert();
    let v = ProtocolVersion::new;
    // (client offers, client accepts down to, server accepts drafts, server's answer)
    for (offer, lowest, drafts, expected) in [
        (v(0, 9), v(0, 9), true, None),
        (v(0, 18), v(0, 18), false, None),
        (v(0, 18), v(0, 18), true, Some(v(0, 18))),
        (v(1, 0), v(1, 0), false, Some(v(1, 0))),
        (v(1, 1), v(1, 0), false, Some(v(1, 0))),
        (v(2, 0), v(1, 0), false, Some(v(1, 0))),
    ] {
        let a = acceptor(&cert).draft_versions(drafts).build().unwrap();
        let c = connector(&cert)
            .protocol_versions(offer, lowest)
            .build()
            .unwrap();
        let pair = handshake(a, c).await;
        assert_eq!(
            pair.server.negotiated().map(|n| n.version),
            expected,
            "offer {offer}"
        );
        assert_eq!(
            pair.client.unwrap().negotiated().map(|n| n.version),
            expected,
            "offer {offer}"
        );
    }
    // A client that offers 2.0 and supports nothing lower: the server answers 1.0, the
    // client continues without Token Binding (RFC 8472 §4), the handshake succeeds.
    let pair = handshake(
        acceptor(&cert).build().unwrap(),
        connector(&cert)
            .protocol_versions(v(2, 0), v(2, 0))
            .build()
            .unwrap(),
    )
    .await;
    assert_eq!(pair.server.negotiated().map(|n| n.version), Some(v(1, 0)));
    assert_eq!(pair.client.unwrap().negotiated(), None);
}

#[tokio::test]
async fn resumed_sessions_negotiate_again_with_a_fresh_ekm() {
    let cert = cert();
    let a = acceptor(&cert).build().unwrap();
    let c = connector(&cert).resume_sessions(true).build().unwrap();
    let first = handshake(a.clone(), c.clone()).await;
    let second = handshake(a, c).await;
    assert!(!first.server.session_reused());
    assert!(
        second.server.session_reused(),
        "the second handshake resumed the session"
    );
    assert!(
        second.server.negotiated().is_some(),
        "Token Binding negotiated on resumption"
    );
    assert_eq!(second.client.unwrap().ekm(), second.server.ekm());
    assert_ne!(
        first.server.ekm(),
        second.server.ekm(),
        "each connection has its own EKM"
    );
}

#[tokio::test]
async fn untrusted_server_certificate_fails_the_handshake() {
    let (cert, other) = (cert(), cert());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let a = acceptor(&cert).build().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = a.accept(tcp).await;
    });
    let c = connector(&other).build().unwrap();
    let err = c
        .connect("127.0.0.1", TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, tokbind_tls::HandshakeError::Tls(_)), "{err}");
}

/// A server that answers `token_binding` with whatever bytes it is given, to check that
/// the client aborts on every RFC 8472 §4 violation in a real handshake.
async fn misbehaving_server(cert: &SelfSigned, answer: &'static [u8]) -> std::net::SocketAddr {
    use openssl::ssl::ExtensionContext;
    let mut b = openssl_server(cert);
    b.set_max_proto_version(Some(openssl::ssl::SslVersion::TLS1_2))
        .unwrap();
    b.add_custom_ext(
        24,
        ExtensionContext::TLS_ONLY
            | ExtensionContext::CLIENT_HELLO
            | ExtensionContext::TLS1_2_SERVER_HELLO,
        move |_, _, _| Ok(Some(answer)),
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    let acceptor = std::sync::Arc::new(b.build());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
            let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
            let _ = std::pin::Pin::new(&mut tls).accept().await;
        }
    });
    addr
}

#[tokio::test]
async fn client_aborts_the_handshake_on_bad_server_answers() {
    let cert = cert();
    let c = connector(&cert)
        .key_parameters(&[EC])
        .unwrap()
        .build()
        .unwrap();
    for (answer, what) in [
        (&[1u8, 1, 1, 2][..], "version above the offer"),
        (&[1, 0, 2, 2, 1], "two key parameters"),
        (&[1, 0, 1, 1], "key parameters not offered"),
        (&[1, 0, 0], "empty list"),
        (&[1, 0, 1, 2, 0], "trailing byte"),
    ] {
        let addr = misbehaving_server(&cert, answer).await;
        let err = c
            .connect("127.0.0.1", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, tokbind_tls::HandshakeError::Tls(_)),
            "{what}: {err}"
        );
    }
    // The same server with a valid answer is accepted, as a control.
    let addr = misbehaving_server(&cert, &[1, 0, 1, 2]).await;
    let (_, info) = c
        .connect("127.0.0.1", TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    assert_eq!(info.negotiated().map(|n| n.key_parameters), Some(EC));

    // A client that does not offer Token Binding gets none from the same server. (An
    // OpenSSL server never sends a custom extension the client did not offer, so the
    // unsolicited-answer abort of RFC 8472 §4 — which OpenSSL's client enforces for
    // custom extensions — cannot be provoked with this server.)
    let silent = connector(&cert).offer_token_binding(false).build().unwrap();
    let (_, info) = silent
        .connect("127.0.0.1", TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    assert_eq!(info.negotiated(), None);
}

#[tokio::test]
async fn several_trusted_roots() {
    let (a, b) = (cert(), cert());
    let roots: Vec<u8> = [a.cert_pem.clone(), b.cert_pem.clone()].concat();
    for server in [&a, &b] {
        let acceptor = acceptor(server).build().unwrap();
        let c = TokenBindingConnector::builder()
            .server_verification(ServerVerification::Roots(roots.clone()))
            .build()
            .unwrap();
        let pair = handshake(acceptor, c).await;
        assert!(pair.client.is_ok(), "{:?}", pair.client.err());
    }
}

/// An OpenSSL server (not this crate's acceptor) with `cert`, to configure as a test needs.
fn openssl_server(cert: &SelfSigned) -> openssl::ssl::SslAcceptorBuilder {
    use openssl::ssl::{SslAcceptor, SslMethod};
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(&openssl::x509::X509::from_pem(&cert.cert_pem).unwrap())
        .unwrap();
    b.set_private_key(&openssl::pkey::PKey::private_key_from_pem(&cert.key_pem).unwrap())
        .unwrap();
    b
}

/// A plain OpenSSL client (not this crate's connector) that trusts `cert`, speaks only
/// `version` (TLS 1.2 or 1.3), and offers token_binding 1.0 with ecdsap256.
fn openssl_client(
    cert: &SelfSigned,
    version: openssl::ssl::SslVersion,
) -> openssl::ssl::SslConnectorBuilder {
    use openssl::ssl::{ExtensionContext, SslConnector, SslMethod, SslVersion};
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.cert_store_mut()
        .add_cert(openssl::x509::X509::from_pem(&cert.cert_pem).unwrap())
        .unwrap();
    let answered_in = if version == SslVersion::TLS1_3 {
        ExtensionContext::TLS1_3_ENCRYPTED_EXTENSIONS
    } else {
        ExtensionContext::TLS1_2_SERVER_HELLO
    };
    b.add_custom_ext(
        24,
        ExtensionContext::TLS_ONLY | ExtensionContext::CLIENT_HELLO | answered_in,
        |_, _, _| Ok(Some(&[1u8, 0, 1, 2][..])),
        |_, _, _, _| Ok(()),
    )
    .unwrap();
    b
}

/// One connection from a plain OpenSSL `client` (blocking, on its own thread) to this
/// crate's `acceptor`. The server says `hello`, then reads until the client is done (reading
/// is what processes anything the client asks after the handshake). Returns the server's
/// view of the connection and the client's result.
async fn to_acceptor<T: Send + 'static>(
    acceptor: TokenBindingAcceptor,
    cert: &SelfSigned,
    client: fn(std::net::SocketAddr, &SelfSigned) -> T,
) -> (tokbind_proto::ConnectionInfo, T) {
    use tokio::io::AsyncReadExt as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let (mut tls, info) = acceptor.accept(tcp).await.unwrap();
        tls.write_all(b"hello").await.unwrap();
        while matches!(tls.read(&mut [0u8; 16]).await, Ok(n) if n > 0) {}
        info
    });
    let cert = cert.clone();
    let result = tokio::task::spawn_blocking(move || client(addr, &cert))
        .await
        .unwrap();
    (server.await.unwrap(), result)
}

/// The same client against a plain OpenSSL server that behaves the same way: the control
/// that shows the client can see what it checks for.
async fn to_openssl<T: Send + 'static>(
    server: openssl::ssl::SslAcceptor,
    cert: &SelfSigned,
    client: fn(std::net::SocketAddr, &SelfSigned) -> T,
) -> T {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut tls = server.accept(tcp).unwrap();
        tls.write_all(b"hello").unwrap();
        while matches!(tls.read(&mut [0u8; 16]), Ok(n) if n > 0) {}
    });
    let cert = cert.clone();
    let result = tokio::task::spawn_blocking(move || client(addr, &cert))
        .await
        .unwrap();
    server.join().unwrap();
    result
}

/// Connect as `b` and read the server's `hello`.
fn connect_and_read_hello(
    b: openssl::ssl::SslConnectorBuilder,
    addr: std::net::SocketAddr,
) -> openssl::ssl::SslStream<std::net::TcpStream> {
    use std::io::Read as _;
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut tls = b.build().connect("localhost", tcp).unwrap();
    let mut hello = [0u8; 5];
    tls.read_exact(&mut hello).unwrap();
    assert_eq!(&hello, b"hello");
    tls
}

/// What a plain OpenSSL client that offers Token Binding over TLS 1.3 learns from the
/// session ticket it is issued: the `max_early_data` it may send on resumption (`None`
/// when no ticket came).
fn ticket_early_data_limit(addr: std::net::SocketAddr, cert: &SelfSigned) -> Option<u32> {
    let mut b = openssl_client(cert, openssl::ssl::SslVersion::TLS1_3);
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::CLIENT);
    let (tx, rx) = std::sync::mpsc::channel();
    b.set_new_session_callback(move |_, session| {
        let _ = tx.send(session.max_early_data());
    });
    // Tickets come after the handshake, before the server's first data.
    let _tls = connect_and_read_hello(b, addr);
    rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
}

/// Token Binding must never meet 0-RTT (draft-ietf-tokbind-tls13 §3): early data is not
/// bound to the connection's EKM. The acceptor's tickets allow none, so a client cannot
/// even attempt it on resumption; the same client learns a non-zero limit from a server
/// that allows early data, so the check can see one.
#[tokio::test]
async fn tls13_tickets_allow_no_early_data() {
    let cert = cert();
    let a = acceptor(&cert).tls13_token_binding(true).build().unwrap();
    let (info, limit) = to_acceptor(a, &cert, ticket_early_data_limit).await;
    assert_eq!(info.tls_version(), TlsVersion::Tls13);
    assert!(info.negotiated().is_some(), "Token Binding over TLS 1.3");
    assert_eq!(limit, Some(0), "the ticket must allow no early data");

    // Control: an OpenSSL server that allows early data says so in its ticket.
    let mut b = openssl_server(&cert);
    b.set_max_early_data(16384).unwrap();
    let limit = to_openssl(b.build(), &cert, ticket_early_data_limit).await;
    assert_eq!(limit, Some(16384));
}

// libssl functions `openssl-sys` does not declare (the process links libssl through it).
unsafe extern "C" {
    fn SSL_renegotiate(ssl: *mut openssl_sys::SSL) -> std::os::raw::c_int;
    fn SSL_renegotiate_pending(ssl: *const openssl_sys::SSL) -> std::os::raw::c_int;
}

/// A plain OpenSSL TLS 1.2 client that offers Token Binding, connects, then asks to
/// renegotiate. `Ok` when the renegotiation completed.
fn try_renegotiate(addr: std::net::SocketAddr, cert: &SelfSigned) -> Result<(), String> {
    use foreign_types::ForeignTypeRef as _;
    let b = openssl_client(cert, openssl::ssl::SslVersion::TLS1_2);
    let mut tls = connect_and_read_hello(b, addr);
    // SAFETY: `tls.ssl()` borrows the live SSL object the stream owns; SSL_renegotiate
    // only marks it to start a handshake, which `do_handshake` below runs.
    if unsafe { SSL_renegotiate(tls.ssl().as_ptr()) } != 1 {
        return Err("SSL_renegotiate could not schedule a renegotiation".into());
    }
    tls.do_handshake().map_err(|e| e.to_string())?;
    // SAFETY: a read-only query on the same live SSL object.
    match unsafe { SSL_renegotiate_pending(tls.ssl().as_ptr()) } {
        0 => Ok(()),
        _ => Err("the renegotiation never completed".into()),
    }
}

/// The acceptor refuses renegotiation (`SSL_OP_NO_RENEGOTIATION`), so a connection's
/// Token Binding and EKM are those of its one handshake (RFC 8472 §5 would otherwise make
/// every renegotiation negotiate Token Binding again). A client that asks is refused; the
/// same client renegotiates with a server that allows it, so the check can see one.
#[tokio::test]
async fn client_initiated_renegotiation_is_refused() {
    let cert = cert();
    let a = acceptor(&cert).build().unwrap();
    let (info, renegotiated) = to_acceptor(a, &cert, try_renegotiate).await;
    assert_eq!(info.tls_version(), TlsVersion::Tls12);
    assert!(info.negotiated().is_some(), "Token Binding was negotiated");
    assert!(
        renegotiated
            .as_ref()
            .is_err_and(|e| e.contains("no renegotiation")),
        "{renegotiated:?}"
    );

    // Control: an OpenSSL server that allows renegotiation (OpenSSL 3 refuses a client's
    // unless SSL_OP_ALLOW_CLIENT_RENEGOTIATION, bit 8, is set).
    let mut b = openssl_server(&cert);
    b.clear_options(openssl::ssl::SslOptions::NO_RENEGOTIATION);
    b.set_options(openssl::ssl::SslOptions::from_bits_retain(1 << 8));
    assert_eq!(to_openssl(b.build(), &cert, try_renegotiate).await, Ok(()));
}
