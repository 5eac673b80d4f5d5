//! Signature verification and signing for the three key parameters (RFC 8471 §3.3), on
//! aws-lc-rs: the fastest backend measured for both P-256 and RSA-2048 verification.
//!
//! | key parameters    | algorithm                                              |
//! |-------------------|--------------------------------------------------------|
//! | `rsa2048_pkcs1.5` | RSASSA-PKCS1-v1_5, SHA-256                             |
//! | `rsa2048_pss`     | RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length **32**  |
//! | `ecdsap256`       | ECDSA P-256, SHA-256, raw `R‖S` (64 bytes, not DER)    |
//!
//! PSS verification pins the salt length to the digest length (aws-lc's
//! `RSA_PSS_SALTLEN_DIGEST`), so signatures with any other salt are refused (RFC 8471 §3.3).
//! ECDSA accepts high-S signatures: RFC 8471 does not require low-S and half of the
//! published example signatures have S > n/2 (RFC 8471 §3.3 asks for no low-S form).

use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, LazyLock, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair, RsaParameters,
};
use zeroize::Zeroizing;

use crate::ekm::SIGNED_INPUT_LEN;
use crate::id::{PublicKey, TokenBindingId};
use crate::registry::KeyParameters;

/// Why a binding's signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureFailure {
    /// The signature length is not the one the key parameters fix (64 or 256 bytes).
    Length,
    /// The key is well-formed on the wire but not a usable key (e.g. a point off the curve).
    Key,
    /// The signature does not verify under the key.
    Mismatch,
    /// Key parameters this implementation cannot verify.
    Unsupported,
}

/// A public key parsed once and ready to verify many signatures.
///
/// The per-request path ([`crate::validate()`]) parses a P-256 key from the TBID each time
/// (cheap) and finds an RSA key in a bounded process-wide cache of parsed keys; this type
/// exists for callers that verify repeatedly under one key and for the benchmark baseline
/// (`raw_p256`).
pub struct PreparedKey(ParsedPublicKey);

impl PreparedKey {
    /// Parse the public key of `id`.
    ///
    /// Fails for key parameters this implementation does not know, and for keys that are
    /// well-formed on the wire but unusable (e.g. a point that is not on P-256).
    pub fn new(id: &crate::id::TokenBindingIdRef<'_>) -> Result<Self, InvalidKey> {
        Self::parse(id.key_parameters(), id.public_key()).map_err(|_| InvalidKey)
    }

    pub(crate) fn parse(
        key_parameters: KeyParameters,
        key: PublicKey<'_>,
    ) -> Result<Self, SignatureFailure> {
        match (algorithm(key_parameters)?, key) {
            (Algorithm::Ecdsa, PublicKey::EcdsaP256 { point }) => {
                let mut sec1 = [0u8; 65];
                sec1[0] = 0x04;
                sec1[1..].copy_from_slice(point);
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, sec1)
                    .map(Self)
                    .map_err(|_| SignatureFailure::Key)
            }
            (Algorithm::Rsa(params), PublicKey::Rsa { modulus, exponent }) => PublicKeyComponents {
                n: modulus,
                e: exponent,
            }
            .to_parsed_public_key(params)
            .map(Self)
            .map_err(|_| SignatureFailure::Key),
            _ => Err(SignatureFailure::Unsupported),
        }
    }

    /// Verify `sig` over `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        self.0.verify_sig(message, sig).is_ok()
    }
}

/// A Token Binding ID's public key cannot be used for verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Token Binding ID's public key is not a usable key for its key parameters")]
pub struct InvalidKey;

enum Algorithm {
    Ecdsa,
    Rsa(&'static RsaParameters),
}

fn algorithm(kp: KeyParameters) -> Result<Algorithm, SignatureFailure> {
    match KeyParameters::from(u8::from(kp)) {
        KeyParameters::ECDSAP256 => Ok(Algorithm::Ecdsa),
        KeyParameters::RSA2048_PSS => Ok(Algorithm::Rsa(&signature::RSA_PSS_2048_8192_SHA256)),
        KeyParameters::RSA2048_PKCS1_5 => {
            Ok(Algorithm::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256))
        }
        _ => Err(SignatureFailure::Unsupported),
    }
}

