//! Parsing command-line arguments into library types.

use std::io::Read as _;

use tokbind_proto::{Ekm, KeyParameters};

/// `--ekm`: 64 hex digits or 43 characters of unpadded base64url, 32 bytes either way.
pub fn parse_ekm(text: &str) -> Result<Ekm, String> {
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| e.to_string())?
    } else {
        tokbind_proto::base64url::decode(text.as_bytes())
            .map_err(|_| "expected 64 hex digits or unpadded base64url".to_string())?
    };
    Ekm::from_slice(&bytes).ok_or_else(|| format!("an EKM is 32 bytes, got {}", bytes.len()))
}

/// `--negotiated`: a registry name.
pub fn parse_key_parameters(text: &str) -> Result<KeyParameters, String> {
    text.parse()
        .map_err(|e: tokbind_proto::registry::UnknownName| e.to_string())
}

/// The header value argument: `-` reads stdin; a pasted `Sec-Token-Binding:` (or legacy
/// `Token-Binding:`) prefix and surrounding whitespace are removed. The value itself is
/// then decoded strictly by the library.
pub fn header_value(arg: &str) -> Result<String, String> {
    let raw = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        s
    } else {
        arg.to_string()
    };
    let trimmed = raw.trim();
    let value = ["sec-token-binding:", "token-binding:"]
        .iter()
        .find_map(|prefix| {
            trimmed
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| trimmed[prefix.len()..].trim())
        })
        .unwrap_or(trimmed);
    if value.is_empty() {
        return Err("the header value is empty".into());
    }
    Ok(value.to_string())
}

/// `--key-store`: where the client's Token Binding keys live.
#[derive(Debug, Clone)]
pub enum KeyStoreSpec {
    /// `memory`: fresh keys, forgotten when the command exits.
    Memory,
    /// `file:DIR`: PKCS#8 files under DIR.
    File(std::path::PathBuf),
    /// `pkcs11:MODULE[:SLOT]`: a PKCS#11 token; the user PIN comes from `TOKBIND_PKCS11_PIN`.
    Pkcs11 {
        module: std::path::PathBuf,
        slot: Option<u64>,
    },
}

pub fn parse_key_store(text: &str) -> Result<KeyStoreSpec, String> {
    if text == "memory" {
        return Ok(KeyStoreSpec::Memory);
    }
    if let Some(dir) = text.strip_prefix("file:").filter(|d| !d.is_empty()) {
        return Ok(KeyStoreSpec::File(dir.into()));
    }
    if let Some(rest) = text.strip_prefix("pkcs11:").filter(|r| !r.is_empty()) {
        return Ok(match rest.rsplit_once(':') {
            Some((module, slot)) if slot.parse::<u64>().is_ok() => KeyStoreSpec::Pkcs11 {
                module: module.into(),
                slot: slot.parse().ok(),
            },
            _ => KeyStoreSpec::Pkcs11 {
                module: rest.into(),
                slot: None,
            },
        });
    }
    Err("expected memory, file:DIR or pkcs11:MODULE_PATH[:SLOT]".into())
}

/// Environment variable holding the PKCS#11 user PIN.
pub const PIN_VARIABLE: &str = "TOKBIND_PKCS11_PIN";

impl KeyStoreSpec {
    pub fn open(&self) -> Result<std::sync::Arc<dyn tokbind_client::KeyStore>, crate::Failure> {
        use std::sync::Arc;
        let failed = |e: tokbind_client::keys::KeyStoreError| {
            crate::Failure::Rejected(format!("key store: {e}"))
        };
        Ok(match self {
            Self::Memory => Arc::new(tokbind_client::MemoryKeyStore::default()),
            Self::File(dir) => Arc::new(tokbind_client::FileKeyStore::open(dir).map_err(failed)?),
            Self::Pkcs11 { module, slot } => {
                let pin = std::env::var(PIN_VARIABLE).map_err(|_| {
                    crate::Failure::Usage(format!("set {PIN_VARIABLE} to the token's user PIN"))
                })?;
                Arc::new(tokbind_client::Pkcs11KeyStore::open(module, *slot, &pin).map_err(failed)?)
            }
        })
    }
}

/// A duration on the command line: `10s`, `500ms`, or a number of seconds (`10`). Zero is
/// refused: a limit of nothing would close every connection at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub std::time::Duration);

impl std::str::FromStr for Timeout {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (number, unit_ms) = if let Some(ms) = text.strip_suffix("ms") {
            (ms, 1)
        } else {
            (text.strip_suffix('s').unwrap_or(text), 1000)
        };
        let number: u64 = number
            .parse()
            .map_err(|_| format!("expected a duration such as 10s, 500ms or 10, got {text:?}"))?;
        let ms = number
            .checked_mul(unit_ms)
            .ok_or_else(|| format!("{text} is too long"))?;
        if ms == 0 {
            return Err("must be longer than 0".to_string());
        }
        Ok(Self(std::time::Duration::from_millis(ms)))
    }
}

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

/// An interval that can be turned off: a [`Timeout`], or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Option<std::time::Duration>);

impl std::str::FromStr for Interval {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(Self(None));
        }
        text.parse::<Timeout>()
            .map(|t| Self(Some(t.0)))
            .map_err(|e| format!("{e} (or off)"))
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(d) => Timeout(d).fmt(f),
            None => f.write_str("off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!("10".parse(), Ok(Timeout(Duration::from_secs(10))));
        assert_eq!("10s".parse(), Ok(Timeout(Duration::from_secs(10))));
        assert_eq!("250ms".parse(), Ok(Timeout(Duration::from_millis(250))));
        assert!("0".parse::<Timeout>().is_err());
        assert!("0ms".parse::<Timeout>().is_err());
        assert!("-1s".parse::<Timeout>().is_err());
        assert!("1.5s".parse::<Timeout>().is_err());
        assert!("18446744073709551615s".parse::<Timeout>().is_err());
        assert_eq!(Timeout(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Timeout(Duration::from_secs(30)).to_string(), "30s");
        assert_eq!("off".parse(), Ok(Interval(None)));
        assert_eq!(Interval(Some(Duration::from_secs(20))).to_string(), "20s");
    }
}
