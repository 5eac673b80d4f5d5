//! What DPoP and DBSC clients send: DPoP proofs, DBSC registration and refresh proofs, and
//! the DBSC header fields parsed tolerantly for Chromium. The first byte picks the parser,
//! the rest is its input. None may panic. No DPoP or refresh proof the fuzzer makes may
//! verify (only the holder of a key can sign with it); a registration proof carries its own
//! key, so a captured one in the seeds does verify, and then must stop verifying once its
//! signature is altered.
#![no_main]

use std::sync::LazyLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tokbind_dbsc::header::{bare_or_string, is_session_id, sf_string, skipped};
use tokbind_dbsc::proof::{verify_refresh, verify_registration};
use tokbind_dpop::{DpopVerifier, RequestFacts};
use tokbind_jose::Algorithm;
use tokbind_jose::jwk::PublicJwk;

static DPOP: LazyLock<DpopVerifier> = LazyLock::new(DpopVerifier::new);
/// A stored DBSC session key (the P-256 key of RFC 7515 appendix A.3).
static SESSION_KEY: LazyLock<PublicJwk> = LazyLock::new(|| {
    PublicJwk::from_value(&serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }))
    .unwrap()
});
const OFFERED: [Algorithm; 2] = [Algorithm::ES256, Algorithm::RS256];
const REGISTER: &str = "https://app.example/dbsc/register";
const REFRESH: &str = "https://app.example/dbsc/refresh";

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 4 {
        0 => {
            let facts = RequestFacts {
                method: "GET",
                htu: "https://server.example.com/resource",
                access_token: Some("token"),
            };
            assert!(DPOP.check(&text, &facts, SystemTime::now()).is_err());
        }
        1 => {
            if verify_registration(&text, &OFFERED, REGISTER).is_ok() {
                let (signed, signature) = text.rsplit_once('.').unwrap();
                let mut altered = signature.to_string();
                let first = if altered.starts_with('A') { "B" } else { "A" };
                altered.replace_range(..1, first);
                let forged = format!("{signed}.{altered}");
                assert!(verify_registration(&forged, &OFFERED, REGISTER).is_err());
            }
        }
        2 => assert!(verify_refresh(&text, &SESSION_KEY, &OFFERED, REFRESH).is_err()),
        _ => {
            if let Some(value) = bare_or_string(&text) {
                // What parses is plain printable ASCII, and our own encoding of it parses
                // back to the same.
                assert_eq!(bare_or_string(&sf_string(&value)), Some(value));
            }
            for member in skipped(&text) {
                assert!(is_session_id(&member.session_id));
            }
        }
    }
});
