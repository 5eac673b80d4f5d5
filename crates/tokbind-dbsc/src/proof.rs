//! The DBSC proof JWT (`typ: dbsc+jwt`): what registration and refresh must check.
//!
//! The payload is only `jti` (the server's challenge, verbatim) and, at registration,
//! `authorization` (when the registration header carried one); Chromium with the audience
//! flag adds `aud`, the endpoint's URL. Registration embeds the key (`jwk`); a refresh
//! must not, and is checked against the key stored at registration.

use serde::Deserialize;
use tokbind_jose::Algorithm;
use tokbind_jose::jwk::PublicJwk;
use tokbind_jose::jws::{self, JwsError, KeySource, ProofRules};

/// The `typ` of a DBSC proof.
pub const TYP: &str = "dbsc+jwt";

#[derive(Debug, Deserialize)]
struct ProofClaims {
    jti: String,
    #[serde(default)]
    authorization: Option<String>,
    #[serde(default)]
    aud: Option<String>,
}

/// A verified proof: who signed it, and which challenge it answers.
#[derive(Debug, Clone)]
pub struct DbscProof {
    /// The session key.
    pub key: PublicJwk,
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The challenge answered (`jti`).
    pub challenge: String,
    /// The registration's `authorization`, if sent.
    pub authorization: Option<String>,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Malformed, wrong `typ` or `alg`, a bad key, or a bad signature.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// `aud` is present and is not this endpoint.
    #[error("the proof's aud is not this endpoint")]
    Audience,
}

impl ProofError {
    /// Whether the signature itself failed: whoever sent it does not hold the session key
    /// (a refresh answers `401`, and ends the session if the request carries its cookies).
    pub fn is_bad_signature(&self) -> bool {
        matches!(self, Self::Jws(JwsError::Signature))
    }
}

fn check(jwt: &str, rules: &ProofRules<'_>, endpoint: &str) -> Result<DbscProof, ProofError> {
    let v = jws::verify::<ProofClaims>(jwt, rules)?;
    if v.claims.aud.as_deref().is_some_and(|aud| aud != endpoint) {
        return Err(ProofError::Audience);
    }
    Ok(DbscProof {
        key: v.key,
        alg: v.alg,
        challenge: v.claims.jti,
        authorization: v.claims.authorization,
    })
}

/// A registration proof: embedded public key, an algorithm the server offered, `aud` (if
/// any) equal to `endpoint`. The caller then checks `challenge` and `authorization`.
pub fn verify_registration(
    jwt: &str,
    offered: &[Algorithm],
    endpoint: &str,
) -> Result<DbscProof, ProofError> {
    let rules = ProofRules {
        typ: TYP,
        algorithms: offered,
        key: KeySource::Embedded,
    };
    check(jwt, &rules, endpoint)
}

/// A refresh proof, by the session's stored key (no `jwk` in the header).
pub fn verify_refresh(
    jwt: &str,
    key: &PublicJwk,
    offered: &[Algorithm],
    endpoint: &str,
) -> Result<DbscProof, ProofError> {
    let rules = ProofRules {
        typ: TYP,
        algorithms: offered,
        key: KeySource::Known(key),
    };
    check(jwt, &rules, endpoint)
}
