//! [`TokenBindingLayer`]: configuration.

use std::sync::Arc;

use tokbind_proto::ValidationOptions;
use tower_layer::Layer;

use crate::response::{RejectionResponse, Responder};
use crate::service::VerifyTokenBinding;
use crate::{Config, MissingHeader, Unnegotiated};

/// Verifies `Sec-Token-Binding` on every request against the connection's EKM and
/// negotiated key parameters (RFC 8471 §4.2, RFC 8473 §2), and puts the verified IDs in
/// the request's extensions (read them with the [`extract`](crate::extract) types), with a
/// [`ProvenKey`](tokbind_proto::ProvenKey) for the provided binding added to the request's
/// [`ProvenKeys`](tokbind_proto::ProvenKeys) — what
/// [`BoundCookieLayer`](crate::cookie::BoundCookieLayer) and token checks consume.
///
/// Needs an `Arc<`[`ConnectionInfo`](tokbind_proto::ConnectionInfo)`>` in each request's
/// extensions, which `tokbind_tls::serve` provides. See the [crate docs](crate) for an
/// example.
///
/// Defaults are the safe ones: RFC header name only, header required once negotiated,
/// clients without Token Binding let through with no ID, at most 4 bindings per message.
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenBindingLayer {
    pub(crate) config: Arc<Config>,
}

impl Default for TokenBindingLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenBindingLayer {
    /// The layer with its defaults.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                legacy_header_name: false,
                missing_header: MissingHeader::Reject,
                unnegotiated: Unnegotiated::Allow,
                options: ValidationOptions::default(),
                responder: Responder::default(),
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Also accept the pre-RFC header name `Token-Binding` (draft-ietf-tokbind-https ≤ -02;
    /// default off). A request carrying both names counts as carrying two headers and is
    /// rejected.
    pub fn legacy_header_name(self, accept: bool) -> Self {
        self.with(|c| c.legacy_header_name = accept)
    }

    /// What to do when a connection negotiated Token Binding but a request has no header.
    pub fn missing_header(self, policy: MissingHeader) -> Self {
        self.with(|c| c.missing_header = policy)
    }

    /// What to do with requests on connections that did not negotiate Token Binding.
    pub fn unnegotiated(self, policy: Unnegotiated) -> Self {
        self.with(|c| c.unnegotiated = policy)
    }

    /// Most bindings one message may carry (default 4; each costs a signature check).
    pub fn max_bindings(self, max: usize) -> Self {
        self.with(|c| c.options = c.options.with_max_bindings(max))
    }

    /// How refused requests are answered (default [`ProblemJson`](crate::ProblemJson)). The
    /// status and reason are the rejection's to choose; the hook chooses the form. The
    /// [`TokenBindingRejection`](crate::TokenBindingRejection) is put in the response's
    /// extensions whatever the hook returns.
    pub fn rejection_response(self, hook: impl RejectionResponse) -> Self {
        let hook = Responder(std::sync::Arc::new(hook));
        self.with(|c| c.responder = hook)
    }
}

impl<S> Layer<S> for TokenBindingLayer {
    type Service = VerifyTokenBinding<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyTokenBinding {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
