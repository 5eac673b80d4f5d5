//! The refresh endpoint (W3C DBSC): a challenge, a proof answering it, a new short-lived
//! cookie.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tokbind_jose::jwk::PublicJwk;
use tokbind_proto::Freshness;
use tower_tokbind::cookie::jar::RequestCookies;

use crate::Config;
use crate::cookies::{mint, set_cookie};
use crate::endpoint::{
    Answer, json_response, problem, proof_header, proof_refused, store_failure, with_challenge,
};
use crate::header::{bare_or_string, is_session_id};
use crate::session::{
    MAX_LOOKUPS, SessionRecord, challenge_key, end_session, issue_challenge, load_session, retire,
    session_key, unix,
};
use crate::{header, metrics, proof};

/// A refresh without a proof within this long of the newest challenge gets that challenge
/// again instead of a new one: anyone who knows a session identifier can ask, and must
/// not be able to rotate the browser's cached challenge away.
pub(crate) const CHALLENGE_REUSE: Duration = Duration::from_secs(30);

/// Whether the request carries a cookie that only the session's holder was given: its
/// short-lived cookie (expired or not) or a login cookie re-bound to its key.
pub(crate) fn presents_session_cookie(
    c: &Config,
    headers: &HeaderMap,
    sid: &str,
    jwk: &PublicJwk,
) -> bool {
    let key = session_key(jwk, sid, Freshness::ThisRequest);
    let cookies = RequestCookies::read(headers);
    // Any copy, in any spelling: this is evidence of theft, and each must still open with
    // the session's key to count.
    let opens = |name: &str| {
        cookies
            .named(name)
            .take(MAX_LOOKUPS)
            .any(|p| c.keys.open(Some(&key), name, p.value()).is_ok())
    };
    let short_lived = cookies.named(&c.cookie_name).take(MAX_LOOKUPS).any(|p| {
        p.value().split('.').next() == Some(sid)
            && c.keys.open(Some(&key), &c.cookie_name, p.value()).is_ok()
    });
    short_lived || c.rebind.iter().any(|(name, _)| opens(name))
}

