//! [`DbscLayer`]: the builder of the layer's configuration ([`Config`](crate::Config),
//! in the crate root, shared by every part of the layer).

use std::sync::Arc;
use std::time::Duration;

use tokbind_jose::Algorithm;
use tower_layer::Layer;
use tower_tokbind::cookie::CookieKeys;

use crate::Config;
use crate::service::Dbsc;
use crate::store::{DbscStore, MemoryDbscStore};

/// Device Bound Session Credentials on the server (W3C DBSC, as Chromium 156 speaks it).
///
/// * Registration: a response carrying [`StartDeviceBoundSession`](crate::StartDeviceBoundSession) gets a
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
///   `ProvenKeys` as *proven at the cookie's minting* ([`Freshness::ProvenAt`](tokbind_proto::Freshness::ProvenAt)) — never as
///   proven on this request. A bound cookie layer accepts it only when told to
///   (`BoundCookieLayer::accept_proofs(FreshnessPolicy::Within(..))`).
/// * A request whose browser could not refresh first carries `Secure-Session-Skipped`; the
///   layer puts what it says in the extensions as [`RefreshSkipped`](crate::RefreshSkipped) for the handler.
///
/// Chromium refreshes whenever the short-lived cookie expires within 120 s: keep its
/// lifetime well above that (default 10 minutes).
#[derive(Clone)]
#[must_use]
pub struct DbscLayer {
    pub(crate) config: Arc<Config>,
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
