//! JWT `NumericDate` (RFC 7519 §2): seconds since the epoch, read strictly from a claim
//! and turned into a time without overflow.
//!
//! A NumericDate may be a non-integer (RFC 7519 §2); fractions are dropped. What no real
//! time can be is refused: anything but a number, a negative number, and a number past
//! [`NumericDate::MAX`] (9999-12-31T23:59:59Z). The bound keeps every time this
//! workspace derives from a claim (a `SystemTime`, a claim plus a window) far from
//! overflow on every platform, and it is the last second RFC 3339 can write.
//!
//! ```
//! use tokbind_jose::numeric_date::{NumericDate, NumericDateError};
//!
//! let iat = NumericDate::from_json(&serde_json::json!(1562262616))?;
//! assert_eq!(iat.seconds(), 1562262616);
//! assert_eq!(
//!     NumericDate::from_json(&serde_json::json!(u64::MAX)),
//!     Err(NumericDateError::TooLate)
//! );
//! # Ok::<(), NumericDateError>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserializer;
use serde::de::{Deserialize as _, Error as _};
use serde_json::Value;

/// A NumericDate between the epoch and [`NumericDate::MAX`], in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NumericDate(u64);

/// Why a claim is not a usable NumericDate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumericDateError {
    /// The claim is absent (for callers whose claim is required).
    #[error("is missing")]
    Missing,
    /// Not a JSON number.
    #[error("is not a number")]
    NotANumber,
    /// A negative number: before the epoch.
    #[error("is before 1970")]
    BeforeEpoch,
    /// Past [`NumericDate::MAX`] (this includes every number beyond `u64` and `i64`).
    #[error("is after 9999-12-31T23:59:59Z")]
    TooLate,
}

impl NumericDate {
    /// The latest NumericDate accepted: 9999-12-31T23:59:59Z.
    pub const MAX: u64 = 253_402_300_799;

    /// Whole seconds since the epoch, if within range.
    pub fn from_seconds(seconds: u64) -> Result<Self, NumericDateError> {
        if seconds > Self::MAX {
            return Err(NumericDateError::TooLate);
        }
        Ok(Self(seconds))
    }

    /// A claim's value: a JSON number (integer or not) from 0 to [`MAX`](Self::MAX).
    pub fn from_json(value: &Value) -> Result<Self, NumericDateError> {
        let Value::Number(n) = value else {
            return Err(NumericDateError::NotANumber);
        };
        if let Some(seconds) = n.as_u64() {
            return Self::from_seconds(seconds);
        }
        if n.as_i64().is_some() {
            return Err(NumericDateError::BeforeEpoch);
        }
        // A float: serde_json also reads integers beyond u64 this way.
        match n.as_f64() {
            Some(f) if f < 0.0 => Err(NumericDateError::BeforeEpoch),
            // `as` truncates towards zero: the fraction is dropped. The bound is checked
            // on the float (below MAX + 1, exact in an f64), so nothing saturates.
            Some(f) if f.is_finite() && f < (Self::MAX + 1) as f64 => Ok(Self(f as u64)),
            Some(_) => Err(NumericDateError::TooLate),
            None => Err(NumericDateError::NotANumber),
        }
    }

    /// The named claim of a claims object: `Ok(None)` when absent.
    pub fn claim(
        claims: &serde_json::Map<String, Value>,
        name: &str,
    ) -> Result<Option<Self>, NumericDateError> {
        claims.get(name).map(Self::from_json).transpose()
    }

    /// Whole seconds since the epoch.
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// The time this date names.
    pub fn system_time(self) -> Result<SystemTime, NumericDateError> {
        // Within MAX on every platform this workspace builds for; checked all the same,
        // since SystemTime's range is the platform's.
        UNIX_EPOCH
            .checked_add(Duration::from_secs(self.0))
            .ok_or(NumericDateError::TooLate)
    }
}

/// Deserialize a NumericDate claim as whole seconds (for a `u64` field:
/// `#[serde(deserialize_with = "tokbind_jose::numeric_date::seconds")]`).
pub fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    NumericDate::from_json(&value)
        .map(NumericDate::seconds)
        .map_err(|e| D::Error::custom(format_args!("a NumericDate {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<u64, NumericDateError> {
        let value: Value = serde_json::from_str(json).unwrap();
        NumericDate::from_json(&value).map(NumericDate::seconds)
    }

    #[test]
    fn numbers_in_range_are_seconds() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("1562262616"), Ok(1_562_262_616));
        assert_eq!(parse("1562262616.9"), Ok(1_562_262_616));
        assert_eq!(parse("1.5e9"), Ok(1_500_000_000));
        assert_eq!(parse("-0.0"), Ok(0));
        assert_eq!(parse("253402300799"), Ok(NumericDate::MAX));
        assert_eq!(parse("253402300799.5"), Ok(NumericDate::MAX));
        let max = NumericDate::from_seconds(NumericDate::MAX).unwrap();
        assert!(max.system_time().unwrap() > SystemTime::now());
    }

    #[test]
    fn everything_else_is_refused_without_overflow() {
        use NumericDateError::*;
        for (json, why) in [
            ("253402300800", TooLate),
            ("9223372036854775807", TooLate),  // i64::MAX
            ("9223372036854775808", TooLate),  // i64::MAX + 1
            ("18446744073709551615", TooLate), // u64::MAX
            ("18446744073709551616", TooLate), // u64::MAX + 1: a float to serde_json
            ("1e19", TooLate),
            ("1e300", TooLate),
            ("1.7976931348623157e308", TooLate),
            ("-1", BeforeEpoch),
            ("-9223372036854775808", BeforeEpoch), // i64::MIN
            ("-1e300", BeforeEpoch),
            ("-0.5", BeforeEpoch),
            ("\"1562262616\"", NotANumber),
            ("null", NotANumber),
            ("true", NotANumber),
            ("[1]", NotANumber),
        ] {
            assert_eq!(parse(json), Err(why), "{json}");
        }
        assert_eq!(NumericDate::from_seconds(u64::MAX), Err(TooLate));
    }

    #[test]
    fn a_claim_may_be_absent() {
        let claims = serde_json::json!({"iat": 5, "exp": "soon"});
        let claims = claims.as_object().unwrap();
        assert_eq!(
            NumericDate::claim(claims, "iat").map(|d| d.map(NumericDate::seconds)),
            Ok(Some(5))
        );
        assert_eq!(NumericDate::claim(claims, "nbf"), Ok(None));
        assert_eq!(
            NumericDate::claim(claims, "exp"),
            Err(NumericDateError::NotANumber)
        );
    }

    #[test]
    fn a_u64_field_reads_through_the_same_rules() {
        #[derive(serde::Deserialize)]
        struct Claims {
            #[serde(deserialize_with = "seconds")]
            exp: u64,
        }
        let exp = |json: &str| serde_json::from_str::<Claims>(json).map(|c| c.exp);
        assert_eq!(exp(r#"{"exp": 1.5e9}"#).unwrap(), 1_500_000_000);
        let err = exp(r#"{"exp": 18446744073709551615}"#).unwrap_err();
        assert!(err.to_string().contains("after 9999"), "{err}");
        assert!(exp(r#"{"exp": -1}"#).is_err());
        assert!(exp(r#"{}"#).is_err());
    }
}
