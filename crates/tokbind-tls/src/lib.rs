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
//!   `Arc<`[`ConnectionInfo`]`>` in every request.
//! * [`SelfSigned`] — certificates for demos and tests.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod cert;
pub mod client;
mod error;
mod ffi;
mod handshake;
pub mod serve;
pub mod server;

pub use cert::SelfSigned;
pub use client::{ConnectorBuilder, ServerVerification, TokenBindingConnector};
pub use error::{ConfigError, HandshakeError};
pub use serve::{Serve, WithGracefulShutdown, serve};
pub use server::{AcceptorBuilder, TokenBindingAcceptor};
pub use tokbind_proto::{ConnectionInfo, TlsVersion};
