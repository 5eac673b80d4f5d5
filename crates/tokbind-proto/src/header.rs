//! The `Sec-Token-Binding` request header value (RFC 8473 §2): one TokenBindingMessage,
//! unpadded base64url, no whitespace.
//!
//! [`verify_header`] is the whole per-request server path — decode, parse, validate — with
//! no heap allocation for the message itself (the decoded bytes live on the stack for
//! messages up to [`INLINE_MESSAGE_LEN`] bytes, which covers two RSA bindings).
//! Header-count rules (more than one header → 400) belong to the HTTP layer, which sees
//! the header map.

use smallvec::SmallVec;

use crate::base64url;
use crate::codec::DecodeError;
use crate::ekm::Ekm;
use crate::message::TokenBindingMessage;
use crate::registry::KeyParameters;
use crate::validate::{ValidationError, ValidationOptions, VerifiedBindings, validate_with};

/// RFC 8473 §2 name of the request header.
pub const SEC_TOKEN_BINDING: &str = "sec-token-binding";
/// The pre-RFC name (draft-ietf-tokbind-https ≤ -02); accept only when configured.
pub const LEGACY_TOKEN_BINDING: &str = "token-binding";

/// Longest header value that can encode a message: base64url of `2 + 65535` bytes.
pub const MAX_HEADER_VALUE_LEN: usize = (2 + 65535usize).div_ceil(3) * 4;

/// Messages up to this many bytes are decoded without touching the heap.
pub const INLINE_MESSAGE_LEN: usize = 1536;

/// Why a header value was rejected. [`HeaderError::kind`] gives the reason as a `Copy`
/// value to match on, [`HeaderError::reason`] as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Longer than any valid message encoding.
    #[error("header value is {0} bytes; no Token Binding message encodes that long")]
    TooLong(usize),
    /// Not strict unpadded base64url.
    #[error("header value is not unpadded base64url (RFC 8473 §2)")]
    Base64,
    /// The decoded bytes are not a well-formed TokenBindingMessage.
    #[error("malformed Token Binding message: {0}")]
    Malformed(DecodeError),
    /// Well-formed, but the server must reject it.
    #[error(transparent)]
    Invalid(ValidationError),
}

impl HeaderError {
    /// What was wrong, without the details.
    pub fn kind(&self) -> HeaderErrorKind {
        match self {
            Self::TooLong(_) => HeaderErrorKind::HeaderTooLong,
            Self::Base64 => HeaderErrorKind::InvalidBase64,
            Self::Malformed(_) => HeaderErrorKind::MalformedMessage,
            Self::Invalid(e) => match e {
                ValidationError::TooManyBindings { .. } => HeaderErrorKind::TooManyBindings,
                ValidationError::MissingProvided => HeaderErrorKind::MissingProvided,
                ValidationError::DuplicateProvided => HeaderErrorKind::DuplicateProvided,
                ValidationError::DuplicateReferred => HeaderErrorKind::DuplicateReferred,
                ValidationError::KeyParametersMismatch { .. } => {
                    HeaderErrorKind::KeyParametersMismatch
                }
                ValidationError::UnsupportedKeyParameters(_) => {
                    HeaderErrorKind::UnsupportedKeyParameters
                }
                ValidationError::InvalidPublicKey(_) => HeaderErrorKind::InvalidPublicKey,
                ValidationError::InvalidSignature { .. } => HeaderErrorKind::InvalidSignature,
            },
        }
    }

    /// A stable, machine-readable code.
    pub fn reason(&self) -> &'static str {
        self.kind().reason()
    }
}

