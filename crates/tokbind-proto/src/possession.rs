//! "This request proved possession of key K": what cookie and token binding layers consume.
//!
//! Token Binding produces it today (the provided Token Binding ID, proven on this request's
//! connection). Other mechanisms that prove possession of a client key — DPoP, Device
//! Bound Session Credentials, mTLS — can produce the same value, so the layers that bind
//! cookies and tokens to a key do not depend on how the proof was made.

use std::sync::Arc;

use crate::id::{Tbh, TokenBindingId};

/// How possession of the key was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// A verified `provided_token_binding` (RFC 8471/8473). The key ID is the TBID.
    TokenBinding,
}

impl Mechanism {
    /// A short stable label, used for domain separation when binding values to keys.
    pub fn label(self) -> &'static str {
        match self {
            Self::TokenBinding => "token-binding",
        }
    }
}

/// When possession was proven, relative to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Freshness {
    /// Proven for this very request (Token Binding: a signature over this connection's
    /// EKM, checked for this request).
    ThisRequest,
}

/// A key the current request proved possession of. Inserted into request extensions by
/// the layer that checked the proof.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProvenKey {
    mechanism: Mechanism,
    freshness: Freshness,
    key_id: Arc<[u8]>,
}

impl ProvenKey {
    /// The key of a verified provided Token Binding. Shares the ID's bytes (no copy: this
    /// runs on every request).
    pub fn token_binding(provided: &TokenBindingId) -> Self {
        Self {
            mechanism: Mechanism::TokenBinding,
            freshness: Freshness::ThisRequest,
            key_id: provided.shared_bytes(),
        }
    }

    /// How possession was proven.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// When possession was proven.
    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// The canonical bytes identifying the key for its mechanism (for Token Binding: the
    /// raw TBID).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// SHA-256 of the key ID: for Token Binding, exactly `tbh` (the `cnf.tbh` value).
    pub fn thumbprint(&self) -> Tbh {
        Tbh::of(&self.key_id)
    }
}
