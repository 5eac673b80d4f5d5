//! Errors of this crate.

use tokbind_proto::NegotiationError;
use tokbind_proto::negotiation::PolicyError;

/// An acceptor or connector could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[cfg(feature = "openssl")]
    /// The certificate (chain) could not be read or used.
    #[error("certificate: {0}")]
    Certificate(openssl::error::ErrorStack),
    /// The PEM held no certificate.
    #[error("certificate: no certificate in the PEM input")]
    NoCertificate,
    #[cfg(feature = "openssl")]
    /// The private key could not be read or does not match the certificate.
    #[error("private key: {0}")]
    PrivateKey(openssl::error::ErrorStack),
    /// The Token Binding policy is invalid.
    #[error("Token Binding policy: {0}")]
    Policy(PolicyError),
    #[cfg(feature = "openssl")]
    /// OpenSSL refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(openssl::error::ErrorStack),
    /// A PEM certificate or key could not be read (rustls listener).
    #[cfg(feature = "rustls")]
    #[error("PEM: {0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[cfg(feature = "rustls")]
    #[error("TLS configuration: {0}")]
    Rustls(tokio_rustls::rustls::Error),
    /// A [`Limits`](crate::Limits) value is out of range.
    #[error("{name} must be at least {minimum}, got {value}")]
    Limit {
        /// The setting.
        name: &'static str,
        /// The smallest value it takes.
        minimum: u64,
        /// The value given.
        value: u64,
    },
}

/// A TLS handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    #[cfg(feature = "openssl")]
    /// The `SSL` object could not be created.
    #[error("TLS setup: {0}")]
    Setup(openssl::error::ErrorStack),
    /// The handshake did not complete in time.
    #[error("TLS handshake timed out")]
    Timeout,
    /// The handshake failed on the connection (rustls listener: a TLS alert, a closed or
    /// broken connection).
    #[error("TLS handshake: {0}")]
    Io(std::io::Error),
    #[cfg(feature = "openssl")]
    /// The handshake failed (including the client's RFC 8472 §4 aborts, which OpenSSL
    /// reports as an `unsupported_extension` alert).
    #[error("TLS handshake: {0}")]
    Tls(openssl::ssl::Error),
    /// The handshake completed but Token Binding was negotiated where it must not be.
    #[error("Token Binding: {0}")]
    TokenBinding(NegotiationError),
    #[cfg(feature = "openssl")]
    /// Token Binding was negotiated but the TLS exporter (RFC 5705) failed, so the
    /// connection has no EKM to sign or verify over (RFC 8471 §3.3).
    #[error("exporting the Token Binding keying material: {0}")]
    Exporter(openssl::error::ErrorStack),
}
