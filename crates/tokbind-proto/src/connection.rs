//! What one TLS connection established, as the HTTP layer needs it: the contract between
//! a TLS stack (which fills it in after the handshake) and the verifying middleware (which
//! reads it from each request's extensions).
//!
//! It also owns the connection's verification cache. A client signs the connection's EKM
//! once and sends the same `Sec-Token-Binding` value on every request of a keep-alive or
//! HTTP/2 connection, so the verdict for a header value is remembered — per connection
//! only. Sharing verdicts between connections would be a hole: the same header bytes are
//! valid on exactly one connection (mod_token_binding's shared cache let a header replayed
//! on another connection pass).

use core::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::ekm::Ekm;
use crate::header::{HeaderError, verify_header_with};
use crate::negotiation::Negotiated;
use crate::possession::ProvenKey;
use crate::validate::{ValidationOptions, VerifiedBindings};

/// The TLS protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
    /// Anything else (Token Binding is never negotiated on it).
    Other,
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tls12 => "TLSv1.2",
            Self::Tls13 => "TLSv1.3",
            Self::Other => "other",
        })
    }
}

/// Per-connection facts, shared (behind an `Arc`) by every request on the connection.
#[derive(Debug)]
pub struct ConnectionInfo {
    tls_version: TlsVersion,
    extended_master_secret: bool,
    session_reused: bool,
    token_binding: Option<BoundConnection>,
    client_certificate: Option<Arc<[u8]>>,
    peer_addr: Option<SocketAddr>,
}

/// The Token Binding state of a connection that negotiated it.
struct BoundConnection {
    negotiated: Negotiated,
    ekm: Ekm,
    cache: Mutex<VerdictCache>,
}

impl fmt::Debug for BoundConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundConnection")
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}

impl ConnectionInfo {
    /// A connection that did not negotiate Token Binding.
    pub fn without_token_binding(
        tls_version: TlsVersion,
        extended_master_secret: bool,
        session_reused: bool,
    ) -> Self {
        Self {
            tls_version,
            extended_master_secret,
            session_reused,
            token_binding: None,
            client_certificate: None,
            peer_addr: None,
        }
    }

    /// A connection that negotiated Token Binding; `ekm` is its exported keying material.
    pub fn with_token_binding(
        tls_version: TlsVersion,
        extended_master_secret: bool,
        session_reused: bool,
        negotiated: Negotiated,
        ekm: Ekm,
    ) -> Self {
        Self {
            tls_version,
            extended_master_secret,
            session_reused,
            token_binding: Some(BoundConnection {
                negotiated,
                ekm,
                cache: Mutex::new(VerdictCache::default()),
            }),
            client_certificate: None,
            peer_addr: None,
        }
    }

    /// The same facts, for a connection from `peer` (the TCP peer the server accepted, which
    /// is what a layer that trusts some peers, such as a TTRP backend's, decides on).
    pub fn with_peer_addr(mut self, peer: SocketAddr) -> Self {
        self.peer_addr = Some(peer);
        self
    }

    /// The TCP peer, when the server that accepted the connection said.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// The connection's TLS client certificate (DER), when the client presented one.
    #[must_use]
    pub fn with_client_certificate(mut self, der: impl Into<Arc<[u8]>>) -> Self {
        self.client_certificate = Some(der.into());
        self
    }

    /// The client certificate (DER) the handshake authenticated, if any.
    pub fn client_certificate(&self) -> Option<&[u8]> {
        self.client_certificate.as_deref()
    }

    /// The client certificate as a key proven on every request of this connection (RFC 8705
    /// §3: its thumbprint is what `cnf.x5t#S256` names). Shares the bytes.
    pub fn client_certificate_key(&self) -> Option<ProvenKey> {
        self.client_certificate
            .as_ref()
            .map(|der| ProvenKey::mtls_certificate(Arc::clone(der)))
    }

    /// The TLS version.
    pub fn tls_version(&self) -> TlsVersion {
        self.tls_version
    }

    /// Whether Extended Master Secret (RFC 7627) was used.
    pub fn extended_master_secret(&self) -> bool {
        self.extended_master_secret
    }

    /// Whether the TLS session was resumed (Token Binding is negotiated afresh either way).
    pub fn session_reused(&self) -> bool {
        self.session_reused
    }

    /// What was negotiated, if Token Binding was.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.token_binding.as_ref().map(|b| b.negotiated)
    }

    /// The connection's EKM, if Token Binding was negotiated.
    pub fn ekm(&self) -> Option<&Ekm> {
        self.token_binding.as_ref().map(|b| &b.ekm)
    }

    /// Verify a `Sec-Token-Binding` value received on this connection, remembering the
    /// verdict for this connection (both successes and failures: a client repeating a bad
    /// header costs one signature check, not one per request).
    ///
    /// Returns [`NotNegotiated`] when the connection did not negotiate Token Binding: such
    /// a message MUST be rejected (RFC 8471 §4.2).
    pub fn verify_header(
        &self,
        value: &[u8],
        options: &ValidationOptions,
    ) -> Result<Result<Arc<VerifiedBindings>, HeaderError>, NotNegotiated> {
        let bound = self.token_binding.as_ref().ok_or(NotNegotiated)?;
        let key = CacheKey::new(value, options);
        if let Some(hit) = bound.cache.lock().map(|mut c| c.get(&key)).unwrap_or(None) {
            return Ok(hit.map_err(|e| *e));
        }
        let verdict =
            verify_header_with(value, &bound.ekm, bound.negotiated.key_parameters, options)
                .map(Arc::new);
        if let Ok(mut cache) = bound.cache.lock() {
            cache.put(key, verdict.clone().map_err(Box::new));
        }
        Ok(verdict)
    }
}

