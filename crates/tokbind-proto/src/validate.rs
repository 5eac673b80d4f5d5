//! Server-side validation of a Token Binding message (RFC 8471 §4.2, narrowed for HTTP by
//! RFC 8473 §2).
//!
//! Rules, in the order they are checked (all structural checks come before any signature
//! is verified, so malformed input never costs a public-key operation):
//!
//! 1. At most [`ValidationOptions::max_bindings`] bindings (a bound on the signature checks
//!    one header can cost; not in the RFCs).
//! 2. Exactly one `provided_token_binding`, at most one `referred_token_binding`
//!    (RFC 8473 §2).
//! 3. The provided binding's key parameters equal the negotiated ones (RFC 8471 §4.2,
//!    RFC 8472 §4). A referred binding may use other key parameters: they were
//!    negotiated with another server (RFC 8473 §5.4).
//! 4. Every binding whose key parameters are known has a valid signature over
//!    `type ‖ key_parameters ‖ EKM`; one invalid signature rejects the whole message
//!    ("if any contained signature is invalid", RFC 8471 §4.2).
//!
//! Two cases the RFCs leave open are decided as README "Decisions" records:
//!
//! * **Unknown Token Binding types** (RFC 8471 §3.1, against §4.2) never cause a rejection by themselves
//!   (RFC 8471 §3.1 says to ignore them). When their key parameters are known their
//!   signatures are still verified — so a bad one rejects the message per §4.2 — and they
//!   are reported in [`VerifiedBindings::others`] (a TLS-terminating proxy forwards them).
//! * **A referred binding (or other binding) with unknown key parameters** (RFC 8473 §5.4) cannot be
//!   verified. The provided binding stays valid, the unverifiable binding is *not* trusted:
//!   it is reported in [`VerifiedBindings::unverified`] only, and
//!   [`VerifiedBindings::referred`] is `None`, so no token is ever bound to it
//!   (RFC 8473 §5.4: a Token Provider that cannot handle the key parameters MUST NOT issue
//!   a bound token).

use crate::crypto::{self, SignatureFailure};
use crate::ekm::Ekm;
use crate::id::TokenBindingId;
use crate::message::TokenBindingMessage;
use crate::registry::{KeyParameters, TokenBindingType};

/// Knobs for [`validate_with`]. The defaults are what [`validate()`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationOptions {
    /// Most bindings one message may carry. Each costs a signature check, so this bounds
    /// the work an attacker can cause with one header. Default 4: provided, referred and
    /// two others.
    pub max_bindings: usize,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self { max_bindings: 4 }
    }
}

impl ValidationOptions {
    /// Set [`ValidationOptions::max_bindings`].
    pub fn with_max_bindings(mut self, max: usize) -> Self {
        self.max_bindings = max;
        self
    }
}

/// The outcome of a successful validation: the Token Binding IDs established for this
/// request (RFC 8471 §4.2, "the Token Binding ID(s) ... may be exposed to the application").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBindings {
    /// The verified `provided_token_binding` ID.
    pub provided: TokenBindingId,
    /// The verified `referred_token_binding` ID, if the message had one the server could
    /// verify.
    pub referred: Option<TokenBindingId>,
    /// Verified bindings of other (unregistered) types, in wire order.
    pub others: Vec<(TokenBindingType, TokenBindingId)>,
    /// Bindings that were skipped because their key parameters are unknown, in wire order.
    /// They were not verified and must not be trusted.
    pub unverified: Vec<(TokenBindingType, KeyParameters)>,
}

/// Why a message was rejected. [`ValidationError::reason`] gives a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// More bindings than [`ValidationOptions::max_bindings`].
    #[error("the message carries {count} Token Bindings; at most {max} are accepted")]
    TooManyBindings {
        /// Bindings in the message.
        count: usize,
        /// The configured limit.
        max: usize,
    },
    /// No provided binding (RFC 8473 §2: exactly one is required).
    #[error("the message has no provided Token Binding (exactly one is required)")]
    MissingProvided,
    /// More than one provided binding.
    #[error("the message has more than one provided Token Binding")]
    DuplicateProvided,
    /// More than one referred binding.
    #[error("the message has more than one referred Token Binding")]
    DuplicateReferred,
    /// The provided binding does not use the negotiated key parameters.
    #[error("the provided Token Binding uses {provided}, but {negotiated} was negotiated")]
    KeyParametersMismatch {
        /// What the TLS handshake negotiated.
        negotiated: KeyParameters,
        /// What the provided binding used.
        provided: KeyParameters,
    },
    /// The negotiated key parameters are not ones this implementation can verify.
    #[error("cannot verify key parameters {0}")]
    UnsupportedKeyParameters(KeyParameters),
    /// A binding's key is well-formed but unusable (e.g. a P-256 point not on the curve).
    #[error("the {0} Token Binding's public key is invalid")]
    InvalidPublicKey(TokenBindingType),
    /// A binding's signature has the wrong length or does not verify over
    /// `type ‖ key_parameters ‖ EKM` of this connection — this is also what a message
    /// replayed from another connection looks like.
    #[error("the {binding_type} Token Binding's signature is invalid: {detail}")]
    InvalidSignature {
        /// Which binding.
        binding_type: TokenBindingType,
        /// What was wrong.
        detail: &'static str,
    },
}

