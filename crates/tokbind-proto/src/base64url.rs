//! Strict unpadded base64url (RFC 4648 §5), as RFC 8473 §2, the TTRP draft and `tbh` use it.
//!
//! The specs only constrain the sender ("no padding, no whitespace"); we apply the same rule
//! to what we receive (RFC 8473 §2, RFC 4648 §5): `=` padding, whitespace, the standard alphabet's
//! `+`/`/`, and non-canonical trailing bits are all rejected, so one message has exactly one
//! accepted encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encode `bytes` as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode strict unpadded base64url into a fresh vector.
pub fn decode(text: &[u8]) -> Result<Vec<u8>, InvalidBase64Url> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidBase64Url)
}

/// Decode strict unpadded base64url into `out` (cleared first), reusing its capacity.
pub fn decode_into<const N: usize>(
    text: &[u8],
    out: &mut smallvec::SmallVec<[u8; N]>,
) -> Result<(), InvalidBase64Url> {
    out.clear();
    // An upper bound on the decoded size; the exact size is known after decoding.
    out.resize(text.len() / 4 * 3 + 3, 0);
    match URL_SAFE_NO_PAD.decode_slice(text, out) {
        Ok(n) => {
            out.truncate(n);
            Ok(())
        }
        Err(_) => {
            out.clear();
            Err(InvalidBase64Url)
        }
    }
}

/// The text is not strict unpadded base64url.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not unpadded base64url (RFC 4648 §5 alphabet, no '=', no whitespace)")]
pub struct InvalidBase64Url;

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::SmallVec;

    #[test]
    fn rejects_everything_but_canonical_unpadded_base64url() {
        assert_eq!(decode(b"AQID").unwrap(), [1, 2, 3]);
        assert_eq!(decode(b"AQI").unwrap(), [1, 2]);
        for bad in [
            &b"AQI="[..], // padding
            b"AQ ID",     // whitespace
            b"AQID\n",    // line break
            b"+/+/",      // standard alphabet
            b"AQJ",       // non-zero trailing bits (non-canonical for [1, 2])
            b"A",         // impossible length
            b"AQID,AQID", // a list
        ] {
            assert_eq!(decode(bad), Err(InvalidBase64Url), "{bad:?}");
            let mut out = SmallVec::<[u8; 8]>::new();
            assert_eq!(decode_into(bad, &mut out), Err(InvalidBase64Url));
        }
    }

    #[test]
    fn decode_into_matches_decode() {
        let mut out = SmallVec::<[u8; 4]>::new();
        for len in 0..40usize {
            let data: Vec<u8> = (0..len as u8).collect();
            let text = encode(&data);
            decode_into(text.as_bytes(), &mut out).unwrap();
            assert_eq!(&out[..], &data[..]);
        }
    }
}
