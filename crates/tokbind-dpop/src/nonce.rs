//! Server nonces (RFC 9449 §8, §9): stateless, so every instance that shares the secret
//! accepts every other's nonces.
//!
//! A nonce is `base64url(issued_at ‖ HMAC-SHA-256(secret, "dpop nonce" ‖ issued_at)[..16])`:
//! unpredictable without the secret, and its age is checked without any store. Replay of
//! proofs is still stopped by the `jti` cache; the nonce bounds how long a proof made in
//! advance stays usable (RFC 9449 §11.2).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const DOMAIN: &[u8] = b"tokbind dpop nonce v1\0";
const TAG_LEN: usize = 16;

/// Issues and checks nonces.
#[derive(Clone)]
pub struct NonceIssuer {
    key: hmac::Key,
    lifetime: Duration,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NonceIssuer(lifetime {:?})", self.lifetime)
    }
}

/// The secret is shorter than 32 bytes, or none could be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a nonce secret must be at least 32 random bytes")]
pub struct NonceKeyError;

impl NonceIssuer {
    /// Nonces under `secret` (the same on every instance), valid for `lifetime`.
    pub fn new(secret: &[u8], lifetime: Duration) -> Result<Self, NonceKeyError> {
        if secret.len() < 32 {
            return Err(NonceKeyError);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime,
        })
    }

    /// Nonces under a fresh random secret (one instance only).
    pub fn generate(lifetime: Duration) -> Result<Self, NonceKeyError> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| NonceKeyError)?;
        Self::new(&secret, lifetime)
    }

    /// How long a nonce stays valid.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn tag(&self, issued: u64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        ctx.update(&issued.to_be_bytes());
        ctx.sign()
    }

    /// A nonce issued at `now`.
    pub fn issue(&self, now: SystemTime) -> String {
        let issued = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut raw = [0u8; 8 + TAG_LEN];
        raw[..8].copy_from_slice(&issued.to_be_bytes());
        raw[8..].copy_from_slice(&self.tag(issued).as_ref()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// How old a nonce this issuer made is, or `None` if it did not make it (or it comes
    /// from the future).
    pub fn age(&self, nonce: &str, now: SystemTime) -> Option<Duration> {
        let mut raw = [0u8; 8 + TAG_LEN + 3];
        if URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw).ok()? != 8 + TAG_LEN {
            return None;
        }
        let issued = u64::from_be_bytes(raw[..8].try_into().ok()?);
        verify_slices_are_equal(&self.tag(issued).as_ref()[..TAG_LEN], &raw[8..8 + TAG_LEN])
            .ok()?;
        // Only this issuer's secret makes a valid tag, but a time past what SystemTime holds
        // is refused rather than trusted to be impossible.
        let issued = UNIX_EPOCH.checked_add(Duration::from_secs(issued))?;
        now.duration_since(issued).ok()
    }

    /// Whether `nonce` is one of ours and still valid at `now`.
    pub fn is_valid(&self, nonce: &str, now: SystemTime) -> bool {
        self.age(nonce, now).is_some_and(|age| age <= self.lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_checked_by_secret_and_age() {
        let issuer = NonceIssuer::new(&[7; 32], Duration::from_secs(60)).unwrap();
        let now = SystemTime::now();
        let nonce = issuer.issue(now);
        assert!(
            nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        // Issue times are whole seconds: a nonce lives between `lifetime - 1s` and `lifetime`.
        assert!(issuer.is_valid(&nonce, now + Duration::from_secs(59)));
        assert!(!issuer.is_valid(&nonce, now + Duration::from_secs(62)));
        // Another instance with the same secret accepts it; one with another does not.
        let same = NonceIssuer::new(&[7; 32], Duration::from_secs(60)).unwrap();
        assert!(same.is_valid(&nonce, now));
        let other = NonceIssuer::new(&[8; 32], Duration::from_secs(60)).unwrap();
        assert!(!other.is_valid(&nonce, now));
        for bad in ["", "eyJ7S_zG.eyJH0-Z.HX4w-7v", "AAAA", &nonce[1..]] {
            assert!(!issuer.is_valid(bad, now), "{bad}");
        }
        assert!(NonceIssuer::new(&[1; 16], Duration::from_secs(1)).is_err());
    }

    /// A nonce with this issuer's valid tag over `issued` seconds (only the secret's
    /// holder can make one).
    fn signed_nonce(issuer: &NonceIssuer, issued: u64) -> String {
        let mut raw = [0u8; 8 + TAG_LEN];
        raw[..8].copy_from_slice(&issued.to_be_bytes());
        raw[8..].copy_from_slice(&issuer.tag(issued).as_ref()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    #[test]
    fn an_issue_time_out_of_range_is_invalid_not_a_panic() {
        let issuer = NonceIssuer::new(&[7; 32], Duration::from_secs(60)).unwrap();
        let now = SystemTime::now();
        for issued in [u64::MAX, 1 << 63, (1 << 63) - 1, u64::MAX / 1000] {
            let nonce = signed_nonce(&issuer, issued);
            assert_eq!(issuer.age(&nonce, now), None, "{issued}");
            assert!(!issuer.is_valid(&nonce, now), "{issued}");
        }
        // The same construction with a real issue time is a valid nonce.
        let issued = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert!(issuer.is_valid(&signed_nonce(&issuer, issued), now));
    }
}
