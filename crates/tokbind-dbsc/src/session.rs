//! What DBSC keeps in its store — sessions, registration challenges, refresh challenges,
//! retirements — and the short-lived cookie's session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokbind_jose::jwk::PublicJwk;
use tokbind_proto::{Freshness, Mechanism, ProvenKey};
use tower_tokbind::cookie::jar::RequestCookies;

use crate::Config;
use crate::header::is_session_id;
use crate::markers::DeviceBoundSession;
use crate::store::StoreError;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    /// The RFC 7638 canonical JWK of the session key.
    pub(crate) jwk: String,
    /// Challenges issued for the next refresh: the newest last, at most two (a single
    /// previous one stays valid, for refreshes racing each other).
    pub(crate) challenges: Vec<String>,
    /// When the newest challenge was issued (Unix seconds).
    #[serde(default)]
    pub(crate) newest_at: u64,
    /// Store keys of the login cookies retired at registration, renewed at each refresh.
    #[serde(default)]
    pub(crate) retired: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RegistrationChallenge {
    pub(crate) authorization: Option<String>,
    /// Digests of the application's cookies (those to re-bind) as they were when the
    /// challenge was issued: the registration must come with the same ones, so a challenge
    /// obtained with one login cannot bind another's session to a foreign key.
    #[serde(default)]
    pub(crate) login_cookies: Vec<String>,
}

pub(crate) fn random(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system RNG works");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn session_key(jwk: &PublicJwk, sid: &str, freshness: Freshness) -> ProvenKey {
    jwk.proven_key(Mechanism::Dbsc, freshness, Some(sid))
}

pub(crate) async fn load_session(
    c: &Config,
    sid: &str,
) -> Result<Option<(SessionRecord, PublicJwk)>, StoreError> {
    let Some(bytes) = c.store.get(&format!("dbsc:session:{sid}")).await? else {
        return Ok(None);
    };
    let record: SessionRecord =
        serde_json::from_slice(&bytes).map_err(|e| StoreError(format!("damaged session: {e}")))?;
    let value: Value =
        serde_json::from_str(&record.jwk).map_err(|e| StoreError(format!("damaged key: {e}")))?;
    let jwk = PublicJwk::from_value(&value).map_err(|e| StoreError(format!("damaged key: {e}")))?;
    Ok(Some((record, jwk)))
}

pub(crate) async fn save_session(
    c: &Config,
    sid: &str,
    record: &SessionRecord,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
    c.store
        .put(&format!("dbsc:session:{sid}"), bytes, c.session_lifetime)
        .await
}

/// The request's DBSC session, from a valid, unexpired short-lived cookie.
/// At most this many values of one cookie are looked up in the store: a browser sends one,
/// and a header stuffed with copies must not turn into as many store round trips. Values
/// past it are treated as failing (removed as retired, or proving nothing).
pub(crate) const MAX_LOOKUPS: usize = 4;

pub(crate) async fn bound_session(
    c: &Config,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Option<(ProvenKey, DeviceBoundSession)>, StoreError> {
    let cookies = RequestCookies::read(headers);
    let presented = cookies
        .pairs()
        .filter(|p| p.is_spelled(&c.cookie_name))
        .take(MAX_LOOKUPS);
    for pair in presented {
        if let Some(session) = short_lived_session(c, pair.value(), now).await? {
            return Ok(Some(session));
        }
    }
    Ok(None)
}

/// The session a short-lived cookie value proves, if it is one of ours, unexpired, and
/// bound to its session's key.
pub(crate) async fn short_lived_session(
    c: &Config,
    presented: &str,
    now: SystemTime,
) -> Result<Option<(ProvenKey, DeviceBoundSession)>, StoreError> {
    let core = presented.rsplit_once('~').map_or(presented, |(v, _)| v);
    let mut parts = core.split('.');
    let (Some(sid), Some(expiry), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let Ok(expiry) = expiry.parse::<u64>() else {
        return Ok(None);
    };
    // The expiry is input: whatever it says, the time arithmetic on it is checked.
    let proven_at = UNIX_EPOCH
        .checked_add(Duration::from_secs(expiry))
        .and_then(|t| t.checked_sub(c.cookie_lifetime));
    let Some(proven_at) = proven_at else {
        return Ok(None);
    };
    if !is_session_id(sid) || expiry <= unix(now) {
        return Ok(None);
    }
    let Some((_, jwk)) = load_session(c, sid).await? else {
        return Ok(None);
    };
    let mac_key = session_key(&jwk, sid, Freshness::ThisRequest);
    if c.keys
        .open(Some(&mac_key), &c.cookie_name, presented)
        .is_err()
    {
        return Ok(None);
    }
    Ok(Some((
        session_key(&jwk, sid, Freshness::ProvenAt(proven_at)),
        DeviceBoundSession {
            id: sid.to_string(),
            proven_at,
        },
    )))
}

/// Keep the session's retired login cookies retired for `login_cookie_retirement` from
/// now: a session that keeps refreshing keeps them dead, however long it lives.
pub(crate) async fn retire(c: &Config, record: &SessionRecord) -> Result<(), StoreError> {
    for key in &record.retired {
        c.store.put(key, vec![1], c.retirement).await?;
    }
    Ok(())
}

/// Forget the session's key, and remember that it ended so the browser's next refresh is
/// told to stop.
pub(crate) async fn end_session(c: &Config, sid: &str) -> Result<(), StoreError> {
    c.store.remove(&format!("dbsc:session:{sid}")).await?;
    c.store
        .put(&format!("dbsc:ended:{sid}"), vec![1], c.session_lifetime)
        .await
}

/// Where an outstanding refresh challenge lives: its own entry, so that answering it is
/// one atomic `take` — two refreshes racing with one challenge cannot both mint a cookie,
/// at one instance or several sharing the store.
pub(crate) fn challenge_key(sid: &str, challenge: &str) -> String {
    format!("dbsc:challenge:{sid}:{challenge}")
}

/// Issue a challenge for the session's next proof and save the session, keeping at most
/// one previous challenge outstanding (for refreshes racing each other).
pub(crate) async fn issue_challenge(
    c: &Config,
    sid: &str,
    record: &mut SessionRecord,
    now: SystemTime,
) -> Result<String, StoreError> {
    let next = random(24);
    c.store
        .put(&challenge_key(sid, &next), vec![1], c.challenge_ttl)
        .await?;
    record.challenges.push(next.clone());
    let excess = record.challenges.len().saturating_sub(2);
    for old in record.challenges.drain(..excess) {
        c.store.remove(&challenge_key(sid, &old)).await?;
    }
    record.newest_at = unix(now);
    save_session(c, sid, record).await?;
    Ok(next)
}
