//! The `cnf` (confirmation) claim (RFC 7800) and the check of a token's confirmation
//! against the keys the request proved. One check for every key-bound token:
//!
//! | member | bound to | proven by | spec |
//! |---|---|---|---|
//! | `tbh` | `base64url(SHA-256(TBID))` | Token Binding | OAuth 2.0 Token Binding §3.4, OIDC TBA §2 |
//! | `jkt` | RFC 7638 JWK thumbprint | DPoP | RFC 9449 §6 |
//! | `x5t#S256` | `base64url(SHA-256(certificate DER))` | mTLS | RFC 8705 §3.1 |
//!
//! Each is SHA-256 of the key ID a [`ProvenKey`] carries, so the check is the same for all:
//! a proven key of the member's mechanism, proven for this request, with that thumbprint.

use serde::{Deserialize, Serialize};
use tokbind_proto::{Freshness, Mechanism, ProvenKey, Tbh, TokenBindingId};

/// A JWT `cnf` claim (RFC 7800). Members this crate does not check are kept so that a
/// token bound by such a method is never mistaken for an unbound one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confirmation {
    /// The Token Binding hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tbh: Option<String>,
    /// The JWK SHA-256 thumbprint of a DPoP key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// The SHA-256 thumbprint of a TLS client certificate.
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
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
            ..Self::default()
        }
    }

    /// The confirmation that binds a token to `key`: `tbh`, `jkt` or `x5t#S256` by its
    /// mechanism; `None` for a mechanism tokens cannot be bound to (DBSC binds cookies
    /// only).
    pub fn for_key(key: &ProvenKey) -> Option<Self> {
        let thumbprint = Some(key.thumbprint().to_string());
        let mut c = Self::default();
        match key.mechanism() {
            Mechanism::TokenBinding => c.tbh = thumbprint,
            Mechanism::Dpop => c.jkt = thumbprint,
            Mechanism::MtlsCertificate => c.x5t_s256 = thumbprint,
            _ => return None,
        }
        Some(c)
    }

    /// Whether the confirmation binds the token to anything.
    pub fn is_bound(&self) -> bool {
        self.tbh.is_some()
            || self.jkt.is_some()
            || self.x5t_s256.is_some()
            || !self.other.is_empty()
    }

    /// The members this crate checks, with the mechanism that proves each.
    fn checked_members(&self) -> impl Iterator<Item = (&str, Mechanism)> {
        [
            (self.tbh.as_deref(), Mechanism::TokenBinding),
            (self.jkt.as_deref(), Mechanism::Dpop),
            (self.x5t_s256.as_deref(), Mechanism::MtlsCertificate),
        ]
        .into_iter()
        .filter_map(|(value, mechanism)| Some((value?, mechanism)))
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
    #[error("the token is bound to a key this request did not prove possession of")]
    Mismatch,
    /// The token is bound but the request proved no key.
    #[error("the token is bound but the request proved possession of no key")]
    NoProof,
    /// The token is not bound and the policy requires a binding.
    #[error("the token is not bound to a key")]
    Unbound,
    /// The token is bound by a confirmation method this consumer cannot check.
    #[error("the token is bound by a confirmation method this server cannot check")]
    UnsupportedMethod,
    /// A `tbh`, `jkt` or `x5t#S256` is not 43 characters of base64url.
    #[error("the token's cnf is malformed")]
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

/// Check a token's confirmation against the keys the request proved (RFC 8471 §5, OAuth
/// TB §3.3, OIDC TBA §2, RFC 9449 §7, RFC 8705 §3): a bound token needs, for every member
/// it is bound by, a key of that member's mechanism proven *for this request* with that
/// thumbprint; an unbound token is judged by `policy`.
///
/// `proven` is anything that yields the request's proven keys: `Option<&ProvenKey>`,
/// `&ProvenKeys`, a slice.
pub fn check<'a>(
    cnf: Option<&Confirmation>,
    proven: impl IntoIterator<Item = &'a ProvenKey>,
    policy: CnfPolicy,
) -> Result<(), CnfError> {
    if policy == CnfPolicy::Disabled {
        return Ok(());
    }
    // A token is a per-request bearer credential: only proofs made for this request count
    // (a DBSC session's earlier proof never confirms a token).
    let mut proven = proven
        .into_iter()
        .filter(|k| k.freshness() == Freshness::ThisRequest)
        .peekable();
    let any_proven = proven.peek().is_some();
    match cnf.filter(|c| c.is_bound()) {
        Some(c) => {
            let mut members = c.checked_members().peekable();
            if members.peek().is_none() {
                return Err(CnfError::UnsupportedMethod);
            }
            let proven: smallvec::SmallVec<[&ProvenKey; 2]> = proven.collect();
            for (value, mechanism) in members {
                let expected = Tbh::from_base64url(value).map_err(|_| CnfError::Malformed)?;
                if !any_proven {
                    return Err(CnfError::NoProof);
                }
                let matched = proven
                    .iter()
                    .any(|k| k.mechanism() == mechanism && k.thumbprint() == expected);
                if !matched {
                    return Err(CnfError::Mismatch);
                }
            }
            Ok(())
        }
        None => match policy {
            CnfPolicy::Enforced => Err(CnfError::Unbound),
            CnfPolicy::Required if any_proven => Err(CnfError::Unbound),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokbind_proto::{KeyParameters, SigningKey, TokenBindingSigner};

    fn id() -> TokenBindingId {
        SigningKey::generate(KeyParameters::ECDSAP256)
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

    /// The RFC 9449 §6.1 example access token's confirmation, and its key (RFC 7638
    /// canonical form), as a DPoP layer would prove it.
    const DPOP_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const DPOP_JWK: &str = r#"{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#;

    fn dpop_key() -> ProvenKey {
        ProvenKey::new(
            Mechanism::Dpop,
            Freshness::ThisRequest,
            DPOP_JWK.as_bytes(),
            None,
        )
    }

    #[test]
    fn jkt_is_checked_against_dpop_keys_only() {
        let cnf: Confirmation =
            serde_json::from_str(&format!(r#"{{"jkt":"{DPOP_JKT}"}}"#)).unwrap();
        assert_eq!(Confirmation::for_key(&dpop_key()), Some(cnf.clone()));
        let dpop = dpop_key();
        let tb = ProvenKey::token_binding(&id());
        assert_eq!(check(Some(&cnf), Some(&dpop), CnfPolicy::Required), Ok(()));
        // With both proofs on one request, the DPoP one confirms it.
        assert_eq!(check(Some(&cnf), [&tb, &dpop], CnfPolicy::Required), Ok(()));
        // A Token Binding key never confirms a jkt, even one with the same bytes.
        assert_eq!(
            check(Some(&cnf), Some(&tb), CnfPolicy::Optional),
            Err(CnfError::Mismatch)
        );
        let same_bytes_other_mechanism = ProvenKey::new(
            Mechanism::MtlsCertificate,
            Freshness::ThisRequest,
            DPOP_JWK.as_bytes(),
            None,
        );
        assert_eq!(
            check(
                Some(&cnf),
                Some(&same_bytes_other_mechanism),
                CnfPolicy::Optional
            ),
            Err(CnfError::Mismatch)
        );
        assert_eq!(
            check(Some(&cnf), None, CnfPolicy::Optional),
            Err(CnfError::NoProof)
        );
    }

    #[test]
    fn x5t_s256_is_checked_against_certificates() {
        let cert = b"not really DER, but any bytes hash the same way";
        let key = ProvenKey::new(
            Mechanism::MtlsCertificate,
            Freshness::ThisRequest,
            &cert[..],
            None,
        );
        let cnf = Confirmation::for_key(&key).unwrap();
        assert_eq!(
            serde_json::to_value(&cnf).unwrap(),
            serde_json::json!({"x5t#S256": Tbh::of(cert).to_string()})
        );
        assert_eq!(check(Some(&cnf), Some(&key), CnfPolicy::Enforced), Ok(()));
    }

    #[test]
    fn earlier_proofs_never_confirm_tokens() {
        // A DBSC-style proof from a minute ago, of the very key the token names.
        let earlier = ProvenKey::new(
            Mechanism::Dpop,
            Freshness::ProvenAt(std::time::SystemTime::now() - std::time::Duration::from_secs(60)),
            DPOP_JWK.as_bytes(),
            None,
        );
        let cnf = Confirmation::for_key(&dpop_key()).unwrap();
        assert_eq!(
            check(Some(&cnf), Some(&earlier), CnfPolicy::Optional),
            Err(CnfError::NoProof)
        );
        let dbsc = ProvenKey::new(
            Mechanism::Dbsc,
            Freshness::ThisRequest,
            DPOP_JWK.as_bytes(),
            Some("S1"),
        );
        assert_eq!(Confirmation::for_key(&dbsc), None);
    }

    #[test]
    fn unknown_methods_are_never_bearer() {
        let unknown: Confirmation =
            serde_json::from_str(r#"{"osc":"some-future-method"}"#).unwrap();
        let proven = ProvenKey::token_binding(&id());
        assert_eq!(
            check(Some(&unknown), Some(&proven), CnfPolicy::Optional),
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
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"tbh":"7NRBu9iDdJlYCTOqyeYuLxXv0blEA-yTpmGIrAwKAws"}"#
        );
    }
}
