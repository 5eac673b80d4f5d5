//! The `cnf` (confirmation) claim with the `tbh` member (OAuth 2.0 Token Binding §3.4,
//! OpenID Connect Token Bound Authentication §2), and the check of a token's confirmation
//! against the key the request proved.

use serde::{Deserialize, Serialize};
use tokbind_proto::{Mechanism, ProvenKey, Tbh, TokenBindingId};

/// A JWT `cnf` claim (RFC 7800). `tbh` is `base64url(SHA-256(TBID))`; other members (such
/// as `jkt`) are kept so that a token bound by a method this crate does not check is never
/// mistaken for an unbound one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confirmation {
    /// The Token Binding hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tbh: Option<String>,
    /// Any other confirmation members, unchecked here.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Confirmation {
    /// `{"tbh": …}` for a Token Binding ID.
    pub fn token_binding(id: &TokenBindingId) -> Self {
        Self::from_tbh(id.tbh())
    }

    /// `{"tbh": …}` for a stored hash.
    pub fn from_tbh(tbh: Tbh) -> Self {
        Self {
            tbh: Some(tbh.to_string()),
            other: serde_json::Map::new(),
        }
    }

    /// Whether the confirmation binds the token to anything.
    pub fn is_bound(&self) -> bool {
        self.tbh.is_some() || !self.other.is_empty()
    }
}

/// How a Token Consumer (resource server, relying party) treats confirmations.
///
/// The default, [`Optional`](Self::Optional), cannot break an IdP that knows nothing of
/// Token Binding: unbound tokens keep working, bound ones are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CnfPolicy {
    /// Ignore `cnf` entirely: bound tokens become bearer tokens. Only for diagnosis.
    Disabled,
    /// Check bound tokens; accept unbound ones from anyone.
    #[default]
    Optional,
    /// Check bound tokens; accept an unbound token only from a request that proved no key.
    /// Once a client has performed Token Binding a missing binding is fatal (OAuth TB §7.1,
    /// OIDC TBA §6).
    Required,
    /// Accept only bound tokens, presented with the matching proof.
    Enforced,
}

/// Why a token's confirmation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CnfError {
    /// The token is bound to a different key than the request proved (stolen, or the
    /// client's key was reset).
    #[error("the token is bound to another Token Binding ID")]
    Mismatch,
    /// The token is bound but the request proved no key.
    #[error("the token is bound but the request carries no verified Token Binding")]
    NoProof,
    /// The token is not bound and the policy requires a binding.
    #[error("the token is not bound to a Token Binding ID")]
    Unbound,
    /// The token is bound by a confirmation method this consumer cannot check.
    #[error("the token is bound by a confirmation method this server cannot check")]
    UnsupportedMethod,
    /// The `tbh` is not 43 characters of base64url.
    #[error("the token's cnf.tbh is malformed")]
    Malformed,
}

impl CnfError {
    /// A stable code.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Mismatch => "binding_mismatch",
            Self::NoProof => "no_proof",
            Self::Unbound => "unbound_token",
            Self::UnsupportedMethod => "unsupported_confirmation",
            Self::Malformed => "malformed_confirmation",
        }
    }
}

/// Check a token's confirmation against the key the request proved (RFC 8471 §5, OAuth TB
/// §3.3, OIDC TBA §2): a bound token needs the matching proof; an unbound one is judged
/// by `policy`.
pub fn check(
    cnf: Option<&Confirmation>,
    proven: Option<&ProvenKey>,
    policy: CnfPolicy,
) -> Result<(), CnfError> {
    if policy == CnfPolicy::Disabled {
        return Ok(());
    }
    match cnf.filter(|c| c.is_bound()) {
        Some(c) => {
            let tbh = c.tbh.as_deref().ok_or(CnfError::UnsupportedMethod)?;
            let tbh = Tbh::from_base64url(tbh).map_err(|_| CnfError::Malformed)?;
            let proven = proven.ok_or(CnfError::NoProof)?;
            if proven.mechanism() == Mechanism::TokenBinding && proven.thumbprint() == tbh {
                Ok(())
            } else {
                Err(CnfError::Mismatch)
            }
        }
        None => match policy {
            CnfPolicy::Enforced => Err(CnfError::Unbound),
            CnfPolicy::Required if proven.is_some() => Err(CnfError::Unbound),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokbind_proto::{KeyParameters, SigningKey, TokenBindingSigner};

    fn id() -> TokenBindingId {
        SigningKey::generate(KeyParameters::EcdsaP256)
            .unwrap()
            .token_binding_id()
            .clone()
    }

    #[test]
    fn policy_matrix() {
        use CnfPolicy::*;
        let (mine, other) = (id(), id());
        let proven = ProvenKey::token_binding(&mine);
        let bound = Confirmation::token_binding(&mine);
        let theirs = Confirmation::token_binding(&other);
        for policy in [Optional, Required, Enforced] {
            assert_eq!(check(Some(&bound), Some(&proven), policy), Ok(()));
            assert_eq!(
                check(Some(&theirs), Some(&proven), policy),
                Err(CnfError::Mismatch)
            );
            assert_eq!(check(Some(&bound), None, policy), Err(CnfError::NoProof));
        }
        assert_eq!(check(None, None, Optional), Ok(()));
        assert_eq!(check(None, Some(&proven), Optional), Ok(()));
        assert_eq!(check(None, None, Required), Ok(()));
        assert_eq!(check(None, Some(&proven), Required), Err(CnfError::Unbound));
        assert_eq!(check(None, None, Enforced), Err(CnfError::Unbound));
        assert_eq!(check(Some(&theirs), Some(&proven), Disabled), Ok(()));
        let empty = Confirmation::default();
        assert_eq!(
            check(Some(&empty), Some(&proven), Required),
            Err(CnfError::Unbound)
        );
    }

    #[test]
    fn unknown_methods_are_never_bearer() {
        let jkt: Confirmation =
            serde_json::from_str(r#"{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#)
                .unwrap();
        let proven = ProvenKey::token_binding(&id());
        assert_eq!(
            check(Some(&jkt), Some(&proven), CnfPolicy::Optional),
            Err(CnfError::UnsupportedMethod)
        );
        let bad: Confirmation = serde_json::from_str(r#"{"tbh":"short"}"#).unwrap();
        assert_eq!(
            check(Some(&bad), Some(&proven), CnfPolicy::Optional),
            Err(CnfError::Malformed)
        );
    }

    #[test]
    fn serializes_as_the_specs_print_it() {
        let c = Confirmation {
            tbh: Some("7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws".into()),
            other: Default::default(),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"tbh":"7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws"}"#
        );
    }
}
