//! Metadata and introspection members defined by OAuth 2.0 Token Binding (-08 §3.5, §4)
//! and OpenID Connect Token Bound Authentication (draft 04 §5).

use serde::{Deserialize, Serialize};

use crate::cnf::Confirmation;

/// Authorization server metadata (RFC 8414) members (OAuth TB §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuthorizationServerTokenBinding {
    /// The AS binds access tokens (default false).
    #[serde(default)]
    pub as_access_token_token_binding_supported: bool,
    /// The AS binds refresh tokens (default false).
    #[serde(default)]
    pub as_refresh_token_token_binding_supported: bool,
}

/// Client registration metadata (RFC 7591) members (OAuth TB §4.2). An AS MUST NOT bind
/// refresh tokens of clients that do not declare support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClientTokenBinding {
    /// The client can use Token Binding-bound access tokens (default false).
    #[serde(default)]
    pub client_access_token_token_binding_supported: bool,
    /// The client can use Token Binding-bound refresh tokens (default false).
    #[serde(default)]
    pub client_refresh_token_token_binding_supported: bool,
}

/// OpenID Provider discovery member (OIDC TBA §5.1): the `cnf` members the OP puts in ID
/// tokens, e.g. `["tbh"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderIdTokenBinding {
    /// Supported `cnf` members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_token_binding_cnf_values_supported: Vec<String>,
}

/// Relying party registration member (OIDC TBA §5.2): present (e.g. `"tbh"`) when the RP
/// supports Token Binding of ID tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RelyingPartyIdTokenBinding {
    /// The `cnf` member the RP expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_token_binding_cnf: Option<String>,
}

/// A token introspection response (RFC 7662) with the `cnf` member (OAuth TB §3.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The binding: the resource server checks `tbh` against its provided TBID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl Introspection {
    /// The response for an inactive (unknown, expired, revoked) token.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// The response for a token with these claims.
    pub fn active(claims: &crate::jwt::Claims) -> Self {
        Self {
            active: true,
            sub: Some(claims.sub.clone()),
            aud: Some(claims.aud.clone()),
            iss: Some(claims.iss.clone()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            cnf: claims.cnf.clone(),
        }
    }
}
