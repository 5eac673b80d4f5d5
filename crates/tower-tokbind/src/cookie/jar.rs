//! One reading of the `Cookie` header, shared by every layer that judges cookies, and the
//! header those layers hand on.
//!
//! A layer that checks a cookie protects nothing if the application behind it reads the
//! header differently: a pair the layer takes for "not ours" but the application's parser
//! takes for the session cookie walks straight past the check. So this reading is the one
//! the parsers applications use, checked against their source:
//!
//! | parser | reads a header value when | splits | each piece |
//! |---|---|---|---|
//! | `tower-cookies` 0.11 (`src/lib.rs`, `Inner::jar`), behind `tower-sessions` 0.15 | its bytes are UTF-8 (`std::str::from_utf8`) | on `;` | `Cookie::parse_encoded` |
//! | `axum-extra` 0.12 `CookieJar` (`src/extract/cookie/mod.rs`, `cookies_from_request`) | it is visible ASCII or tab (`HeaderValue::to_str`) | on `;` | `Cookie::parse_encoded` |
//! | `cookie` 0.18 `Cookie::split_parse_encoded` (`src/lib.rs`, `SplitCookies`) | (a `&str`) | on `;`, skipping blank pieces | `Cookie::parse_encoded` |
//! | `cookie` 0.18 `Cookie::parse` on each piece | (a `&str`) | on `;` | no decoding |
//!
//! and `cookie`'s `parse_inner` (`src/parse.rs`) splits a piece at its first `=`, trims
//! name and value with `str::trim` (Unicode white space, not only ASCII), refuses an empty
//! name, and — in the `_encoded` forms — percent-decodes both, failing when the result is
//! not UTF-8. Names are compared exactly (case-sensitive) by their jars, and a later
//! duplicate replaces an earlier one (`CookieJar::add_original`); `value()` keeps double
//! quotes. The `Cookie` header cannot carry a `;` inside a value, quoted or not, for any of
//! them.
//!
//! So a [`Pair`] has two names: the [written](Pair::written_name) one (trimmed), which
//! `Cookie::parse` reads, and the [decoded](Pair::name) one, which the other three read. A
//! layer must treat the pair as cookie `n` when *either* is `n` ([`Pair::is_named`]), and
//! can trust it as `n` only when both are ([`Pair::is_spelled`]). The value is kept as
//! written (trimmed): that is what a binding's MAC covers, and each parser reads it from the
//! rewritten header exactly as it would have read it from the original.
//!
//! What no parser can agree on is [`Unreadable`]: bytes that are not UTF-8 (`tower-cookies`
//! and `axum-extra` skip the whole header value, so the name is nobody's to tell), a
//! percent-escape that does not decode to UTF-8 (three parsers skip the pair, the fourth
//! reads it raw), and pieces that are not a `name=value` pair at all.
//!
//! # Handing the header on
//!
//! Layers never pass on a header they could not read. They rebuild it with
//! [`CookieHeaderBuilder`] from the pairs they read and judged: `name=value` joined by
//! `"; "` in the order received (RFC 6265 §5.4 serialisation, and what HTTP/2 crumbs are
//! joined into, RFC 9113 §8.2.3), so the several `Cookie` headers an HTTP/2 client may send
//! become one. Pairs that are not visible ASCII go in a second header value of their own:
//! `axum-extra` skips that one whole, as it would have skipped the original, without losing
//! the pairs it can read.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header::COOKIE};
//! use tower_tokbind::cookie::jar::{CookieHeaderBuilder, RequestCookies, Unreadable};
//!
//! let mut headers = HeaderMap::new();
//! headers.append(COOKIE, HeaderValue::from_static("theme=dark; i%64=stolen;;"));
//! headers.append(COOKIE, HeaderValue::from_bytes(b"x=\xff").unwrap());
//!
//! let cookies = RequestCookies::read(&headers);
//! let mut kept = CookieHeaderBuilder::default();
//! for piece in cookies.pieces() {
//!     match piece {
//!         // `i%64` is `id` to tower-cookies and axum-extra: not spelled as `id`, so out.
//!         Ok(pair) if pair.is_named("id") && !pair.is_spelled("id") => {}
//!         Ok(pair) => kept.push(pair.written_name(), pair.value()),
//!         Err(why) => assert_eq!(*why, Unreadable::NotUtf8),
//!     }
//! }
//! drop(cookies); // the reading borrows the headers
//! kept.replace(&mut headers);
//! assert_eq!(headers.get_all(COOKIE).iter().collect::<Vec<_>>(), ["theme=dark"]);
//! ```

