//! Checking a DPoP proof against the request it came with (RFC 9449 §4.3).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use tokbind_jose::Algorithm;
use tokbind_jose::jwk::PublicJwk;
use tokbind_jose::jws::{self, JwsError, KeySource, ProofRules};
use tokbind_jose::numeric_date::{NumericDate, NumericDateError};
use tokbind_proto::{Freshness, Mechanism, ProvenKey};

use crate::error::DpopError;
use crate::htu;
use crate::nonce::NonceIssuer;
use crate::replay::{MemoryReplayCache, ReplayCache};

/// The `typ` of a DPoP proof.
pub const TYP: &str = "dpop+jwt";
/// Longest `jti` accepted (RFC 9449 §11.1: bound what the cache must hold).
pub const MAX_JTI_LEN: usize = 256;

/// The claims of a proof (RFC 9449 §4.2). Unknown claims are ignored; a duplicated one is
/// an error.
#[derive(Debug, Clone, Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    /// Read by [`NumericDate`], which refuses what no clock can hold (and says so).
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// What the proof must match: the request as the server sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request's URI as the *client* addressed it, from configuration (see
    /// [`htu::expected`]), without query. Normalised by the check, so it may be given raw.
    pub htu: &'a str,
    /// The access token presented with the proof, if any (then `ath` must match it).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check.
#[derive(Debug, Clone)]
pub struct DpopProof {
    /// The proof's key.
    pub key: PublicJwk,
    /// Its RFC 7638 thumbprint, what `cnf.jkt` and `dpop_jkt` carry.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: SystemTime,
    /// The normalised `htu`.
    pub htu: String,
}

impl DpopProof {
    /// "This request proved possession of this key", for the cookie and token layers.
    pub fn proven_key(&self) -> ProvenKey {
        self.key
            .proven_key(Mechanism::Dpop, Freshness::ThisRequest, Some(&self.htu))
    }
}

/// Validates DPoP proofs: signature and claims, freshness, server nonces (optional) and
/// single use. Share one (in an `Arc`) across a server; give every instance the same nonce
/// secret and a shared replay cache.
pub struct DpopVerifier {
    algorithms: Vec<Algorithm>,
    max_age: Duration,
    max_skew: Duration,
    nonces: Option<NonceIssuer>,
    replay: Arc<dyn ReplayCache>,
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("nonces", &self.nonces)
            .finish_non_exhaustive()
    }
}

