//! The JSON the commands print. Key parameters and types are their registry names
//! (`ecdsap256`, `provided`), or `unknown(N)` for unregistered code points.

use serde::Serialize;
use tokbind_proto::{TokenBindingId, TokenBindingMessage, VerifiedBindings};

#[derive(Serialize)]
struct Decoded {
    bindings: Vec<DecodedBinding>,
}

#[derive(Serialize)]
struct DecodedBinding {
    #[serde(rename = "type")]
    binding_type: String,
    key_parameters: String,
    tbid: String,
    tbh: String,
    signature_len: usize,
    extensions_len: usize,
}

#[derive(Serialize)]
struct Verified {
    provided: Id,
    referred: Option<Id>,
}

#[derive(Serialize)]
struct Id {
    key_parameters: String,
    tbid: String,
    tbh: String,
}

impl From<&TokenBindingId> for Id {
    fn from(id: &TokenBindingId) -> Self {
        Self {
            key_parameters: id.key_parameters().to_string(),
            tbid: id.to_base64url(),
            tbh: id.tbh().to_string(),
        }
    }
}

/// `tokbind decode` output.
pub fn decoded(message: &TokenBindingMessage<'_>) -> String {
    let out = Decoded {
        bindings: message
            .bindings()
            .iter()
            .map(|b| DecodedBinding {
                binding_type: b.binding_type().to_string(),
                key_parameters: b.id().key_parameters().to_string(),
                tbid: tokbind_proto::base64url::encode(b.id().as_bytes()),
                tbh: b.id().tbh().to_string(),
                signature_len: b.signature().len(),
                extensions_len: b.extensions().as_bytes().len(),
            })
            .collect(),
    };
    serde_json::to_string(&out).expect("plain data serializes")
}

/// `tokbind verify` output.
pub fn verified(v: &VerifiedBindings) -> String {
    let out = Verified {
        provided: Id::from(&v.provided),
        referred: v.referred.as_ref().map(Id::from),
    };
    serde_json::to_string(&out).expect("plain data serializes")
}
