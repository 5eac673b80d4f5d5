//! Token-bound JWTs: issuing them (Token Provider) and checking them (Token Consumer).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokbind_jose::numeric_date::{NumericDate, NumericDateError};
use tokbind_proto::{ProvenKey, TokenBindingId};

use crate::cnf::{CnfError, CnfPolicy, Confirmation, check};

/// The registered claims this crate reads and writes, plus `cnf`; anything else is kept in
/// `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry (seconds since the epoch; a NumericDate, so fractions are dropped and
    /// anything past 9999 is refused).
    #[serde(deserialize_with = "tokbind_jose::numeric_date::seconds")]
    pub exp: u64,
    /// Issued at (read as `exp` is).
    #[serde(deserialize_with = "tokbind_jose::numeric_date::seconds")]
    pub iat: u64,
    /// OIDC nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Confirmation (RFC 7800), with `tbh` when the token is bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Other claims.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A JWT could not be issued or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Key generation or signing failed.
    #[error("cannot sign: {0}")]
    Signing(String),
    /// A lifetime so long the token would expire after 9999-12-31T23:59:59Z.
    #[error("a lifetime of {0:?} ends past what a NumericDate can hold")]
    Lifetime(Duration),
    /// Signature, issuer, audience or claim format check failed.
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// `exp` has passed (by more than the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is still ahead (by more than the leeway).
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `exp` or `iat` is missing, or a time claim (`exp`, `iat`, `nbf`) is not a number or
    /// not a time any clock can hold (negative, or past 9999).
    #[error("the token's {claim} {problem}")]
    Time {
        /// The claim.
        claim: &'static str,
        /// What is wrong with it.
        problem: NumericDateError,
    },
    /// The ID token's nonce is not the one the relying party sent.
    #[error("the ID token's nonce does not match")]
    Nonce,
    /// The token's binding does not match the request.
    #[error(transparent)]
    Binding(#[from] CnfError),
}

impl TokenError {
    /// A stable code.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Signing(_) => "signing_failed",
            Self::Lifetime(_) => "lifetime_out_of_range",
            Self::Invalid(_) => "invalid_token",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::Time { .. } => "token_bad_time",
            Self::Nonce => "nonce_mismatch",
            Self::Binding(e) => e.reason(),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Issues ES256 JWTs — ID tokens and access tokens — bound to a Token Binding ID when one
/// is given (the Token Provider side).
///
/// It holds one or more P-256 keys: the first signs, all are published in [`jwks`](Self::jwks)
/// (`TokenIssuer::jwks`), so tokens signed before a key rotation still verify. Instances
/// configured with the same keys issue interchangeable tokens.
pub struct TokenIssuer {
    issuer: String,
    keys: Vec<SigningEntry>,
}

struct SigningEntry {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// A fresh P-256 signing key for `issuer`.
    pub fn generate(issuer: impl Into<String>) -> Result<Self, TokenError> {
        let pkcs8 = Self::generate_key()?;
        Self::from_pkcs8(issuer, &pkcs8)
    }

