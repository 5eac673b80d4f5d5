//! A strict check of a compact JWS proof of possession (the shape DPoP proofs and DBSC
//! proofs share): exact `typ`, `alg` from an allow-list that fits the key, the key either
//! embedded in the header (`jwk`) or already known, then the signature and the claims.
//!
//! The checks run cheapest first, and nothing is trusted before the signature verifies
//! except what is needed to find the key.

use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::jwk::{JwkError, PublicJwk};

/// Longest proof accepted, in bytes (an RSA-4096 key and signature fit comfortably).
pub const MAX_LEN: usize = 8 * 1024;

/// Where the proof's key comes from.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// The header's `jwk` (DPoP, DBSC registration): required.
    Embedded,
    /// A key stored earlier (DBSC refresh): the header must not carry a `jwk`.
    Known(&'a PublicJwk),
}

/// What a proof must look like.
#[derive(Debug, Clone, Copy)]
pub struct ProofRules<'a> {
    /// The exact `typ` (compared case-insensitively, as media types are).
    pub typ: &'a str,
    /// The signature algorithms accepted. Never `none`, never a MAC.
    pub algorithms: &'a [Algorithm],
    /// Where the key comes from.
    pub key: KeySource<'a>,
}

/// A proof whose signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedJws<T> {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The key that signed it.
    pub key: PublicJwk,
    /// The payload.
    pub claims: T,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Longer than [`MAX_LEN`].
    #[error("the proof is longer than {MAX_LEN} bytes")]
    TooLarge,
    /// Not three base64url parts, or a header that is not a JSON object.
    #[error("the proof is not a well-formed compact JWS: {0}")]
    Malformed(&'static str),
    /// `typ` is missing or not the expected one.
    #[error("the proof's typ must be {expected:?}")]
    WrongType {
        /// The `typ` required.
        expected: String,
    },
    /// `alg` is missing, `none`, a MAC, or not in the allow-list.
    #[error("the signature algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// The header has no `jwk` where one is required.
    #[error("the proof's header carries no jwk")]
    MissingKey,
    /// The header has a `jwk` where the key is already known.
    #[error("the proof's header must not carry a jwk here")]
    UnexpectedKey,
    /// The `jwk` is not an acceptable public key.
    #[error(transparent)]
    Key(#[from] JwkError),
    /// `alg` does not fit the key's type.
    #[error("the algorithm does not fit the key")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("the proof's signature does not verify")]
    Signature,
    /// The payload is not the expected JSON.
    #[error("the proof's claims are malformed: {0}")]
    Claims(String),
}

fn header_of(token: &str) -> Result<Map<String, Value>, JwsError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("a compact JWS has exactly three parts"));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(JwsError::Malformed("empty part"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwsError::Malformed("the header is not unpadded base64url"))?;
    match crate::strict_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwsError::Malformed(
            "the header is not a JSON object with each member once",
        )),
    }
}

