//! `tokbind keys list|reset`: the client's Token Binding keys.

use serde_json::json;
use tokbind_client::key_scope;

use crate::Failure;
use crate::input::{KeyStoreSpec, parse_key_store};

/// `tokbind keys` arguments.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the keys: scope, key parameters, tbh, whether the private key is extractable.
    List {
        /// The key store: file:DIR or pkcs11:MODULE_PATH[:SLOT] (PIN in TOKBIND_PKCS11_PIN).
        #[arg(long, value_parser = parse_key_store)]
        key_store: KeyStoreSpec,
    },
    /// Delete keys — every key, or those of one site. The next request to that site
    /// presents a new Token Binding ID; cookies and tokens bound to the old one stop working.
    Reset {
        /// The key store: file:DIR or pkcs11:MODULE_PATH[:SLOT].
        #[arg(long, value_parser = parse_key_store)]
        key_store: KeyStoreSpec,
        /// Only the keys for this site (any host name of it: www.example.com means example.com).
        #[arg(long)]
        scope: Option<String>,
    },
}

pub fn run(args: KeysArgs) -> Result<String, Failure> {
    let failed =
        |e: tokbind_client::keys::KeyStoreError| Failure::Rejected(format!("key store: {e}"));
    match args.action {
        Action::List { key_store } => {
            let keys = key_store.open()?.list().map_err(failed)?;
            let list: Vec<_> = keys
                .iter()
                .map(|k| json!({"scope": k.scope, "key_parameters": k.key_parameters.to_string(), "tbh": k.tbh, "extractable": k.extractable}))
                .collect();
            Ok(serde_json::Value::Array(list).to_string())
        }
        Action::Reset { key_store, scope } => {
            let scope = scope.as_deref().map(key_scope);
            let deleted = key_store.open()?.reset(scope.as_deref()).map_err(failed)?;
            Ok(json!({"deleted": deleted, "scope": scope}).to_string())
        }
    }
}
