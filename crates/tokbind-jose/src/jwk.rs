//! A client's public key as a JWK (RFC 7517), and its RFC 7638 thumbprint.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::Value;
use tokbind_proto::{Freshness, Mechanism, ProvenKey};

/// Members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2). A proof's key must have none of them (RFC 9449 §4.3 step 7).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Why a JWK is not an acceptable public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// Not a JSON object, or a required member is missing or not a string.
    #[error("the JWK is malformed: {0}")]
    Malformed(&'static str),
    /// The JWK carries private key material.
    #[error("the JWK contains the private member {0:?}")]
    PrivateKey(String),
    /// A key type or curve this crate does not accept (symmetric keys among them).
    #[error("unsupported key type or curve: {0}")]
    Unsupported(String),
    /// A coordinate or modulus of the wrong size.
    #[error("the JWK's key is the wrong size: {0}")]
    BadSize(&'static str),
}

/// The kinds of public key accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// EC P-256 (ES256).
    P256,
    /// EC P-384 (ES384).
    P384,
    /// RSA of at least 2048 bits (RS256/384/512, PS256/384/512).
    Rsa,
    /// Ed25519 (EdDSA).
    Ed25519,
}

impl KeyKind {
    /// Whether `alg` is a signature algorithm for this kind of key.
    pub fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::P256 => alg == ES256,
            Self::P384 => alg == ES384,
            Self::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::Ed25519 => alg == EdDSA,
        }
    }
}

/// A verified-public JWK: its kind, its RFC 7638 canonical form, and the key in
/// `jsonwebtoken`'s form for signature checks.
#[derive(Clone)]
pub struct PublicJwk {
    kind: KeyKind,
    canonical: Arc<str>,
    jwk: jsonwebtoken::jwk::Jwk,
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicJwk({:?}, jkt {})", self.kind, self.thumbprint())
    }
}

impl PartialEq for PublicJwk {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for PublicJwk {}

fn member<'a>(
    obj: &'a serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, JwkError> {
    obj.get(name)
        .and_then(Value::as_str)
        .ok_or(JwkError::Malformed(name))
}

/// Strict unpadded base64url, as JWK members are encoded (RFC 7518 §2).
fn decoded_len(text: &str, what: &'static str) -> Result<Vec<u8>, JwkError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwkError::Malformed(what))
}

/// `"name":<JSON string>` — serde_json escapes exactly as RFC 7638 §3.3 requires (JSON
/// with no insignificant whitespace, UTF-8).
fn pair(name: &str, value: &str) -> String {
    format!("\"{name}\":{}", Value::from(value))
}

