//! Why a DPoP proof was refused, and the response for each kind of server (RFC 9449 §7.1
//! for resource servers, §5 and §8 for token endpoints).

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use tokbind_jose::jws::JwsError;
use tokbind_jose::numeric_date::NumericDateError;
use tower_tokbind::problem::problem_body;

use crate::proof::DpopVerifier;

/// The `DPoP-Nonce` response header.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// A DPoP proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// `Authorization: DPoP` without a `DPoP` header.
    #[error("a DPoP-bound token needs a DPoP proof in the DPoP header")]
    MissingProof,
    /// More than one `DPoP` header, or one with several values.
    #[error("send exactly one DPoP header")]
    MultipleProofs,
    /// `Authorization` with both the `Bearer` and the `DPoP` scheme.
    #[error("send one Authorization header, with the DPoP scheme")]
    ConflictingSchemes,
    /// Not a well-formed, correctly signed proof with an acceptable key.
    #[error("{0}")]
    Jws(JwsError),
    /// A claim is missing or malformed.
    #[error("the proof's claims are malformed: {0}")]
    Claims(String),
    /// `iat` is missing, not a number, or not a time any clock can hold (negative, or
    /// past 9999).
    #[error("the proof's iat {0}")]
    Iat(NumericDateError),
    /// `htm` is not the request's method.
    #[error("the proof's htm is not this request's method")]
    MethodMismatch,
    /// `htu` is not this request's URI.
    #[error("the proof's htu is not this request's URI")]
    UriMismatch,
    /// `iat` is too far in the past.
    #[error("the proof is too old")]
    Stale,
    /// `iat` is too far in the future.
    #[error("the proof's iat is in the future")]
    FromTheFuture,
    /// An access token came without `ath`.
    #[error("the proof has no ath for the access token")]
    AthMissing,
    /// `ath` is not the hash of the access token presented.
    #[error("the proof's ath does not match the access token")]
    AthMismatch,
    /// The server requires a (fresh) nonce.
    #[error("the server requires a fresh DPoP nonce")]
    UseNonce,
    /// The proof's key is not the one the authorization code was bound to (`dpop_jkt`).
    #[error("the proof's key is not the key the authorization code is bound to")]
    KeyNotBound,
    /// This proof was used before.
    #[error("the proof was already used")]
    Replay,
    /// The replay cache could not answer (the proof is refused: fail closed).
    #[error("the replay cache is unavailable: {0}")]
    ReplayCache(String),
}

impl DpopError {
    /// The OAuth error code.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::UseNonce => "use_dpop_nonce",
            Self::ConflictingSchemes => "invalid_request",
            Self::ReplayCache(_) => "temporarily_unavailable",
            _ => "invalid_dpop_proof",
        }
    }

    /// A stable code naming the failed check.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingProof => "dpop_proof_missing",
            Self::MultipleProofs => "dpop_proof_duplicate",
            Self::ConflictingSchemes => "conflicting_authorization_schemes",
            Self::Jws(JwsError::Signature) => "dpop_bad_signature",
            Self::Jws(JwsError::WrongType { .. }) => "dpop_wrong_typ",
            Self::Jws(JwsError::Algorithm(_) | JwsError::KeyMismatch) => "dpop_bad_alg",
            Self::Jws(JwsError::Key(_) | JwsError::MissingKey | JwsError::UnexpectedKey) => {
                "dpop_bad_jwk"
            }
            Self::Jws(_) => "dpop_malformed",
            Self::Claims(_) => "dpop_bad_claims",
            Self::Iat(_) => "dpop_bad_iat",
            Self::MethodMismatch => "dpop_htm_mismatch",
            Self::UriMismatch => "dpop_htu_mismatch",
            Self::Stale => "dpop_stale",
            Self::FromTheFuture => "dpop_future",
            Self::AthMissing => "dpop_ath_missing",
            Self::AthMismatch => "dpop_ath_mismatch",
            Self::UseNonce => "use_dpop_nonce",
            Self::Replay => "dpop_replay",
            Self::KeyNotBound => "dpop_jkt_mismatch",
            Self::ReplayCache(_) => "dpop_replay_cache_unavailable",
        }
    }

    fn status(&self, resource: bool) -> StatusCode {
        match self {
            Self::ReplayCache(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::ConflictingSchemes => StatusCode::BAD_REQUEST,
            _ if resource => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The response of a resource server: 401 with `WWW-Authenticate: DPoP algs="…",
    /// error="…"` (and `DPoP-Nonce` when one is required), and a problem document.
    pub fn resource_response(
        &self,
        verifier: &DpopVerifier,
        now: SystemTime,
    ) -> Response<Full<Bytes>> {
        let challenge = format!(
            "DPoP algs=\"{}\", error=\"{}\", error_description=\"{}\"",
            verifier.algorithm_names().join(" "),
            self.error_code(),
            self.to_string().replace(['"', '\\'], "'"),
        );
        let body = problem_body(self.status(true), self.reason(), &self.to_string());
        let mut res = self.response(true, body, "application/problem+json", verifier, now);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        res
    }

    /// The response of a token endpoint: 400 with an OAuth error body (and `DPoP-Nonce`
    /// when one is required).
    pub fn token_endpoint_response(
        &self,
        verifier: &DpopVerifier,
        now: SystemTime,
    ) -> Response<Full<Bytes>> {
        let body = serde_json::json!({
            "error": self.error_code(),
            "error_description": self.to_string(),
        });
        self.response(false, body.to_string(), "application/json", verifier, now)
    }

    fn response(
        &self,
        resource: bool,
        body: String,
        content_type: &'static str,
        verifier: &DpopVerifier,
        now: SystemTime,
    ) -> Response<Full<Bytes>> {
        let mut res = Response::new(Full::new(Bytes::from(body)));
        *res.status_mut() = self.status(resource);
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if *self == Self::UseNonce
            && let Some(v) = verifier
                .fresh_nonce(now)
                .and_then(|n| HeaderValue::from_str(&n).ok())
        {
            h.insert(DPOP_NONCE, v);
        }
        res
    }
}
