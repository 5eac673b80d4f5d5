//! The binding format: a cookie value with a MAC suffix.
//!
//! ```text
//! bound to a key:      <value>~tb1.<base64url(HMAC-SHA-256(k, "bound" input))>
//! issued unbound:      <value>~tb0.<base64url(HMAC-SHA-256(k, "unbound" input))>
//! ```
//!
//! The MAC input is length-prefixed throughout and starts with a fixed domain label, so no
//! two (kind, mechanism, key ID, name, value) tuples share an input:
//!
//! ```text
//! "tokbind cookie binding v1" 0x00 ‖ kind (1 = bound, 0 = unbound)
//!   ‖ u16 len ‖ mechanism label ‖ u32 len ‖ key ID      (bound only)
//!   ‖ u16 len ‖ cookie name ‖ u32 len ‖ cookie value
//! ```
//!
//! `~` and `.` are cookie-octets (RFC 6265 §4.1.1) and base64url needs no quoting, so the
//! bound value is a valid cookie value whenever the original was. The original value may
//! itself contain `~`: the suffix is split at the *last* `~`, and the MAC covers the value.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokbind_proto::ProvenKey;

use super::jar::Unreadable;

const DOMAIN: &[u8] = b"tokbind cookie binding v1\0";
const BOUND: &str = "tb1.";
const UNBOUND: &str = "tb0.";
const TAG_LEN: usize = 32;

/// The MAC keys for cookie bindings: the first signs, every one verifies. Rotate by putting
/// a new key first and keeping the old ones until the cookies they signed have expired.
/// Give every instance behind a load balancer the same keys.
#[derive(Clone)]
pub struct CookieKeys {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CookieKeys({} keys)", self.keys.len())
    }
}

/// A cookie key is too short or could not be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieKeyError(&'static str);

impl std::fmt::Display for CookieKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for CookieKeyError {}

/// Shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

impl CookieKeys {
    /// One signing key (at least 32 random bytes).
    pub fn new(signing_key: &[u8]) -> Result<Self, CookieKeyError> {
        Ok(Self {
            keys: vec![Self::key(signing_key)?],
        })
    }

    /// Also accept bindings made with `key` (an older key being rotated out).
    pub fn with_previous(mut self, key: &[u8]) -> Result<Self, CookieKeyError> {
        self.keys.push(Self::key(key)?);
        Ok(self)
    }

    /// Keys from configuration: unpadded base64url keys of at least 32 bytes, separated by
    /// commas or whitespace, the signing key first and older ones after it. Give every
    /// instance the same value (an environment variable, a secrets file): then any
    /// instance checks any cookie.
    ///
    /// ```
    /// use tower_tokbind::cookie::CookieKeys;
    /// let keys = CookieKeys::from_config("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8, ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8")?;
    /// # Ok::<(), tower_tokbind::cookie::CookieKeyError>(())
    /// ```
    pub fn from_config(value: &str) -> Result<Self, CookieKeyError> {
        let mut keys = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
            .map(|k| {
                URL_SAFE_NO_PAD
                    .decode(k)
                    .map_err(|_| CookieKeyError("a cookie key is not unpadded base64url"))
            });
        let first = keys
            .next()
            .ok_or(CookieKeyError("no cookie key configured"))??;
        keys.try_fold(Self::new(&first)?, |set, k| set.with_previous(&k?))
    }

    /// A fresh key in the form [`CookieKeys::from_config`] reads.
    pub fn generate_config_value() -> Result<String, CookieKeyError> {
        let mut bytes = [0u8; MIN_KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CookieKeyError("the system random generator failed"))?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A fresh random key: bindings do not survive a restart and are not shared between
    /// instances. For demos and tests; load real keys from configuration.
    pub fn generate() -> Result<Self, CookieKeyError> {
        let mut bytes = [0u8; MIN_KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| CookieKeyError("the system random generator failed"))?;
        Self::new(&bytes)
    }

    fn key(bytes: &[u8]) -> Result<hmac::Key, CookieKeyError> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(CookieKeyError("a cookie key must be at least 32 bytes"));
        }
        Ok(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn tag(key: &hmac::Key, subject: Option<&ProvenKey>, name: &str, value: &str) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(DOMAIN);
        match subject {
            Some(k) => {
                ctx.update(&[1]);
                let label = k.mechanism().label().as_bytes();
                ctx.update(&(label.len() as u16).to_be_bytes());
                ctx.update(label);
                ctx.update(&(k.key_id().len() as u32).to_be_bytes());
                ctx.update(k.key_id());
            }
            None => ctx.update(&[0]),
        }
        ctx.update(&(name.len() as u16).to_be_bytes());
        ctx.update(name.as_bytes());
        ctx.update(&(value.len() as u32).to_be_bytes());
        ctx.update(value.as_bytes());
        ctx.sign()
    }

