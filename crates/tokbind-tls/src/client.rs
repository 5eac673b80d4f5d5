//! The client side: an OpenSSL connector that offers `token_binding` (RFC 8472 §2) and
//! checks the server's answer (§4).
//!
//! The server's extension is checked as it is parsed, and the handshake is aborted with a
//! fatal `unsupported_extension` alert if the server chose a version above the offer, more
//! than one key parameter, or one that was not offered. OpenSSL itself refuses an
//! extension the client did not send. The EMS + renegotiation-indication condition can
//! only be read once the handshake is complete (OpenSSL does not report EMS earlier); a
//! TLS 1.2 connection that negotiated Token Binding without both is closed and reported as
//! [`HandshakeError::TokenBinding`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use openssl::ex_data::Index;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ExtensionContext, Ssl, SslAlert, SslConnector, SslMethod, SslOptions, SslSession,
    SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use tokbind_proto::{
    ClientPolicy, ConnectionInfo, HandshakeFacts, KeyParameters, NegotiationError, ProtocolVersion,
    TOKEN_BINDING_EXTENSION_TYPE,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_openssl::SslStream;

use crate::error::{ConfigError, HandshakeError};
use crate::handshake::{self, Disabled};
use crate::server::ALPN;

/// Opens TLS connections that offer Token Binding. Cheap to clone.
#[derive(Clone)]
pub struct TokenBindingConnector {
    connector: Arc<SslConnector>,
    verify_hostname: bool,
    sessions: Option<SessionStore>,
}

/// TLS sessions for resumption, by server name. Only sessions made by this connector's own
/// context are ever stored here.
type SessionStore = Arc<Mutex<HashMap<String, SslSession>>>;

fn server_name_index() -> Index<Ssl, String> {
    static INDEX: OnceLock<Index<Ssl, String>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("OpenSSL ex_data index"))
}

impl std::fmt::Debug for TokenBindingConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBindingConnector")
            .finish_non_exhaustive()
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServerVerification {
    /// The system's trust store, and the host name (the default).
    System,
    /// Only these PEM certificates are trusted as roots (plus the host name check).
    Roots(Vec<u8>),
    /// No check at all: anyone can impersonate the server. For demos against a
    /// self-signed server only.
    InsecureAcceptAnything,
}

impl TokenBindingConnector {
    /// Start configuring a connector.
    pub fn builder() -> ConnectorBuilder {
        ConnectorBuilder {
            policy: ClientPolicy::default(),
            offer: true,
            verification: ServerVerification::System,
            min_version: SslVersion::TLS1_2,
            max_version: None,
            extended_master_secret: true,
            resume_sessions: false,
            http1_only: false,
            client_certificate: None,
        }
    }

    /// Run the TLS handshake with `server_name` (a DNS name or IP address, used for SNI and
    /// certificate checks) over `stream`.
    pub async fn connect<S>(
        &self,
        server_name: &str,
        stream: S,
    ) -> Result<(SslStream<S>, ConnectionInfo), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut config = self.connector.configure().map_err(HandshakeError::Setup)?;
        config.set_verify_hostname(self.verify_hostname);
        let mut ssl = config
            .into_ssl(server_name)
            .map_err(HandshakeError::Setup)?;
        if let Some(store) = &self.sessions {
            ssl.set_ex_data(server_name_index(), server_name.to_string());
            let cached = store.lock().ok().and_then(|s| s.get(server_name).cloned());
            if let Some(session) = cached {
                // SAFETY: every session in `store` was produced by a connection of this
                // connector, i.e. of the same SSL_CTX, which is what SSL_set_session needs.
                #[allow(unsafe_code)]
                unsafe {
                    ssl.set_session(&session).map_err(HandshakeError::Setup)?;
                }
            }
        }
        let mut tls = SslStream::new(ssl, stream).map_err(HandshakeError::Setup)?;
        std::pin::Pin::new(&mut tls)
            .connect()
            .await
            .map_err(HandshakeError::Tls)?;
        match handshake::finish(tls.ssl()) {
            (info, None) => Ok((tls, info)),
            (_, Some(Disabled::Exporter(e))) => Err(HandshakeError::Exporter(e)),
            (_, Some(Disabled::MissingEmsOrRi | Disabled::Version)) => Err(
                HandshakeError::TokenBinding(NegotiationError::MissingEmsOrRenegotiationIndication),
            ),
        }
    }
}

/// Configures a [`TokenBindingConnector`].
#[must_use]
pub struct ConnectorBuilder {
    policy: ClientPolicy,
    offer: bool,
    verification: ServerVerification,
    min_version: SslVersion,
    max_version: Option<SslVersion>,
    extended_master_secret: bool,
    resume_sessions: bool,
    http1_only: bool,
    client_certificate: Option<(X509, PKey<Private>)>,
}

impl ConnectorBuilder {
    /// Present this certificate (PEM) and prove its key (PEM) when the server asks (RFC 8705
    /// mutual TLS; a self-signed certificate will do for certificate-bound tokens).
    pub fn client_certificate(
        mut self,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let cert = X509::from_pem(cert_pem).map_err(ConfigError::Certificate)?;
        let key = PKey::private_key_from_pem(key_pem).map_err(ConfigError::PrivateKey)?;
        self.client_certificate = Some((cert, key));
        Ok(self)
    }

    /// Remember TLS sessions per server name and resume them on the next connection
    /// (default off). Token Binding is negotiated afresh on resumed connections either way.
    pub fn resume_sessions(mut self, resume: bool) -> Self {
        self.resume_sessions = resume;
        self
    }

