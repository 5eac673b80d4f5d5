//! `TokenBindingMessage`, `TokenBinding` and `TB_Extension` (RFC 8471 §3).
//!
//! ```text
//! struct {
//!     TokenBinding tokenbindings<132..2^16-1>;
//! } TokenBindingMessage;
//!
//! struct {
//!     TokenBindingType tokenbinding_type;
//!     TokenBindingID tokenbindingid;
//!     opaque signature<64..2^16-1>;
//!     TB_Extension extensions<0..2^16-1>;
//! } TokenBinding;
//! ```
//!
//! Decoding borrows from the input and does not allocate for messages of up to two
//! bindings (the HTTP case: one provided, at most one referred).

use smallvec::SmallVec;

use crate::codec::{DecodeError, Reader, checked_len, put_u16, put_vec_u16};
use crate::id::TokenBindingIdRef;
use crate::registry::TokenBindingType;

/// Smallest signature the wire format allows (`signature<64..2^16-1>`).
pub const MIN_SIGNATURE_LEN: usize = 64;

/// A decoded `TokenBindingMessage`: one or more Token Bindings, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBindingMessage<'a> {
    bindings: SmallVec<[TokenBinding<'a>; 2]>,
}

impl<'a> TokenBindingMessage<'a> {
    /// Decode a whole buffer as one message, strictly.
    ///
    /// The outer length must equal the remaining bytes exactly and at least one binding
    /// must be present (RFC 8471 §4.1). The spec's nominal lower bound of 132 bytes is
    /// deliberately not checked: no real binding is that short (the smallest, ecdsap256, is 137 bytes), and the
    /// per-field checks already reject anything malformed.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut list = r.sub_u16("TokenBindingMessage.tokenbindings")?;
        r.expect_end("TokenBindingMessage")?;
        if !list.any_left() {
            return Err(Reader::invalid(
                0,
                "TokenBindingMessage.tokenbindings",
                "a message must contain at least one TokenBinding",
            ));
        }
        let mut bindings = SmallVec::new();
        while list.any_left() {
            bindings.push(TokenBinding::read(&mut list)?);
        }
        Ok(Self { bindings })
    }

    /// Build a message from bindings (at least one; the encoding must fit a `uint16`).
    pub fn new(bindings: impl IntoIterator<Item = TokenBinding<'a>>) -> Result<Self, DecodeError> {
        let bindings: SmallVec<[TokenBinding<'a>; 2]> = bindings.into_iter().collect();
        if bindings.is_empty() {
            return Err(Reader::invalid(
                0,
                "TokenBindingMessage.tokenbindings",
                "a message must contain at least one TokenBinding",
            ));
        }
        let len: usize = bindings.iter().map(TokenBinding::encoded_len).sum();
        if len > usize::from(u16::MAX) {
            return Err(Reader::invalid(
                0,
                "TokenBindingMessage.tokenbindings",
                "the bindings do not fit in 65535 bytes",
            ));
        }
        Ok(Self { bindings })
    }

    /// The bindings, in wire order.
    pub fn bindings(&self) -> &[TokenBinding<'a>] {
        &self.bindings
    }

    /// Append the wire encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len: usize = self.bindings.iter().map(TokenBinding::encoded_len).sum();
        out.reserve(len + 2);
        put_u16(out, checked_len(len));
        for b in &self.bindings {
            b.encode(out);
        }
    }

    /// The wire encoding as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// One `TokenBinding`: a type, the TBID, a signature over `type ‖ key_parameters ‖ EKM`
/// (RFC 8471 §3.3) and extensions.
///
/// The fields are private so that every value fits its wire encoding: a binding is either
/// decoded or built by [`TokenBinding::new`], which checks the signature's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBinding<'a> {
    binding_type: TokenBindingType,
    id: TokenBindingIdRef<'a>,
    signature: &'a [u8],
    extensions: Extensions<'a>,
}

impl<'a> TokenBinding<'a> {
    /// A binding from its parts. The signature must fit `signature<64..2^16-1>`; whether
    /// its length suits the key parameters is a validation rule (see
    /// [`crate::validate`](mod@crate::validate)).
    pub fn new(
        binding_type: TokenBindingType,
        id: TokenBindingIdRef<'a>,
        signature: &'a [u8],
        extensions: Extensions<'a>,
    ) -> Result<Self, DecodeError> {
        if !(MIN_SIGNATURE_LEN..=usize::from(u16::MAX)).contains(&signature.len()) {
            return Err(Reader::invalid(
                0,
                "TokenBinding.signature",
                "a signature is 64 to 65535 bytes",
            ));
        }
        Ok(Self {
            binding_type,
            id,
            signature,
            extensions,
        })
    }

    /// `tokenbinding_type`.
    pub fn binding_type(&self) -> TokenBindingType {
        self.binding_type
    }