/// `403` with a challenge: the browser signs it and tries again. The newest one if it was
/// issued within [`CHALLENGE_REUSE`] (it is unused: a used one is replaced at once), else
/// a new one. Neither a proof-less request nor a replayed old proof can rotate it away.
pub(crate) async fn challenge_again(
    c: &Config,
    sid: &str,
    mut record: SessionRecord,
    now: SystemTime,
    (reason, detail): (&'static str, &str),
) -> Response<Full<Bytes>> {
    let recent = record
        .challenges
        .last()
        .filter(|_| unix(now) < record.newest_at.saturating_add(CHALLENGE_REUSE.as_secs()))
        .cloned();
    // Reused only while it is still outstanding (a racing refresh may just have used it).
    let outstanding = match recent {
        Some(newest) => match c.store.get(&challenge_key(sid, &newest)).await {
            Ok(found) => found.map(|_| newest),
            Err(e) => return store_failure(e),
        },
        None => None,
    };
    let next = match outstanding {
        Some(newest) => newest,
        None => match issue_challenge(c, sid, &mut record, now).await {
            Ok(next) => next,
            Err(e) => return store_failure(e),
        },
    };
    with_challenge(problem(StatusCode::FORBIDDEN, reason, detail), &next, sid)
}

pub(crate) async fn refresh(c: &Config, headers: &HeaderMap) -> Answer {
    let now = SystemTime::now();
    let sid = headers
        .get(header::SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(bare_or_string)
        .filter(|s| is_session_id(s));
    let Some(sid) = sid else {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "dbsc_session_id_missing",
            "a refresh needs Sec-Secure-Session-Id",
        ));
    };
    if c.store
        .get(&format!("dbsc:ended:{sid}"))
        .await
        .map_err(store_failure)?
        .is_some()
    {
        let mut res = json_response(
            StatusCode::OK,
            Some(json!({"session_identifier": sid, "continue": false})),
        );
        metrics::tag(&mut res, "session_ended");
        return Ok(res);
    }
    let Some((mut record, jwk)) = load_session(c, &sid).await.map_err(store_failure)? else {
        // Any 4xx but 403/407/429 ends the session in the browser.
        return Err(problem(
            StatusCode::UNAUTHORIZED,
            "dbsc_unknown_session",
            "no such session",
        ));
    };
    let Some(jwt) = proof_header(headers) else {
        // Phase one: no proof yet. 403 with a challenge makes the browser sign one.
        let why = ("dbsc_challenge", "sign this challenge");
        return Err(challenge_again(c, &sid, record, now, why).await);
    };
    let endpoint = format!("{}{}", c.origin, c.refresh_path);
    let proof = match proof::verify_refresh(&jwt, &jwk, &c.algorithms, &endpoint) {
        Ok(proof) => proof,
        Err(e) if e.is_bad_signature() && presents_session_cookie(c, headers, &sid, &jwk) => {
            // The session's own cookie, with a proof its key did not make: the cookie left
            // the device. End the session (the browser ends it too, on the 401). Without
            // such a cookie the sender may know no more than the session id, and ending
            // the session would hand anyone who knows one a way to log its owner out.
            end_session(c, &sid).await.map_err(store_failure)?;
            tracing::warn!(session = %sid, "DBSC refresh with the session's cookie but another key's signature: session ended");
            let mut res = proof_refused(&e);
            metrics::tag(&mut res, "stolen_cookie");
            return Err(res);
        }
        Err(e) => return Err(proof_refused(&e)),
    };
    // Used up in one step: of two refreshes answering the same challenge, one gets it.
    let answered = c
        .store
        .take(&challenge_key(&sid, &proof.challenge))
        .await
        .map_err(store_failure)?;
    if answered.is_none() {
        // A stale or replayed challenge with a good signature: benign, try again.
        let why = ("dbsc_stale_challenge", "sign the current challenge");
        return Err(challenge_again(c, &sid, record, now, why).await);
    }
    record.challenges.retain(|ch| *ch != proof.challenge);
    let next = issue_challenge(c, &sid, &mut record, now)
        .await
        .map_err(store_failure)?;
    retire(c, &record).await.map_err(store_failure)?;
    let mut res = with_challenge(json_response(StatusCode::OK, None), &next, &sid);
    set_cookie(&mut res, &mint(c, &sid, &jwk, now));
    tracing::debug!(session = %sid, "DBSC session refreshed");
    Ok(res)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use tokbind_testkit::DbscBrowser;

    use crate::testing::{Site, challenge, json, reason, request};

    fn refresh(sid: &str, proof: Option<&str>) -> http::Request<axum::body::Body> {
        let mut headers = vec![("sec-secure-session-id", sid)];
        headers.extend(proof.map(|p| ("secure-session-response", p)));
        request("POST", "/dbsc/refresh", &headers)
    }

    /// A registered session: its id, and the refresh challenge sent ahead.
    async fn registered(site: &Site, browser: &DbscBrowser) -> (String, String) {
        let proof = browser.proof(&site.login("/login").await, true);
        let res = site
            .send(request(
                "POST",
                "/dbsc/register",
                &[("secure-session-response", &proof)],
            ))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let sid = json(&res)["session_identifier"]
            .as_str()
            .unwrap()
            .to_string();
        (sid, challenge(&res, "secure-session-challenge"))
    }

    #[tokio::test]
    async fn a_proof_of_the_current_challenge_mints_a_cookie_and_sends_the_next() {
        let site = Site::new();
        let browser = DbscBrowser::new();
        let (sid, next) = registered(&site, &browser).await;
        let proof = browser.proof(&next, false);
        let res = site.send(refresh(&sid, Some(&proof))).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .starts_with("__Host-dbsc=")
        );
        let after = challenge(&res, "secure-session-challenge");
        assert_ne!(after, next);
        // The same proof again: its challenge is used up, a benign 403 with the current one.
        let res = site.send(refresh(&sid, Some(&proof))).await;
        assert_eq!(
            (res.status(), reason(&res).as_str()),
            (StatusCode::FORBIDDEN, "dbsc_stale_challenge")
        );
        assert_eq!(challenge(&res, "secure-session-challenge"), after);
    }

    #[tokio::test]
    async fn without_a_proof_the_newest_challenge_is_repeated_not_rotated() {
        let site = Site::new();
        let browser = DbscBrowser::new();
        let (sid, next) = registered(&site, &browser).await;
        for _ in 0..3 {
            let res = site.send(refresh(&sid, None)).await;
            assert_eq!(
                (res.status(), reason(&res).as_str()),
                (StatusCode::FORBIDDEN, "dbsc_challenge")
            );
            assert_eq!(challenge(&res, "secure-session-challenge"), next);
        }
    }

    #[tokio::test]
    async fn refreshes_that_prove_nothing_are_refused_and_end_nothing() {
        let site = Site::new();
        let browser = DbscBrowser::new();
        let (sid, next) = registered(&site, &browser).await;
        let res = site.send(request("POST", "/dbsc/refresh", &[])).await;
        assert_eq!(reason(&res), "dbsc_session_id_missing");
        let res = site.send(refresh("Snope", None)).await;
        assert_eq!(
            (res.status(), reason(&res).as_str()),
            (StatusCode::UNAUTHORIZED, "dbsc_unknown_session")
        );
        // Another key's signature, without the session's cookies: a 401 that ends nothing.
        let forged = DbscBrowser::new().proof(&next, false);
        let res = site.send(refresh(&sid, Some(&forged))).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = site
            .send(refresh(&sid, Some(&browser.proof(&next, false))))
            .await;
        assert_eq!(res.status(), StatusCode::OK, "the session still refreshes");
    }

    #[tokio::test]
    async fn an_ended_session_is_told_to_stop() {
        let site = Site::new();
        let browser = DbscBrowser::new();
        let (sid, next) = registered(&site, &browser).await;
        crate::session::end_session(&site.layer.config, &sid)
            .await
            .unwrap();
        let res = site
            .send(refresh(&sid, Some(&browser.proof(&next, false))))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(json(&res)["continue"], false);
    }
}