    fn generate_key() -> Result<Vec<u8>, TokenError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Use an existing P-256 key (PKCS#8 DER) — to share it between instances.
    pub fn from_pkcs8(issuer: impl Into<String>, der: &[u8]) -> Result<Self, TokenError> {
        Ok(Self {
            issuer: issuer.into(),
            keys: vec![Self::entry(der)?],
        })
    }

    /// Keys from configuration: unpadded base64url PKCS#8 P-256 keys separated by commas
    /// or whitespace, the signing key first and older ones (still published) after it.
    pub fn from_config(issuer: impl Into<String>, value: &str) -> Result<Self, TokenError> {
        let keys = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
            .map(|k| {
                let der = tokbind_proto::base64url::decode(k.as_bytes()).map_err(|_| {
                    TokenError::Signing("a signing key is not unpadded base64url".into())
                })?;
                Self::entry(&der)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(TokenError::Signing("no signing key configured".into()));
        }
        Ok(Self {
            issuer: issuer.into(),
            keys,
        })
    }

    /// A fresh key in the form [`TokenIssuer::from_config`] reads.
    pub fn generate_config_value() -> Result<String, TokenError> {
        Ok(tokbind_proto::base64url::encode(&Self::generate_key()?))
    }

    fn entry(der: &[u8]) -> Result<SigningEntry, TokenError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        let point = pair.public_key().as_ref();
        let b64 = |b: &[u8]| tokbind_proto::base64url::encode(b);
        let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
        // Key ID: a short hash of the public key, stable for the key's lifetime.
        let kid = b64(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, point).as_ref()[..12]);
        Ok(SigningEntry {
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"}),
            kid,
            encoding: EncodingKey::from_ec_der(der),
        })
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public keys as a JWK Set, for the `jwks_uri` endpoint.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// Sign any claims with the current (first) key.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, TokenError> {
        let current = &self.keys[0];
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(current.kid.clone());
        jsonwebtoken::encode(&header, claims, &current.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// An ID token (OIDC TBA §2) or access token (OAuth TB §3) for `sub` and `aud`,
    /// bound with `cnf.tbh` to `binding` — for an ID token, the *referred* Token Binding ID
    /// of the authentication request. `None` (no referred binding, or one with key
    /// parameters this server cannot verify) gives an unbound token, never an error, so
    /// clients without Token Binding keep working (RFC 8473 §5.4).
    pub fn token(
        &self,
        sub: &str,
        aud: &str,
        lifetime: Duration,
        nonce: Option<&str>,
        binding: Option<&TokenBindingId>,
        extra: Map<String, Value>,
    ) -> Result<String, TokenError> {
        let cnf = binding.map(Confirmation::token_binding);
        self.token_with_cnf(sub, aud, lifetime, nonce, cnf, extra)
    }

    /// As [`token`](Self::token), bound by any confirmation: `cnf.jkt` for a DPoP key
    /// (RFC 9449 §6, from [`Confirmation::for_key`] of the token request's proven key),
    /// `cnf.x5t#S256` for a client certificate.
    pub fn token_with_cnf(
        &self,
        sub: &str,
        aud: &str,
        lifetime: Duration,
        nonce: Option<&str>,
        cnf: Option<Confirmation>,
        extra: Map<String, Value>,
    ) -> Result<String, TokenError> {
        let iat = now();
        let exp = iat
            .checked_add(lifetime.as_secs())
            .filter(|exp| NumericDate::from_seconds(*exp).is_ok())
            .ok_or(TokenError::Lifetime(lifetime))?;
        self.sign(&Claims {
            iss: self.issuer.clone(),
            sub: sub.to_string(),
            aud: aud.to_string(),
            exp,
            iat,
            nonce: nonce.map(str::to_string),
            cnf,
            extra,
        })
    }
}

/// Checks JWTs from one issuer: signature (keys from its JWK Set), `iss`, `aud`, `exp`,
/// `nbf`, then the binding against the key the request proved (the Token Consumer side).
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Vec<(Option<String>, DecodingKey, Algorithm)>,
    /// Signature, `iss` and `aud`. The times are checked here instead (see
    /// [`TokenVerifier::check_times`]), so that each refusal has its own reason.
    validation: Validation,
    leeway_secs: u64,
    check_expiry: bool,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Random URL-safe string (256 bits): codes, refresh tokens, nonces, states.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("system random");
    tokbind_proto::base64url::encode(&bytes)
}

impl TokenVerifier {
    /// Trust the keys of `jwks` for tokens from `issuer` meant for `audience`.
    pub fn new(jwks: &Value, issuer: &str, audience: &str) -> Result<Self, TokenError> {
        Self::for_audiences(jwks, issuer, &[audience])
    }