/// Verify one binding's signature over its signed input.
pub(crate) fn verify(
    key_parameters: KeyParameters,
    key: PublicKey<'_>,
    signed_input: &[u8; SIGNED_INPUT_LEN],
    sig: &[u8],
) -> Result<(), SignatureFailure> {
    let expected = key_parameters
        .signature_len()
        .ok_or(SignatureFailure::Unsupported)?;
    if sig.len() != expected {
        return Err(SignatureFailure::Length);
    }
    let verified = match key {
        PublicKey::Rsa { modulus, exponent } => RSA_KEYS
            .get(key_parameters, modulus, exponent)?
            .verify(signed_input, sig),
        _ => PreparedKey::parse(key_parameters, key)?.verify(signed_input, sig),
    };
    if verified {
        Ok(())
    } else {
        Err(SignatureFailure::Mismatch)
    }
}

/// Parsed RSA public keys by their exact wire bytes, process-wide. Building an RSA key from
/// modulus and exponent costs aws-lc more than a P-256 point (4–6 µs), and a client
/// presents the same key on every connection to a site (one key per site, RFC 8471 §6),
/// so each new connection would pay it again. Only public keys are kept, found by all of
/// their bytes (a hash picks the slot, equality decides), so an entry can never stand for
/// another key; the cache is direct-mapped and bounded: a key that lands on a taken slot
/// replaces it, and a client that floods it with keys only costs itself the import again.
static RSA_KEYS: LazyLock<KeyCache> = LazyLock::new(KeyCache::new);

/// How many parsed RSA keys are kept (each a few KiB inside aws-lc).
const RSA_KEY_SLOTS: usize = 512;

struct CachedKey {
    key_parameters: KeyParameters,
    modulus: Box<[u8]>,
    exponent: Box<[u8]>,
    key: Arc<PreparedKey>,
}

struct KeyCache {
    hasher: RandomState,
    slots: Box<[Mutex<Option<CachedKey>>]>,
}

impl KeyCache {
    fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            slots: (0..RSA_KEY_SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn get(
        &self,
        key_parameters: KeyParameters,
        modulus: &[u8],
        exponent: &[u8],
    ) -> Result<Arc<PreparedKey>, SignatureFailure> {
        let hash = self
            .hasher
            .hash_one((key_parameters.get(), modulus, exponent));
        // The remainder of a division by the slot count always fits a usize.
        let slot = &self.slots[usize::try_from(hash % RSA_KEY_SLOTS as u64).unwrap_or(0)];
        let found = |entry: &Option<CachedKey>| {
            entry
                .as_ref()
                .filter(|c| {
                    c.key_parameters == key_parameters
                        && *c.modulus == *modulus
                        && *c.exponent == *exponent
                })
                .map(|c| Arc::clone(&c.key))
        };
        // A poisoned slot only means a panic elsewhere while it was held: the entry is
        // whole either way (it is replaced in one assignment).
        if let Some(key) = found(&slot.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(key);
        }
        let key = Arc::new(PreparedKey::parse(
            key_parameters,
            PublicKey::Rsa { modulus, exponent },
        )?);
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(CachedKey {
            key_parameters,
            modulus: modulus.into(),
            exponent: exponent.into(),
            key: Arc::clone(&key),
        });
        Ok(key)
    }
}

/// Something that can sign Token Bindings with one key: the in-memory [`SigningKey`] here,
/// and hardware-backed keys (PKCS#11, TPM) elsewhere.
pub trait TokenBindingSigner: Send + Sync + core::fmt::Debug {
    /// The key's parameters.
    fn key_parameters(&self) -> KeyParameters;
    /// The key's Token Binding ID.
    fn token_binding_id(&self) -> &TokenBindingId;
    /// Sign `type ‖ key_parameters ‖ EKM` with the algorithm the key parameters fix.
    fn sign(&self, signed_input: &[u8; SIGNED_INPUT_LEN]) -> Result<Vec<u8>, SignError>;
}

/// Signing failed, or a key could not be generated or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Only the three registered key parameters can be generated.
    #[error("cannot create a key for key parameters {0}")]
    UnsupportedKeyParameters(KeyParameters),
    /// The key material was rejected (wrong type, wrong size, malformed PKCS#8).
    #[error("key rejected: {0}")]
    KeyRejected(String),
    /// The signing backend failed.
    #[error("signing failed")]
    Backend,
    /// The bindings do not make an encodable message (none, or over 65535 bytes).
    #[error("cannot encode the message: {0}")]
    Message(crate::codec::DecodeError),
}

