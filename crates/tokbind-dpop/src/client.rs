//! The client's side: a DPoP key and the proofs it signs (RFC 9449 §4). Used by the tests,
//! the examples and anyone writing a DPoP client in Rust.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokbind_jose::jwk::PublicJwk;

/// A P-256 DPoP key (ES256).
#[derive(Debug)]
pub struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: Value,
    public: PublicJwk,
}

/// The key could not be generated or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DPoP key: {0}")]
pub struct DpopKeyError(&'static str);

impl DpopKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, DpopKeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| DpopKeyError("generation failed"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// A key from PKCS#8 (DER).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, DpopKeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| DpopKeyError("not a P-256 PKCS#8 key"))?;
        let point = pair.public_key().as_ref();
        // Uncompressed SEC1: 0x04 ‖ x ‖ y.
        let (x, y) = (&point[1..33], &point[33..65]);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        });
        let public =
            PublicJwk::from_value(&jwk).map_err(|_| DpopKeyError("unusable public key"))?;
        Ok(Self { pair, jwk, public })
    }

    /// The public key.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// The key's thumbprint (`jkt`, and the `dpop_jkt` authorization request parameter).
    pub fn jkt(&self) -> String {
        self.public.thumbprint()
    }

    /// A proof for `method` on `uri` (query and fragment are dropped), with `ath` for
    /// `access_token` and the server's `nonce`, if given.
    pub fn proof(
        &self,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        self.proof_at(method, uri, access_token, nonce, SystemTime::now())
    }

    /// As [`proof`](Self::proof), issued at `iat`.
    pub fn proof_at(
        &self,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: SystemTime,
    ) -> String {
        let htu = uri.split(['?', '#']).next().unwrap_or(uri);
        let mut jti = [0u8; 16];
        SystemRandom::new()
            .fill(&mut jti)
            .expect("the system RNG works");
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu,
            "iat": iat.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        });
        if let Some(token) = access_token {
            claims["ath"] = crate::proof::access_token_hash(token).into();
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        self.proof_with_claims(&claims.to_string())
    }

    /// A proof whose payload is `claims`, exactly as given (JSON text, signed as is): for
    /// claims [`proof`](Self::proof) does not write, or to test what a server does with
    /// claims no honest client sends.
    pub fn proof_with_claims(&self, claims: &str) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("ECDSA signing works");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}
