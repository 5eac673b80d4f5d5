//! PKCE methods: RFC 7636 `S256`, and the Token Binding ones
//! (draft-ietf-oauth-token-binding-08 §5) that bind an authorization code to the client's
//! Token Binding.
//!
//! | method | `code_challenge` | `code_verifier` | checked against |
//! |---|---|---|---|
//! | `S256` (RFC 7636 §4.2) | `base64url(SHA-256(code_verifier))` | 43–128 unreserved characters, secret | the challenge |
//! | `TB-S256` (native apps) | `base64url(SHA-256(TBID))` | the constant `provided_tb` | the provided TBID of the token request |
//! | `referred_tb` (web-server clients) | the constant `referred_tb` | `base64url(TBID)` | the referred TBID of the authorization request |
//!
//! Note the asymmetry (draft-ietf-oauth-token-binding-08 §5.1, §5.2): for `TB-S256` the challenge is a hash and the
//! verifier a constant; for `referred_tb` it is the other way round, unhashed. Every
//! mismatch is `invalid_grant`.

use serde::{Deserialize, Serialize};
use tokbind_proto::{Tbh, TokenBindingId};

/// `code_challenge_method` of RFC 7636 §4.2 (`plain` is not supported: RFC 9700 §2.1.1).
pub const S256: &str = "S256";
/// `code_challenge_method` for native apps.
pub const TB_S256: &str = "TB-S256";
/// `code_challenge_method` (and `code_challenge`) for web-server clients.
pub const REFERRED_TB: &str = "referred_tb";
/// `code_verifier` for `TB-S256`.
pub const PROVIDED_TB: &str = "provided_tb";

/// What an authorization server stores with a code issued under a PKCE method.
///
/// It serializes as `{"method": "S256" | "TB-S256" | "referred_tb", "value": <base64url>}`,
/// so that codes can live in a store shared by several authorization-server instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ChallengeRepr", try_from = "ChallengeRepr")]
pub enum StoredChallenge {
    /// `S256`: the challenge, `base64url(SHA-256(code_verifier))` (43 characters).
    S256(String),
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
            StoredChallenge::S256(challenge) => (S256, challenge),
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
            S256 if is_sha256_base64url(&r.value) => Ok(Self::S256(r.value)),
            S256 => Err("stored S256 challenge: not a SHA-256 hash".into()),
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
/// Returns `Ok(None)` for methods this module does not implement (`plain`, unknown
/// names): the caller refuses or ignores them. `referred` is the request's verified
/// referred Token Binding ID.
pub fn accept_challenge(
    method: &str,
    challenge: &str,
    referred: Option<&TokenBindingId>,
) -> Result<Option<StoredChallenge>, PkceError> {
    match method {
        S256 if is_sha256_base64url(challenge) => Ok(Some(StoredChallenge::S256(challenge.into()))),
        S256 => Err(PkceError::MalformedChallenge(S256)),
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
        StoredChallenge::S256(challenge) => {
            // RFC 7636 §4.1: 43 to 128 unreserved characters; anything else never matches.
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            well_formed
                && aws_lc_rs::constant_time::verify_slices_are_equal(
                    s256_challenge(verifier).as_bytes(),
                    challenge.as_bytes(),
                )
                .is_ok()
        }
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

/// `S256` (RFC 7636 §4.2): the challenge of `verifier`, `base64url(SHA-256(verifier))`.
pub fn s256_challenge(verifier: &str) -> String {
    tokbind_proto::base64url::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
    )
}

/// 43 characters of unpadded base64url that decode to 32 bytes.
fn is_sha256_base64url(text: &str) -> bool {
    text.len() == 43
        && tokbind_proto::base64url::decode(text.as_bytes()).is_ok_and(|b| b.len() == 32)
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
    fn s256_is_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256_challenge(verifier), challenge);
        let stored = accept_challenge(S256, challenge, None).unwrap().unwrap();
        assert_eq!(verify(&stored, verifier, None), Ok(()));
        let text = serde_json::to_string(&stored).unwrap();
        assert_eq!(
            serde_json::from_str::<StoredChallenge>(&text).unwrap(),
            stored
        );
        // Another verifier, the challenge itself, one too short or with a character
        // outside the unreserved set: invalid_grant.
        for bad in [
            "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            challenge,
            &verifier[..42],
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+",
            "",
        ] {
            assert_eq!(
                verify(&stored, bad, None),
                Err(PkceError::InvalidGrant),
                "{bad}"
            );
        }
        for bad in [
            "",
            "abc",
            &challenge[..42],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=",
        ] {
            assert_eq!(
                accept_challenge(S256, bad, None),
                Err(PkceError::MalformedChallenge(S256)),
                "{bad}"
            );
        }
        assert_eq!(accept_challenge("plain", verifier, None), Ok(None));
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