/// A Token Binding message arrived on a connection that did not negotiate Token Binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Token Binding was not negotiated on this connection")]
pub struct NotNegotiated;

/// A cached verdict. Failures are boxed: they are rare, and a boxed error keeps each cache
/// slot — and so every connection — small (goal P4: ≤ 256 bytes of state per connection).
type Verdict = Result<Arc<VerifiedBindings>, Box<HeaderError>>;

/// Identifies a header value without keeping it: SHA-256 of the bytes (collision resistant,
/// so a different header can never be mistaken for a verified one) plus the options that
/// shaped the verdict.
#[derive(Clone, Copy, PartialEq, Eq)]
struct CacheKey {
    digest: [u8; 32],
    max_bindings: usize,
}

impl CacheKey {
    fn new(value: &[u8], options: &ValidationOptions) -> Self {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(d.as_ref());
        Self {
            digest,
            max_bindings: options.max_bindings,
        }
    }
}

/// The last [`VerdictCache::CAPACITY`] verdicts, most recent first. Two covers the usual
/// mix on one connection: a provided-only header and, after a redirect that asked for it,
/// a provided + referred one.
#[derive(Default)]
struct VerdictCache {
    entries: [Option<(CacheKey, Verdict)>; 2],
}

impl VerdictCache {
    const CAPACITY: usize = 2;

    fn get(&mut self, key: &CacheKey) -> Option<Verdict> {
        let at = self
            .entries
            .iter()
            .position(|e| e.as_ref().is_some_and(|(k, _)| k == key))?;
        self.entries[..=at].rotate_right(1);
        self.entries[0].as_ref().map(|(_, v)| v.clone())
    }

    fn put(&mut self, key: CacheKey, verdict: Verdict) {
        self.entries.rotate_right(1);
        self.entries[0] = Some((key, verdict));
        debug_assert_eq!(self.entries.len(), Self::CAPACITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyParameters, MessageBuilder, ProtocolVersion, SigningKey};

    fn bound(ekm: [u8; 32]) -> ConnectionInfo {
        ConnectionInfo::with_token_binding(
            TlsVersion::Tls12,
            true,
            false,
            Negotiated {
                version: ProtocolVersion::V1_0,
                key_parameters: KeyParameters::ECDSAP256,
            },
            Ekm::new(ekm),
        )
    }

    #[test]
    fn verdicts_are_cached_per_connection_only() {
        let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
        let a = bound([1; 32]);
        let b = bound([2; 32]);
        let header = MessageBuilder::new(a.ekm().unwrap())
            .provided(&key)
            .unwrap()
            .to_header_value()
            .unwrap();
        let opts = ValidationOptions::default();
        let first = a.verify_header(header.as_bytes(), &opts).unwrap().unwrap();
        let again = a.verify_header(header.as_bytes(), &opts).unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "second request served from the cache"
        );
        // The same bytes on another connection are verified there, and fail.
        let replay = b.verify_header(header.as_bytes(), &opts).unwrap();
        assert_eq!(replay.unwrap_err().reason(), "invalid_signature");
        // And on a connection without Token Binding they are refused outright.
        let plain = ConnectionInfo::without_token_binding(TlsVersion::Tls13, false, false);
        assert_eq!(
            plain.verify_header(header.as_bytes(), &opts),
            Err(NotNegotiated)
        );
    }

    #[test]
    fn cache_is_bounded_and_most_recent_first() {
        let mut c = VerdictCache::default();
        let opts = ValidationOptions::default();
        let k = |s: &[u8]| CacheKey::new(s, &opts);
        let v = || Err(Box::new(HeaderError::Base64));
        c.put(k(b"a"), v());
        c.put(k(b"b"), v());
        assert!(c.get(&k(b"a")).is_some()); // a is now most recent
        c.put(k(b"c"), v()); // evicts b
        assert!(c.get(&k(b"b")).is_none());
        assert!(c.get(&k(b"a")).is_some());
        assert!(c.get(&k(b"c")).is_some());
    }
}

#[cfg(test)]
mod size {
    use super::*;

    /// Goal P4: the Token Binding state a connection keeps (negotiation facts, EKM, the
    /// verdict cache) fits in 256 bytes. Verified IDs are shared with the requests through
    /// `Arc`s and reported separately in BENCHMARKS.md.
    #[test]
    fn per_connection_state_is_at_most_256_bytes() {
        let size = size_of::<ConnectionInfo>();
        assert!(size <= 256, "ConnectionInfo is {size} bytes");
        assert!(size_of::<Option<(CacheKey, Verdict)>>() <= 64);
    }
}