use std::borrow::Cow;

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;
use smallvec::SmallVec;

/// A piece of a `Cookie` header that cannot be read the same way by every parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unreadable {
    /// Bytes that are not UTF-8 (Latin-1, say). `tower-cookies` and `axum-extra` skip the
    /// whole header value; what name the bytes carry is nobody's to tell.
    NotUtf8,
    /// A percent-escape that does not decode to UTF-8: the decoding parsers skip the pair,
    /// `Cookie::parse` reads it raw.
    BadEscape,
    /// No `=`, or nothing before it: not a cookie to any parser.
    NotAPair,
}

impl Unreadable {
    /// A stable code, for tracing events and counters.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotUtf8 => "not_utf8",
            Self::BadEscape => "bad_escape",
            Self::NotAPair => "not_a_pair",
        }
    }
}

/// One `name=value` pair of a `Cookie` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'h> {
    written_name: &'h str,
    name: Cow<'h, str>,
    value: &'h str,
}

impl<'h> Pair<'h> {
    /// The name as `tower-cookies`, `axum-extra` and `Cookie::parse_encoded` read it:
    /// trimmed, then percent-decoded.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as written (trimmed), as `Cookie::parse` reads it.
    pub fn written_name(&self) -> &'h str {
        self.written_name
    }

    /// The value as written (trimmed, quotes kept): what a binding's MAC covers. Decoding
    /// parsers decode it; `Cookie::parse` reads it as is.
    pub fn value(&self) -> &'h str {
        self.value
    }

    /// Whether some parser reads this pair as cookie `name`. A layer that judges `name`
    /// must judge every such pair.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.written_name == name
    }

    /// Whether every parser reads this pair as cookie `name`: written exactly so, with
    /// nothing to decode.
    pub fn is_spelled(&self, name: &str) -> bool {
        self.written_name == name && self.name == name
    }

    /// Whether the pair is visible ASCII (or tab), which `HeaderValue::to_str` — and so
    /// `axum-extra` — requires of the whole header value.
    pub fn is_visible_ascii(&self) -> bool {
        is_visible_ascii(self.written_name) && is_visible_ascii(self.value)
    }
}

/// Whether `name` can be a cookie's name as the layers compare it: an RFC 9110 §5.6.2
/// token (RFC 6265 §4.1.1 `cookie-name`), which every parser reads the same way, written
/// and decoded alike (no `%`).
pub fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b))
}

fn is_visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| (b' '..0x7f).contains(&b) || b == b'\t')
}

/// Every piece of a request's `Cookie` headers, in order: a [`Pair`], or why it is
/// [`Unreadable`]. Blank pieces (a stray `;`, `;;`, white space) are no pieces: no parser
/// reads anything from them.
#[derive(Debug, Clone, Default)]
pub struct RequestCookies<'h> {
    pieces: SmallVec<[Result<Pair<'h>, Unreadable>; 4]>,
}

impl<'h> RequestCookies<'h> {
    /// Read every `Cookie` header of `headers`.
    pub fn read(headers: &'h HeaderMap) -> Self {
        Self::read_values(headers.get_all(COOKIE))
    }

    /// Read these `Cookie` header values.
    pub fn read_values(values: impl IntoIterator<Item = &'h HeaderValue>) -> Self {
        let pieces = values
            .into_iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
            .filter_map(read_piece)
            .collect();
        Self { pieces }
    }