impl ValidationError {
    /// A stable, machine-readable code (used in HTTP problem responses and metrics).
    pub fn reason(&self) -> &'static str {
        crate::HeaderError::Invalid(*self).reason()
    }
}

/// Validate `message` against the connection's `ekm` and the `negotiated` key parameters,
/// with default [`ValidationOptions`].
pub fn validate(
    message: &TokenBindingMessage<'_>,
    ekm: &Ekm,
    negotiated: KeyParameters,
) -> Result<VerifiedBindings, ValidationError> {
    validate_with(message, ekm, negotiated, &ValidationOptions::default())
}

/// [`validate()`] with explicit options.
pub fn validate_with(
    message: &TokenBindingMessage<'_>,
    ekm: &Ekm,
    negotiated: KeyParameters,
    options: &ValidationOptions,
) -> Result<VerifiedBindings, ValidationError> {
    let bindings = message.bindings();
    if bindings.len() > options.max_bindings {
        return Err(ValidationError::TooManyBindings {
            count: bindings.len(),
            max: options.max_bindings,
        });
    }

    // Structure first: cardinality and the provided key parameters.
    let mut provided = None;
    let mut referred = None;
    for b in bindings {
        let slot = match b.binding_type() {
            TokenBindingType::PROVIDED => &mut provided,
            TokenBindingType::REFERRED => &mut referred,
            _ => continue,
        };
        if slot.replace(b).is_some() {
            return Err(match b.binding_type() {
                TokenBindingType::PROVIDED => ValidationError::DuplicateProvided,
                _ => ValidationError::DuplicateReferred,
            });
        }
    }
    let provided = provided.ok_or(ValidationError::MissingProvided)?;
    let provided_kp = provided.id().key_parameters();
    if provided_kp != negotiated {
        return Err(ValidationError::KeyParametersMismatch {
            negotiated,
            provided: provided_kp,
        });
    }
    if !negotiated.is_known() {
        return Err(ValidationError::UnsupportedKeyParameters(negotiated));
    }

    // Then signatures: the provided binding first, then the rest in wire order.
    check_signature(provided, ekm)?;
    let mut out = VerifiedBindings {
        provided: provided.id().into_owned(),
        referred: None,
        others: Vec::new(),
        unverified: Vec::new(),
    };
    for b in bindings {
        if b.binding_type() == TokenBindingType::PROVIDED {
            continue;
        }
        if !b.id().key_parameters().is_known() {
            out.unverified
                .push((b.binding_type(), b.id().key_parameters()));
            continue;
        }
        check_signature(b, ekm)?;
        match b.binding_type() {
            TokenBindingType::REFERRED => out.referred = Some(b.id().into_owned()),
            other => out.others.push((other, b.id().into_owned())),
        }
    }
    Ok(out)
}

fn check_signature(b: &crate::message::TokenBinding<'_>, ekm: &Ekm) -> Result<(), ValidationError> {
    let kp = b.id().key_parameters();
    let input = ekm.signed_input(b.binding_type(), kp);
    crypto::verify(kp, b.id().public_key(), &input, b.signature()).map_err(|f| match f {
        SignatureFailure::Length => ValidationError::InvalidSignature {
            binding_type: b.binding_type(),
            detail: "wrong length for its key parameters",
        },
        SignatureFailure::Mismatch => ValidationError::InvalidSignature {
            binding_type: b.binding_type(),
            detail: "does not verify over this connection's EKM",
        },
        SignatureFailure::Key => ValidationError::InvalidPublicKey(b.binding_type()),
        SignatureFailure::Unsupported => ValidationError::UnsupportedKeyParameters(kp),
    })
}