    /// The bound form of `value` for cookie `name`: bound to `subject`, or marked as
    /// issued unbound when `subject` is `None`. (What the layer does to `Set-Cookie`.) A
    /// name longer than 65,535 bytes makes a value that never opens.
    pub fn bind(&self, subject: Option<&ProvenKey>, name: &str, value: &str) -> String {
        let tag = Self::tag(&self.keys[0], subject, name, value);
        let kind = if subject.is_some() { BOUND } else { UNBOUND };
        format!("{value}~{kind}{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Whether `presented` has the form of a value bound to no key (what `bind(None, ..)`
    /// makes, the session cookie of a client that proved nothing). Only the form: whether
    /// its MAC is good is what [`open`](Self::open) checks.
    pub fn is_issued_unbound(presented: &str) -> bool {
        presented
            .rsplit_once('~')
            .is_some_and(|(_, suffix)| suffix.starts_with(UNBOUND))
    }

    /// Check a presented value against the request's proven key (or its absence).
    /// Returns the original value on success. (What the layer does to `Cookie`.)
    pub fn open<'v>(
        &self,
        subject: Option<&ProvenKey>,
        name: &str,
        presented: &'v str,
    ) -> Result<&'v str, DropReason> {
        let Some((value, suffix)) = presented.rsplit_once('~') else {
            return Err(DropReason::Unbound);
        };
        // The MAC input's length prefixes are 16 and 32 bits: longer would be ambiguous.
        // (`bind` never makes such a cookie open: it is refused here.)
        if u16::try_from(name.len()).is_err() || u32::try_from(value.len()).is_err() {
            return Err(DropReason::Malformed);
        }
        let (bound, tag) = if let Some(t) = suffix.strip_prefix(BOUND) {
            (true, t)
        } else if let Some(t) = suffix.strip_prefix(UNBOUND) {
            (false, t)
        } else {
            return Err(DropReason::Unbound);
        };
        let mut raw = [0u8; TAG_LEN + 3];
        match URL_SAFE_NO_PAD.decode_slice(tag, &mut raw) {
            Ok(TAG_LEN) => {}
            _ => return Err(DropReason::Malformed),
        }
        match (bound, subject) {
            (true, None) => return Err(DropReason::NoProof),
            (false, Some(_)) => return Err(DropReason::Unbound),
            _ => {}
        }
        let ok = self.keys.iter().any(|k| {
            verify_slices_are_equal(Self::tag(k, subject, name, value).as_ref(), &raw[..TAG_LEN])
                .is_ok()
        });
        if ok {
            Ok(value)
        } else {
            Err(DropReason::Mismatch)
        }
    }
}

/// Why a presented cookie was removed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// No binding where one is required (a bare value, or a cookie issued unbound
    /// presented by a client that proves a key).
    Unbound,
    /// A binding suffix that is not well-formed.
    Malformed,
    /// The binding does not verify for the key this request proved: a stolen cookie, a
    /// tampered value or MAC, or a key that was reset.
    Mismatch,
    /// A cookie bound to a key, on a request that proves no key.
    NoProof,
    /// Copies of one cookie that opened with different keys: which one the application
    /// reads depends on its parser, so none is handed on.
    Conflicting,
    /// A name that some application parser reads as a bound cookie's, written otherwise
    /// (`i%64` for `id`): only the exact spelling is checked, so no other is let through.
    Disguised,
    /// A piece of the header that the application's parsers cannot agree on.
    Unreadable(Unreadable),
}

impl DropReason {
    /// Every reason.
    pub const ALL: [Self; 9] = [
        Self::Unbound,
        Self::Malformed,
        Self::Mismatch,
        Self::NoProof,
        Self::Conflicting,
        Self::Disguised,
        Self::Unreadable(Unreadable::NotUtf8),
        Self::Unreadable(Unreadable::BadEscape),
        Self::Unreadable(Unreadable::NotAPair),
    ];

