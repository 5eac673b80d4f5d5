//! [`DbscLayer`]: registration, refresh and the short-lived bound cookie.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cookie::Cookie;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, SET_COOKIE, X_FRAME_OPTIONS};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smallvec::SmallVec;
use tokbind_jose::Algorithm;
use tokbind_jose::jwk::PublicJwk;
use tokbind_proto::{Freshness, Mechanism, ProvenKey};
use tower_layer::Layer;
use tower_service::Service;
use tower_tokbind::add_proven_key;
use tower_tokbind::cookie::CookieKeys;
use tower_tokbind::cookie::jar::{CookieHeaderBuilder, RequestCookies};
use tower_tokbind::problem::problem_response;

use crate::header::{self, SkippedRefresh, bare_or_string, is_session_id};
use crate::instructions::{Credential, Scope, SessionInstructions};
use crate::proof::{self, ProofError};
use crate::store::{DbscStore, MemoryDbscStore, StoreError};

/// Put this in a response's extensions (e.g. `axum::Extension(StartDeviceBoundSession::default())`
/// in the login handler's response) to ask the browser to register a DBSC session.
#[derive(Debug, Clone, Default)]
pub struct StartDeviceBoundSession {
    /// An opaque value the browser copies into its registration proof.
    pub authorization: Option<String>,
}

/// Put this in a response's extensions to end the request's DBSC session (logout).
#[derive(Debug, Clone, Copy, Default)]
pub struct EndDeviceBoundSession;

/// Put this in a response's extensions to expire the short-lived cookie, so the browser
/// proves its key again before its next request (answer a `307` to the same URL: the
/// browser refreshes, then follows). For step-up.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequireFreshProof;

/// In the request's extensions when it carried a valid short-lived cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceBoundSession {
    /// The DBSC session identifier.
    pub id: String,
    /// When the key was last proven (the cookie was minted).
    pub proven_at: SystemTime,
}

/// In the request's extensions when it carried `Secure-Session-Skipped`: the browser tried
/// to refresh these sessions first and could not (their endpoint failed or was unreachable,
/// or its signing quota ran out), so the request comes without a short-lived cookie and
/// proves no key. What to do is the application's choice (W3C DBSC): fail closed on
/// sensitive routes, or let the user on with less (the login cookie, once re-bound, no
/// longer opens by itself). At most 16 sessions are read from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSkipped(pub Vec<SkippedRefresh>);

#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    /// The RFC 7638 canonical JWK of the session key.
    jwk: String,
    /// Challenges issued for the next refresh: the newest last, at most two (a single
    /// previous one stays valid, for refreshes racing each other).
    challenges: Vec<String>,
    /// When the newest challenge was issued (Unix seconds).
    #[serde(default)]
    newest_at: u64,
    /// Store keys of the login cookies retired at registration, renewed at each refresh.
    #[serde(default)]
    retired: Vec<String>,
}

/// A refresh without a proof within this long of the newest challenge gets that challenge
/// again instead of a new one: anyone who knows a session identifier can ask, and must
/// not be able to rotate the browser's cached challenge away.
const CHALLENGE_REUSE: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
struct RegistrationChallenge {
    authorization: Option<String>,
    /// Digests of the application's cookies (those to re-bind) as they were when the
    /// challenge was issued: the registration must come with the same ones, so a challenge
    /// obtained with one login cannot bind another's session to a foreign key.
    #[serde(default)]
    login_cookies: Vec<String>,
}

#[derive(Clone)]
struct Config {
    origin: String,
    register_path: String,
    refresh_path: String,
    cookie_name: String,
    cookie_attributes: String,
    cookie_lifetime: Duration,
    challenge_ttl: Duration,
    session_lifetime: Duration,
    retirement: Duration,
    algorithms: Vec<Algorithm>,
    keys: CookieKeys,
    rebind: Vec<(String, String)>,
    allowed_refresh_initiators: Vec<String>,
    store: Arc<dyn DbscStore>,
}

