//! OAuth 2.0 Token Binding (draft-ietf-oauth-token-binding-08) and OpenID Connect Token
//! Bound Authentication 1.0 (draft 04): tokens bound to the client's Token Binding key.
//!
//! | role | what | where |
//! |---|---|---|
//! | Token Provider (IdP, AS) | ID/access tokens with `cnf.tbh` of the referred ID | [`TokenIssuer`] |
//! | Token Provider | refresh tokens and codes bound to the provided ID (or DPoP key, certificate) | [`BoundGrant`] |
//! | Token Provider | PKCE `TB-S256` and `referred_tb` | [`pkce`] |
//! | Token Provider | introspection with `cnf`, metadata | [`metadata`] |
//! | Token Consumer (RS) | bearer JWT checked against the request's key | [`BoundBearerLayer`] |
//! | Token Consumer (RP) | ID token checked against the browser's key | [`TokenVerifier::verify_id_token`] |
//!
//! Every check goes through [`cnf::check`] with a [`CnfPolicy`]: `disabled | optional |
//! required | enforced`, default `optional`, which never breaks an IdP that knows nothing
//! of Token Binding.
//!
//! ```
//! use std::time::Duration;
//! use tokbind_oauth::{CnfPolicy, TokenIssuer, TokenVerifier};
//! use tokbind_proto::{KeyParameters, ProvenKey, SigningKey, TokenBindingSigner};
//!
//! // The IdP binds the ID token to the referred ID it verified (the browser's RP key).
//! let browser_rp_key = SigningKey::generate(KeyParameters::ECDSAP256)?;
//! let idp = TokenIssuer::generate("https://idp.example")?;
//! let id_token = idp.token("alice", "rp", Duration::from_secs(60), Some("n-0S6"),
//!     Some(browser_rp_key.token_binding_id()), Default::default())?;
//!
//! // The RP checks it against the provided ID of the browser's callback request.
//! let rp = TokenVerifier::new(&idp.jwks(), "https://idp.example", "rp")?;
//! let claims = rp.verify_id_token(&id_token, "n-0S6", Some(browser_rp_key.token_binding_id()), CnfPolicy::Required)?;
//! assert_eq!(claims.sub, "alice");
//!
//! // Anyone else presenting it is refused.
//! let thief = SigningKey::generate(KeyParameters::ECDSAP256)?;
//! let err = rp.verify_id_token(&id_token, "n-0S6", Some(thief.token_binding_id()), CnfPolicy::Required).unwrap_err();
//! assert_eq!(err.reason(), "binding_mismatch");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cnf;
pub mod grant;
pub mod jwt;
pub mod metadata;
pub mod pkce;
pub mod resource;

pub use cnf::{CnfError, CnfPolicy, Confirmation};
pub use grant::BoundGrant;
pub use jwt::{Claims, TokenError, TokenIssuer, TokenVerifier, random_token};
pub use resource::{BearerClaims, BoundBearerLayer};