    /// As [`new`](Self::new), for tokens meant for any of `audiences` (an OpenID
    /// Provider's userinfo endpoint accepts the access tokens of all its clients).
    pub fn for_audiences(
        jwks: &Value,
        issuer: &str,
        audiences: &[&str],
    ) -> Result<Self, TokenError> {
        let set: JwkSet =
            serde_json::from_value(jwks.clone()).map_err(|e| TokenError::Signing(e.to_string()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match jwk.common.key_algorithm.map(|a| a.to_string()) {
                Some(a) if a == "ES384" => Algorithm::ES384,
                Some(a) if a == "RS256" => Algorithm::RS256,
                Some(a) if a == "PS256" => Algorithm::PS256,
                _ => Algorithm::ES256,
            };
            keys.push((jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)?, alg));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        Ok(Self {
            keys,
            validation,
            leeway_secs: 30,
            check_expiry: true,
        })
    }

    /// Allow this much clock skew in `exp`/`nbf` checks (default 30 s).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway_secs = leeway.as_secs();
        self
    }

    /// Accept expired tokens. Only for checking archived tokens (e.g. published test
    /// vectors); never in a server. `exp` must still be a well-formed time.
    pub fn insecure_ignore_expiry(mut self) -> Self {
        self.check_expiry = false;
        self
    }

    /// Decode and check signature, issuer, audience and lifetime — not the binding.
    pub fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let mut last = None;
        for (kid, key, alg) in &self.keys {
            let other_kid = header.kid.is_some() && kid.is_some() && header.kid != *kid;
            if other_kid || header.alg != *alg {
                continue;
            }
            let mut v = self.validation.clone();
            v.algorithms = vec![*alg];
            match jsonwebtoken::decode::<Map<String, Value>>(token, key, &v) {
                Ok(data) => {
                    self.check_times(&data.claims, now())?;
                    return serde_json::from_value(Value::Object(data.claims))
                        .map_err(|e| TokenError::Invalid(e.into()));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| jsonwebtoken::errors::ErrorKind::InvalidSignature.into())
            .into())
    }

    /// `exp` and `iat` (required) and `nbf` (optional) of a signed token, read as
    /// NumericDates before any arithmetic, then compared with `now` (RFC 7519 §4.1.4,
    /// §4.1.5) with saturating arithmetic, so no leeway and no claim can overflow.
    fn check_times(&self, claims: &Map<String, Value>, now: u64) -> Result<(), TokenError> {
        let date = |claim: &'static str| {
            NumericDate::claim(claims, claim).map_err(|problem| TokenError::Time { claim, problem })
        };
        let required = |claim: &'static str| {
            date(claim)?.ok_or(TokenError::Time {
                claim,
                problem: NumericDateError::Missing,
            })
        };
        let exp = required("exp")?;
        required("iat")?;
        let nbf = date("nbf")?;
        if self.check_expiry && exp.seconds().saturating_add(self.leeway_secs) < now {
            return Err(TokenError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf.seconds() > now.saturating_add(self.leeway_secs)) {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }

    /// Check a token presented on a request that proved `proven` (resource server: the
    /// request's [`ProvenKeys`](tokbind_proto::ProvenKeys)), under `policy`.
    pub fn verify<'a>(
        &self,
        token: &str,
        proven: impl IntoIterator<Item = &'a ProvenKey>,
        policy: CnfPolicy,
    ) -> Result<Claims, TokenError> {
        let claims = self.decode(token)?;
        check(claims.cnf.as_ref(), proven, policy)?;
        Ok(claims)
    }

    /// Relying party: check an ID token against the `nonce` it sent and the provided Token
    /// Binding ID of the *browser's* request that delivered the response (the callback) —
    /// not the RP's own back-channel connection (OIDC TBA §3).
    pub fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
        callback_provided: Option<&TokenBindingId>,
        policy: CnfPolicy,
    ) -> Result<Claims, TokenError> {
        let claims = self.decode(token)?;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(TokenError::Nonce);
        }
        let proven = callback_provided.map(ProvenKey::token_binding);
        check(claims.cnf.as_ref(), proven.as_ref(), policy)?;
        Ok(claims)
    }
}
