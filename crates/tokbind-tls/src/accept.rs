//! What [`serve`](crate::serve()) needs of a TLS library: the [`Accept`] trait.
//!
//! The serve loop, its limits and its watchdog are the same whichever library runs the
//! handshake: OpenSSL (`TokenBindingAcceptor`, feature `openssl`), the only one that can
//! negotiate Token Binding, or rustls (`RustlsAcceptor`, feature `rustls`), for DPoP, DBSC
//! and certificate-bound tokens (RFC 8705) without OpenSSL in the build.

use std::future::Future;

use tokbind_proto::ConnectionInfo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A TLS acceptor: runs the server side of the handshake on an accepted TCP connection and
/// says what it established.
pub trait Accept: Send + Sync + 'static {
    /// The TLS stream over the TCP connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Why a handshake failed (logged, never shown to the client).
    type Error: std::fmt::Display + Send;

    /// The TLS handshake on `tcp`, within the acceptor's own handshake timeout.
    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl Future<Output = Result<Accepted<Self::Stream>, Self::Error>> + Send;

    /// The TCP connection under `stream`: a connection closed for being too slow is reset
    /// through it, so the kernel stops sending what it still buffers.
    fn tcp(stream: &Self::Stream) -> &TcpStream;
}

/// What a handshake established.
#[derive(Debug)]
pub struct Accepted<S> {
    /// The TLS stream.
    pub stream: S,
    /// The connection's facts, as the layers read them (TLS version, Token Binding and its
    /// EKM, the client certificate).
    pub info: ConnectionInfo,
    /// Whether ALPN selected HTTP/2 (`h2`).
    pub http2: bool,
}
