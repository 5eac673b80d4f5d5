//! Token Binding over TLS: RFC 8472 negotiation and the RFC 8471 §3.3 exporter, on
//! OpenSSL.
//!
//! rustls cannot add custom TLS extensions, so the Token Binding legs use OpenSSL through
//! the `openssl` crate: the `token_binding` extension (type 24) is registered with
//! `SSL_CTX_add_custom_ext`, negotiated with the pure rules of
//! [`tokbind_proto::negotiation`], and the 32-byte EKM is exported with label
//! `EXPORTER-Token-Binding` and no context.
//!
//! * [`TokenBindingAcceptor`] — the server side; see [`server`] for the rules it applies.
//! * [`TokenBindingConnector`] — the client side; see [`client`].
//! * [`serve()`] — runs a Tower service (an axum `Router`) over the acceptor, putting an
//!   `Arc<`[`ConnectionInfo`]`>` in every request, within [`Limits`] that keep slow and
//!   greedy clients from holding the server.
//! * [`SelfSigned`] — certificates for demos and tests.
//! * `RustlsAcceptor` (feature `rustls`) — the same [`serve()`] and [`Limits`] over
//!   rustls, for everything but Token Binding: DPoP, DBSC, bound cookies and
//!   certificate-bound tokens (RFC 8705). Build with `default-features = false, features =
//!   ["rustls"]` to leave OpenSSL out.
//!
//! Features: `openssl` (default) for the Token Binding listener and connector, `rustls`
//! for the rustls listener. [`serve()`] takes either ([`Accept`]).
//!
//! Both ends of one real handshake on loopback:
//!
//! ```
//! # #[cfg(feature = "openssl")] {
//! use tokbind_tls::{SelfSigned, ServerVerification, TokenBindingAcceptor, TokenBindingConnector};
//! use tokio::net::{TcpListener, TcpStream};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let cert = SelfSigned::generate(&["localhost"])?;
//! let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
//! let connector = TokenBindingConnector::builder()
//!     .server_verification(ServerVerification::Roots(cert.cert_pem.clone()))
//!     .build()?;
//!
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let (_tls, info) = acceptor.accept(tcp).await?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(info)
//! });
//! let (_tls, client) = connector.connect("localhost", TcpStream::connect(addr).await?).await?;
//! let server = server.await??;
//!
//! // Both ends negotiated Token Binding (ecdsap256 by default) and export the same EKM,
//! // which every Sec-Token-Binding signature on this connection covers.
//! assert!(server.negotiated().is_some());
//! assert_eq!(client.negotiated(), server.negotiated());
//! assert_eq!(client.ekm(), server.ekm());
//! # Ok(())
//! # }
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod activity;
#[cfg(feature = "openssl")]
mod cert;
#[cfg(feature = "openssl")]
pub mod client;
mod connection;
mod error;
#[cfg(feature = "openssl")]
mod ffi;
#[cfg(feature = "openssl")]
mod handshake;
mod io;
mod limits;
mod pace;
mod request_body;
#[cfg(feature = "rustls")]
mod rustls_server;
pub mod serve;
#[cfg(feature = "openssl")]
pub mod server;
mod stream_pace;

pub use accept::{Accept, Accepted};
#[cfg(feature = "openssl")]
pub use cert::SelfSigned;
#[cfg(feature = "openssl")]
pub use client::{ConnectorBuilder, ServerVerification, TokenBindingConnector};
pub use error::{ConfigError, HandshakeError};
pub use limits::Limits;
pub use request_body::{RequestBody, RequestBodyError};
#[cfg(feature = "rustls")]
pub use rustls_server::{RustlsAcceptor, RustlsAcceptorBuilder};
pub use serve::{Serve, WithGracefulShutdown, serve};
#[cfg(feature = "openssl")]
pub use server::{AcceptorBuilder, TokenBindingAcceptor};
pub use tokbind_proto::{ConnectionInfo, TlsVersion};
