//! The server side: an OpenSSL acceptor that negotiates `token_binding` (RFC 8472 §3) and
//! exports the EKM.
//!
//! Rules applied in the handshake:
//!
//! * TLS ≤ 1.2: the extension is answered only if the ClientHello also offered Extended
//!   Master Secret and renegotiation indication (the extension or the SCSV). OpenSSL always
//!   agrees to both when offered, and the finished handshake is checked again.
//! * TLS 1.3 (draft-ietf-tokbind-tls13): off unless [`AcceptorBuilder::tls13_token_binding`]
//!   is set; the answer goes in EncryptedExtensions. This acceptor never accepts 0-RTT early
//!   data, so Token Binding and early data never meet (draft §3).
//! * When TLS 1.3 Token Binding is off and a ClientHello offers `token_binding`, that one
//!   connection is capped at TLS 1.2 so Token Binding still works
//!   ([`AcceptorBuilder::cap_at_tls12_for_token_binding`], on by default). Clients that do
//!   not offer it keep TLS 1.3.
//! * Resumed sessions negotiate again; nothing is restored from a ticket or session cache.
//! * Renegotiation is refused: RFC 8473 §3 allows it only under conditions a server cannot
//!   enforce, and a fixed EKM per connection is what the verifier relies on.

use std::sync::Arc;
use std::time::Duration;