/// Device Bound Session Credentials on the server (W3C DBSC, as Chromium 156 speaks it).
///
/// * Registration: a response carrying [`StartDeviceBoundSession`] gets a
///   `Secure-Session-Registration` header with a fresh single-use challenge. The browser
///   POSTs its proof to the registration path; the layer checks it (ES256 or RS256,
///   `typ: dbsc+jwt`, public `jwk`, `jti` = the challenge, `authorization`, `aud` when
///   present), stores the key under a new session id, sets the short-lived bound cookie,
///   re-binds the application's long-lived cookies (see [`rebind_cookie`](Self::rebind_cookie))
///   to the session key, and answers with the session instructions (explicit cookie
///   attributes) and the first refresh challenge.
/// * Refresh: `403` + the current challenge when the POST has no proof (a new one at most
///   every 30 s, so whoever knows a session id cannot rotate the browser's away); a proof
///   by the stored key answering a current challenge gets a new short-lived cookie (new
///   value every time) and the next challenge; a stale challenge gets `403` + the current
///   one; a bad signature `401`, and if the request also carries one of the session's
///   cookies (the short-lived one, or a re-bound login cookie) the session ends: that
///   cookie was stolen. An ended session gets `{"continue": false}`.
/// * Every other request: a valid short-lived cookie adds the session key to the request's
///   `ProvenKeys` as *proven at the cookie's minting* ([`Freshness::ProvenAt`]) — never as
///   proven on this request. A bound cookie layer accepts it only when told to
///   (`BoundCookieLayer::accept_proofs(FreshnessPolicy::Within(..))`).
/// * A request whose browser could not refresh first carries `Secure-Session-Skipped`; the
///   layer puts what it says in the extensions as [`RefreshSkipped`] for the handler.
///
/// Chromium refreshes whenever the short-lived cookie expires within 120 s: keep its
/// lifetime well above that (default 10 minutes).
#[derive(Clone)]
#[must_use]
pub struct DbscLayer {
    config: Arc<Config>,
}

impl std::fmt::Debug for DbscLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbscLayer")
            .field("origin", &self.config.origin)
            .field("register_path", &self.config.register_path)
            .field("refresh_path", &self.config.refresh_path)
            .field("cookie", &self.config.cookie_name)
            .finish_non_exhaustive()
    }
}