    /// Every piece, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &Result<Pair<'h>, Unreadable>> {
        self.pieces.iter()
    }

    /// Every readable pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = &Pair<'h>> {
        self.pieces.iter().filter_map(|p| p.as_ref().ok())
    }

    /// Every pair some parser reads as cookie `name` ([`Pair::is_named`]), in order.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Pair<'h>> {
        self.pairs().filter(move |p| p.is_named(name))
    }

    /// Whether there is no piece at all.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }
}

/// One `;`-separated piece: `None` when blank.
fn read_piece(bytes: &[u8]) -> Option<Result<Pair<'_>, Unreadable>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some(Err(Unreadable::NotUtf8));
    };
    if text.trim().is_empty() {
        return None;
    }
    // `cookie`'s `parse_inner`: the first `=`, both sides trimmed, a name required.
    let Some((name, value)) = text.split_once('=') else {
        return Some(Err(Unreadable::NotAPair));
    };
    let (written_name, value) = (name.trim(), value.trim());
    if written_name.is_empty() {
        return Some(Err(Unreadable::NotAPair));
    }
    // `name_val_decoded`: both are decoded, and either failing fails the pair. (Text
    // without a `%` decodes to itself: most cookies take the short way.)
    let decodes = |s: &str| !s.contains('%') || percent_decode_str(s).decode_utf8().is_ok();
    if !decodes(value) {
        return Some(Err(Unreadable::BadEscape));
    }
    let name = if written_name.contains('%') {
        match percent_decode_str(written_name).decode_utf8() {
            Ok(name) => name,
            Err(_) => return Some(Err(Unreadable::BadEscape)),
        }
    } else {
        Cow::Borrowed(written_name)
    };
    Some(Ok(Pair {
        written_name,
        name,
        value,
    }))
}

/// The `Cookie` header a layer hands on: the pairs it read and judged, and nothing else.
#[derive(Debug, Clone, Default)]
pub struct CookieHeaderBuilder {
    ascii: String,
    other: String,
}

impl CookieHeaderBuilder {
    /// Add `name=value`. Pass a name and value as a [`Pair`] gave them (or as the
    /// application's `Set-Cookie` wrote them): neither may contain `;`, and the name no `=`.
    pub fn push(&mut self, name: &str, value: &str) {
        debug_assert!(!name.contains([';', '=']) && !value.contains(';'));
        let line = if is_visible_ascii(name) && is_visible_ascii(value) {
            &mut self.ascii
        } else {
            &mut self.other
        };
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(name);
        line.push('=');
        line.push_str(value);
    }

