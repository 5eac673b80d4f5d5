//! The server side over rustls (feature `rustls`): [`RustlsAcceptor`].
//!
//! rustls cannot carry the `token_binding` extension (RFC 8472 §3), so connections it
//! accepts never negotiate Token Binding. Everything else the layers use works the same:
//! the TLS version, and the client certificate (RFC 8705 §3) as a key the connection
//! proved — so DPoP, DBSC, bound cookies and certificate-bound tokens run with no OpenSSL
//! in the build. The serve loop and its [`Limits`](crate::Limits) are the OpenSSL
//! listener's.

use std::sync::Arc;
use std::time::Duration;

use tokbind_proto::{ConnectionInfo, TlsVersion};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, HandshakeKind, ProtocolVersion, SignatureScheme,
};
use tokio_rustls::server::TlsStream;

use crate::accept::{Accept, Accepted};
use crate::error::{ConfigError, HandshakeError};

/// A rustls TLS listener for [`serve`](crate::serve()): HTTP/2 and HTTP/1.1 by ALPN, TLS
/// 1.2 and 1.3, no 0-RTT, optionally asking clients for a certificate.
///
/// ```
/// use tokbind_tls::RustlsAcceptor;
///
/// # fn run(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), tokbind_tls::ConfigError> {
/// let acceptor = RustlsAcceptor::builder(cert_pem, key_pem)?
///     .request_client_certificates(true)
///     .build()?;
/// # let _ = acceptor; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RustlsAcceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    /// Whether a TLS 1.2 handshake always used the extended master secret (RFC 7627).
    require_ems: bool,
}

impl std::fmt::Debug for RustlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl RustlsAcceptor {
    /// Configure an acceptor for this certificate chain (PEM, leaf first) and its private
    /// key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn builder(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<RustlsAcceptorBuilder, ConfigError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::Pem(e.to_string()))?;
        if chain.is_empty() {
            return Err(ConfigError::NoCertificate);
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| ConfigError::Pem(e.to_string()))?;
        Ok(RustlsAcceptorBuilder {
            chain,
            key,
            client_certificates: false,
            handshake_timeout: RustlsAcceptorBuilder::DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// An acceptor with a configuration of your own. Its ALPN list is set to `h2`,
    /// `http/1.1` when it names none, since [`serve`](crate::serve()) speaks both; 0-RTT
    /// stays as configured (off unless `max_early_data_size` was raised — early data can
    /// be replayed, RFC 8446 §8).
    pub fn from_config(mut config: ServerConfig) -> Self {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = alpn();
        }
        let require_ems = config.require_ems;
        Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: RustlsAcceptorBuilder::DEFAULT_HANDSHAKE_TIMEOUT,
            require_ems,
        }
    }

    /// How long a client may take to complete the handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The same acceptor, giving clients `timeout` to complete the handshake.
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

impl Accept for RustlsAcceptor {
    type Stream = TlsStream<TcpStream>;
    type Error = HandshakeError;

    async fn handshake(&self, tcp: TcpStream) -> Result<Accepted<Self::Stream>, HandshakeError> {
        let stream = tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(tcp))
            .await
            .map_err(|_| HandshakeError::Timeout)?
            .map_err(HandshakeError::Io)?;
        let (_, conn) = stream.get_ref();
        let tls_version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
            Some(ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
            _ => TlsVersion::Other,
        };
        // TLS 1.3 always binds its secrets to the handshake (RFC 8446 §7.1); a TLS 1.2
        // handshake did when the configuration required it (rustls does not say otherwise).
        let ems = tls_version == TlsVersion::Tls13 || self.require_ems;
        let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
        let mut info = ConnectionInfo::without_token_binding(tls_version, ems, resumed);
        if let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) {
            info = info.with_client_certificate(leaf.as_ref());
        }
        let http2 = conn.alpn_protocol() == Some(b"h2");
        tracing::trace!(tls = %info.tls_version(), resumed, "TLS handshake complete (rustls)");
        Ok(Accepted {
            stream,
            info,
            http2,
        })
    }

    fn tcp(stream: &Self::Stream) -> &TcpStream {
        stream.get_ref().0
    }
}

/// Configures a [`RustlsAcceptor`].
#[must_use]
pub struct RustlsAcceptorBuilder {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_certificates: bool,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for RustlsAcceptorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsAcceptorBuilder")
            .field("client_certificates", &self.client_certificates)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl RustlsAcceptorBuilder {
    /// Default of [`handshake_timeout`](Self::handshake_timeout): 10 s, as the OpenSSL
    /// listener's.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// Ask clients for a certificate (optional for them) and accept any, self-signed
    /// included, once the client has proved its key in the handshake: RFC 8705 §3 binds
    /// tokens to the certificate itself (`cnf.x5t#S256`), not to a CA. As with the OpenSSL
    /// listener, `tower_tokbind::TokenBindingLayer` makes it a key proven on every request
    /// of the connection. Off by default.
    pub fn request_client_certificates(mut self, request: bool) -> Self {
        self.client_certificates = request;
        self
    }

    /// How long a client may take to complete the handshake, from the moment its
    /// connection is accepted.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The acceptor: TLS 1.2 (with the extended master secret, RFC 7627) and 1.3 on
    /// rustls's safe defaults with the aws-lc-rs provider, ALPN `h2` and `http/1.1`.
    pub fn build(self) -> Result<RustlsAcceptor, ConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(ConfigError::Rustls)?;
        let builder = if self.client_certificates {
            builder.with_client_cert_verifier(Arc::new(PossessionOnly::new(&provider)))
        } else {
            builder.with_client_cert_verifier(WebPkiClientVerifier::no_client_auth())
        };
        let mut config = builder
            .with_single_cert(self.chain, self.key)
            .map_err(ConfigError::Rustls)?;
        config.alpn_protocols = alpn();
        config.require_ems = true;
        Ok(RustlsAcceptor::from_config(config).with_handshake_timeout(self.handshake_timeout))
    }
}

fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// Accepts any client certificate whose key signed the handshake (RFC 8705 §2.2: the
/// certificate is bound to, not trusted through a CA); the signature is checked as any
/// rustls verifier checks it.
#[derive(Debug)]
struct PossessionOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl PossessionOnly {
    fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PossessionOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
