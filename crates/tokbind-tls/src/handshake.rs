//! Per-connection negotiation state kept in the `SSL` object's ex_data, and the step that
//! turns a finished handshake into a [`ConnectionInfo`].
//!
//! OpenSSL shares one set of extension callbacks per `SSL_CTX`, so everything about one
//! handshake lives on its `SSL`. Nothing is stored in the TLS session: Token Binding is
//! negotiated afresh on every handshake, resumptions included (RFC 8472 §4), and the
//! state is dropped with the connection.

use std::sync::OnceLock;

use openssl::ex_data::Index;
use openssl::ssl::{ExtensionContext, Ssl, SslRef, SslVersion};
use tokbind_proto::{
    ConnectionInfo, EXPORTER_LABEL, Ekm, Negotiated, TlsVersion, TokenBindingParameters,
};

use crate::ffi;

/// Where `token_binding` travels (RFC 8472 §2, draft-ietf-tokbind-tls13 §2): offered in
/// the ClientHello, answered in the TLS 1.2 ServerHello or the TLS 1.3
/// EncryptedExtensions. The same for both ends.
pub(crate) fn extension_contexts() -> ExtensionContext {
    ExtensionContext::TLS_ONLY
        | ExtensionContext::CLIENT_HELLO
        | ExtensionContext::TLS1_2_SERVER_HELLO
        | ExtensionContext::TLS1_3_ENCRYPTED_EXTENSIONS
}

/// What one handshake learned about Token Binding so far.
#[derive(Debug, Default)]
pub(crate) struct HandshakeState {
    /// Server: the client's `token_binding` extension.
    pub client_parameters: Option<TokenBindingParameters>,
    /// Server: the ClientHello offered Extended Master Secret.
    pub ems_offered: bool,
    /// Server: the ClientHello offered renegotiation indication (extension or SCSV).
    pub ri_offered: bool,
    /// Both: the outcome, once the ServerHello/EncryptedExtensions was written or read.
    pub negotiated: Option<Negotiated>,
}

fn index() -> Index<Ssl, HandshakeState> {
    static INDEX: OnceLock<Index<Ssl, HandshakeState>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("OpenSSL ex_data index"))
}

/// The state of this handshake, created on first use. A TLS 1.3 HelloRetryRequest runs the
/// ClientHello callbacks twice; the second ClientHello simply overwrites the fields.
pub(crate) fn state_mut(ssl: &mut SslRef) -> &mut HandshakeState {
    let idx = index();
    if ssl.ex_data(idx).is_none() {
        ssl.set_ex_data(idx, HandshakeState::default());
    }
    ssl.ex_data_mut(idx).expect("just inserted")
}

/// The outcome recorded during the handshake, if any.
pub(crate) fn negotiated(ssl: &SslRef) -> Option<Negotiated> {
    ssl.ex_data(index()).and_then(|s| s.negotiated)
}

/// The TLS version of a finished handshake.
pub(crate) fn tls_version(ssl: &SslRef) -> TlsVersion {
    match ssl.version2() {
        Some(v) if v == SslVersion::TLS1_3 => TlsVersion::Tls13,
        Some(v) if v == SslVersion::TLS1_2 => TlsVersion::Tls12,
        _ => TlsVersion::Other,
    }
}

/// Why a finished handshake carries no Token Binding even though the extension was
/// exchanged.
#[derive(Debug)]
pub(crate) enum Disabled {
    /// TLS ≤ 1.2 without Extended Master Secret or renegotiation indication (RFC 8472 §3).
    MissingEmsOrRi,
    /// Neither TLS 1.2 nor 1.3.
    Version,
    /// The TLS exporter (RFC 5705, RFC 8471 §3.3) failed, so there is no EKM to verify
    /// signatures over.
    Exporter(openssl::error::ErrorStack),
}

/// Build the connection's info after the handshake, exporting the EKM if Token Binding was
/// negotiated. The EMS/RI condition is re-checked on the finished handshake (OpenSSL only
/// reports EMS once the handshake is over), so a disagreement can never leave Token
/// Binding active on a connection without them: the info then says "not negotiated" and
/// the reason is returned alongside.
pub(crate) fn finish(ssl: &SslRef) -> (ConnectionInfo, Option<Disabled>) {
    let version = tls_version(ssl);
    let ems = ffi::extended_master_secret(ssl).unwrap_or(false);
    let reused = ssl.session_reused();
    let plain = || ConnectionInfo::without_token_binding(version, ems, reused);
    let Some(negotiated) = negotiated(ssl) else {
        return (plain(), None);
    };
    match version {
        TlsVersion::Tls13 => {}
        TlsVersion::Tls12 if ems && ffi::secure_renegotiation(ssl) => {}
        TlsVersion::Tls12 => return (plain(), Some(Disabled::MissingEmsOrRi)),
        _ => return (plain(), Some(Disabled::Version)),
    }
    match Ekm::export_with(|buf| ssl.export_keying_material(buf, EXPORTER_LABEL, None)) {
        Ok(ekm) => (
            ConnectionInfo::with_token_binding(version, ems, reused, negotiated, ekm),
            None,
        ),
        // Without an EKM nothing can be verified: the connection carries no Token Binding.
        Err(e) => (plain(), Some(Disabled::Exporter(e))),
    }
}
