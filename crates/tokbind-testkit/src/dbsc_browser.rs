//! [`DbscBrowser`]: the client side of DBSC, as Chromium 156 speaks it.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

/// A DBSC browser's session key and the proofs it signs, byte for byte as Chromium 156
/// does: sorted keys, `typ: dbsc+jwt`, a raw `r‖s` ES256 signature, the public `jwk` in
/// the registration proof only.
pub struct DbscBrowser {
    pair: EcdsaKeyPair,
}

impl Default for DbscBrowser {
    fn default() -> Self {
        Self::new()
    }
}

impl DbscBrowser {
    /// A fresh P-256 session key.
    pub fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("P-256 key generation");
        Self {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("its own PKCS#8"),
        }
    }

    /// The proof answering `challenge`: for registration (with the public key) or refresh.
    pub fn proof(&self, challenge: &str, registration: bool) -> String {
        let point = self.pair.public_key().as_ref();
        let header = if registration {
            json!({"alg": "ES256", "jwk": {"crv": "P-256", "kty": "EC", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}, "typ": "dbsc+jwt"})
        } else {
            json!({"alg": "ES256", "typ": "dbsc+jwt"})
        };
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(json!({"jti": challenge}).to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}