impl Default for DpopVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopVerifier {
    /// ES256, ES384, PS256, RS256 and EdDSA; proofs up to 60 s old (and 5 s in the future);
    /// no nonces; an in-memory replay cache.
    pub fn new() -> Self {
        Self {
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::PS256,
                Algorithm::RS256,
                Algorithm::EdDSA,
            ],
            max_age: Duration::from_secs(60),
            max_skew: Duration::from_secs(5),
            nonces: None,
            replay: Arc::new(MemoryReplayCache::default()),
        }
    }

    /// The signature algorithms accepted (asymmetric only; MAC algorithms are refused
    /// whatever this says).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How old (by `iat`) a proof may be, and how far in the future.
    pub fn max_age(mut self, max_age: Duration, max_skew: Duration) -> Self {
        self.max_age = max_age;
        self.max_skew = max_skew;
        self
    }

    /// Require server nonces (RFC 9449 §8/§9) made by `issuer`.
    pub fn nonces(mut self, issuer: NonceIssuer) -> Self {
        self.nonces = Some(issuer);
        self
    }

    /// Where used proofs are remembered (a shared store for several instances).
    pub fn replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.replay = cache;
        self
    }

    /// The `algs` value for `WWW-Authenticate: DPoP algs="…"` and for
    /// `dpop_signing_alg_values_supported`.
    pub fn algorithm_names(&self) -> Vec<&'static str> {
        self.algorithms
            .iter()
            .filter_map(|a| match a {
                Algorithm::ES256 => Some("ES256"),
                Algorithm::ES384 => Some("ES384"),
                Algorithm::PS256 => Some("PS256"),
                Algorithm::PS384 => Some("PS384"),
                Algorithm::PS512 => Some("PS512"),
                Algorithm::RS256 => Some("RS256"),
                Algorithm::RS384 => Some("RS384"),
                Algorithm::RS512 => Some("RS512"),
                Algorithm::EdDSA => Some("EdDSA"),
                _ => None,
            })
            .collect()
    }

    /// A fresh nonce, when nonces are required.
    pub fn fresh_nonce(&self, now: SystemTime) -> Option<String> {
        self.nonces.as_ref().map(|n| n.issue(now))
    }

    /// Whether a nonce should be sent ahead on a successful response (past half its life).
    pub(crate) fn nonce_wants_rotation(&self, presented: Option<&str>, now: SystemTime) -> bool {
        match (&self.nonces, presented) {
            (Some(n), Some(p)) => n.age(p, now).is_none_or(|age| age > n.lifetime() / 2),
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Every check but single use: the part with no I/O (RFC 9449 §4.3 steps 1–11 except
    /// the replay check). Use [`verify`](Self::verify) on requests.
    pub fn check(
        &self,
        proof: &str,
        request: &RequestFacts<'_>,
        now: SystemTime,
    ) -> Result<(DpopProof, Option<String>), DpopError> {
        let rules = ProofRules {
            typ: TYP,
            algorithms: &self.algorithms,
            key: KeySource::Embedded,
        };
        let verified = jws::verify::<ProofClaims>(proof, &rules).map_err(|e| match e {
            JwsError::Claims(detail) => DpopError::Claims(detail),
            other => DpopError::Jws(other),
        })?;
        let claims = verified.claims;
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(DpopError::Claims(format!(
                "jti must be 1 to {MAX_JTI_LEN} characters"
            )));
        }
        if claims.htm != request.method {
            return Err(DpopError::MethodMismatch);
        }
        let htu = htu::normalize(&claims.htu).map_err(|_| DpopError::UriMismatch)?;
        let expected = htu::normalize(request.htu).map_err(|_| DpopError::UriMismatch)?;
        if htu != expected {
            return Err(DpopError::UriMismatch);
        }
        // The attacker's own number: checked before any arithmetic on it.
        let iat_date = claims
            .iat
            .as_ref()
            .ok_or(NumericDateError::Missing)
            .and_then(NumericDate::from_json)
            .map_err(DpopError::Iat)?;
        let iat = iat_date.system_time().map_err(DpopError::Iat)?;
        match now.duration_since(iat) {
            Ok(age) if age > self.max_age => return Err(DpopError::Stale),
            Err(ahead) if ahead.duration() > self.max_skew => return Err(DpopError::FromTheFuture),
            _ => {}
        }
        match (request.access_token, claims.ath.as_deref()) {
            (Some(token), Some(ath)) => {
                let expected = access_token_hash(token);
                if verify_slices_are_equal(expected.as_bytes(), ath.as_bytes()).is_err() {
                    return Err(DpopError::AthMismatch);
                }
            }
            (Some(_), None) => return Err(DpopError::AthMissing),
            (None, _) => {}
        }
        if let Some(nonces) = &self.nonces {
            let ok = claims
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.is_valid(n, now));
            if !ok {
                return Err(DpopError::UseNonce);
            }
        }
        let jkt = verified.key.thumbprint();
        Ok((
            DpopProof {
                key: verified.key,
                jkt,
                jti: claims.jti,
                iat,
                htu,
            },
            claims.nonce,
        ))
    }

    /// Check `proof` for `request` and record it as used: a second presentation of the same
    /// proof, at this or (with a shared cache) any other instance, is refused.
    pub async fn verify(
        &self,
        proof: &str,
        request: &RequestFacts<'_>,
        now: SystemTime,
    ) -> Result<DpopProof, DpopError> {
        Ok(self.verify_with_nonce(proof, request, now).await?.0)
    }

    pub(crate) async fn verify_with_nonce(
        &self,
        proof: &str,
        request: &RequestFacts<'_>,
        now: SystemTime,
    ) -> Result<(DpopProof, Option<String>), DpopError> {
        let (proof, nonce) = self.check(proof, request, now)?;
        // One use per signed (key, target URI, jti, iat), remembered for as long as the
        // proof could be accepted. With iat in the key a jti reused in a later, separately
        // signed proof (RFC 9449's own V2 reuses V1's) is not mistaken for a replay, and
        // the cache does not depend on the server's clock agreeing with the proof's.
        let iat = proof
            .iat
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let iat = iat.to_be_bytes();
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [
            proof.jkt.as_bytes(),
            proof.htu.as_bytes(),
            proof.jti.as_bytes(),
            &iat,
        ] {
            // Every part lies within a proof of at most jws::MAX_LEN (8 KiB) bytes, so the
            // length never truncates.
            ctx.update(&(part.len() as u32).to_be_bytes());
            ctx.update(part);
        }
        let key: [u8; 32] = ctx
            .finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes");
        // Configuration, but a "never" (Duration::MAX) must not overflow either.
        let ttl = self.max_age.saturating_add(self.max_skew);
        match self.replay.first_use(key, ttl).await {
            Ok(true) => Ok((proof, nonce)),
            Ok(false) => Err(DpopError::Replay),
            Err(e) => Err(DpopError::ReplayCache(e.0)),
        }
    }
}

/// `ath` (RFC 9449 §4.2): base64url of the SHA-256 of the access token, for the client that
/// signs it and the server that checks it.
pub(crate) fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}
