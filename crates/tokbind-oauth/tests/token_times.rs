//! The times in a JWT (`exp`, `iat`, `nbf`), signed with the issuer's real key so that
//! every check runs after the signature verifies: out-of-range values are refused with
//! their reason, in-range ones keep their meaning, and nothing overflows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::Map;
use tokbind_oauth::{TokenError, TokenIssuer, TokenVerifier};
use tokbind_proto::base64url;

const ISS: &str = "https://idp.example";
const AUD: &str = "api";

/// An issuer whose private key the test also holds, to sign payloads no issuer writes.
struct Signer {
    pair: EcdsaKeyPair,
    verifier: TokenVerifier,
}

impl Signer {
    fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let issuer = TokenIssuer::from_pkcs8(ISS, pkcs8.as_ref()).unwrap();
        Self {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap(),
            verifier: TokenVerifier::new(&issuer.jwks(), ISS, AUD).unwrap(),
        }
    }

    /// A token whose time claims are the raw JSON texts given (`None`: absent).
    fn token(&self, exp: Option<&str>, iat: Option<&str>, nbf: Option<&str>) -> String {
        let mut payload = format!(r#"{{"iss":"{ISS}","sub":"alice","aud":"{AUD}""#);
        for (name, value) in [("exp", exp), ("iat", iat), ("nbf", nbf)] {
            if let Some(v) = value {
                payload.push_str(&format!(r#","{name}":{v}"#));
            }
        }
        payload.push('}');
        let input = format!(
            "{}.{}",
            base64url::encode(br#"{"alg":"ES256","typ":"JWT"}"#),
            base64url::encode(payload.as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", base64url::encode(sig.as_ref()))
    }

    fn check(
        &self,
        exp: Option<&str>,
        iat: Option<&str>,
        nbf: Option<&str>,
    ) -> Result<(), TokenError> {
        self.verifier.decode(&self.token(exp, iat, nbf)).map(|_| ())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Out of range for a time, in every way JSON can say it.
const OUT_OF_RANGE: &[&str] = &[
    "18446744073709551615", // u64::MAX
    "18446744073709551616", // u64::MAX + 1 (a float to the JSON parser)
    "9223372036854775807",  // i64::MAX
    "9223372036854775808",  // i64::MAX + 1
    "253402300800",         // one second past 9999-12-31T23:59:59Z
    "1e300",
    "1.7976931348623157e308", // f64::MAX
    "-1",
    "-9223372036854775808", // i64::MIN
    "-1e300",
    "\"1700000000\"",
    "null",
];

#[test]
fn each_time_claim_out_of_range_is_refused_for_that_claim() {
    let s = Signer::new();
    let (exp, iat) = ((now() + 300).to_string(), now().to_string());
    assert!(s.check(Some(&exp), Some(&iat), None).is_ok());
    for bad in OUT_OF_RANGE {
        for (claim, result) in [
            ("exp", s.check(Some(bad), Some(&iat), None)),
            ("iat", s.check(Some(&exp), Some(bad), None)),
            ("nbf", s.check(Some(&exp), Some(&iat), Some(bad))),
        ] {
            let err = result.unwrap_err();
            assert!(
                matches!(err, TokenError::Time { claim: c, .. } if c == claim),
                "{claim} = {bad}: {err:?}"
            );
            assert_eq!(err.reason(), "token_bad_time", "{claim} = {bad}");
        }
    }
    // exp and iat are required.
    let missing = s.check(None, Some(&iat), None).unwrap_err();
    assert_eq!(missing.to_string(), "the token's exp is missing");
    let missing = s.check(Some(&exp), None, None).unwrap_err();
    assert_eq!(missing.to_string(), "the token's iat is missing");
    // Beyond every JSON number type: the payload does not parse at all.
    let err = s.check(Some("1e400"), Some(&iat), None).unwrap_err();
    assert_eq!(err.reason(), "invalid_token", "{err}");
}

#[test]
fn times_in_range_keep_their_meaning() {
    let s = Signer::new();
    let now = now();
    let iat = now.to_string();
    let at = |offset: i64| (now as i64 + offset).to_string();
    // exp: 30 s of leeway, no more.
    assert!(s.check(Some(&at(-20)), Some(&iat), None).is_ok());
    let err = s.check(Some(&at(-3600)), Some(&iat), None).unwrap_err();
    assert_eq!(err.reason(), "token_expired");
    assert!(matches!(
        s.check(Some("0"), Some(&iat), None),
        Err(TokenError::Expired)
    ));
    // The last second a NumericDate can hold is a valid (if distant) expiry.
    assert!(s.check(Some("253402300799"), Some(&iat), None).is_ok());
    // nbf: checked (RFC 7519 §4.1.5), with the same leeway.
    let exp = at(3600);
    assert!(s.check(Some(&exp), Some(&iat), Some(&at(20))).is_ok());
    let err = s.check(Some(&exp), Some(&iat), Some(&at(600))).unwrap_err();
    assert_eq!(err.reason(), "token_not_yet_valid");
    assert!(matches!(
        s.check(Some(&exp), Some(&iat), Some("253402300799")),
        Err(TokenError::NotYetValid)
    ));
    // NumericDates may have fractions (RFC 7519 §2); they are dropped.
    let claims = s
        .verifier
        .decode(&s.token(
            Some(&format!("{exp}.9")),
            Some(&format!("{now}.5")),
            Some("1.5"),
        ))
        .unwrap();
    assert_eq!((claims.exp, claims.iat), (now + 3600, now));
    // A huge leeway saturates instead of overflowing.
    let lenient = s.verifier.clone().with_leeway(Duration::MAX);
    assert!(
        lenient
            .decode(&s.token(Some("0"), Some(&iat), Some("253402300799")))
            .is_ok()
    );
    // Ignoring expiry still reads exp strictly.
    let archive = s.verifier.clone().insecure_ignore_expiry();
    assert!(
        archive
            .decode(&s.token(Some("0"), Some(&iat), None))
            .is_ok()
    );
    assert_eq!(
        archive
            .decode(&s.token(Some("-1"), Some(&iat), None))
            .unwrap_err()
            .reason(),
        "token_bad_time"
    );
}

#[test]
fn an_issuer_refuses_a_lifetime_past_what_a_numeric_date_holds() {
    let issuer = TokenIssuer::generate(ISS).unwrap();
    for lifetime in [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(1 << 40),
    ] {
        let err = issuer
            .token("alice", AUD, lifetime, None, None, Map::new())
            .unwrap_err();
        assert_eq!(err.reason(), "lifetime_out_of_range", "{lifetime:?}");
    }
    let token = issuer
        .token(
            "alice",
            AUD,
            Duration::from_secs(300),
            None,
            None,
            Map::new(),
        )
        .unwrap();
    let verifier = TokenVerifier::new(&issuer.jwks(), ISS, AUD).unwrap();
    assert!(verifier.decode(&token).is_ok());
}
