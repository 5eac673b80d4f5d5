//! `TokenBindingID` (RFC 8471 §3.2), its public key, and `tbh` (the SHA-256 confirmation
//! hash of draft-ietf-oauth-token-binding §3.4 and OpenID Connect Token Bound
//! Authentication §2).
//!
//! The TBID is exactly `key_parameters ‖ key_length ‖ TokenBindingPublicKey` — never the
//! type byte, the signature or the extensions (RFC 8471 §3.2). That is what makes the
//! referred TBID an IdP sees equal to the provided TBID the RP sees, and it is the byte
//! string every higher layer (cookies, `cnf.tbh`, TTRP headers, PKCE) works with.

use core::fmt;
use std::sync::Arc;

use crate::base64url;
use crate::codec::{DecodeError, Reader, put_u16, put_vec_u8, put_vec_u16};
use crate::registry::KeyParameters;

/// Length of an ecdsap256 TBID: `02 00 41 40 ‖ X(32) ‖ Y(32)`.
pub const ECDSAP256_TBID_LEN: usize = 68;
/// Length of an RSA-2048 modulus in bytes.
pub const RSA2048_MODULUS_LEN: usize = 256;
/// Longest RSA public exponent accepted, in bytes (`e < 2^32`).
pub const RSA_MAX_EXPONENT_LEN: usize = 4;

/// The public key inside a Token Binding ID, borrowed from the bytes it was decoded from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// An uncompressed P-256 point without the `0x04` prefix: `X(32) ‖ Y(32)`.
    EcdsaP256 {
        /// `X ‖ Y`, big-endian, leading zeros kept.
        point: &'a [u8; 64],
    },
    /// A 2048-bit RSA key (for both RSA key parameters).
    Rsa {
        /// Big-endian modulus: exactly 256 bytes, top bit set.
        modulus: &'a [u8],
        /// Big-endian public exponent, no leading zero byte.
        exponent: &'a [u8],
    },
    /// Key parameters this implementation does not know: the key is opaque bytes.
    Unknown {
        /// The `TokenBindingPublicKey` bytes, unparsed.
        key: &'a [u8],
    },
}

impl fmt::Debug for PublicKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcdsaP256 { point } => write!(f, "EcdsaP256({})", base64url::encode(&point[..])),
            Self::Rsa { modulus, exponent } => write!(
                f,
                "Rsa(n={}…, e={})",
                // Decoded moduli are 256 bytes; one built by hand may be shorter.
                base64url::encode(modulus.get(..8).unwrap_or(modulus)),
                base64url::encode(exponent)
            ),
            Self::Unknown { key } => write!(f, "Unknown({} bytes)", key.len()),
        }
    }
}

/// A Token Binding ID borrowed from a decoded message: the raw TBID bytes plus their parsed
/// parts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenBindingIdRef<'a> {
    raw: &'a [u8],
    key_parameters: KeyParameters,
    public_key: PublicKey<'a>,
}

