//! The one-byte code points of the IANA "Token Binding Protocol" registries (RFC 8471 §6):
//! key parameters and Token Binding types.
//!
//! Both are *open*: each is a newtype over its byte with an associated constant per
//! registered value (as rustls's `enums.rs` and quinn-proto's codes are shaped), so a value
//! nobody has registered yet is kept and re-encodes to the same byte, and `==`, `match` and
//! `Hash` all see only that byte. RFC 8471 §3.1 tells servers to ignore unknown types, and a
//! referred binding may carry key parameters this server does not implement.

use core::fmt;
use core::str::FromStr;

/// Defines an open one-byte code point: a `Copy` newtype over the byte, one associated
/// constant per registered value, the registry names, and byte and name conversions.
macro_rules! open_u8_code {
    (
        $(#[$meta:meta])*
        pub struct $name:ident ($label:literal) {
            $( $(#[$vmeta:meta])* $konst:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u8);

        impl $name {
            $( $(#[$vmeta])* pub const $konst: $name = $name($value); )+

            /// Every registered value, in code-point order.
            pub const KNOWN: &'static [$name] = &[$($name::$konst),+];

            /// The value with this code point, registered or not.
            pub const fn new(value: u8) -> Self {
                $name(value)
            }

            /// The code point.
            pub const fn get(self) -> u8 {
                self.0
            }

            /// The registry name (e.g. `ecdsap256`), or `None` for a value this
            /// implementation does not know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )+
                    _ => None,
                }
            }

            /// Whether this is a registered value this implementation knows.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                $name(v)
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unknown({})", self.0),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$konst), )+
                    _ => Err(UnknownName {
                        registry: $label,
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

open_u8_code! {
    /// `TokenBindingKeyParameters` (RFC 8471 §3): the signature algorithm and key size of a
    /// Token Binding key.
    pub struct KeyParameters ("key parameters") {
        /// `rsa2048_pkcs1.5`: RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit modulus.
        RSA2048_PKCS1_5 = 0 => "rsa2048_pkcs1.5",
        /// `rsa2048_pss`: RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt,
        /// 2048-bit modulus.
        RSA2048_PSS = 1 => "rsa2048_pss",
        /// `ecdsap256`: ECDSA over P-256 with SHA-256; raw `R‖S` signatures.
        ECDSAP256 = 2 => "ecdsap256",
    }
}

open_u8_code! {
    /// `TokenBindingType` (RFC 8471 §3.1).
    pub struct TokenBindingType ("Token Binding type") {
        /// `provided_token_binding`: proves possession of the key the client uses with
        /// *this* server.
        PROVIDED = 0 => "provided",
        /// `referred_token_binding`: proves possession of the key the client uses with
        /// *another* server (federation, RFC 8473 §5).
        REFERRED = 1 => "referred",
    }
}

impl KeyParameters {
    /// The default server and client preference order: the fastest and smallest first.
    pub const PREFERENCE: [KeyParameters; 3] = [
        KeyParameters::ECDSAP256,
        KeyParameters::RSA2048_PSS,
        KeyParameters::RSA2048_PKCS1_5,
    ];

    /// Whether keys of this kind are RSA keys (the TBID then carries modulus and exponent).
    pub const fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyParameters::RSA2048_PKCS1_5 | KeyParameters::RSA2048_PSS
        )
    }

    /// The exact signature length for this key kind, if known (RFC 8471 §3.3).
    pub const fn signature_len(self) -> Option<usize> {
        match self {
            KeyParameters::ECDSAP256 => Some(64),
            KeyParameters::RSA2048_PKCS1_5 | KeyParameters::RSA2048_PSS => Some(256),
            _ => None,
        }
    }
}

/// A name given to `FromStr` is not one of the registry's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a {registry} name; expected one of: {}", expected.join(", "))]
pub struct UnknownName {
    registry: &'static str,
    expected: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_and_equality_is_the_byte() {
        for b in 0..=255u8 {
            assert_eq!(u8::from(KeyParameters::from(b)), b);
            assert_eq!(u8::from(TokenBindingType::from(b)), b);
            // `match` (through `name`) and `==` agree on every byte.
            let kp = KeyParameters::new(b);
            assert_eq!(kp.is_known(), KeyParameters::KNOWN.contains(&kp));
            assert_eq!(kp.name().is_some(), kp.signature_len().is_some());
        }
        assert_eq!(KeyParameters::new(2), KeyParameters::ECDSAP256);
        assert_eq!(KeyParameters::new(2).name(), Some("ecdsap256"));
        assert!(KeyParameters::RSA2048_PSS.is_rsa() && !KeyParameters::new(2).is_rsa());
        assert_eq!(KeyParameters::from(88).to_string(), "unknown(88)");
        assert_eq!(TokenBindingType::new(0x4d).to_string(), "unknown(77)");
    }

    #[test]
    fn names_parse() {
        for kp in KeyParameters::KNOWN {
            assert_eq!(kp.to_string().parse::<KeyParameters>().unwrap(), *kp);
        }
        let err = "ecdsa".parse::<KeyParameters>().unwrap_err();
        assert!(err.to_string().contains("ecdsap256"));
    }
}