impl PublicJwk {
    /// Check a JWK (a JSON object) and take it as a public key.
    pub fn from_value(value: &Value) -> Result<Self, JwkError> {
        let obj = value
            .as_object()
            .ok_or(JwkError::Malformed("not an object"))?;
        if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(JwkError::PrivateKey((*private).to_string()));
        }
        let kty = member(obj, "kty")?;
        // RFC 7638 §3.2: the required members only, in lexicographic order.
        let (kind, canonical) = match kty {
            "EC" => {
                let crv = member(obj, "crv")?;
                let (x, y) = (member(obj, "x")?, member(obj, "y")?);
                let (kind, len) = match crv {
                    "P-256" => (KeyKind::P256, 32),
                    "P-384" => (KeyKind::P384, 48),
                    other => return Err(JwkError::Unsupported(format!("EC curve {other}"))),
                };
                if decoded_len(x, "x")?.len() != len || decoded_len(y, "y")?.len() != len {
                    return Err(JwkError::BadSize("EC coordinates"));
                }
                let c = [
                    pair("crv", crv),
                    pair("kty", kty),
                    pair("x", x),
                    pair("y", y),
                ];
                (kind, c.join(","))
            }
            "RSA" => {
                let (n, e) = (member(obj, "n")?, member(obj, "e")?);
                let modulus = decoded_len(n, "n")?;
                let exponent = decoded_len(e, "e")?;
                let bits = modulus.iter().position(|b| *b != 0).map_or(0, |i| {
                    (modulus.len() - i) * 8 - modulus[i].leading_zeros() as usize
                });
                if bits < MIN_RSA_BITS {
                    return Err(JwkError::BadSize("RSA modulus below 2048 bits"));
                }
                if exponent.is_empty() || exponent.len() > 8 {
                    return Err(JwkError::BadSize("RSA exponent"));
                }
                (
                    KeyKind::Rsa,
                    [pair("e", e), pair("kty", kty), pair("n", n)].join(","),
                )
            }
            "OKP" => {
                let (crv, x) = (member(obj, "crv")?, member(obj, "x")?);
                if crv != "Ed25519" {
                    return Err(JwkError::Unsupported(format!("OKP curve {crv}")));
                }
                if decoded_len(x, "x")?.len() != 32 {
                    return Err(JwkError::BadSize("Ed25519 key"));
                }
                (
                    KeyKind::Ed25519,
                    [pair("crv", crv), pair("kty", kty), pair("x", x)].join(","),
                )
            }
            other => return Err(JwkError::Unsupported(format!("key type {other}"))),
        };
        let canonical = format!("{{{canonical}}}");
        // The canonical form is the key and nothing else: what jsonwebtoken checks with.
        let jwk =
            serde_json::from_str(&canonical).map_err(|_| JwkError::Malformed("unreadable key"))?;
        Ok(Self {
            kind,
            canonical: canonical.into(),
            jwk,
        })
    }

    /// The kind of key.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The RFC 7638 canonical JSON (the thumbprint's input): how the key is identified and
    /// stored.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: DPoP's `jkt`.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, self.canonical.as_bytes()))
    }

    /// The key for `jsonwebtoken`'s signature checks.
    pub fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, JwkError> {
        jsonwebtoken::DecodingKey::from_jwk(&self.jwk)
            .map_err(|_| JwkError::Malformed("unusable key"))
    }

    /// "This request proved possession of this key": the key ID is the canonical JWK, so
    /// [`ProvenKey::thumbprint`] is the `jkt`.
    pub fn proven_key(
        &self,
        mechanism: Mechanism,
        freshness: Freshness,
        scope: Option<&str>,
    ) -> ProvenKey {
        ProvenKey::new(mechanism, freshness, self.canonical.as_bytes(), scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 9449's example key (§4.1) and its thumbprint (§6.1).
    fn dpop_key() -> Value {
        json!({"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"})
    }

    #[test]
    fn thumbprints_match_the_rfcs() {
        let key = PublicJwk::from_value(&dpop_key()).unwrap();
        assert_eq!(
            key.thumbprint(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        assert_eq!(key.kind(), KeyKind::P256);
        let proven = key.proven_key(Mechanism::Dpop, Freshness::ThisRequest, None);
        assert_eq!(proven.thumbprint().to_string(), key.thumbprint());
    }

    #[test]
    fn extra_members_do_not_change_the_thumbprint() {
        let mut with_extras = dpop_key();
        with_extras["kid"] = json!("k1");
        with_extras["use"] = json!("sig");
        assert_eq!(
            PublicJwk::from_value(&with_extras).unwrap(),
            PublicJwk::from_value(&dpop_key()).unwrap()
        );
    }

    #[test]
    fn private_and_symmetric_and_odd_keys_are_refused() {
        let mut private = dpop_key();
        private["d"] = json!("ZZZ");
        assert_eq!(
            PublicJwk::from_value(&private),
            Err(JwkError::PrivateKey("d".into()))
        );
        assert!(matches!(
            PublicJwk::from_value(&json!({"kty":"oct","k":"c2VjcmV0"})),
            Err(JwkError::PrivateKey(_))
        ));
        let mut p521 = dpop_key();
        p521["crv"] = json!("P-521");
        assert!(matches!(
            PublicJwk::from_value(&p521),
            Err(JwkError::Unsupported(_))
        ));
        let mut short = dpop_key();
        short["x"] = json!("AAAA");
        assert_eq!(
            PublicJwk::from_value(&short),
            Err(JwkError::BadSize("EC coordinates"))
        );
        let mut padded = dpop_key();
        padded["x"] = json!("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs=");
        assert_eq!(
            PublicJwk::from_value(&padded),
            Err(JwkError::Malformed("x"))
        );
        let small_rsa = json!({"kty":"RSA","e":"AQAB","n": URL_SAFE_NO_PAD.encode([0xff_u8; 128])});
        assert!(matches!(
            PublicJwk::from_value(&small_rsa),
            Err(JwkError::BadSize(_))
        ));
        assert!(matches!(
            PublicJwk::from_value(&json!("EC")),
            Err(JwkError::Malformed(_))
        ));
    }

    #[test]
    fn key_kinds_fit_their_algorithms_only() {
        assert!(KeyKind::P256.fits(Algorithm::ES256));
        assert!(!KeyKind::P256.fits(Algorithm::ES384));
        assert!(!KeyKind::Rsa.fits(Algorithm::HS256));
        assert!(KeyKind::Rsa.fits(Algorithm::PS256));
    }
}