    /// A stable code, used in tracing events and counters.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unbound => "unbound",
            Self::Malformed => "malformed_binding",
            Self::Mismatch => "binding_mismatch",
            Self::NoProof => "no_proof",
            Self::Conflicting => "conflicting_copies",
            Self::Disguised => "disguised_name",
            Self::Unreadable(why) => why.reason(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokbind_proto::{KeyParameters, SigningKey, TokenBindingSigner};

    fn proven() -> ProvenKey {
        ProvenKey::token_binding(
            SigningKey::generate(KeyParameters::ECDSAP256)
                .unwrap()
                .token_binding_id(),
        )
    }

    #[test]
    fn bind_then_open_round_trips_and_everything_else_fails() {
        let keys = CookieKeys::generate().unwrap();
        let (me, thief) = (proven(), proven());
        let bound = keys.bind(Some(&me), "id", "s3ss~ion");
        assert!(bound.starts_with("s3ss~ion~tb1."));
        assert_eq!(keys.open(Some(&me), "id", &bound), Ok("s3ss~ion"));
        assert_eq!(
            keys.open(Some(&thief), "id", &bound),
            Err(DropReason::Mismatch)
        );
        assert_eq!(keys.open(None, "id", &bound), Err(DropReason::NoProof));
        assert_eq!(
            keys.open(Some(&me), "other", &bound),
            Err(DropReason::Mismatch),
            "name is bound"
        );
        assert_eq!(
            keys.open(Some(&me), "id", "s3ss~ion"),
            Err(DropReason::Unbound),
            "suffix stripped"
        );
        assert_eq!(
            keys.open(Some(&me), "id", "plain"),
            Err(DropReason::Unbound)
        );
        let tampered = bound.replacen("s3ss", "s3sS", 1);
        assert_eq!(
            keys.open(Some(&me), "id", &tampered),
            Err(DropReason::Mismatch)
        );
        let short = &bound[..bound.len() - 2];
        assert_eq!(
            keys.open(Some(&me), "id", short),
            Err(DropReason::Malformed)
        );
        // A name too long for its length prefix is refused, not wrapped around.
        let long = "n".repeat(usize::from(u16::MAX) + 1);
        let bound_long = keys.bind(Some(&me), &long, "v");
        assert_eq!(
            keys.open(Some(&me), &long, &bound_long),
            Err(DropReason::Malformed)
        );
        let other_keys = CookieKeys::generate().unwrap();
        assert_eq!(
            other_keys.open(Some(&me), "id", &bound),
            Err(DropReason::Mismatch)
        );
    }

    #[test]
    fn unbound_issue_cannot_be_confused_with_bound() {
        let keys = CookieKeys::generate().unwrap();
        let me = proven();
        let unbound = keys.bind(None, "id", "v");
        assert_eq!(keys.open(None, "id", &unbound), Ok("v"));
        assert!(CookieKeys::is_issued_unbound(&unbound));
        assert!(!CookieKeys::is_issued_unbound(&keys.bind(
            Some(&me),
            "id",
            "a~tb0.b"
        )));
        assert!(!CookieKeys::is_issued_unbound("v"));
        assert_eq!(
            keys.open(Some(&me), "id", &unbound),
            Err(DropReason::Unbound)
        );
        // A bound tag relabelled as unbound does not verify.
        let bound = keys.bind(Some(&me), "id", "v");
        let relabelled = bound.replace("~tb1.", "~tb0.");
        assert_eq!(
            keys.open(None, "id", &relabelled),
            Err(DropReason::Mismatch)
        );
    }

    #[test]
    fn keys_from_configuration() {
        let (a, b) = (
            CookieKeys::generate_config_value().unwrap(),
            CookieKeys::generate_config_value().unwrap(),
        );
        let me = proven();
        let one = CookieKeys::from_config(&a).unwrap();
        let bound = one.bind(Some(&me), "id", "v");
        // Another instance with the same configuration checks it; a rotated one too.
        assert_eq!(
            CookieKeys::from_config(&a)
                .unwrap()
                .open(Some(&me), "id", &bound),
            Ok("v")
        );
        let rotated = CookieKeys::from_config(&format!("{b}, {a}")).unwrap();
        assert_eq!(rotated.open(Some(&me), "id", &bound), Ok("v"));
        assert_ne!(
            rotated.bind(Some(&me), "id", "v"),
            bound,
            "the first key signs"
        );
        assert!(
            CookieKeys::from_config(&b)
                .unwrap()
                .open(Some(&me), "id", &bound)
                .is_err()
        );
        for bad in ["", " , ", "not base64!", "AAEC"] {
            assert!(CookieKeys::from_config(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rotation_first_key_signs_all_verify() {
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let me = proven();
        let before = CookieKeys::new(&old).unwrap();
        let issued_before = before.bind(Some(&me), "id", "v");
        let rotated = CookieKeys::new(&new).unwrap().with_previous(&old).unwrap();
        assert_eq!(rotated.open(Some(&me), "id", &issued_before), Ok("v"));
        let issued_after = rotated.bind(Some(&me), "id", "v");
        assert_ne!(issued_after, issued_before, "the new key signs");
        assert_eq!(
            CookieKeys::new(&new)
                .unwrap()
                .open(Some(&me), "id", &issued_after),
            Ok("v")
        );
        assert!(before.open(Some(&me), "id", &issued_after).is_err());
        assert!(CookieKeys::new(&[0; 31]).is_err());
    }
}