impl<'a> TokenBindingIdRef<'a> {
    /// Read one TokenBindingID from `r` (RFC 8471 §3.2), strictly: the key must consume
    /// `key_length` exactly and have the exact shape its key parameters demand (RFC 8471 §3.2).
    pub fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let raw_start = r.rest();
        let start = r.offset();
        let key_parameters = KeyParameters::from(r.u8("TokenBindingID.key_parameters")?);
        let mut key = r.sub_u16("TokenBindingID.key_length")?;
        let public_key = match key_parameters {
            KeyParameters::ECDSAP256 => {
                let at = key.offset();
                let point = key.vec_u8("TokenBindingPublicKey.point")?;
                let point: &[u8; 64] = point.try_into().map_err(|_| {
                    Reader::invalid(
                        at,
                        "TokenBindingPublicKey.point",
                        "an ecdsap256 point must be exactly 64 bytes (X‖Y, no 0x04 prefix)",
                    )
                })?;
                PublicKey::EcdsaP256 { point }
            }
            KeyParameters::RSA2048_PKCS1_5 | KeyParameters::RSA2048_PSS => {
                let at = key.offset();
                let modulus = key.vec_u16("TokenBindingPublicKey.modulus")?;
                if modulus.len() != RSA2048_MODULUS_LEN || modulus[0] < 0x80 {
                    return Err(Reader::invalid(
                        at,
                        "TokenBindingPublicKey.modulus",
                        "an rsa2048 modulus must be exactly 2048 bits (256 bytes, no leading zero)",
                    ));
                }
                let at = key.offset();
                let exponent = key.vec_u8("TokenBindingPublicKey.publicexponent")?;
                check_rsa_exponent(exponent).map_err(|reason| {
                    Reader::invalid(at, "TokenBindingPublicKey.publicexponent", reason)
                })?;
                PublicKey::Rsa { modulus, exponent }
            }
            _ => {
                let opaque = key.rest();
                key.take(opaque.len(), "TokenBindingPublicKey")?;
                PublicKey::Unknown { key: opaque }
            }
        };
        key.expect_end("TokenBindingID.key_length")?;
        let raw = &raw_start[..r.offset() - start];
        Ok(Self {
            raw,
            key_parameters,
            public_key,
        })
    }

    /// Decode a whole buffer as one TBID (e.g. from a TTRP header or a stored binding).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let id = Self::read(&mut r)?;
        r.expect_end("TokenBindingID")?;
        Ok(id)
    }

    /// The raw TBID bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// The key parameters byte.
    pub fn key_parameters(&self) -> KeyParameters {
        self.key_parameters
    }

    /// The parsed public key.
    pub fn public_key(&self) -> PublicKey<'a> {
        self.public_key
    }

    /// `tbh`: base64url(SHA-256(TBID)).
    pub fn tbh(&self) -> Tbh {
        Tbh::of(self.raw)
    }

    /// An owned copy (named as `Cow::into_owned`, so that it does not shadow
    /// `ToOwned::to_owned`, which on this `Copy` type gives back the borrowed form).
    pub fn into_owned(self) -> TokenBindingId {
        TokenBindingId {
            bytes: Arc::from(self.raw),
            key_parameters: self.key_parameters,
        }
    }
}

impl From<TokenBindingIdRef<'_>> for TokenBindingId {
    fn from(id: TokenBindingIdRef<'_>) -> Self {
        id.into_owned()
    }
}

impl fmt::Debug for TokenBindingIdRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenBindingId({})", base64url::encode(self.raw))
    }
}

fn check_rsa_exponent(e: &[u8]) -> Result<(), &'static str> {
    if e.is_empty() || e.len() > RSA_MAX_EXPONENT_LEN {
        return Err("the exponent must be 1 to 4 bytes");
    }
    if e[0] == 0 {
        return Err("the exponent must not have a leading zero byte");
    }
    let value = e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    if value < 3 || value % 2 == 0 {
        return Err("the exponent must be odd and at least 3");
    }
    Ok(())
}

/// An owned, structurally valid Token Binding ID: the opaque byte string RFC 8471 §3.2
/// tells implementations to hand to applications.
///
/// Cheap to clone (the bytes are shared). Equality and hashing are over the raw bytes.
/// `Display` is unpadded base64url, the encoding of the TTRP headers and the PKCE
/// `referred_tb` verifier.
#[derive(Clone)]
pub struct TokenBindingId {
    bytes: Arc<[u8]>,
    key_parameters: KeyParameters,
}

