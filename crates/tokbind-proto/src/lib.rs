//! Sans-IO core of Token Binding: everything about the protocol that does not touch a
//! socket.
//!
//! | RFC | what | where |
//! |---|---|---|
//! | RFC 8471 §3 | `TokenBindingMessage`, `TokenBinding`, `TokenBindingID`, key parameters, types | [`message`], [`id`], [`registry`] |
//! | RFC 8471 §3.3 | signed input `type ‖ key_parameters ‖ EKM`, signatures | [`ekm`], [`crypto`] |
//! | RFC 8471 §4.2, RFC 8473 §2 | server-side validation | [`validate`](mod@validate), [`header`] |
//! | RFC 8471 §4.1, RFC 8473 §5.3 | client-side message building | [`builder`] |
//! | RFC 8472 | `token_binding` TLS extension and negotiation | [`negotiation`] |
//! | RFC 8471 §4.2 | per-connection state: EKM, negotiated parameters, verdict cache | [`connection`] |
//! | OAuth TB §3.4, OIDC TBA §2 | `tbh` confirmation hash | [`Tbh`] |
//! | RFC 8471 §5 (bound tokens) | "this request proved possession of key K" | [`possession`] |
//!
//! # Example: a client signs, a server verifies
//!
//! ```
//! use tokbind_proto::{
//!     verify_header, Ekm, KeyParameters, MessageBuilder, SigningKey, TokenBindingSigner,
//! };
//!
//! // Both ends export the same 32 bytes from their TLS connection (label
//! // "EXPORTER-Token-Binding", no context); here we make some up.
//! let ekm = Ekm::new([0x5a; 32]);
//!
//! // Client: one key per server (per eTLD+1), a provided binding over the EKM.
//! let key = SigningKey::generate(KeyParameters::ECDSAP256)?;
//! let header = MessageBuilder::new(&ekm).provided(&key)?.to_header_value()?;
//!
//! // Server: the negotiated key parameters come from the TLS handshake.
//! let verified = verify_header(header.as_bytes(), &ekm, KeyParameters::ECDSAP256)?;
//! assert_eq!(verified.provided, *key.token_binding_id());
//! println!("bound to tbh {}", verified.provided.tbh());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Decoding without verifying
//!
//! ```
//! use tokbind_proto::{base64url, TokenBindingMessage, TokenBindingType};
//!
//! // RFC 8473 §2's example header.
//! let header = "AIkAAgBBQFzK4_bhAqLDwRQxqJWte33d7hZ0hZWHwk-miKPg4E9fcgs7gBPoz-9RfuDfN9WCw6keHEw1ZPQMGs9CxpuHm-YAQM_jaOwwej6a-cQBGU7CJpUHOvXG4VvjNq8jDsvta9Y8_bPEPj25GgmKiPjhJEtZA6mJ_9SNifLvVBTi7fR9wSAAAA";
//! let bytes = base64url::decode(header.as_bytes())?;
//! let message = TokenBindingMessage::decode(&bytes)?;
//! let binding = &message.bindings()[0];
//! assert_eq!(binding.binding_type(), TokenBindingType::PROVIDED);
//! assert_eq!(binding.id().tbh().to_string(), "3Wj4etWUwSPjHC1vDZYlLgAnS_7PEJFceNMBS9vJ3YI");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod base64url;
pub mod builder;
pub mod codec;
pub mod connection;
pub mod crypto;
pub mod ekm;
pub mod header;
pub mod id;
pub mod message;
pub mod negotiation;
pub mod possession;
pub mod registry;
pub mod validate;

pub use builder::MessageBuilder;
pub use codec::DecodeError;
pub use connection::{ConnectionInfo, NotNegotiated, TlsVersion};
pub use crypto::{InvalidKey, PreparedKey, SignError, SigningKey, TokenBindingSigner};
pub use ekm::{EKM_LEN, EXPORTER_LABEL, Ekm};
pub use header::{HeaderError, HeaderErrorKind, verify_header, verify_header_with};
pub use id::{PublicKey, Tbh, TokenBindingId, TokenBindingIdRef};
pub use message::{Extensions, TokenBinding, TokenBindingMessage};
pub use negotiation::{
    ClientPolicy, HandshakeFacts, Negotiated, NegotiationError, ProtocolVersion, ServerPolicy,
    TOKEN_BINDING_EXTENSION_TYPE, TokenBindingParameters,
};
pub use possession::{Freshness, FreshnessPolicy, Mechanism, ProvenKey, ProvenKeys};
pub use registry::{KeyParameters, TokenBindingType};
pub use validate::{ValidationError, ValidationOptions, VerifiedBindings, validate, validate_with};
