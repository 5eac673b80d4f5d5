//! The one-byte code points of the IANA "Token Binding Protocol" registries (RFC 8471 §6):
//! key parameters and Token Binding types.
//!
//! Both are *open* enums: values nobody has registered yet decode to `Unknown(u8)` and
//! re-encode to the same byte, because RFC 8471 §3.1 tells servers to ignore unknown types
//! and a referred binding may carry key parameters this server does not implement.

use core::fmt;
use core::str::FromStr;

/// Defines an open one-byte enum: known variants, `Unknown(u8)`, byte conversions that
/// normalise (so `Unknown(2)` never escapes `From<u8>`), and equality by byte value.
macro_rules! open_u8_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($label:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A code point this implementation does not know; the byte is kept so the
            /// value round-trips.
            Unknown(u8),
        }

        impl $name {
            /// Every known value, in code-point order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The registry name (e.g. `ecdsap256`), or `None` for an unknown code point.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )+
                    $name::Unknown(v) => Self::from(v).known_name(),
                }
            }

            fn known_name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($text), )+
                    $name::Unknown(_) => None,
                }
            }

            /// Whether this is a registered value this implementation knows.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                u8::from(*self) == u8::from(*other)
            }
        }
        impl Eq for $name {}

        impl core::hash::Hash for $name {
            fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
                u8::from(*self).hash(state)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unknown({})", u8::from(*self)),
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
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownName {
                        registry: $label,
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

open_u8_enum! {
    /// `TokenBindingKeyParameters` (RFC 8471 §3): the signature algorithm and key size of a
    /// Token Binding key.
    pub enum KeyParameters ("key parameters") {
        /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit modulus.
        Rsa2048Pkcs1_5 = 0 => "rsa2048_pkcs1.5",
        /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, 2048-bit modulus.
        Rsa2048Pss = 1 => "rsa2048_pss",
        /// ECDSA over P-256 with SHA-256; raw `R‖S` signatures.
        EcdsaP256 = 2 => "ecdsap256",
    }
}

open_u8_enum! {
    /// `TokenBindingType` (RFC 8471 §3.1).
    pub enum TokenBindingType ("Token Binding type") {
        /// `provided_token_binding`: proves possession of the key the client uses with
        /// *this* server.
        Provided = 0 => "provided",
        /// `referred_token_binding`: proves possession of the key the client uses with
        /// *another* server (federation, RFC 8473 §5).
        Referred = 1 => "referred",
    }
}

impl KeyParameters {
    /// The default server and client preference order: the fastest and smallest first.
    pub const PREFERENCE: [KeyParameters; 3] = [
        KeyParameters::EcdsaP256,
        KeyParameters::Rsa2048Pss,
        KeyParameters::Rsa2048Pkcs1_5,
    ];

    /// Whether keys of this kind are RSA keys (the TBID then carries modulus and exponent).
    pub fn is_rsa(self) -> bool {
        matches!(
            Self::from(u8::from(self)),
            KeyParameters::Rsa2048Pkcs1_5 | KeyParameters::Rsa2048Pss
        )
    }

    /// The exact signature length for this key kind, if known (RFC 8471 §3.3).
    pub fn signature_len(self) -> Option<usize> {
        match Self::from(u8::from(self)) {
            KeyParameters::EcdsaP256 => Some(64),
            KeyParameters::Rsa2048Pkcs1_5 | KeyParameters::Rsa2048Pss => Some(256),
            KeyParameters::Unknown(_) => None,
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
    fn unknown_values_round_trip_and_normalise() {
        for b in 0..=255u8 {
            assert_eq!(u8::from(KeyParameters::from(b)), b);
            assert_eq!(u8::from(TokenBindingType::from(b)), b);
        }
        assert_eq!(KeyParameters::Unknown(2), KeyParameters::EcdsaP256);
        assert_eq!(KeyParameters::Unknown(2).name(), Some("ecdsap256"));
        assert!(KeyParameters::Unknown(2).is_rsa() == KeyParameters::EcdsaP256.is_rsa());
        assert_eq!(KeyParameters::from(88).to_string(), "unknown(88)");
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
