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
