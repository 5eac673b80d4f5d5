//! What the layer does to the application's response: the markers it carries (start a
//! session, end it, require a fresh proof).

use bytes::Bytes;
use cookie::Cookie;
use http::header::SET_COOKIE;
use http::{HeaderValue, Response};
use http_body_util::{Either, Full};
use tower_tokbind::cookie::jar::RequestCookies;

use crate::Config;
use crate::cookies::{CookieValues, cookie_digest, cookie_value};
use crate::endpoint::{answer, store_failure};
use crate::header;
use crate::markers::{
    DeviceBoundSession, EndDeviceBoundSession, RequireFreshProof, StartDeviceBoundSession,
};
use crate::session::{RegistrationChallenge, end_session, random};
use crate::store::StoreError;

/// The application's response, after what its markers ask for (a store failure answers
/// 503 instead).
pub(crate) async fn finish<B>(
    c: &Config,
    mut res: Response<B>,
    session: Option<&DeviceBoundSession>,
    login: &CookieValues,
) -> Response<Either<B, Full<Bytes>>> {
    match after(c, &mut res, session, login).await {
        Ok(()) => res.map(Either::Left),
        Err(e) => answer(Err(store_failure(e))),
    }
}

/// What the application asked for in its response's extensions.
pub(crate) async fn after<B>(
    c: &Config,
    res: &mut Response<B>,
    session: Option<&DeviceBoundSession>,
    request_cookies: &CookieValues,
) -> Result<(), StoreError> {
    if let Some(start) = res.extensions_mut().remove::<StartDeviceBoundSession>() {
        let challenge = random(24);
        // The login cookies this response sets, or else those the request came with.
        let set: Vec<Cookie<'_>> = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| Cookie::parse(v.to_str().ok()?).ok())
            .filter(|c| !c.value().is_empty())
            .collect();
        let presented = RequestCookies::read_values(request_cookies);
        let mut login_cookies: Vec<String> = c
            .rebind
            .iter()
            .filter_map(|(name, _)| {
                let value = set
                    .iter()
                    .find(|c| c.name() == name)
                    .map(Cookie::value)
                    .or_else(|| cookie_value(&presented, name))?;
                Some(cookie_digest(name, value))
            })
            .collect();
        login_cookies.sort();
        let record = RegistrationChallenge {
            authorization: start.authorization.clone(),
            login_cookies,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError(e.to_string()))?;
        let stored = c
            .store
            .put(
                &format!("dbsc:registration:{challenge}"),
                bytes,
                c.challenge_ttl,
            )
            .await;
        // DBSC is additive: when the challenge cannot be kept (a store that is down, or full
        // after a flood of logins), the login goes through without the offer to register,
        // as for a browser without DBSC — it does not turn into a 503.
        if let Err(e) = stored {
            tracing::warn!(error = %e, "DBSC registration not offered: its challenge could not be stored");
            return logout_and_step_up(c, res, session).await;
        }
        // The algorithms the proof verifier accepts, by their JWA names (RFC 7518 §3.1).
        let algs: Vec<String> = c
            .algorithms
            .iter()
            .filter_map(|a| serde_json::to_value(a).ok()?.as_str().map(str::to_owned))
            .collect();
        let algs: Vec<&str> = algs.iter().map(String::as_str).collect();
        let value = header::registration(
            &algs,
            &c.register_path,
            &challenge,
            start.authorization.as_deref(),
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().append(header::REGISTRATION, v);
        }
    }
    logout_and_step_up(c, res, session).await
}

/// The markers other than [`StartDeviceBoundSession`]: logout and step-up.
pub(crate) async fn logout_and_step_up<B>(
    c: &Config,
    res: &mut Response<B>,
    session: Option<&DeviceBoundSession>,
) -> Result<(), StoreError> {
    let expire = || format!("{}=; Max-Age=0; {}", c.cookie_name, c.cookie_attributes);
    if res
        .extensions_mut()
        .remove::<EndDeviceBoundSession>()
        .is_some()
    {
        if let Some(s) = session {
            end_session(c, &s.id).await?;
        }
        if let Ok(v) = HeaderValue::from_str(&expire()) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    if res.extensions_mut().remove::<RequireFreshProof>().is_some()
        && let Ok(v) = HeaderValue::from_str(&expire())
    {
        res.headers_mut().append(SET_COOKIE, v);
    }
    Ok(())
}