impl TokenBindingId {
    /// Parse a TBID from its raw bytes (strictly, see [`TokenBindingIdRef::read`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        TokenBindingIdRef::decode(bytes).map(TokenBindingIdRef::into_owned)
    }

    /// Parse a TBID from unpadded base64url (the TTRP `EncodedTokenBindingID`).
    pub fn from_base64url(text: &str) -> Result<Self, TbidTextError> {
        let bytes = base64url::decode(text.as_bytes()).map_err(|_| TbidTextError::Base64)?;
        Self::from_bytes(&bytes).map_err(TbidTextError::Decode)
    }

    /// Build the TBID of a P-256 public key given as `X ‖ Y`.
    pub fn ecdsap256(point: &[u8; 64]) -> Self {
        let mut out = Vec::with_capacity(ECDSAP256_TBID_LEN);
        out.push(u8::from(KeyParameters::ECDSAP256));
        put_u16(&mut out, 65);
        put_vec_u8(&mut out, point);
        Self {
            bytes: out.into(),
            key_parameters: KeyParameters::ECDSAP256,
        }
    }

    /// Build the TBID of an RSA-2048 public key (big-endian modulus and exponent, leading
    /// zero bytes are stripped as RFC 8471 §3.2 requires).
    pub fn rsa2048(
        key_parameters: KeyParameters,
        modulus: &[u8],
        exponent: &[u8],
    ) -> Result<Self, DecodeError> {
        if !key_parameters.is_rsa() {
            return Err(Reader::invalid(
                0,
                "TokenBindingID.key_parameters",
                "not an RSA key parameter",
            ));
        }
        let strip = |b: &[u8]| -> Vec<u8> {
            let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            b[first..].to_vec()
        };
        let (n, e) = (strip(modulus), strip(exponent));
        let mut key = Vec::with_capacity(n.len() + e.len() + 3);
        // Lengths beyond the wire limits are caught by the strict re-parse below.
        put_vec_u16(&mut key, &n[..n.len().min(usize::from(u16::MAX))]);
        put_vec_u8(&mut key, &e[..e.len().min(usize::from(u8::MAX))]);
        let mut out = Vec::with_capacity(key.len() + 3);
        out.push(u8::from(key_parameters));
        put_vec_u16(&mut out, &key);
        Self::from_bytes(&out)
    }

    /// The raw TBID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw bytes as a shared allocation (no copy).
    pub(crate) fn shared_bytes(&self) -> Arc<[u8]> {
        Arc::clone(&self.bytes)
    }

    /// The key parameters byte.
    pub fn key_parameters(&self) -> KeyParameters {
        self.key_parameters
    }

    /// A borrowed, parsed view (re-parses; the bytes are known to be valid).
    pub fn parsed(&self) -> TokenBindingIdRef<'_> {
        TokenBindingIdRef::decode(&self.bytes).expect("TokenBindingId holds a valid TBID")
    }

    /// `tbh`: base64url(SHA-256(TBID)).
    pub fn tbh(&self) -> Tbh {
        Tbh::of(&self.bytes)
    }

    /// Unpadded base64url of the TBID bytes.
    pub fn to_base64url(&self) -> String {
        base64url::encode(&self.bytes)
    }
}

impl PartialEq for TokenBindingId {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for TokenBindingId {}

impl core::hash::Hash for TokenBindingId {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}

impl PartialEq<TokenBindingIdRef<'_>> for TokenBindingId {
    fn eq(&self, other: &TokenBindingIdRef<'_>) -> bool {
        &*self.bytes == other.raw
    }
}

impl fmt::Display for TokenBindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for TokenBindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenBindingId({})", self.to_base64url())
    }
}

impl core::str::FromStr for TokenBindingId {
    type Err = TbidTextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64url(s)
    }
}

/// A textual TBID could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TbidTextError {
    /// Not strict unpadded base64url.
    #[error("Token Binding ID is not unpadded base64url")]
    Base64,
    /// The bytes are not a well-formed TBID.
    #[error("malformed Token Binding ID: {0}")]
    Decode(DecodeError),
}

/// The Token Binding hash: SHA-256 of the raw TBID bytes. Its text form (43 characters of
/// unpadded base64url) is the `cnf.tbh` value and the PKCE `TB-S256` code challenge.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tbh(pub [u8; 32]);

impl Tbh {
    /// SHA-256 of `tbid` (the raw bytes, never their base64url text).
    pub fn of(tbid: &[u8]) -> Self {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, tbid);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    /// Parse the 43-character text form.
    pub fn from_base64url(text: &str) -> Result<Self, TbidTextError> {
        let bytes = base64url::decode(text.as_bytes()).map_err(|_| TbidTextError::Base64)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            TbidTextError::Decode(Reader::invalid(0, "tbh", "a tbh is exactly 32 bytes"))
        })?;
        Ok(Self(arr))
    }
}

impl fmt::Display for Tbh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64url::encode(&self.0))
    }
}

impl fmt::Debug for Tbh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tbh({self})")
    }
}
