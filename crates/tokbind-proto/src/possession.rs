//! "This request proved possession of key K, by mechanism M, at time T, scoped to S": what
//! cookie and token binding layers consume.
//!
//! Token Binding produces it (the provided Token Binding ID, proven on this request's
//! connection). Other mechanisms that prove possession of a client key — DPoP, Device
//! Bound Session Credentials, mTLS — produce the same value, so the layers that bind
//! cookies and tokens to a key do not depend on how the proof was made.
//!
//! They differ in *when* the proof was made, and consumers must care: Token Binding,
//! DPoP and mTLS prove possession for the request at hand ([`Freshness::ThisRequest`]);
//! DBSC proves it only at registration and refresh, after which a short-lived cookie
//! stands in for the key ([`Freshness::ProvenAt`]). Treating the second like the first
//! would let a stolen short-lived cookie count as a live proof, so every consumer takes a
//! [`FreshnessPolicy`], and the default accepts only proofs made for this request.
//!
//! A request may carry several proofs (Token Binding and DPoP together are legal), so the
//! request extension is [`ProvenKeys`], a small set.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smallvec::SmallVec;

use crate::id::{Tbh, TokenBindingId};

/// How possession of the key was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// A verified `provided_token_binding` (RFC 8471/8473). The key ID is the TBID; its
    /// thumbprint is `tbh` (`cnf.tbh`).
    TokenBinding,
    /// A verified DPoP proof (RFC 9449). The key ID is the RFC 7638 canonical JWK; its
    /// thumbprint is the JWK thumbprint (`cnf.jkt`).
    Dpop,
    /// A Device Bound Session Credentials session (W3C DBSC). The key ID is the RFC 7638
    /// canonical JWK of the session key; the scope is the DBSC session identifier.
    Dbsc,
    /// A TLS client certificate (RFC 8705). The key ID is the certificate (DER); its
    /// thumbprint is `x5t#S256` (`cnf.x5t#S256`).
    MtlsCertificate,
}

impl Mechanism {
    /// A short stable label, used for domain separation when binding values to keys.
    pub fn label(self) -> &'static str {
        match self {
            Self::TokenBinding => "token-binding",
            Self::Dpop => "dpop",
            Self::Dbsc => "dbsc",
            Self::MtlsCertificate => "mtls",
        }
    }
}

/// When possession was proven, relative to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Freshness {
    /// Proven for this very request (Token Binding: a signature over this connection's
    /// EKM; DPoP: a signed proof for this method and URI; mTLS: this connection's
    /// handshake).
    ThisRequest,
    /// Proven at this time, and only vouched for since (DBSC: the last registration or
    /// refresh that minted the short-lived cookie this request carries).
    ProvenAt(SystemTime),
}

/// Which proofs a consumer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FreshnessPolicy {
    /// Only proofs made for this request (the default).
    #[default]
    ThisRequest,
    /// Also proofs made at most this long ago (what DBSC sessions need; the window should
    /// not exceed the short-lived cookie's lifetime).
    Within(Duration),
}

impl FreshnessPolicy {
    /// Whether a proof of `freshness` is acceptable at `now`.
    pub fn accepts(self, freshness: Freshness, now: SystemTime) -> bool {
        match (self, freshness) {
            (_, Freshness::ThisRequest) => true,
            (Self::ThisRequest, Freshness::ProvenAt(_)) => false,
            (Self::Within(window), Freshness::ProvenAt(at)) => {
                // A proof from the future (clock trouble) is not accepted either.
                now.duration_since(at).is_ok_and(|age| age <= window)
            }
        }
    }
}

/// A key the current request proved possession of. Layers that check proofs add it to
/// the request's [`ProvenKeys`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProvenKey {
    mechanism: Mechanism,
    freshness: Freshness,
    key_id: Arc<[u8]>,
    scope: Option<Arc<str>>,
}

impl ProvenKey {
    /// A key proven by `mechanism`. `key_id` is the mechanism's canonical key bytes (see
    /// [`Mechanism`]); `scope` what the proof is limited to, if anything (the DBSC session
    /// identifier, the DPoP `htu`).
    pub fn new(
        mechanism: Mechanism,
        freshness: Freshness,
        key_id: impl Into<Arc<[u8]>>,
        scope: Option<&str>,
    ) -> Self {
        Self {
            mechanism,
            freshness,
            key_id: key_id.into(),
            scope: scope.map(Arc::from),
        }
    }

    /// The key of a verified provided Token Binding. Shares the ID's bytes (no copy: this
    /// runs on every request).
    pub fn token_binding(provided: &TokenBindingId) -> Self {
        Self {
            mechanism: Mechanism::TokenBinding,
            freshness: Freshness::ThisRequest,
            key_id: provided.shared_bytes(),
            scope: None,
        }
    }