use openssl::pkey::PKey;
use openssl::ssl::{
    AlpnError, ClientHelloResponse, ExtensionContext, Ssl, SslAcceptor, SslAlert, SslMethod,
    SslOptions, SslVerifyMode, SslVersion, select_next_proto,
};
use openssl::x509::X509;
use tokbind_proto::{
    ConnectionInfo, HandshakeFacts, KeyParameters, ServerPolicy, TOKEN_BINDING_EXTENSION_TYPE,
    TokenBindingParameters,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::accept::Accepted;
use crate::error::{ConfigError, HandshakeError};
use crate::{ffi, handshake};

/// ALPN protocols offered, in preference order (wire format).
pub(crate) const ALPN: &[u8] = b"\x02h2\x08http/1.1";

const EXT_EXTENDED_MASTER_SECRET: u16 = 23;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const TLS_EMPTY_RENEGOTIATION_INFO_SCSV: [u8; 2] = [0x00, 0xff];

/// Whether the ClientHello allows TLS 1.2: its `supported_versions` list (RFC 8446 §4.2.1)
/// contains 0x0303, or it has no such list (a client that predates TLS 1.3). Capping a
/// TLS 1.3-only client at 1.2 would only fail its handshake.
fn offers_tls12(ssl: &openssl::ssl::SslRef) -> bool {
    match ffi::client_hello_extension(ssl, EXT_SUPPORTED_VERSIONS) {
        None => true,
        Some(data) => data
            .get(1..)
            .is_some_and(|list| list.chunks_exact(2).any(|v| v == [0x03, 0x03])),
    }
}

/// Accepts TLS connections that negotiate Token Binding. Cheap to clone.
#[derive(Clone)]
pub struct TokenBindingAcceptor {
    acceptor: Arc<SslAcceptor>,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for TokenBindingAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBindingAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TokenBindingAcceptor {
    /// Start configuring an acceptor with the server's certificate chain and private key
    /// (PEM; the chain starts with the leaf).
    pub fn builder(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<AcceptorBuilder, ConfigError> {
        let mut chain = X509::stack_from_pem(cert_chain_pem).map_err(ConfigError::Certificate)?;
        if chain.is_empty() {
            return Err(ConfigError::NoCertificate);
        }
        let leaf = chain.remove(0);
        let key = PKey::private_key_from_pem(key_pem).map_err(ConfigError::PrivateKey)?;
        Ok(AcceptorBuilder {
            leaf,
            chain,
            key,
            policy: ServerPolicy::default(),
            draft_versions: false,
            tls13_token_binding: false,
            cap_tls12: true,
            handshake_timeout: AcceptorBuilder::DEFAULT_HANDSHAKE_TIMEOUT,
            client_certificates: false,
        })
    }

    /// How long a client may take to complete the handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// Run the TLS handshake on `stream`.
    ///
    /// Returns the TLS stream and what the handshake established. Fails if the handshake
    /// fails or times out.
    pub async fn accept<S>(
        &self,
        stream: S,
    ) -> Result<(SslStream<S>, ConnectionInfo), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let ssl = Ssl::new(self.acceptor.context()).map_err(HandshakeError::Setup)?;
        let mut tls = SslStream::new(ssl, stream).map_err(HandshakeError::Setup)?;
        tokio::time::timeout(
            self.handshake_timeout,
            std::pin::Pin::new(&mut tls).accept(),
        )
        .await
        .map_err(|_| HandshakeError::Timeout)?
        .map_err(HandshakeError::Tls)?;
        let (mut info, disabled) = handshake::finish(tls.ssl());
        if let Some(cert) = tls.ssl().peer_certificate() {
            info = info.with_client_certificate(cert.to_der().map_err(HandshakeError::Setup)?);
        }
        if let Some(why) = disabled {
            tracing::error!(
                ?why,
                "token_binding was exchanged on a connection that cannot carry it; Token Binding disabled for this connection"
            );
        }
        tracing::trace!(
            tls = %info.tls_version(),
            token_binding = ?info.negotiated(),
            resumed = info.session_reused(),
            "TLS handshake complete"
        );
        Ok((tls, info))
    }
}

impl crate::Accept for TokenBindingAcceptor {
    type Stream = SslStream<TcpStream>;
    type Error = HandshakeError;

    async fn handshake(&self, tcp: TcpStream) -> Result<Accepted<Self::Stream>, HandshakeError> {
        let (stream, info) = self.accept(tcp).await?;
        let http2 = stream.ssl().selected_alpn_protocol() == Some(b"h2");
        Ok(Accepted {
            stream,
            info,
            http2,
        })
    }

    fn tcp(stream: &Self::Stream) -> &TcpStream {
        stream.get_ref()
    }
}

/// Configures a [`TokenBindingAcceptor`].
#[must_use]
pub struct AcceptorBuilder {
    leaf: X509,
    chain: Vec<X509>,
    key: PKey<openssl::pkey::Private>,
    policy: ServerPolicy,
    draft_versions: bool,
    tls13_token_binding: bool,
    cap_tls12: bool,
    handshake_timeout: Duration,
    client_certificates: bool,
}

impl AcceptorBuilder {
    /// Default of [`handshake_timeout`](Self::handshake_timeout): 10 s.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// Accept these key parameters, most preferred first (default: ecdsap256, rsa2048_pss,
    /// rsa2048_pkcs1.5).
    pub fn key_parameters(mut self, key_parameters: &[KeyParameters]) -> Result<Self, ConfigError> {
        self.policy = ServerPolicy::new(key_parameters).map_err(ConfigError::Policy)?;
        Ok(self)
    }

    /// Also accept the prototype protocol versions 0.10–0.18 (off by default).
    pub fn draft_versions(mut self, accept: bool) -> Self {
        self.draft_versions = accept;
        self
    }

    /// Negotiate Token Binding on TLS 1.3 too, per draft-ietf-tokbind-tls13 (off by
    /// default: the draft expired without becoming an RFC).
    pub fn tls13_token_binding(mut self, enable: bool) -> Self {
        self.tls13_token_binding = enable;
        self
    }

    /// When TLS 1.3 Token Binding is off, cap connections whose ClientHello offers
    /// `token_binding` at TLS 1.2 so it can be negotiated (default on). With this off such
    /// clients get TLS 1.3 without Token Binding.
    pub fn cap_at_tls12_for_token_binding(mut self, cap: bool) -> Self {
        self.cap_tls12 = cap;
        self
    }

    /// Ask clients for a certificate (optional for them) and accept any, self-signed
    /// included: RFC 8705 §3 binds tokens to the certificate itself (`cnf.x5t#S256`), not to
    /// a CA. The certificate goes in the connection's facts
    /// ([`ConnectionInfo::client_certificate_key`](tokbind_proto::ConnectionInfo::client_certificate_key)),
    /// and `tower_tokbind::TokenBindingLayer` makes it a key proven on every request of the
    /// connection. Off by default.
    pub fn request_client_certificates(mut self, request: bool) -> Self {
        self.client_certificates = request;
        self
    }

    /// How long a client may take to complete the handshake, from the moment its connection
    /// is accepted (default 10 s). A client that connects and sends nothing is closed then.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Build the acceptor.
    pub fn build(self) -> Result<TokenBindingAcceptor, ConfigError> {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .map_err(ConfigError::Tls)?;
        b.set_certificate(&self.leaf)
            .map_err(ConfigError::Certificate)?;
        for extra in self.chain {
            b.add_extra_chain_cert(extra)
                .map_err(ConfigError::Certificate)?;
        }
        b.set_private_key(&self.key)
            .map_err(ConfigError::PrivateKey)?;
        b.check_private_key().map_err(ConfigError::PrivateKey)?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(ConfigError::Tls)?;
        b.set_options(SslOptions::NO_RENEGOTIATION);
        if self.client_certificates {
            // Any certificate: what it proves is possession of its key (checked by the
            // handshake's CertificateVerify), and the token layer compares its thumbprint.
            b.set_verify_callback(SslVerifyMode::PEER, |_preverified, _ctx| true);
            // Resumed sessions keep the certificate; OpenSSL wants a context to resume them.
            b.set_session_id_context(b"tokbind")
                .map_err(ConfigError::Tls)?;
        }
        // Token Binding must never meet 0-RTT (draft-ietf-tokbind-tls13 §2, §3): early data
        // is never accepted (OpenSSL's default, stated here so it stays that way).
        b.set_max_early_data(0).map_err(ConfigError::Tls)?;
        b.set_alpn_select_callback(|_, client| {
            select_next_proto(ALPN, client).ok_or(AlpnError::NOACK)
        });

        let (tls13_tb, cap_tls12) = (self.tls13_token_binding, self.cap_tls12);
        b.set_client_hello_callback(move |ssl, _alert| {
            let ems = ffi::client_hello_extension(ssl, EXT_EXTENDED_MASTER_SECRET).is_some();
            let ri = ffi::client_hello_extension(ssl, EXT_RENEGOTIATION_INFO).is_some()
                || ssl.client_hello_ciphers().is_some_and(|c| {
                    c.chunks_exact(2)
                        .any(|s| s == TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
                });
            let offers_tb =
                ffi::client_hello_extension(ssl, TOKEN_BINDING_EXTENSION_TYPE).is_some();
            if offers_tb && !tls13_tb && cap_tls12 && offers_tls12(ssl) {
                ssl.set_max_proto_version(Some(SslVersion::TLS1_2))?;
            }
            let state = handshake::state_mut(ssl);
            state.ems_offered = ems;
            state.ri_offered = ri;
            state.client_parameters = None;
            state.negotiated = None;
            Ok(ClientHelloResponse::SUCCESS)
        });

        let policy = self.policy.with_draft_versions(self.draft_versions);
        b.add_custom_ext(
            TOKEN_BINDING_EXTENSION_TYPE,
            handshake::extension_contexts(),
            // Called for the ServerHello (TLS 1.2) or EncryptedExtensions (TLS 1.3), only
            // when the client sent the extension. `None` omits it: no Token Binding.
            move |ssl, context, _| {
                let tls13 = context.contains(ExtensionContext::TLS1_3_ENCRYPTED_EXTENSIONS);
                let state = handshake::state_mut(ssl);
                let Some(client) = state.client_parameters.as_ref() else {
                    return Ok(None);
                };
                if tls13 && !tls13_tb {
                    return Ok(None);
                }
                let facts = HandshakeFacts {
                    tls13,
                    extended_master_secret: state.ems_offered,
                    renegotiation_indication: state.ri_offered,
                };
                let chosen = policy.negotiate(client, &facts);
                state.negotiated = chosen;
                Ok(chosen.map(|n| n.to_parameters().to_bytes()))
            },
            // The ClientHello's extension: malformed data is a fatal decode_error.
            |ssl, _context, data, _| {
                let params = TokenBindingParameters::decode(data).map_err(|e| {
                    tracing::debug!(error = %e, "malformed token_binding extension in ClientHello");
                    SslAlert::DECODE_ERROR
                })?;
                handshake::state_mut(ssl).client_parameters = Some(params);
                Ok(())
            },
        )
        .map_err(ConfigError::Tls)?;

        Ok(TokenBindingAcceptor {
            acceptor: Arc::new(b.build()),
            handshake_timeout: self.handshake_timeout,
        })
    }
}
