//! Opaque grants bound to a Token Binding ID: refresh tokens bound to the provided TBID of
//! the client↔authorization-server connection (OAuth TB §2), authorization codes, and the
//! like. The server stores the grant; the value the client holds is random.

use serde::{Deserialize, Serialize};
use tokbind_proto::{ProvenKey, Tbh, TokenBindingId};

use crate::cnf::{CnfError, CnfPolicy, Confirmation, check};
use crate::jwt::random_token;

/// An opaque grant and the Token Binding it is bound to, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundGrant {
    /// The value handed to the client (256 random bits, base64url).
    pub value: String,
    /// `tbh` of the Token Binding ID the grant is bound to.
    pub tbh: Option<String>,
}

impl BoundGrant {
    /// A new grant bound to `binding` (typically the provided ID of the request it is
    /// issued on), or unbound.
    pub fn issue(binding: Option<&TokenBindingId>) -> Self {
        Self {
            value: random_token(),
            tbh: binding.map(|b| b.tbh().to_string()),
        }
    }

    /// Check a request presenting this grant (e.g. a refresh request with its verified
    /// provided ID). A mismatch is OAuth `invalid_grant`.
    pub fn check<'a>(
        &self,
        proven: impl IntoIterator<Item = &'a ProvenKey>,
        policy: CnfPolicy,
    ) -> Result<(), CnfError> {
        let cnf = self
            .tbh
            .as_deref()
            .map(|t| {
                Tbh::from_base64url(t)
                    .map(Confirmation::from_tbh)
                    .map_err(|_| CnfError::Malformed)
            })
            .transpose()?;
        check(cnf.as_ref(), proven, policy)
    }
}