    /// The key of a TLS client certificate (DER), proven by the handshake of the request's
    /// connection — directly, or at a trusted TLS-terminating proxy that forwarded it
    /// (RFC 9440). Its thumbprint is what `cnf.x5t#S256` names (RFC 8705 §3). Shares the
    /// bytes.
    pub fn mtls_certificate(der: Arc<[u8]>) -> Self {
        Self {
            mechanism: Mechanism::MtlsCertificate,
            freshness: Freshness::ThisRequest,
            key_id: der,
            scope: None,
        }
    }

    /// How possession was proven.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// When possession was proven.
    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// What the proof is limited to, if anything.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The canonical bytes identifying the key for its mechanism (for Token Binding: the
    /// raw TBID; DPoP and DBSC: the RFC 7638 canonical JWK; mTLS: the certificate).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// SHA-256 of the key ID: exactly `tbh` for Token Binding, the RFC 7638 thumbprint
    /// (`jkt`) for DPoP and DBSC, `x5t#S256` for mTLS — the value a token's `cnf` carries.
    pub fn thumbprint(&self) -> Tbh {
        Tbh::of(&self.key_id)
    }
}

/// Every key the current request proved possession of, in the order the layers added
/// them. The request extension that cookie and token layers read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvenKeys(SmallVec<[ProvenKey; 1]>);

impl ProvenKeys {
    /// One key.
    pub fn one(key: ProvenKey) -> Self {
        Self(smallvec::smallvec![key])
    }

    /// Add a key (a request may prove several, by different mechanisms).
    pub fn push(&mut self, key: ProvenKey) {
        self.0.push(key);
    }

    /// The keys.
    pub fn iter(&self) -> std::slice::Iter<'_, ProvenKey> {
        self.0.iter()
    }

    /// Whether no key was proven.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys `policy` accepts at `now`, in order.
    pub fn acceptable(
        &self,
        policy: FreshnessPolicy,
        now: SystemTime,
    ) -> impl Iterator<Item = &ProvenKey> {
        self.0
            .iter()
            .filter(move |k| policy.accepts(k.freshness, now))
    }

    /// The first key proven by `mechanism`.
    pub fn by(&self, mechanism: Mechanism) -> Option<&ProvenKey> {
        self.0.iter().find(|k| k.mechanism == mechanism)
    }
}

impl<'a> IntoIterator for &'a ProvenKeys {
    type Item = &'a ProvenKey;
    type IntoIter = std::slice::Iter<'a, ProvenKey>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<ProvenKey> for ProvenKeys {
    fn from(key: ProvenKey) -> Self {
        Self::one(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbsc(at: SystemTime) -> ProvenKey {
        ProvenKey::new(
            Mechanism::Dbsc,
            Freshness::ProvenAt(at),
            &b"{\"crv\":\"P-256\"}"[..],
            Some("S1"),
        )
    }

    #[test]
    fn the_default_policy_accepts_only_proofs_for_this_request() {
        let now = SystemTime::now();
        let policy = FreshnessPolicy::default();
        assert!(policy.accepts(Freshness::ThisRequest, now));
        // A DBSC cookie minted a second ago is still not a proof made for this request.
        assert!(!policy.accepts(Freshness::ProvenAt(now - Duration::from_secs(1)), now));
        assert!(!policy.accepts(Freshness::ProvenAt(now), now));
    }

    #[test]
    fn within_accepts_recent_proofs_only() {
        let now = SystemTime::now();
        let policy = FreshnessPolicy::Within(Duration::from_secs(300));
        assert!(policy.accepts(Freshness::ThisRequest, now));
        assert!(policy.accepts(Freshness::ProvenAt(now - Duration::from_secs(300)), now));
        assert!(!policy.accepts(Freshness::ProvenAt(now - Duration::from_secs(301)), now));
        assert!(!policy.accepts(Freshness::ProvenAt(now + Duration::from_secs(5)), now));
    }

    #[test]
    fn a_request_can_carry_several_keys() {
        let now = SystemTime::now();
        let tb = ProvenKey::token_binding(&TokenBindingId::ecdsap256(&[1; 64]));
        let mut keys = ProvenKeys::one(tb.clone());
        keys.push(dbsc(now - Duration::from_secs(10)));
        assert_eq!(keys.iter().count(), 2);
        assert_eq!(keys.by(Mechanism::TokenBinding), Some(&tb));
        assert_eq!(keys.by(Mechanism::Dbsc).unwrap().scope(), Some("S1"));
        let fresh: Vec<_> = keys.acceptable(FreshnessPolicy::ThisRequest, now).collect();
        assert_eq!(fresh, [&tb]);
        let recent = keys.acceptable(FreshnessPolicy::Within(Duration::from_secs(60)), now);
        assert_eq!(recent.count(), 2);
    }

    #[test]
    fn thumbprints_are_sha256_of_the_key_id() {
        let id = TokenBindingId::ecdsap256(&[1; 64]);
        assert_eq!(ProvenKey::token_binding(&id).thumbprint(), id.tbh());
        let key = dbsc(SystemTime::now());
        assert_eq!(key.thumbprint(), Tbh::of(key.key_id()));
        assert_ne!(Mechanism::Dpop.label(), Mechanism::Dbsc.label());
    }
}
