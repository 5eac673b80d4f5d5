//! Why a request was refused, as a typed value and as an HTTP response.

use std::borrow::Cow;

use http::StatusCode;
use tokbind_proto::{HeaderError, HeaderErrorKind};

/// What was wrong, as a stable code. Match on it; do not parse the messages.
///
/// What the header value itself got wrong is the protocol crate's
/// [`HeaderErrorKind`], wrapped rather than relabelled: a reason added there has its own
/// code here too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// More than one `Sec-Token-Binding` header (RFC 8473 §2 mandates 400).
    DuplicateHeader,
    /// The header value does not decode, parse or verify (RFC 8471 §3, §4.2; RFC 8473 §2):
    /// too long, not base64url, malformed, a missing or duplicate binding, key parameters
    /// other than the negotiated ones, an unusable key, or a bad signature, which is what a
    /// header replayed from another connection or signed by another key looks like.
    Header(HeaderErrorKind),
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
    /// Every kind, for tables, metrics and tests.
    pub fn all() -> impl Iterator<Item = RejectionKind> {
        [
            Self::DuplicateHeader,
            Self::NotNegotiated,
            Self::MissingHeader,
            Self::TokenBindingRequired,
            Self::MalformedForwardedHeader,
            Self::MissingConnectionInfo,
        ]
        .into_iter()
        .chain(HeaderErrorKind::ALL.iter().copied().map(Self::Header))
    }

    /// The stable machine-readable code (the `reason` member of the problem response).
    pub fn reason(self) -> &'static str {
        match self {
            Self::DuplicateHeader => "duplicate_header",
            Self::Header(kind) => kind.reason(),
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
        Self::new(RejectionKind::Header(e.kind()), e.to_string())
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
}

impl std::fmt::Display for TokenBindingRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.reason())
    }
}

impl std::error::Error for TokenBindingRejection {}