impl DbscLayer {
    /// DBSC for the site at `public_origin` (as browsers address it, e.g.
    /// `https://app.example`), with cookie MACs under `keys` (the bound cookie layer's).
    /// Endpoints `/dbsc/register` and `/dbsc/refresh`, short-lived cookie `__Host-dbsc` for 10
    /// minutes, ES256 and RS256, state in memory.
    pub fn new(keys: CookieKeys, public_origin: &str) -> Self {
        Self {
            config: Arc::new(Config {
                origin: public_origin.trim_end_matches('/').to_string(),
                register_path: "/dbsc/register".into(),
                refresh_path: "/dbsc/refresh".into(),
                // The session covers this origin only (`include_site: false`): the prefix
                // makes the browser refuse the cookie from any other host or path.
                cookie_name: "__Host-dbsc".into(),
                cookie_attributes: "Path=/; Secure; HttpOnly; SameSite=Lax".into(),
                cookie_lifetime: Duration::from_secs(600),
                challenge_ttl: Duration::from_secs(900),
                session_lifetime: Duration::from_secs(30 * 24 * 3600),
                retirement: Duration::from_secs(30 * 24 * 3600),
                algorithms: vec![Algorithm::ES256, Algorithm::RS256],
                keys,
                rebind: Vec::new(),
                allowed_refresh_initiators: Vec::new(),
                store: Arc::new(MemoryDbscStore::default()),
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Where the browser registers and refreshes.
    pub fn paths(self, register: &str, refresh: &str) -> Self {
        self.with(|c| {
            c.register_path = register.into();
            c.refresh_path = refresh.into();
        })
    }

    /// The short-lived cookie's lifetime (default 10 minutes; keep it above 120 s). Refresh
    /// challenges live half as long again.
    pub fn cookie_lifetime(self, lifetime: Duration) -> Self {
        self.with(|c| {
            c.cookie_lifetime = lifetime;
            c.challenge_ttl = lifetime.saturating_add(lifetime / 2);
        })
    }

    /// The short-lived cookie's name (default `__Host-dbsc`; the attributes are
    /// `Path=/; Secure; HttpOnly; SameSite=Lax`, which a `__Host-` name needs).
    pub fn cookie_name(self, name: &str) -> Self {
        self.with(|c| c.cookie_name = name.into())
    }

    /// At registration, re-bind the application's long-lived cookie `name` (issued unbound
    /// at login by a `BoundCookieLayer` with `UnprovenClients::IssueUnbound` and the same
    /// keys) to the session key, setting it again with exactly `attributes` — the same
    /// `Path` and `Domain` the application sets it with, or the browser keeps two copies. Its unbound
    /// form is retired: a copy taken before registration no longer works (see
    /// [`login_cookie_retirement`](Self::login_cookie_retirement) for how long, and give the
    /// layer a [`store`](Self::store) that outlives a restart when the sessions do).
    pub fn rebind_cookie(self, name: &str, attributes: &str) -> Self {
        self.with(|c| c.rebind.push((name.into(), attributes.into())))
    }

    /// How long a login cookie's unbound form stays retired after the DBSC session last
    /// refreshed (default 30 days). Set it to at least the longest an application session
    /// can live without the browser refreshing: once the retirement lapses, the unbound
    /// cookie taken before registration opens its session again if that still exists.
    /// The retirement lives in the [`store`](Self::store): give it the durability of the
    /// session store (an in-memory DBSC store forgets retirements at a restart).
    pub fn login_cookie_retirement(self, retirement: Duration) -> Self {
        self.with(|c| c.retirement = retirement)
    }

    /// Hosts whose requests may make the browser refresh the session although they are out
    /// of its scope (session instructions `allowed_refresh_initiators`): `example.com`,
    /// `*.example.com`, or `*` for any. Default none: a refresh's timing is then never
    /// observable from another site.
    pub fn allowed_refresh_initiators<I, S>(self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let patterns = patterns.into_iter().map(Into::into).collect();
        self.with(|c| c.allowed_refresh_initiators = patterns)
    }

    /// Where challenges and sessions live (a shared store for several instances).
    pub fn store(self, store: Arc<dyn DbscStore>) -> Self {
        self.with(|c| c.store = store)
    }

    /// How long a FreshnessPolicy should accept this layer's proofs: the cookie lifetime.
    pub fn proof_window(&self) -> Duration {
        self.config.cookie_lifetime
    }
}

impl<S> Layer<S> for DbscLayer {
    type Service = Dbsc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dbsc {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service made by [`DbscLayer`].
#[derive(Clone)]
pub struct Dbsc<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Dbsc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dbsc")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Work that needs the store (and so may wait on a shared one), boxed.
type Boxed<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<Either<B, Full<Bytes>>>, E>> + Send>>;

pin_project! {
    /// The response future of [`Dbsc`]. A request that needs nothing from the store — no
    /// DBSC endpoint, no short-lived cookie, no unbound login cookie that may be retired:
    /// most requests — goes to the inner service without boxing; only a response carrying
    /// one of the markers then needs the store, and is boxed.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Direct {
            #[pin]
            future: F,
            config: Arc<Config>,
            login: CookieValues,
        },
        Boxed { future: Boxed<B, E> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Send + 'static,
    E: 'static,
{
    type Output = Result<Response<Either<B, Full<Bytes>>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let next = match self.as_mut().project().kind.project() {
            KindProj::Boxed { future } => return future.as_mut().poll(cx),
            KindProj::Direct {
                future,
                config,
                login,
            } => {
                let res = ready!(future.poll(cx))?;
                let marked = {
                    let e = res.extensions();
                    e.get::<StartDeviceBoundSession>().is_some()
                        || e.get::<EndDeviceBoundSession>().is_some()
                        || e.get::<RequireFreshProof>().is_some()
                };
                if !marked {
                    return Poll::Ready(Ok(res.map(Either::Left)));
                }
                let (config, login) = (Arc::clone(config), std::mem::take(login));
                Kind::Boxed {
                    future: Box::pin(async move { Ok(finish(&config, res, None, &login).await) }),
                }
            }
        };
        self.as_mut().project().kind.set(next);
        self.poll(cx)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Dbsc<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let c = &*self.config;
        if let Some(skipped) = refresh_skipped(req.headers()) {
            req.extensions_mut().insert(skipped);
        }
        let endpoint = match (req.method(), req.uri().path()) {
            (&Method::POST, path) if path == c.register_path => Some(Endpoint::Register),
            (&Method::POST, path) if path == c.refresh_path => Some(Endpoint::Refresh),
            _ => None,
        };
        let headers = req.headers();
        // One pass over the cookies: the short-lived one, or a login cookie in its
        // unbound form (which may have been retired), means a store lookup.
        let needs_store = endpoint.is_some()
            || RequestCookies::read(headers).pairs().any(|pair| {
                pair.is_named(&c.cookie_name)
                    || (CookieKeys::is_issued_unbound(pair.value())
                        && c.rebind.iter().any(|(r, _)| pair.is_named(r)))
            });
        if !needs_store {
            let login = login_cookies(c, headers);
            return ResponseFuture {
                kind: Kind::Direct {
                    future: self.inner.call(req),
                    config: Arc::clone(&self.config),
                    login,
                },
            };
        }

        // The service that was polled ready handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let future = Box::pin(async move {
            let c = &*config;
            match endpoint {
                Some(Endpoint::Register) => {
                    return Ok(guarded(register(c, req.headers()).await).map(Either::Right));
                }
                Some(Endpoint::Refresh) => {
                    return Ok(guarded(refresh(c, req.headers()).await).map(Either::Right));
                }
                None => {}
            }
            let now = SystemTime::now();
            let session = match bound_session(c, req.headers(), now).await {
                Ok(s) => s,
                Err(e) => return Ok(answer(Err(store_failure(e)))),
            };
            if let Err(e) = strip_retired(c, req.headers_mut()).await {
                return Ok(answer(Err(store_failure(e))));
            }
            // Read after the retired cookies were removed.
            let login = login_cookies(c, req.headers());
            if let Some((key, session)) = &session {
                add_proven_key(req.extensions_mut(), key.clone());
                req.extensions_mut().insert(session.clone());
            }
            let res = inner.call(req).await?;
            Ok(finish(c, res, session.as_ref().map(|(_, s)| s), &login).await)
        });
        ResponseFuture {
            kind: Kind::Boxed { future },
        }
    }
}

/// The DBSC endpoints the layer answers itself.
#[derive(Clone, Copy)]
enum Endpoint {
    Register,
    Refresh,
}

/// The request's `Cookie` values, kept in case its response starts DBSC (shared bytes:
/// read only then).
fn login_cookies(c: &Config, headers: &HeaderMap) -> CookieValues {
    if c.rebind.is_empty() {
        CookieValues::new()
    } else {
        headers.get_all(COOKIE).iter().cloned().collect()
    }
}

/// The application's response, after what its markers ask for (a store failure answers
/// 503 instead).
async fn finish<B>(
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

/// The sessions named in the request's `Secure-Session-Skipped` values, if any.
fn refresh_skipped(headers: &HeaderMap) -> Option<RefreshSkipped> {
    let skipped: Vec<SkippedRefresh> = headers
        .get_all(header::SKIPPED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(header::skipped)
        .take(MAX_SKIPPED)
        .collect();
    let first = skipped.first()?;
    // One event per request, however many members the header has.
    tracing::info!(
        sessions = skipped.len(),
        session = %first.session_id,
        reason = first.reason.token(),
        "browser skipped a DBSC refresh"
    );
    Some(RefreshSkipped(skipped))
}

/// At most this many `Secure-Session-Skipped` members are read: a browser has a session or
/// two per site, and a header of thousands must cost no more than a few.
const MAX_SKIPPED: usize = 16;

type Answer = Result<Response<Full<Bytes>>, Response<Full<Bytes>>>;

/// A request's `Cookie` header values (almost always one: no allocation).
type CookieValues = SmallVec<[HeaderValue; 1]>;

/// An endpoint's answer, which no other origin may frame or read: the browser's refresh
/// is implicitly credentialed: the browser sends it with its cookies on its own (README, "Today's browsers: DBSC").
fn guarded(a: Answer) -> Response<Full<Bytes>> {
    const CORP: HeaderName = HeaderName::from_static("cross-origin-resource-policy");
    let mut res = a.unwrap_or_else(|e| e);
    let headers = res.headers_mut();
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CORP, HeaderValue::from_static("same-origin"));
    res
}

fn answer<B>(a: Answer) -> Response<Either<B, Full<Bytes>>> {
    a.unwrap_or_else(|e| e).map(Either::Right)
}

fn store_failure(e: StoreError) -> Response<Full<Bytes>> {
    tracing::error!("{e}");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "dbsc_store_unavailable",
        "the session store cannot be reached",
    )
}

fn problem(status: StatusCode, reason: &str, detail: &str) -> Response<Full<Bytes>> {
    let mut res: Response<Full<Bytes>> = problem_response(status, reason, detail);
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn random(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system RNG works");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn session_key(jwk: &PublicJwk, sid: &str, freshness: Freshness) -> ProvenKey {
    jwk.proven_key(Mechanism::Dbsc, freshness, Some(sid))
}

/// The value of the first cookie written exactly `name` (read as the application will,
/// `tower_tokbind::cookie::jar`). What the layer acts on; any other spelling some parser
/// reads as `name` is the bound cookie layer's to remove.
fn cookie<'h>(cookies: &RequestCookies<'h>, name: &str) -> Option<&'h str> {
    cookies
        .pairs()
        .find(|p| p.is_spelled(name))
        .map(|p| p.value())
}

/// At most this many values of one cookie are looked up in the store: a browser sends one,
/// and a header stuffed with copies must not turn into as many store round trips. Values
/// past it are treated as failing (removed as retired, or proving nothing).
const MAX_LOOKUPS: usize = 4;

fn set_cookie(res: &mut Response<Full<Bytes>>, line: &str) {
    if let Ok(v) = HeaderValue::from_str(line) {
        res.headers_mut().append(SET_COOKIE, v);
    }
}

async fn load_session(
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

async fn save_session(c: &Config, sid: &str, record: &SessionRecord) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(record).map_err(|e| StoreError(e.to_string()))?;
    c.store
        .put(&format!("dbsc:session:{sid}"), bytes, c.session_lifetime)
        .await
}

/// A new short-lived cookie for the session: `<sid>.<expiry>.<random>`, bound with the
/// cookie keys to the session key (so only this session's key opens it).
fn mint(c: &Config, sid: &str, jwk: &PublicJwk, now: SystemTime) -> String {
    let expiry = now.checked_add(c.cookie_lifetime).map_or(u64::MAX, unix);
    let core = format!("{sid}.{expiry}.{}", random(9));
    let value = c.keys.bind(
        Some(&session_key(jwk, sid, Freshness::ThisRequest)),
        &c.cookie_name,
        &core,
    );
    format!(
        "{}={value}; Max-Age={}; {}",
        c.cookie_name,
        c.cookie_lifetime.as_secs(),
        c.cookie_attributes
    )
}

/// The request's DBSC session, from a valid, unexpired short-lived cookie.
async fn bound_session(
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
async fn short_lived_session(
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

fn cookie_digest(name: &str, value: &str) -> String {
    let hash = digest::digest(&digest::SHA256, format!("{name}={value}").as_bytes());
    URL_SAFE_NO_PAD.encode(hash)
}

/// Where the retirement of a login cookie's unbound form is kept: under the cookie's name
/// (as configured) and its value as the application's parsers read it (trimmed), so every
/// spelling of the same cookie finds it.
fn retired_key(name: &str, presented: &str) -> String {
    format!("dbsc:retired:{}", cookie_digest(name, presented))
}

/// Keep the session's retired login cookies retired for `login_cookie_retirement` from
/// now: a session that keeps refreshing keeps them dead, however long it lives.
async fn retire(c: &Config, record: &SessionRecord) -> Result<(), StoreError> {
    for key in &record.retired {
        c.store.put(key, vec![1], c.retirement).await?;
    }
    Ok(())
}

/// Remove login cookies whose unbound form was retired at registration — every copy, in
/// every spelling any application parser reads as the login cookie — and hand on a header
/// rebuilt from the rest.
async fn strip_retired(c: &Config, headers: &mut HeaderMap) -> Result<(), StoreError> {
    let mut kept = CookieHeaderBuilder::default();
    let mut removed = 0;
    {
        let cookies = RequestCookies::read(headers);
        // Each distinct value that really was issued unbound is looked up once.
        let mut verdicts: SmallVec<[(&str, bool); 2]> = SmallVec::new();
        for piece in cookies.pieces() {
            let Ok(pair) = piece else {
                // No parser agrees on it: not handed on (the bound cookie layer would
                // remove it anyway).
                continue;
            };
            let value = pair.value();
            let login = c.rebind.iter().find(|(name, _)| pair.is_named(name));
            let retired = match login {
                // Only a value whose MAC says it was issued unbound can have been retired
                // (anything else the bound cookie layer refuses by itself): checked here,
                // without the store.
                Some((name, _)) if c.keys.open(None, name, value).is_ok() => {
                    match verdicts.iter().find(|(v, _)| *v == value) {
                        Some(&(_, retired)) => retired,
                        None => {
                            let retired = verdicts.len() >= MAX_LOOKUPS
                                || c.store.get(&retired_key(name, value)).await?.is_some();
                            verdicts.push((value, retired));
                            retired
                        }
                    }
                }
                _ => false,
            };
            if retired {
                removed += 1;
            } else {
                kept.push(pair.written_name(), pair.value());
            }
        }
        if removed == 0 && cookies.pieces().all(Result::is_ok) {
            return Ok(());
        }
    }
    kept.replace(headers);
    if removed > 0 {
        tracing::debug!(
            removed,
            "retired unbound cookie removed: its session is device-bound"
        );
    }
    Ok(())
}

/// What the application asked for in its response's extensions.
async fn after<B>(
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
                    .or_else(|| cookie(&presented, name))?;
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
        let algs: Vec<&str> = c
            .algorithms
            .iter()
            .map(|a| {
                if *a == Algorithm::RS256 {
                    "RS256"
                } else {
                    "ES256"
                }
            })
            .collect();
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
async fn logout_and_step_up<B>(
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
    if res.extensions_mut().remove::<RequireFreshProof>().is_some() {
        if let Ok(v) = HeaderValue::from_str(&expire()) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    Ok(())
}

/// Forget the session's key, and remember that it ended so the browser's next refresh is
/// told to stop.
async fn end_session(c: &Config, sid: &str) -> Result<(), StoreError> {
    c.store.remove(&format!("dbsc:session:{sid}")).await?;
    c.store
        .put(&format!("dbsc:ended:{sid}"), vec![1], c.session_lifetime)
        .await
}

/// Whether the request carries a cookie that only the session's holder was given: its
/// short-lived cookie (expired or not) or a login cookie re-bound to its key.
fn presents_session_cookie(c: &Config, headers: &HeaderMap, sid: &str, jwk: &PublicJwk) -> bool {
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

fn json_response(status: StatusCode, body: Option<Value>) -> Response<Full<Bytes>> {
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let mut res = Response::new(Full::new(bytes));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn with_challenge(
    mut res: Response<Full<Bytes>>,
    challenge: &str,
    sid: &str,
) -> Response<Full<Bytes>> {
    if let Ok(v) = HeaderValue::from_str(&header::challenge(challenge, sid)) {
        res.headers_mut().insert(header::CHALLENGE, v);
    }
    res
}

fn proof_refused(e: &ProofError) -> Response<Full<Bytes>> {
    tracing::debug!(error = %e, "DBSC proof refused");
    let status = if e.is_bad_signature() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    problem(status, "dbsc_proof_refused", &e.to_string())
}

async fn register(c: &Config, headers: &HeaderMap) -> Answer {
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
        .filter_map(|(name, _)| Some(cookie_digest(name, cookie(&cookies, name)?)))
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
        let Some(presented) = cookie(&cookies, name) else {
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

/// The proof JWT, quoted or bare.
fn proof_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::RESPONSE)
        .and_then(|v| v.to_str().ok())
        .and_then(bare_or_string)
}

/// Where an outstanding refresh challenge lives: its own entry, so that answering it is
/// one atomic `take` — two refreshes racing with one challenge cannot both mint a cookie,
/// at one instance or several sharing the store.
fn challenge_key(sid: &str, challenge: &str) -> String {
    format!("dbsc:challenge:{sid}:{challenge}")
}

/// Issue a challenge for the session's next proof and save the session, keeping at most
/// one previous challenge outstanding (for refreshes racing each other).
async fn issue_challenge(
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

/// `403` with a challenge: the browser signs it and tries again. The newest one if it was
/// issued within [`CHALLENGE_REUSE`] (it is unused: a used one is replaced at once), else
/// a new one. Neither a proof-less request nor a replayed old proof can rotate it away.
async fn challenge_again(
    c: &Config,
    sid: &str,
    mut record: SessionRecord,
    now: SystemTime,
    (reason, detail): (&str, &str),
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

async fn refresh(c: &Config, headers: &HeaderMap) -> Answer {
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
        return Ok(json_response(
            StatusCode::OK,
            Some(json!({"session_identifier": sid, "continue": false})),
        ));
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
            return Err(proof_refused(&e));
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