    /// Replace every `Cookie` header of `headers` with what was pushed (none if nothing).
    pub fn replace(self, headers: &mut HeaderMap) {
        headers.remove(COOKIE);
        for line in [self.ascii, self.other] {
            if line.is_empty() {
                continue;
            }
            // Pushed pairs come from header values, so they are valid header bytes.
            if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(line)) {
                headers.append(COOKIE, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&[u8]]) -> Vec<Result<(String, String, String), Unreadable>> {
        let values: Vec<HeaderValue> = values
            .iter()
            .map(|v| HeaderValue::from_bytes(v).unwrap())
            .collect();
        RequestCookies::read_values(&values)
            .pieces()
            .map(|p| {
                p.as_ref().map(|p| {
                    (
                        p.written_name().to_string(),
                        p.name().to_string(),
                        p.value().to_string(),
                    )
                })
            })
            .map(|r| r.map_err(|e| *e))
            .collect()
    }

    fn pair(w: &str, n: &str, v: &str) -> Result<(String, String, String), Unreadable> {
        Ok((w.into(), n.into(), v.into()))
    }

    #[test]
    fn names_are_read_both_ways_and_values_as_written() {
        assert_eq!(
            read(&[b" id = a b ;\tx=\"q\"; i%64=v;%20id=w; a=%41"]),
            vec![
                pair("id", "id", "a b"),
                pair("x", "x", "\"q\""),
                pair("i%64", "id", "v"),
                pair("%20id", " id", "w"),
                pair("a", "a", "%41"),
            ]
        );
        // Unicode white space is trimmed, as `str::trim` does in `cookie`.
        assert_eq!(
            read(&["\u{a0}id\u{3000}=v".as_bytes()]),
            vec![pair("id", "id", "v")]
        );
    }

    #[test]
    fn blank_pieces_vanish_and_unreadable_ones_say_why() {
        assert_eq!(read(&[b";; ;\t;"]), vec![]);
        assert_eq!(
            read(&[b"a=1; \xe9t\xe9=2; novalue; =x; %ff=1; b=%c3%28"]),
            vec![
                pair("a", "a", "1"),
                Err(Unreadable::NotUtf8),
                Err(Unreadable::NotAPair),
                Err(Unreadable::NotAPair),
                Err(Unreadable::BadEscape),
                Err(Unreadable::BadEscape),
            ]
        );
        // Several headers are read in order, as one.
        assert_eq!(
            read(&[b"a=1", b"b=2;", b";c=3"]),
            vec![
                pair("a", "a", "1"),
                pair("b", "b", "2"),
                pair("c", "c", "3")
            ]
        );
    }

    #[test]
    fn named_and_spelled() {
        let values = [HeaderValue::from_static("i%64=1; id=2; ID=3; id =4")];
        let cookies = RequestCookies::read_values(&values);
        let named: Vec<&str> = cookies.named("id").map(|p| p.value()).collect();
        assert_eq!(named, ["1", "2", "4"], "case matters, as in every jar");
        let spelled: Vec<&str> = cookies
            .pairs()
            .filter(|p| p.is_spelled("id"))
            .map(|p| p.value())
            .collect();
        assert_eq!(spelled, ["2", "4"]);
    }

    proptest::proptest! {
        /// Each piece reads as `cookie`'s own parsers read it: `Cookie::parse` gives the
        /// written name and the value, `Cookie::parse_encoded` the decoded name, and a
        /// piece either fails to parse is unreadable (or blank, which they skip).
        #[test]
        fn a_piece_reads_as_the_cookie_crate_reads_it(
            piece in "[ \t\u{a0}\u{3000}]{0,2}[a-zA-Z%=\"é ]{0,4}(%[0-9a-fA-F]{0,2})?[ =a-z%\u{85}\t]{0,4}"
        ) {
            let value = HeaderValue::from_str(&piece).unwrap();
            let ours = RequestCookies::read_values([&value]);
            let raw = cookie::Cookie::parse(piece.as_str());
            let decoded = cookie::Cookie::parse_encoded(piece.as_str());
            match ours.pieces().next() {
                None => proptest::prop_assert!(piece.trim().is_empty()),
                Some(Ok(pair)) => {
                    let (raw, decoded) = (raw.unwrap(), decoded.unwrap());
                    proptest::prop_assert_eq!(pair.written_name(), raw.name());
                    proptest::prop_assert_eq!(pair.value(), raw.value());
                    proptest::prop_assert_eq!(pair.name(), decoded.name());
                }
                Some(Err(Unreadable::NotAPair)) => proptest::prop_assert!(raw.is_err()),
                Some(Err(Unreadable::BadEscape)) => {
                    proptest::prop_assert!(raw.is_ok() && decoded.is_err())
                }
                Some(Err(Unreadable::NotUtf8)) => proptest::prop_assert!(false, "valid UTF-8"),
            }
        }
    }

    #[test]
    fn the_builder_joins_ascii_first_and_other_bytes_apart() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("old=1"));
        let mut b = CookieHeaderBuilder::default();
        b.push("a", "1");
        b.push("é", "x");
        b.push("b", "say \"hi\"");
        b.replace(&mut headers);
        let values: Vec<&[u8]> = headers
            .get_all(COOKIE)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(values, [&b"a=1; b=say \"hi\""[..], "é=x".as_bytes()]);
        CookieHeaderBuilder::default().replace(&mut headers);
        assert!(headers.get(COOKIE).is_none());
    }
}
