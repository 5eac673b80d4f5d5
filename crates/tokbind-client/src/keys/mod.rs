//! Where a client's Token Binding private keys live, and which key a server gets.
//!
//! Token Binding keys are the high-value asset: whoever holds one can use every cookie and
//! token bound to it (RFC 8471 §7.1, RFC 8473 §7.1). Three stores implement [`KeyStore`]:
//!
//! | store | keys live | survives a restart | private key leaves the store |
//! |---|---|---|---|
//! | [`MemoryKeyStore`] | process memory | no ("private mode", RFC 8473 §8.2) | no |
//! | [`FileKeyStore`] | PKCS#8 files, mode 0600, in a 0700 directory | yes | yes (it is a file) |
//! | [`Pkcs11KeyStore`] | a PKCS#11 token (HSM, smart card, SoftHSM) | yes | never: generated non-extractable, signs inside |
//!
//! A server gets the key of its **scope**: the registrable domain (eTLD+1) of its host,
//! computed with the Public Suffix List (RFC 8473 §2.1). `a.example.com` and
//! `b.example.com` share a key; `example.co.uk` and `other.co.uk` do not. IP addresses and
//! hosts without a public suffix (`localhost`, `idp`) are their own scope.

mod file;
mod memory;
mod pkcs11;

use std::net::IpAddr;
use std::sync::Arc;

use tokbind_proto::{KeyParameters, TokenBindingSigner};

pub use file::FileKeyStore;
pub use memory::MemoryKeyStore;
pub use pkcs11::Pkcs11KeyStore;

/// A Token Binding key held by a [`KeyStore`], usable for signing.
pub type StoreKey = Arc<dyn TokenBindingSigner>;

/// Keys by scope and key parameters.
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// The key for `scope` (see [`key_scope`]) and `key_parameters`, created on first use.
    fn key_for(
        &self,
        scope: &str,
        key_parameters: KeyParameters,
    ) -> Result<StoreKey, KeyStoreError>;

    /// Every key in the store.
    fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError>;

    /// Delete the keys of `scope`, or every key. The next connection to a server of that
    /// scope presents a new Token Binding ID, so everything bound to the old one stops
    /// working (RFC 8473 §8.2). Returns how many keys were deleted.
    fn reset(&self, scope: Option<&str>) -> Result<usize, KeyStoreError>;
}

/// A key as [`KeyStore::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The scope (registrable domain) the key is for.
    pub scope: String,
    /// Its key parameters.
    pub key_parameters: KeyParameters,
    /// `tbh` of its Token Binding ID.
    pub tbh: String,
    /// Whether the private key can be read out of the store.
    pub extractable: bool,
}

/// A key store failed. Never answered by silently making a new key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// A stored key cannot be read back (a damaged or foreign file, a wrong object).
    #[error("stored key {location} is unreadable: {reason}")]
    Corrupt {
        /// Where the key is.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The store could not be read or written.
    #[error("key store I/O at {location}: {source}")]
    Io {
        /// Where.
        location: String,
        /// The error.
        source: std::io::Error,
    },
    /// The PKCS#11 module or token failed.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    /// Key generation or signing failed.
    #[error(transparent)]
    Sign(#[from] tokbind_proto::SignError),
}

/// The key scope of `host`: its registrable domain (eTLD+1) by the Public Suffix List,
/// lower-cased without a trailing dot; an IP address or a host with no registrable domain
/// (`localhost`, a single label, a bare public suffix) is its own scope.
pub fn key_scope(host: &str) -> String {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() {
        return host;
    }
    match psl::domain(host.as_bytes()) {
        // Only a suffix the list actually knows makes a registrable domain; for unknown
        // TLDs (`rp`, `corp`) the host stays its own scope.
        Some(d) if d.suffix().is_known() => String::from_utf8_lossy(d.as_bytes()).into_owned(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_public_suffix_list() {
        assert_eq!(key_scope("a.example.com"), "example.com");
        assert_eq!(key_scope("b.example.com"), key_scope("a.example.com"));
        assert_eq!(key_scope("WWW.Example.COM."), "example.com");
        assert_eq!(key_scope("shop.example.co.uk"), "example.co.uk");
        assert_ne!(key_scope("example.co.uk"), key_scope("other.co.uk"));
        assert_eq!(
            key_scope("co.uk"),
            "co.uk",
            "a bare public suffix is its own scope"
        );
        assert_eq!(
            key_scope("alice.github.io"),
            "alice.github.io",
            "private suffixes count"
        );
        assert_ne!(key_scope("alice.github.io"), key_scope("bob.github.io"));
        assert_eq!(key_scope("127.0.0.1"), "127.0.0.1");
        assert_eq!(key_scope("[::1]"), "::1");
        assert_eq!(key_scope("localhost"), "localhost");
        assert_eq!(key_scope("idp"), "idp");
        assert_ne!(key_scope("rp"), key_scope("idp"));
    }
}
