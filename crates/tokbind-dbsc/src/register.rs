//! The registration endpoint (W3C DBSC): a proof answering a registration challenge starts
//! a session, and re-binds the application's login cookies to its key.

use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use tokbind_proto::Freshness;
use tower_tokbind::cookie::jar::RequestCookies;

use crate::Config;
use crate::cookies::{cookie_digest, cookie_value, mint, retired_key, set_cookie};
use crate::endpoint::{
    Answer, json_response, problem, proof_header, proof_refused, store_failure, with_challenge,
};
use crate::instructions::{Credential, Scope, SessionInstructions};
use crate::proof;
use crate::session::{
    RegistrationChallenge, SessionRecord, issue_challenge, random, retire, session_key,
};
use crate::store::StoreError;

pub(crate) async fn register(c: &Config, headers: &HeaderMap) -> Answer {
    let now = SystemTime::now();
    let Some(jwt) = proof_header(headers) else {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "dbsc_proof_missing",
            "registration needs a Secure-Session-Response proof",
        ));
    };
    let endpoint = format!("{}{}", c.origin, c.register_path);
    let proof = proof::verify_registration(&jwt, &c.algorithms, &endpoint)
        .map_err(|e| proof_refused(&e))?;
    // The challenge is single use, at any instance sharing the store.
    let issued = c
        .store
        .take(&format!("dbsc:registration:{}", proof.challenge))
        .await
        .map_err(store_failure)?
        .and_then(|b| serde_json::from_slice::<RegistrationChallenge>(&b).ok());
    let Some(issued) = issued else {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "dbsc_unknown_challenge",
            "the proof answers no challenge this server has outstanding",
        ));
    };
    if issued.authorization != proof.authorization {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "dbsc_authorization_mismatch",
            "the proof's authorization is not the one sent",
        ));
    }
    let cookies = RequestCookies::read(headers);
    let mut presented: Vec<String> = c
        .rebind
        .iter()
        .filter_map(|(name, _)| Some(cookie_digest(name, cookie_value(&cookies, name)?)))
        .collect();
    presented.sort();
    if presented != issued.login_cookies {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "dbsc_session_mismatch",
            "the registration does not come with the session its challenge was issued to",
        ));
    }
    let sid = format!("S{}", random(12).replace(['-', '_'], "x"));
    // The application's long-lived cookies, issued unbound at login, are bound to the
    // session key from now on; their unbound form is retired (for as long as the session
    // refreshes, and `login_cookie_retirement` after).
    let bound_key = session_key(&proof.key, &sid, Freshness::ThisRequest);
    let mut rebound = Vec::new();
    let mut retired = Vec::new();
    for (name, attributes) in &c.rebind {
        let Some(presented) = cookie_value(&cookies, name) else {
            continue;
        };
        let Ok(value) = c.keys.open(None, name, presented) else {
            continue;
        };
        let bound = c.keys.bind(Some(&bound_key), name, value);
        rebound.push(format!("{name}={bound}; {attributes}"));
        retired.push(retired_key(name, presented));
    }
    let mut record = SessionRecord {
        jwk: proof.key.canonical().to_string(),
        challenges: Vec::new(),
        newest_at: 0,
        retired,
    };
    retire(c, &record).await.map_err(store_failure)?;
    let next = issue_challenge(c, &sid, &mut record, SystemTime::now())
        .await
        .map_err(store_failure)?;
    let instructions = SessionInstructions {
        session_identifier: sid.clone(),
        refresh_url: c.refresh_path.clone(),
        scope: Scope {
            include_site: false,
            scope_specification: Vec::new(),
        },
        credentials: vec![Credential {
            kind: "cookie",
            name: c.cookie_name.clone(),
            attributes: c.cookie_attributes.clone(),
        }],
        allowed_refresh_initiators: c.allowed_refresh_initiators.clone(),
    };
    let body = serde_json::to_value(&instructions)
        .map_err(|e| store_failure(StoreError(e.to_string())))?;
    let mut res = with_challenge(json_response(StatusCode::OK, Some(body)), &next, &sid);
    set_cookie(&mut res, &mint(c, &sid, &proof.key, now));
    for line in &rebound {
        set_cookie(&mut res, line);
    }
    tracing::debug!(session = %sid, jkt = %proof.key.thumbprint(), "DBSC session registered");
    Ok(res)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use tokbind_testkit::DbscBrowser;

    use crate::testing::{Site, challenge, json, reason, request};

    fn register(proof: &str) -> http::Request<axum::body::Body> {
        request(
            "POST",
            "/dbsc/register",
            &[("secure-session-response", proof)],
        )
    }

    #[tokio::test]
    async fn a_proof_answering_a_login_challenge_starts_a_session_once() {
        let site = Site::new();
        let browser = DbscBrowser::new();
        let proof = browser.proof(&site.login("/login").await, true);
        let res = site.send(register(&proof)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let sid = json(&res)["session_identifier"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(json(&res)["credentials"][0]["name"], "__Host-dbsc");
        assert!(!challenge(&res, "secure-session-challenge").is_empty());
        let set = res.headers()["set-cookie"].to_str().unwrap();
        assert!(set.starts_with(&format!("__Host-dbsc={sid}.")), "{set}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["cross-origin-resource-policy"], "same-origin");
        // The challenge is used up.
        let again = site.send(register(&proof)).await;
        assert_eq!(
            (again.status(), reason(&again).as_str()),
            (StatusCode::BAD_REQUEST, "dbsc_unknown_challenge")
        );
    }

    #[tokio::test]
    async fn registrations_that_do_not_answer_a_challenge_as_issued_are_refused() {
        let site = Site::new();
        let browser = DbscBrowser::new();
        let res = site.send(request("POST", "/dbsc/register", &[])).await;
        assert_eq!(
            (res.status(), reason(&res).as_str()),
            (StatusCode::BAD_REQUEST, "dbsc_proof_missing")
        );
        let res = site
            .send(register(&browser.proof("never-issued", true)))
            .await;
        assert_eq!(reason(&res), "dbsc_unknown_challenge");
        // Issued with an authorization the proof does not carry.
        let issued = site.login("/login?auth=abc").await;
        let res = site.send(register(&browser.proof(&issued, true))).await;
        assert_eq!(reason(&res), "dbsc_authorization_mismatch");
        // A refresh proof (no key) is not a registration.
        let issued = site.login("/login").await;
        let res = site.send(register(&browser.proof(&issued, false))).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{:?}", res.body());
    }

    #[tokio::test]
    async fn the_advertised_algorithms_are_those_the_verifier_accepts() {
        let site = Site::new();
        let res = site.send(request("GET", "/login", &[])).await;
        let offer = res.headers()["secure-session-registration"]
            .to_str()
            .unwrap();
        assert!(offer.starts_with("(ES256 RS256);"), "{offer}");
    }
}