/// Check `token` against `rules`; on success the claims are decoded into `T`.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    rules: &ProofRules<'_>,
) -> Result<VerifiedJws<T>, JwsError> {
    if token.len() > MAX_LEN {
        return Err(JwsError::TooLarge);
    }
    let header = header_of(token)?;
    let typ_ok = header
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(rules.typ));
    if !typ_ok {
        return Err(JwsError::WrongType {
            expected: rules.typ.to_string(),
        });
    }
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = Algorithm::from_str(alg_name)
        .ok()
        .filter(|a| rules.algorithms.contains(a))
        .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        .ok_or_else(|| JwsError::Algorithm(alg_name.to_string()))?;
    let key = match (rules.key, header.get("jwk")) {
        (KeySource::Embedded, Some(jwk)) => PublicJwk::from_value(jwk)?,
        (KeySource::Embedded, None) => return Err(JwsError::MissingKey),
        (KeySource::Known(_), Some(_)) => return Err(JwsError::UnexpectedKey),
        (KeySource::Known(key), None) => key.clone(),
    };
    if !key.kind().fits(alg) {
        return Err(JwsError::KeyMismatch);
    }
    // The signature, through jsonwebtoken, with none of its JWT claim rules: a proof's
    // claims are the caller's to check.
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let decoding_key = key.decoding_key()?;
    jsonwebtoken::decode::<Value>(token, &decoding_key, &validation).map_err(|e| {
        match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => JwsError::Signature,
            jsonwebtoken::errors::ErrorKind::Json(_) => JwsError::Claims(e.to_string()),
            _ => JwsError::Signature,
        }
    })?;
    // The signed payload again, read strictly: a claim given twice is refused, not merged.
    let payload = token.split('.').nth(1).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwsError::Malformed("the payload is not unpadded base64url"))?;
    let claims = crate::strict_json::from_slice(&payload)
        .and_then(serde_json::from_value)
        .map_err(|e| JwsError::Claims(e.to_string()))?;
    Ok(VerifiedJws {
        header,
        alg,
        key,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9449 §4.1's example proof (V-DPoP-1).
    const PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";

    const RULES: ProofRules<'static> = ProofRules {
        typ: "dpop+jwt",
        algorithms: &[Algorithm::ES256, Algorithm::RS256],
        key: KeySource::Embedded,
    };

    fn reencode_header(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut header = header_of(token).unwrap();
        edit(&mut header);
        let rest = token.split_once('.').unwrap().1;
        format!(
            "{}.{rest}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap())
        )
    }

    #[test]
    fn the_rfc_example_verifies() {
        let v = verify::<Value>(PROOF, &RULES).unwrap();
        assert_eq!(v.alg, Algorithm::ES256);
        assert_eq!(v.claims["jti"], "-BwC3ESc6acc2lTc");
        assert_eq!(
            v.key.thumbprint(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }

    #[test]
    fn every_rule_is_enforced() {
        let wrong_typ = reencode_header(PROOF, |h| {
            h.insert("typ".into(), "jwt".into());
        });
        assert!(matches!(
            verify::<Value>(&wrong_typ, &RULES),
            Err(JwsError::WrongType { .. })
        ));
        let none = reencode_header(PROOF, |h| {
            h.insert("alg".into(), "none".into());
        });
        assert_eq!(
            verify::<Value>(&none, &RULES).unwrap_err(),
            JwsError::Algorithm("none".into())
        );
        let hs = reencode_header(PROOF, |h| {
            h.insert("alg".into(), "HS256".into());
        });
        let hs_rules = ProofRules {
            algorithms: &[Algorithm::HS256],
            ..RULES
        };
        assert!(matches!(
            verify::<Value>(&hs, &hs_rules),
            Err(JwsError::Algorithm(_))
        ));
        let no_jwk = reencode_header(PROOF, |h| {
            h.remove("jwk");
        });
        assert_eq!(
            verify::<Value>(&no_jwk, &RULES).unwrap_err(),
            JwsError::MissingKey
        );
        let private = reencode_header(PROOF, |h| {
            h["jwk"]["d"] = "AAAA".into();
        });
        assert!(matches!(
            verify::<Value>(&private, &RULES),
            Err(JwsError::Key(JwkError::PrivateKey(_)))
        ));
        let rs = reencode_header(PROOF, |h| {
            h.insert("alg".into(), "RS256".into());
        });
        assert_eq!(
            verify::<Value>(&rs, &RULES).unwrap_err(),
            JwsError::KeyMismatch
        );
        // The header re-encoded (same content, other bytes): the signature no longer covers it.
        let reordered = reencode_header(PROOF, |_| {});
        assert_eq!(
            verify::<Value>(&reordered, &RULES).unwrap_err(),
            JwsError::Signature
        );
        let mut forged = PROOF.to_string();
        let last = forged.pop().unwrap();
        forged.push(if last == 'g' { 'h' } else { 'g' });
        assert_eq!(
            verify::<Value>(&forged, &RULES).unwrap_err(),
            JwsError::Signature
        );
        let known = verify::<Value>(PROOF, &RULES).unwrap().key;
        let with_known = ProofRules {
            key: KeySource::Known(&known),
            ..RULES
        };
        assert_eq!(
            verify::<Value>(PROOF, &with_known).unwrap_err(),
            JwsError::UnexpectedKey
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            ".",
            "..",
            "a.b",
            "a.b.c.d",
            "!!.b.c",
            "e30.e30.",
            &"a".repeat(MAX_LEN + 1),
        ] {
            assert!(verify::<Value>(bad, &RULES).is_err(), "{bad:.20}");
        }
    }
}