    /// Offer these key parameters, most preferred first (default: ecdsap256, rsa2048_pss,
    /// rsa2048_pkcs1.5).
    pub fn key_parameters(mut self, key_parameters: &[KeyParameters]) -> Result<Self, ConfigError> {
        self.policy = ClientPolicy::new(key_parameters).map_err(ConfigError::Policy)?;
        Ok(self)
    }

    /// Advertise protocol `version` (default 1.0) and accept answers down to `lowest`.
    pub fn protocol_versions(mut self, version: ProtocolVersion, lowest: ProtocolVersion) -> Self {
        self.policy = self.policy.with_versions(version, lowest);
        self
    }

    /// Whether to offer Token Binding at all (default yes).
    pub fn offer_token_binding(mut self, offer: bool) -> Self {
        self.offer = offer;
        self
    }

    /// How to check the server's certificate.
    pub fn server_verification(mut self, verification: ServerVerification) -> Self {
        self.verification = verification;
        self
    }

    /// Offer only `http/1.1` in ALPN (default: `h2`, then `http/1.1`).
    pub fn http1_only(mut self) -> Self {
        self.http1_only = true;
        self
    }

    /// Restrict the connection to TLS 1.2 (default: TLS 1.2 or 1.3).
    pub fn tls12_only(mut self) -> Self {
        self.max_version = Some(SslVersion::TLS1_2);
        self
    }

    /// Require TLS 1.3.
    pub fn tls13_only(mut self) -> Self {
        self.min_version = SslVersion::TLS1_3;
        self.max_version = Some(SslVersion::TLS1_3);
        self
    }

    /// Do not offer Extended Master Secret. A conforming server then never negotiates
    /// Token Binding on TLS 1.2; only useful to test servers.
    pub fn without_extended_master_secret(mut self) -> Self {
        self.extended_master_secret = false;
        self
    }

    /// Build the connector.
    pub fn build(self) -> Result<TokenBindingConnector, ConfigError> {
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(ConfigError::Tls)?;
        b.set_min_proto_version(Some(self.min_version))
            .map_err(ConfigError::Tls)?;
        b.set_max_proto_version(self.max_version)
            .map_err(ConfigError::Tls)?;
        let alpn: &[u8] = if self.http1_only {
            b"\x08http/1.1"
        } else {
            ALPN
        };
        b.set_alpn_protos(alpn).map_err(ConfigError::Tls)?;
        if let Some((cert, key)) = &self.client_certificate {
            b.set_certificate(cert).map_err(ConfigError::Certificate)?;
            b.set_private_key(key).map_err(ConfigError::PrivateKey)?;
            b.check_private_key().map_err(ConfigError::PrivateKey)?;
        }
        if !self.extended_master_secret {
            // SSL_OP_NO_EXTENDED_MASTER_SECRET (OpenSSL 3.0+), not named by the openssl crate.
            b.set_options(SslOptions::from_bits_retain(1));
        }
        let verify_hostname = match &self.verification {
            ServerVerification::System => true,
            ServerVerification::Roots(pem) => {
                // A store of these roots alone: `SslConnector::builder` has loaded the
                // system's into the one it made, and those must not count.
                let mut store = X509StoreBuilder::new().map_err(ConfigError::Tls)?;
                for cert in X509::stack_from_pem(pem).map_err(ConfigError::Certificate)? {
                    store.add_cert(cert).map_err(ConfigError::Certificate)?;
                }
                b.set_cert_store(store.build());
                true
            }
            ServerVerification::InsecureAcceptAnything => {
                b.set_verify(SslVerifyMode::NONE);
                b.set_cert_store(X509StoreBuilder::new().map_err(ConfigError::Tls)?.build());
                false
            }
        };

        let sessions = self.resume_sessions.then(SessionStore::default);
        if let Some(store) = &sessions {
            b.set_session_cache_mode(SslSessionCacheMode::CLIENT);
            let store = Arc::clone(store);
            b.set_new_session_callback(move |ssl, session| {
                if let (Some(name), Ok(mut map)) = (ssl.ex_data(server_name_index()), store.lock())
                {
                    map.insert(name.clone(), session);
                }
            });
        }

        let (policy, offer) = (self.policy, self.offer);
        let hello = policy.client_hello_parameters().to_bytes();
        b.add_custom_ext(
            TOKEN_BINDING_EXTENSION_TYPE,
            handshake::extension_contexts(),
            move |_ssl, _context, _| Ok(offer.then(|| hello.clone())),
            move |ssl, context, data, _| {
                // EMS/RI are re-checked after the handshake (see the module docs); the
                // structural rules of RFC 8472 §4 are applied here.
                let facts = HandshakeFacts {
                    tls13: context.contains(ExtensionContext::TLS1_3_ENCRYPTED_EXTENSIONS),
                    extended_master_secret: true,
                    renegotiation_indication: true,
                };
                match policy.process_server_parameters(data, &facts) {
                    Ok(negotiated) => {
                        handshake::state_mut(ssl).negotiated = negotiated;
                        Ok(())
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "server's token_binding answer violates RFC 8472 §4");
                        Err(SslAlert::UNSUPPORTED_EXTENSION)
                    }
                }
            },
        )
        .map_err(ConfigError::Tls)?;

        Ok(TokenBindingConnector {
            connector: Arc::new(b.build()),
            verify_hostname,
            sessions,
        })
    }
}
