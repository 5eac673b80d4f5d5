//! Why a request was refused, as a typed value and as an HTTP response.

use std::borrow::Cow;

use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use tokbind_proto::{HeaderError, ValidationError};

/// What was wrong, as a stable code. Match on it; do not parse the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// More than one `Sec-Token-Binding` header (RFC 8473 §2 mandates 400).
    DuplicateHeader,
    /// The header value is longer than any message could encode to.
    HeaderTooLong,
    /// The header value is not unpadded base64url.
    InvalidBase64,
    /// The decoded bytes are not a well-formed TokenBindingMessage.
    MalformedMessage,
    /// No provided binding in the message.
    MissingProvided,
    /// Two or more provided bindings.
    DuplicateProvided,
    /// Two or more referred bindings.
    DuplicateReferred,
    /// More bindings than the layer accepts.
    TooManyBindings,
    /// The provided binding does not use the negotiated key parameters.
    KeyParametersMismatch,
    /// The negotiated key parameters cannot be verified.
    UnsupportedKeyParameters,
    /// A binding's public key is unusable.
    InvalidPublicKey,
    /// A signature does not verify over this connection's EKM — a forged header, or one
    /// replayed from another connection.
    InvalidSignature,
    /// A Token Binding header on a connection that did not negotiate Token Binding
    /// (RFC 8471 §4.2: the server MUST reject it).
    NotNegotiated,
    /// The connection negotiated Token Binding but the request has no header (RFC 8473
    /// §2: the client MUST send it), and the layer requires it.
    MissingHeader,
    /// The connection did not negotiate Token Binding and the layer requires it.
    TokenBindingRequired,
    /// A trusted proxy forwarded Token Binding or `Client-Cert` headers that do not decode
    /// (draft-ietf-tokbind-ttrp §2.1: base64url IDs, `hextype.id` lists, one of each;
    /// RFC 9440: one sf-binary DER certificate).
    MalformedForwardedHeader,
    /// The request carries no connection information: the server is not run with a
    /// Token Binding TLS listener (a deployment error, answered with 500).
    MissingConnectionInfo,
}

impl RejectionKind {
    /// The stable machine-readable code (the `reason` member of the problem response).
    pub fn reason(self) -> &'static str {
        match self {
            Self::DuplicateHeader => "duplicate_header",
            Self::HeaderTooLong => "header_too_long",
            Self::InvalidBase64 => "invalid_base64url",
            Self::MalformedMessage => "malformed_message",
            Self::MissingProvided => "missing_provided",
            Self::DuplicateProvided => "duplicate_provided",
            Self::DuplicateReferred => "duplicate_referred",
            Self::TooManyBindings => "too_many_bindings",
            Self::KeyParametersMismatch => "key_parameters_mismatch",
            Self::UnsupportedKeyParameters => "unsupported_key_parameters",
            Self::InvalidPublicKey => "invalid_public_key",
            Self::InvalidSignature => "invalid_signature",
            Self::NotNegotiated => "not_negotiated",
            Self::MissingHeader => "missing_header",
            Self::TokenBindingRequired => "token_binding_required",
            Self::MalformedForwardedHeader => "malformed_forwarded_header",
            Self::MissingConnectionInfo => "missing_connection_info",
        }
    }

    /// The HTTP status: 500 for the deployment error, 400 for everything the client sent.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingConnectionInfo => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn from_header_error(e: &HeaderError) -> Self {
        match e {
            HeaderError::TooLong(_) => Self::HeaderTooLong,
            HeaderError::Base64 => Self::InvalidBase64,
            HeaderError::Malformed(_) => Self::MalformedMessage,
            HeaderError::Invalid(v) => match v {
                ValidationError::TooManyBindings { .. } => Self::TooManyBindings,
                ValidationError::MissingProvided => Self::MissingProvided,
                ValidationError::DuplicateProvided => Self::DuplicateProvided,
                ValidationError::DuplicateReferred => Self::DuplicateReferred,
                ValidationError::KeyParametersMismatch { .. } => Self::KeyParametersMismatch,
                ValidationError::UnsupportedKeyParameters(_) => Self::UnsupportedKeyParameters,
                ValidationError::InvalidPublicKey(_) => Self::InvalidPublicKey,
                _ => Self::InvalidSignature,
            },
            _ => Self::MalformedMessage,
        }
    }
}

/// A request refused by [`TokenBindingLayer`](crate::TokenBindingLayer).
///
/// As a response it is `application/problem+json` (RFC 9457) with the status of its
/// [`kind`](Self::kind), a `reason` member holding the stable code and a `detail` saying
/// what to fix. The rejection itself is also put in the response's extensions, so outer
/// layers and tests can see why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBindingRejection {
    kind: RejectionKind,
    detail: Cow<'static, str>,
}

impl TokenBindingRejection {
    pub(crate) fn new(kind: RejectionKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn from_header_error(e: &HeaderError) -> Self {
        Self::new(RejectionKind::from_header_error(e), e.to_string())
    }

    /// What was wrong.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The stable code, e.g. `invalid_signature`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// A human-readable explanation.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The problem document.
    pub fn body(&self) -> String {
        crate::problem::problem_body(self.status(), self.reason(), &self.detail)
    }

    /// The response, with the given body type (the layer's and `IntoResponse`'s share).
    pub(crate) fn to_response<B: From<Bytes>>(&self) -> http::Response<B> {
        let mut res: http::Response<B> =
            crate::problem::problem_response(self.status(), self.reason(), &self.detail);
        res.extensions_mut().insert(self.clone());
        res
    }
}

impl std::fmt::Display for TokenBindingRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.reason())
    }
}

impl std::error::Error for TokenBindingRejection {}

impl IntoResponse for TokenBindingRejection {
    fn into_response(self) -> Response {
        self.to_response()
    }
}