/// What was wrong with a header value, as a `Copy` value: one per [`HeaderError`] and
/// [`ValidationError`] variant, each with its own stable code. Layers wrap it rather than
/// relabel it, so a new error here gets its own code everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderErrorKind {
    /// Longer than any valid message encoding.
    HeaderTooLong,
    /// Not strict unpadded base64url (RFC 8473 §2).
    InvalidBase64,
    /// The decoded bytes are not a well-formed TokenBindingMessage (RFC 8471 §3).
    MalformedMessage,
    /// More bindings than [`ValidationOptions::max_bindings`].
    TooManyBindings,
    /// No provided binding (RFC 8473 §2: exactly one is required).
    MissingProvided,
    /// More than one provided binding.
    DuplicateProvided,
    /// More than one referred binding.
    DuplicateReferred,
    /// The provided binding does not use the negotiated key parameters (RFC 8471 §4.2).
    KeyParametersMismatch,
    /// The negotiated key parameters cannot be verified.
    UnsupportedKeyParameters,
    /// A binding's public key is unusable.
    InvalidPublicKey,
    /// A signature does not verify over this connection's EKM: a forged header, or one
    /// replayed from another connection.
    InvalidSignature,
}

impl HeaderErrorKind {
    /// Every kind, for tables, metrics and tests.
    pub const ALL: &'static [HeaderErrorKind] = &[
        Self::HeaderTooLong,
        Self::InvalidBase64,
        Self::MalformedMessage,
        Self::TooManyBindings,
        Self::MissingProvided,
        Self::DuplicateProvided,
        Self::DuplicateReferred,
        Self::KeyParametersMismatch,
        Self::UnsupportedKeyParameters,
        Self::InvalidPublicKey,
        Self::InvalidSignature,
    ];

    /// The stable, machine-readable code.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::HeaderTooLong => "header_too_long",
            Self::InvalidBase64 => "invalid_base64url",
            Self::MalformedMessage => "malformed_message",
            Self::TooManyBindings => "too_many_bindings",
            Self::MissingProvided => "missing_provided",
            Self::DuplicateProvided => "duplicate_provided",
            Self::DuplicateReferred => "duplicate_referred",
            Self::KeyParametersMismatch => "key_parameters_mismatch",
            Self::UnsupportedKeyParameters => "unsupported_key_parameters",
            Self::InvalidPublicKey => "invalid_public_key",
            Self::InvalidSignature => "invalid_signature",
        }
    }
}

/// Decode a header value into `buf` and parse the message borrowing from it.
pub fn decode_header<'b, const N: usize>(
    value: &[u8],
    buf: &'b mut SmallVec<[u8; N]>,
) -> Result<TokenBindingMessage<'b>, HeaderError> {
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(HeaderError::TooLong(value.len()));
    }
    base64url::decode_into(value, buf).map_err(|_| HeaderError::Base64)?;
    TokenBindingMessage::decode(buf).map_err(HeaderError::Malformed)
}

/// Decode, parse and validate a `Sec-Token-Binding` value for a connection whose EKM is
/// `ekm` and which negotiated `negotiated` (default [`ValidationOptions`]).
///
/// ```
/// use tokbind_proto::{verify_header, Ekm, KeyParameters, MessageBuilder, SigningKey, TokenBindingSigner};
///
/// let key = SigningKey::generate(KeyParameters::ECDSAP256)?;
/// let ekm = Ekm::new([42; 32]); // in real use: exported from the TLS connection
/// let header = MessageBuilder::new(&ekm).provided(&key)?.to_header_value()?;
///
/// let verified = verify_header(header.as_bytes(), &ekm, KeyParameters::ECDSAP256)?;
/// assert_eq!(&verified.provided, key.token_binding_id());
///
/// // The same header on another connection (another EKM) is refused.
/// let other = Ekm::new([7; 32]);
/// let err = verify_header(header.as_bytes(), &other, KeyParameters::ECDSAP256).unwrap_err();
/// assert_eq!(err.reason(), "invalid_signature");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_header(
    value: &[u8],
    ekm: &Ekm,
    negotiated: KeyParameters,
) -> Result<VerifiedBindings, HeaderError> {
    verify_header_with(value, ekm, negotiated, &ValidationOptions::default())
}

/// [`verify_header`] with explicit validation options.
pub fn verify_header_with(
    value: &[u8],
    ekm: &Ekm,
    negotiated: KeyParameters,
    options: &ValidationOptions,
) -> Result<VerifiedBindings, HeaderError> {
    let mut buf = SmallVec::<[u8; INLINE_MESSAGE_LEN]>::new();
    let message = decode_header(value, &mut buf)?;
    validate_with(&message, ekm, negotiated, options).map_err(HeaderError::Invalid)
}
