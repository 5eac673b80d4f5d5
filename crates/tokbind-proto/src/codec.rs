//! Reading and writing the TLS presentation language (RFC 8446 §3) that RFC 8471 §3 and
//! RFC 8472 §2 use: big-endian integers and length-prefixed vectors.
//!
//! Decoding is strict everywhere: a length prefix must be satisfied exactly, nested
//! structures must consume their enclosing vector exactly, and whole-buffer reads reject
//! trailing bytes. Every error names the wire field it is about and the byte offset.

use thiserror::Error;

/// A structural decoding error: the bytes are not a well-formed instance of the wire
/// structure. Never a cryptographic verdict (see [`crate::ValidationError`] for those).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before `field` was complete.
    #[error("{field}: truncated at byte {offset} (needs {needed} more bytes)")]
    Truncated {
        /// The wire field being read, in the spec's words.
        field: &'static str,
        /// Byte offset where the field starts, from the start of the decoded buffer.
        offset: usize,
        /// How many more bytes the field needed.
        needed: usize,
    },
    /// A length-delimited `field` was not consumed exactly: `extra` bytes were left over.
    #[error("{field}: {extra} unexpected trailing bytes at byte {offset}")]
    TrailingBytes {
        /// The wire field (or whole structure) that had bytes left over.
        field: &'static str,
        /// Byte offset of the first unexpected byte.
        offset: usize,
        /// How many bytes were left over.
        extra: usize,
    },
    /// `field` is present and complete but its value breaks a rule of the spec.
    #[error("{field} at byte {offset}: {reason}")]
    Invalid {
        /// The wire field, in the spec's words.
        field: &'static str,
        /// Byte offset where the field starts.
        offset: usize,
        /// What rule was broken.
        reason: &'static str,
    },
}

impl DecodeError {
    /// The wire field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Truncated { field, .. }
            | Self::TrailingBytes { field, .. }
            | Self::Invalid { field, .. } => field,
        }
    }
}

/// A zero-copy cursor over a byte buffer (after rustls' `msgs::codec::Reader`).
///
/// Offsets reported in errors are absolute: a sub-reader remembers where its slice started
/// in the outermost buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Absolute offset of the next unread byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Whether any bytes are left.
    pub fn any_left(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Take exactly `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.buf.len() - self.pos;
        if left < n {
            return Err(DecodeError::Truncated {
                field,
                offset: self.offset(),
                needed: n - left,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Read a `uint8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }

    /// Read a big-endian `uint16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Read an `opaque field<0..2^8-1>`: a `uint8` length followed by that many bytes.
    pub fn vec_u8(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u8(field)?;
        self.take(usize::from(len), field)
    }

    /// Read an `opaque field<0..2^16-1>`: a `uint16` length followed by that many bytes.
    pub fn vec_u16(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// Like [`Reader::vec_u16`], returning a sub-reader positioned over the vector's content.
    pub fn sub_u16(&mut self, field: &'static str) -> Result<Reader<'a>, DecodeError> {
        let start = self.offset() + 2;
        let body = self.vec_u16(field)?;
        Ok(Reader {
            buf: body,
            pos: 0,
            base: start,
        })
    }

    /// Fail with [`DecodeError::TrailingBytes`] unless every byte has been read.
    pub fn expect_end(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.any_left() {
            return Err(DecodeError::TrailingBytes {
                field,
                offset: self.offset(),
                extra: self.buf.len() - self.pos,
            });
        }
        Ok(())
    }

    /// An [`DecodeError::Invalid`] error located at `offset`.
    pub fn invalid(offset: usize, field: &'static str, reason: &'static str) -> DecodeError {
        DecodeError::Invalid {
            field,
            offset,
            reason,
        }
    }
}

/// Append a big-endian `uint16`.
pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A length prefix for `len` bytes.
///
/// Every wire value checks its lengths when it is built or decoded (private fields and
/// fallible constructors), so a length that does not fit is a bug in this crate, never
/// input: it stops here rather than being truncated into a different message.
pub(crate) fn checked_len<T: TryFrom<usize>>(len: usize) -> T {
    match T::try_from(len) {
        Ok(len) => len,
        Err(_) => unreachable!("a wire length of {len} bytes escaped its constructor's check"),
    }
}

/// Append `body` as an `opaque <0..2^16-1>` vector (see [`checked_len`]).
pub(crate) fn put_vec_u16(out: &mut Vec<u8>, body: &[u8]) {
    put_u16(out, checked_len(body.len()));
    out.extend_from_slice(body);
}

/// Append `body` as an `opaque <0..2^8-1>` vector (see [`checked_len`]).
pub(crate) fn put_vec_u8(out: &mut Vec<u8>, body: &[u8]) {
    out.push(checked_len(body.len()));
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_reports_field_offset_and_shortfall() {
        let mut r = Reader::new(&[0x00, 0x05, 1, 2]);
        let err = r.vec_u16("signature").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                field: "signature",
                offset: 2,
                needed: 3
            }
        );
    }

    #[test]
    fn sub_reader_offsets_are_absolute() {
        let buf = [9, 0x00, 0x03, 7, 8, 9];
        let mut r = Reader::new(&buf);
        r.u8("x").unwrap();
        let mut sub = r.sub_u16("inner").unwrap();
        assert_eq!(sub.offset(), 3);
        sub.u8("a").unwrap();
        let err = sub.expect_end("inner").unwrap_err();
        assert_eq!(
            err,
            DecodeError::TrailingBytes {
                field: "inner",
                offset: 4,
                extra: 2
            }
        );
        assert!(!r.any_left());
    }

    #[test]
    fn writers_round_trip_through_reader() {
        let mut out = Vec::new();
        put_vec_u16(&mut out, b"abc");
        put_vec_u8(&mut out, b"de");
        let mut r = Reader::new(&out);
        assert_eq!(r.vec_u16("a").unwrap(), b"abc");
        assert_eq!(r.vec_u8("b").unwrap(), b"de");
        r.expect_end("all").unwrap();
    }
}
