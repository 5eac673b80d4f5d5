//! Token Binding PKCE methods (draft-ietf-oauth-token-binding-08 §5): binding an
//! authorization code to the client's Token Binding.
//!
//! | method | `code_challenge` | `code_verifier` | checked against |
//! |---|---|---|---|
//! | `TB-S256` (native apps) | `base64url(SHA-256(TBID))` | the constant `provided_tb` | the provided TBID of the token request |
//! | `referred_tb` (web-server clients) | the constant `referred_tb` | `base64url(TBID)` | the referred TBID of the authorization request |
//!
//! Note the asymmetry (draft-ietf-oauth-token-binding-08 §5.1, §5.2): for `TB-S256` the challenge is a hash and the
//! verifier a constant; for `referred_tb` it is the other way round, unhashed. Every
//! mismatch is `invalid_grant`.

use serde::{Deserialize, Serialize};
use tokbind_proto::{Tbh, TokenBindingId};

/// `code_challenge_method` for native apps.
pub const TB_S256: &str = "TB-S256";
/// `code_challenge_method` (and `code_challenge`) for web-server clients.
pub const REFERRED_TB: &str = "referred_tb";
/// `code_verifier` for `TB-S256`.
pub const PROVIDED_TB: &str = "provided_tb";

/// What an authorization server stores with a code issued under a Token Binding PKCE
/// method.
///
/// It serializes as `{"method": "TB-S256" | "referred_tb", "value": <base64url>}`, so that
/// codes can live in a store shared by several authorization-server instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ChallengeRepr", try_from = "ChallengeRepr")]
pub enum StoredChallenge {
    /// `TB-S256`: the hash of the TBID the client will use at the token endpoint.
    TbS256(Tbh),
    /// `referred_tb`: the referred TBID of the authorization request.
    ReferredTb(TokenBindingId),
}

/// The stored form: the method's name and the hash (`TB-S256`) or the TBID (`referred_tb`).
#[derive(Serialize, Deserialize)]
struct ChallengeRepr {
    method: String,
    value: String,
}

impl From<StoredChallenge> for ChallengeRepr {
    fn from(c: StoredChallenge) -> Self {
        let (method, value) = match c {
            StoredChallenge::TbS256(tbh) => (TB_S256, tbh.to_string()),
            StoredChallenge::ReferredTb(id) => (REFERRED_TB, id.to_base64url()),
        };
        Self {
            method: method.into(),
            value,
        }
    }
}

impl TryFrom<ChallengeRepr> for StoredChallenge {
    type Error = String;

    fn try_from(r: ChallengeRepr) -> Result<Self, String> {
        match r.method.as_str() {
            TB_S256 => Tbh::from_base64url(&r.value)
                .map(Self::TbS256)
                .map_err(|e| format!("stored TB-S256 challenge: {e}")),
            REFERRED_TB => TokenBindingId::from_base64url(&r.value)
                .map(Self::ReferredTb)
                .map_err(|e| format!("stored referred_tb challenge: {e}")),
            other => Err(format!("unknown stored PKCE method {other:?}")),
        }
    }
}

/// A PKCE step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// Authorization request: the challenge is malformed (`invalid_request`).
    #[error("malformed code_challenge for {0}")]
    MalformedChallenge(&'static str),
    /// Authorization request: `referred_tb` without a verified referred binding
    /// (`invalid_request`).
    #[error("referred_tb requires a referred Token Binding on the authorization request")]
    NoReferredBinding,
    /// Token request: the verifier does not match (`invalid_grant`).
    #[error("the code_verifier does not match the Token Binding")]
    InvalidGrant,
}

impl PkceError {
    /// The OAuth error code to return.
    pub fn oauth_error(self) -> &'static str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            _ => "invalid_request",
        }
    }
}

/// At the authorization endpoint: interpret `code_challenge_method` / `code_challenge`.
/// Returns `Ok(None)` for methods that are not Token Binding methods (handle `S256` and
/// `plain` elsewhere). `referred` is the request's verified referred Token Binding ID.
pub fn accept_challenge(
    method: &str,
    challenge: &str,
    referred: Option<&TokenBindingId>,
) -> Result<Option<StoredChallenge>, PkceError> {
    match method {
        TB_S256 => Tbh::from_base64url(challenge)
            .map(|t| Some(StoredChallenge::TbS256(t)))
            .map_err(|_| PkceError::MalformedChallenge(TB_S256)),
        REFERRED_TB if challenge == REFERRED_TB => referred
            .map(|r| Some(StoredChallenge::ReferredTb(r.clone())))
            .ok_or(PkceError::NoReferredBinding),
        REFERRED_TB => Err(PkceError::MalformedChallenge(REFERRED_TB)),
        _ => Ok(None),
    }
}

/// At the token endpoint: check `code_verifier` against what was stored, with the token
/// request's verified provided Token Binding ID.
pub fn verify(
    stored: &StoredChallenge,
    verifier: &str,
    provided: Option<&TokenBindingId>,
) -> Result<(), PkceError> {
    let ok = match stored {
        StoredChallenge::TbS256(challenge) => {
            verifier == PROVIDED_TB && provided.is_some_and(|p| p.tbh() == *challenge)
        }
        StoredChallenge::ReferredTb(referred) => verifier == referred.to_base64url(),
    };
    if ok {
        Ok(())
    } else {
        Err(PkceError::InvalidGrant)
    }
}

/// Client side, `TB-S256`: the challenge for the TBID it will use at the token endpoint.
pub fn tb_s256_challenge(token_endpoint_id: &TokenBindingId) -> String {
    token_endpoint_id.tbh().to_string()
}

/// Client side, `referred_tb`: the verifier — the browser's provided TBID seen on the
/// callback request.
pub fn referred_tb_verifier(callback_provided: &TokenBindingId) -> String {
    callback_provided.to_base64url()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_id() -> TokenBindingId {
        TokenBindingId::ecdsap256(&[7; 64])
    }

    #[test]
    fn stored_challenges_survive_a_shared_store() {
        for stored in [
            StoredChallenge::TbS256(some_id().tbh()),
            StoredChallenge::ReferredTb(some_id()),
        ] {
            let text = serde_json::to_string(&stored).unwrap();
            assert_eq!(
                serde_json::from_str::<StoredChallenge>(&text).unwrap(),
                stored
            );
        }
        let text = serde_json::to_string(&StoredChallenge::ReferredTb(some_id())).unwrap();
        assert!(text.contains(r#""method":"referred_tb""#), "{text}");
    }

    #[test]
    fn damaged_stored_challenges_are_errors() {
        for bad in [
            r#"{"method":"S256","value":"abc"}"#,
            r#"{"method":"TB-S256","value":"!!"}"#,
            r#"{"method":"referred_tb","value":"AAAA"}"#,
        ] {
            assert!(
                serde_json::from_str::<StoredChallenge>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