/// An in-memory Token Binding private key for one of the three key parameters.
///
/// Keys generated here live in process memory; RFC 8471 §7.1 recommends hardware
/// protection for long-lived keys, which other [`TokenBindingSigner`] implementations
/// provide.
pub struct SigningKey {
    inner: Inner,
    key_parameters: KeyParameters,
    id: TokenBindingId,
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl SigningKey {
    /// Generate a fresh key.
    pub fn generate(key_parameters: KeyParameters) -> Result<Self, SignError> {
        match algorithm(key_parameters) {
            Ok(Algorithm::Ecdsa) => {
                let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| SignError::Backend)?;
                Self::from_ecdsa(pair)
            }
            Ok(Algorithm::Rsa(_)) => {
                let pair =
                    RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| SignError::Backend)?;
                Self::from_rsa(key_parameters, pair)
            }
            Err(_) => Err(SignError::UnsupportedKeyParameters(key_parameters)),
        }
    }

    /// Load a PKCS#8 (v1 or v2) private key for `key_parameters`.
    pub fn from_pkcs8(key_parameters: KeyParameters, der: &[u8]) -> Result<Self, SignError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| SignError::KeyRejected(e.to_string());
        match algorithm(key_parameters) {
            Ok(Algorithm::Ecdsa) => Self::from_ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            Ok(Algorithm::Rsa(_)) => Self::from_rsa(
                key_parameters,
                RsaKeyPair::from_pkcs8(der).map_err(rejected)?,
            ),
            Err(_) => Err(SignError::UnsupportedKeyParameters(key_parameters)),
        }
    }

    /// The private key as PKCS#8 DER, for persistent key stores.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, SignError> {
        use aws_lc_rs::encoding::AsDer;
        let der = match &self.inner {
            Inner::Ecdsa(pair) => pair
                .to_pkcs8v1()
                .map_err(|_| SignError::Backend)?
                .as_ref()
                .to_vec(),
            Inner::Rsa(pair) => {
                let doc: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                    pair.as_der().map_err(|_| SignError::Backend)?;
                doc.as_ref().to_vec()
            }
        };
        Ok(Zeroizing::new(der))
    }

    fn from_ecdsa(pair: EcdsaKeyPair) -> Result<Self, SignError> {
        let sec1 = pair.public_key().as_ref();
        let point: &[u8; 64] = sec1
            .get(1..)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| SignError::KeyRejected("not an uncompressed P-256 point".into()))?;
        let id = TokenBindingId::ecdsap256(point);
        Ok(Self {
            inner: Inner::Ecdsa(pair),
            key_parameters: KeyParameters::ECDSAP256,
            id,
        })
    }

    fn from_rsa(key_parameters: KeyParameters, pair: RsaKeyPair) -> Result<Self, SignError> {
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let id = TokenBindingId::rsa2048(key_parameters, &components.n, &components.e)
            .map_err(|e| SignError::KeyRejected(format!("not an RSA-2048 key: {e}")))?;
        Ok(Self {
            inner: Inner::Rsa(pair),
            key_parameters,
            id,
        })
    }
}

impl TokenBindingSigner for SigningKey {
    fn key_parameters(&self) -> KeyParameters {
        self.key_parameters
    }

    fn token_binding_id(&self) -> &TokenBindingId {
        &self.id
    }

