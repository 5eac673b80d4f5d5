//! Opaque grants bound to the key the client proved when they were issued: refresh tokens
//! bound to the provided Token Binding ID of the client↔authorization-server connection
//! (OAuth TB §2), to a DPoP key (RFC 9449 §5: required for a public client's refresh
//! token) or to a client certificate (RFC 8705 §4), authorization codes, and the like. The
//! server stores the grant; the value the client holds is random.

use serde::{Deserialize, Serialize};
use tokbind_proto::{Freshness, ProvenKey};

use crate::cnf::{CnfError, CnfPolicy, Confirmation, check};
use crate::jwt::random_token;

/// An opaque grant and the key it is bound to, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundGrant {
    /// The value handed to the client (256 random bits, base64url).
    pub value: String,
    /// The key the grant is bound to, as a token's `cnf` names it (`tbh`, `jkt` or
    /// `x5t#S256`); `None` when unbound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl BoundGrant {
    /// A new grant bound to the first key the request it is issued on proved for itself
    /// (its provided Token Binding ID, its DPoP proof's key, its client certificate), or
    /// unbound when it proved none. A DBSC key, proven at a session refresh rather than
    /// for this request, never binds a grant.
    ///
    /// `proven` is anything that yields proven keys: `Option<&ProvenKey>`, `&ProvenKeys`,
    /// a slice.
    pub fn issue<'a>(proven: impl IntoIterator<Item = &'a ProvenKey>) -> Self {
        let cnf = proven
            .into_iter()
            .filter(|k| k.freshness() == Freshness::ThisRequest)
            .find_map(Confirmation::for_key);
        Self {
            value: random_token(),
            cnf,
        }
    }

    /// Check a request presenting this grant (e.g. a refresh request with the keys it
    /// proved), exactly as a bound token is checked. A mismatch is OAuth `invalid_grant`.
    pub fn check<'a>(
        &self,
        proven: impl IntoIterator<Item = &'a ProvenKey>,
        policy: CnfPolicy,
    ) -> Result<(), CnfError> {
        check(self.cnf.as_ref(), proven, policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use tokbind_proto::{KeyParameters, Mechanism, SigningKey, TokenBindingSigner};

    fn token_binding() -> ProvenKey {
        let key = SigningKey::generate(KeyParameters::ECDSAP256).unwrap();
        ProvenKey::token_binding(key.token_binding_id())
    }

    fn dpop(jwk: &str) -> ProvenKey {
        ProvenKey::new(
            Mechanism::Dpop,
            Freshness::ThisRequest,
            jwk.as_bytes(),
            None,
        )
    }

    #[test]
    fn a_grant_opens_only_for_the_key_it_was_issued_to() {
        let (tb, other_tb) = (token_binding(), token_binding());
        let (alice, mallory) = (dpop(r#"{"k":"alice"}"#), dpop(r#"{"k":"mallory"}"#));
        for (holder, thief, member) in [(&tb, &other_tb, "tbh"), (&alice, &mallory, "jkt")] {
            let grant = BoundGrant::issue(Some(holder));
            let cnf = serde_json::to_value(&grant.cnf).unwrap();
            assert!(cnf[member].is_string(), "{cnf}");
            assert_eq!(grant.check(Some(holder), CnfPolicy::Required), Ok(()));
            assert_eq!(
                grant.check(Some(thief), CnfPolicy::Required),
                Err(CnfError::Mismatch)
            );
            assert_eq!(
                grant.check(None, CnfPolicy::Required),
                Err(CnfError::NoProof)
            );
        }
        // Bound to a DPoP key: a Token Binding key with whatever bytes does not open it.
        let grant = BoundGrant::issue(Some(&alice));
        assert_eq!(
            grant.check(Some(&tb), CnfPolicy::Required),
            Err(CnfError::Mismatch)
        );
    }

    #[test]
    fn only_a_key_proven_for_the_request_binds() {
        let session = ProvenKey::new(
            Mechanism::Dbsc,
            Freshness::ProvenAt(SystemTime::now()),
            b"jwk".as_slice(),
            Some("S1"),
        );
        assert_eq!(BoundGrant::issue(Some(&session)).cnf, None);
        let alice = dpop(r#"{"k":"alice"}"#);
        let grant = BoundGrant::issue([&session, &alice]);
        assert_eq!(
            grant.cnf,
            Confirmation::for_key(&alice),
            "the first key that can bind"
        );
        assert_eq!(BoundGrant::issue(None).cnf, None);
    }

    #[test]
    fn stored_and_loaded_unchanged() {
        for grant in [
            BoundGrant::issue(Some(&token_binding())),
            BoundGrant::issue(None),
        ] {
            let json = serde_json::to_string(&grant).unwrap();
            assert_eq!(serde_json::from_str::<BoundGrant>(&json).unwrap(), grant);
        }
    }
}