    /// `tokenbindingid`.
    pub fn id(&self) -> TokenBindingIdRef<'a> {
        self.id
    }

    /// `signature` (64 to 65535 bytes; the exact length per key parameters is a validation
    /// rule, see [`crate::validate`](mod@crate::validate)).
    pub fn signature(&self) -> &'a [u8] {
        self.signature
    }

    /// `extensions`.
    pub fn extensions(&self) -> Extensions<'a> {
        self.extensions
    }

    /// Read one binding from `r`.
    pub fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let binding_type = TokenBindingType::from(r.u8("TokenBinding.tokenbinding_type")?);
        let id = TokenBindingIdRef::read(r)?;
        let at = r.offset();
        let signature = r.vec_u16("TokenBinding.signature")?;
        if signature.len() < MIN_SIGNATURE_LEN {
            return Err(Reader::invalid(
                at,
                "TokenBinding.signature",
                "a signature is at least 64 bytes",
            ));
        }
        let extensions = Extensions::read(r)?;
        Ok(Self {
            binding_type,
            id,
            signature,
            extensions,
        })
    }

    /// Length of the wire encoding.
    pub fn encoded_len(&self) -> usize {
        1 + self.id.as_bytes().len() + 2 + self.signature.len() + 2 + self.extensions.raw.len()
    }

    /// Append the wire encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.binding_type));
        out.extend_from_slice(self.id.as_bytes());
        put_vec_u16(out, self.signature);
        put_vec_u16(out, self.extensions.raw);
    }
}

/// The `extensions<0..2^16-1>` block of a binding: a well-formed list of `TB_Extension`.
///
/// No extension is registered (RFC 8471 §6.3) and servers ignore unknown ones (§4.2), but
/// the list is still parsed strictly so that a malformed message never passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extensions<'a> {
    raw: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// No extensions.
    pub const EMPTY: Extensions<'static> = Extensions { raw: &[] };

    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let list = r.sub_u16("TokenBinding.extensions")?;
        Self::parse_list(list)
    }

    fn parse_list(mut list: Reader<'a>) -> Result<Self, DecodeError> {
        let raw = list.rest();
        while list.any_left() {
            list.u8("TB_Extension.extension_type")?;
            list.vec_u16("TB_Extension.extension_data")?;
        }
        Ok(Self { raw })
    }

    /// Parse an encoded extension list (the bytes inside the `extensions` vector).
    pub fn from_bytes(raw: &'a [u8]) -> Result<Self, DecodeError> {
        if raw.len() > usize::from(u16::MAX) {
            return Err(Reader::invalid(
                0,
                "TokenBinding.extensions",
                "longer than 65535 bytes",
            ));
        }
        Self::parse_list(Reader::new(raw))
    }

    /// The encoded list, without its length prefix.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether there are no extensions.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Iterate over `(extension_type, extension_data)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut r = Reader::new(self.raw);
        core::iter::from_fn(move || {
            if !r.any_left() {
                return None;
            }
            // The list was validated when it was built, so these reads cannot fail.
            let ty = r.u8("TB_Extension.extension_type").ok()?;
            let data = r.vec_u16("TB_Extension.extension_data").ok()?;
            Some((ty, data))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyParameters, SigningKey, TokenBindingSigner};

    #[test]
    fn constructors_refuse_what_the_wire_cannot_carry() {
        let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
        let id = TokenBindingIdRef::decode(key.token_binding_id().as_bytes()).unwrap();
        let short = [0u8; MIN_SIGNATURE_LEN - 1];
        let long = vec![0u8; usize::from(u16::MAX) + 1];
        let t = TokenBindingType::PROVIDED;
        assert!(TokenBinding::new(t, id, &short, Extensions::EMPTY).is_err());
        assert!(TokenBinding::new(t, id, &long, Extensions::EMPTY).is_err());
        assert!(Extensions::from_bytes(&long).is_err());

        // The largest binding that fits, and a message of two that does not.
        let biggest = vec![7u8; usize::from(u16::MAX)];
        let b = TokenBinding::new(t, id, &biggest, Extensions::EMPTY).unwrap();
        assert!(TokenBindingMessage::new([b, b]).is_err());
        assert!(TokenBindingMessage::new([]).is_err());
    }

    #[test]
    fn a_built_binding_round_trips_through_decode() {
        let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
        let id = TokenBindingIdRef::decode(key.token_binding_id().as_bytes()).unwrap();
        let sig = [3u8; 64];
        let ext = Extensions::from_bytes(&[9, 0, 1, 0xaa]).unwrap();
        let b = TokenBinding::new(TokenBindingType::new(0x4d), id, &sig, ext).unwrap();
        let bytes = TokenBindingMessage::new([b]).unwrap().to_bytes();
        let decoded = TokenBindingMessage::decode(&bytes).unwrap();
        assert_eq!(decoded.bindings(), &[b]);
        assert_eq!(
            decoded.bindings()[0].binding_type(),
            TokenBindingType::new(0x4d)
        );
        assert_eq!(
            decoded.bindings()[0]
                .extensions()
                .iter()
                .collect::<Vec<_>>(),
            [(9, &[0xaa][..])]
        );
    }
}