    fn sign(&self, signed_input: &[u8; SIGNED_INPUT_LEN]) -> Result<Vec<u8>, SignError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ecdsa(pair) => pair
                .sign(&rng, signed_input)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError::Backend),
            Inner::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.key_parameters {
                    KeyParameters::RSA2048_PSS => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &rng, signed_input, &mut sig)
                    .map_err(|_| SignError::Backend)?;
                Ok(sig)
            }
        }
    }
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_parameters", &self.key_parameters)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ekm::Ekm;
    use crate::id::TokenBindingIdRef;
    use crate::registry::TokenBindingType;

    fn rsa_parts(key: &SigningKey) -> (Vec<u8>, Vec<u8>) {
        let id = TokenBindingIdRef::decode(key.token_binding_id().as_bytes()).unwrap();
        match id.public_key() {
            PublicKey::Rsa { modulus, exponent } => (modulus.to_vec(), exponent.to_vec()),
            _ => unreachable!("an RSA key"),
        }
    }

    #[test]
    fn cached_rsa_keys_are_found_only_by_all_of_their_bytes() {
        let kp = KeyParameters::RSA2048_PSS;
        let (a, b) = (
            SigningKey::generate(kp).unwrap(),
            SigningKey::generate(kp).unwrap(),
        );
        let input = Ekm::new([3; 32]).signed_input(TokenBindingType::PROVIDED, kp);
        let sig = a.sign(&input).unwrap();
        let (n_a, e_a) = rsa_parts(&a);
        let (n_b, e_b) = rsa_parts(&b);
        fn rsa<'k>(modulus: &'k [u8], exponent: &'k [u8]) -> PublicKey<'k> {
            PublicKey::Rsa { modulus, exponent }
        }

        // Verified twice: the second time from the cache, the same parsed key.
        assert_eq!(verify(kp, rsa(&n_a, &e_a), &input, &sig), Ok(()));
        let first = RSA_KEYS.get(kp, &n_a, &e_a).unwrap();
        assert_eq!(verify(kp, rsa(&n_a, &e_a), &input, &sig), Ok(()));
        assert!(Arc::ptr_eq(&first, &RSA_KEYS.get(kp, &n_a, &e_a).unwrap()));

        // Another key, a changed modulus, or the other RSA key parameters never find it.
        assert_eq!(
            verify(kp, rsa(&n_b, &e_b), &input, &sig),
            Err(SignatureFailure::Mismatch)
        );
        let mut n_x = n_a.clone();
        n_x[100] ^= 1;
        assert_ne!(verify(kp, rsa(&n_x, &e_a), &input, &sig), Ok(()));
        let pkcs1 = KeyParameters::RSA2048_PKCS1_5;
        let input_pkcs1 = Ekm::new([3; 32]).signed_input(TokenBindingType::PROVIDED, pkcs1);
        assert_eq!(
            verify(pkcs1, rsa(&n_a, &e_a), &input_pkcs1, &sig),
            Err(SignatureFailure::Mismatch)
        );
        assert!(!Arc::ptr_eq(
            &first,
            &RSA_KEYS.get(pkcs1, &n_a, &e_a).unwrap()
        ));
        // And the original still verifies.
        assert_eq!(verify(kp, rsa(&n_a, &e_a), &input, &sig), Ok(()));
    }

    #[test]
    fn the_rsa_key_cache_is_bounded() {
        let cache = KeyCache::new();
        assert_eq!(cache.slots.len(), RSA_KEY_SLOTS);
        // Many distinct keys (an unusable modulus fails to parse and is never kept, so
        // use real ones): the cache never holds more than its slots.
        let kp = KeyParameters::RSA2048_PKCS1_5;
        for _ in 0..3 {
            let (n, e) = rsa_parts(&SigningKey::generate(kp).unwrap());
            cache.get(kp, &n, &e).unwrap();
        }
        let held = cache
            .slots
            .iter()
            .filter(|s| s.lock().unwrap().is_some())
            .count();
        assert!((1..=3).contains(&held));
        assert!(cache.get(kp, &[0; 256], &[1, 0, 1]).is_err());
        let held_after = cache
            .slots
            .iter()
            .filter(|s| s.lock().unwrap().is_some())
            .count();
        assert_eq!(held, held_after, "a key that does not parse is not kept");
    }
}
