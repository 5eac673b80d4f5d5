//! Client side: building a signed TokenBindingMessage (RFC 8471 §4.1, RFC 8473 §2–§5).

use crate::base64url;
use crate::codec::DecodeError;
use crate::crypto::{SignError, TokenBindingSigner};
use crate::ekm::Ekm;
use crate::id::TokenBindingIdRef;
use crate::message::{Extensions, TokenBinding, TokenBindingMessage};
use crate::registry::TokenBindingType;

/// Builds a TokenBindingMessage whose bindings are signed over one connection's EKM.
///
/// For HTTP (RFC 8473 §2): one [`provided`](Self::provided) binding with the key used for
/// *this* server, and — only when the previous response asked for it with
/// `Include-Referred-Token-Binding-ID` — one [`referred`](Self::referred) binding with the
/// key used for the server that asked, signed over the **same** EKM (RFC 8473 §5.3).
#[derive(Debug)]
pub struct MessageBuilder<'e> {
    ekm: &'e Ekm,
    bindings: Vec<SignedBinding>,
}

#[derive(Debug)]
struct SignedBinding {
    binding_type: TokenBindingType,
    id: crate::id::TokenBindingId,
    signature: Vec<u8>,
}

impl<'e> MessageBuilder<'e> {
    /// Start a message for the connection whose EKM is `ekm`.
    pub fn new(ekm: &'e Ekm) -> Self {
        Self {
            ekm,
            bindings: Vec::with_capacity(2),
        }
    }

    /// Add a `provided_token_binding` signed by `signer`.
    pub fn provided(self, signer: &dyn TokenBindingSigner) -> Result<Self, SignError> {
        self.binding(TokenBindingType::PROVIDED, signer)
    }

    /// Add a `referred_token_binding` signed by `signer`.
    pub fn referred(self, signer: &dyn TokenBindingSigner) -> Result<Self, SignError> {
        self.binding(TokenBindingType::REFERRED, signer)
    }

    /// Add a binding of any type (RFC 8473 §6: stacks should let applications build
    /// messages with arbitrary types).
    pub fn binding(
        mut self,
        binding_type: TokenBindingType,
        signer: &dyn TokenBindingSigner,
    ) -> Result<Self, SignError> {
        let input = self.ekm.signed_input(binding_type, signer.key_parameters());
        let signature = signer.sign(&input)?;
        self.bindings.push(SignedBinding {
            binding_type,
            id: signer.token_binding_id().clone(),
            signature,
        });
        Ok(self)
    }

    /// The encoded message.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SignError> {
        let bindings = self
            .bindings
            .iter()
            .map(|b| {
                TokenBinding::new(
                    b.binding_type,
                    TokenBindingIdRef::decode(b.id.as_bytes())?,
                    &b.signature,
                    Extensions::EMPTY,
                )
            })
            .collect::<Result<Vec<_>, DecodeError>>()
            .map_err(SignError::Message)?;
        let message = TokenBindingMessage::new(bindings).map_err(SignError::Message)?;
        Ok(message.to_bytes())
    }

    /// The encoded message as a `Sec-Token-Binding` header value.
    pub fn to_header_value(&self) -> Result<String, SignError> {
        self.to_bytes().map(|b| base64url::encode(&b))
    }
}
