//! JOSE for proofs of possession: the pieces DPoP (RFC 9449) and Device Bound Session
//! Credentials share.
//!
//! * [`jwk`]: a client's public key as a JWK — checked to be public-only and of a sane
//!   size — with its RFC 7638 canonical form and SHA-256 thumbprint (`jkt`).
//! * [`jws`]: a strict check of a compact JWS proof: exact `typ`, `alg` from an allow-list
//!   and matching the key, the key either embedded in the header or already known, the
//!   signature (through `jsonwebtoken`), and the claims.
//! * [`numeric_date`]: the times in claims (`iat`, `exp`, `nbf`), read strictly and
//!   within a range no arithmetic on them can overflow.
//!
//! ```
//! use tokbind_jose::jwk::PublicJwk;
//!
//! // RFC 7638 §3.1's example key.
//! let jwk = serde_json::json!({
//!     "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
//!     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
//! });
//! let key = PublicJwk::from_value(&jwk)?;
//! assert_eq!(key.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
//! # Ok::<(), tokbind_jose::jwk::JwkError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod jwk;
pub mod jws;
pub mod numeric_date;
mod strict_json;

pub use jsonwebtoken::Algorithm;
