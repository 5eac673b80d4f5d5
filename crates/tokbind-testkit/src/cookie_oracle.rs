//! A differential oracle for the cookie layers: arbitrary `Cookie` headers go through the
//! README's stack (`DbscLayer` → `BoundCookieLayer::only(["id"])` → `tower-sessions`), and
//! the application behind it reads them with every parser applications use — a real
//! `tower-sessions` session lookup, `tower-cookies`, `axum-extra`'s `CookieJar`,
//! `headers::Cookie` (`TypedHeader<Cookie>`), `cookie::Cookie::split_parse_encoded` and
//! `cookie::Cookie::parse`. What they read, and the key the session cookie the response
//! sets again is bound to, are held against what the requester can prove.
//!
//! Four people have sessions: `victim` (bound to a Token Binding key), `thief` (bound to
//! the thief's own key), `alice` (a DBSC browser: her login cookie was issued unbound and
//! re-bound to her DBSC key at registration, which retired the unbound form) and `anon`
//! (issued unbound, never registered). The thief holds all their cookies, but only their
//! own key. So:
//!
//! * proving the thief's key, the application may see the thief's session and no other;
//! * proving nothing, it may see `anon`'s (an unbound cookie is a bearer cookie) and no
//!   other — not alice's, whose unbound form stays dead in every spelling;
//! * either way, alice's too while her short-lived DBSC cookie is presented (the theft DBSC
//!   bounds by that cookie's lifetime) — but the session cookie the response sets again for
//!   any session but the requester's own never opens with the thief's key, nor unbound.
//!
//! Inputs are templates ([`Harness::expand`]): bytes below `0x20` other than tab are
//! invalid in a header value anyway, so they stand for the cookies' values ([`Secret`]),
//! and `\n` starts another `Cookie` header.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Request};
use axum::response::IntoResponse;
use axum::routing::get;
use headers::HeaderMapExt as _;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokbind_dbsc::{DbscLayer, StartDeviceBoundSession};
use tokbind_proto::{FreshnessPolicy, KeyParameters, ProvenKey, SigningKey, TokenBindingSigner};
use tower::ServiceExt as _;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};
use tower_tokbind::add_proven_key;
use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys, UnprovenClients};

use crate::DbscBrowser;

/// The session cookie's name, as `tower-sessions` sets it.
pub const NAME: &str = "id";

/// The DBSC short-lived cookie's name.
pub const DBSC_COOKIE: &str = "__Host-dbsc";

/// The cookie values a template can name, by the byte that stands for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Secret {
    /// The victim's session cookie, bound to the victim's key.
    VictimBound = 1,
    /// The victim's session id with the binding stripped.
    VictimBare = 2,
    /// The thief's own session cookie, bound to the thief's key.
    ThiefBound = 3,
    /// Alice's login cookie as issued before DBSC registration (retired since).
    AliceRetired = 4,
    /// Alice's login cookie re-bound to her DBSC key.
    AliceRebound = 5,
    /// Anon's cookie, issued unbound.
    AnonUnbound = 6,
    /// Alice's session id with the binding stripped.
    AliceBare = 7,
    /// Alice's short-lived DBSC cookie (`__Host-dbsc`), which proves her DBSC key.
    AliceShortLived = 8,
}

impl Secret {
    /// Every secret.
    pub const ALL: [Self; 8] = [
        Self::VictimBound,
        Self::VictimBare,
        Self::ThiefBound,
        Self::AliceRetired,
        Self::AliceRebound,
        Self::AnonUnbound,
        Self::AliceBare,
        Self::AliceShortLived,
    ];
}

/// What the requester proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The thief, proving their own Token Binding key.
    Thief,
    /// Someone proving no key at all.
    Nobody,
}

/// What the application behind the layers read.
#[derive(Debug, Clone, Default)]
pub struct Readings {
    /// The user of the `tower-sessions` session the request opened.
    pub user: Option<String>,
    /// Every `(parser, value)` of a cookie that parser reads as [`NAME`].
    pub session_cookies: Vec<(&'static str, String)>,
    /// The `Cookie` header values the application received.
    pub header: Vec<HeaderValue>,
    /// The session cookie's value in the response's `Set-Cookie`, if it set one.
    pub set: Option<String>,
}

/// The stack, its four sessions and the thief's cookie jar.
pub struct Harness {
    app: Router,
    keys: CookieKeys,
    thief: ProvenKey,
    secrets: [String; Secret::ALL.len()],
    /// Session id of `thief` and `anon` (what parsers may read in each case).
    thief_id: String,
    anon_id: String,
}

impl Harness {
    /// Build the stack and sign the four users in.
    pub async fn new() -> Self {
        let keys = CookieKeys::generate().expect("random cookie key");
        let dbsc = DbscLayer::new(keys.clone(), "https://app.example")
            .rebind_cookie(NAME, "Path=/; Secure; HttpOnly; SameSite=Lax");
        let cookies = BoundCookieLayer::new(keys.clone())
            .only([NAME])
            .unproven_clients(UnprovenClients::IssueUnbound)
            .accept_proofs(FreshnessPolicy::Within(dbsc.proof_window()));
        let app = Router::new()
            .route("/login/{user}", get(login))
            .fallback(read)
            // Saved on every request, so a loaded session's cookie is set again each time:
            // which key it gets is part of what is checked.
            .layer(
                SessionManagerLayer::new(MemoryStore::default())
                    .with_secure(true)
                    .with_always_save(true),
            )
            .layer(cookies)
            .layer(dbsc);
        let key = || {
            let k = SigningKey::generate(KeyParameters::ECDSAP256).expect("key");
            ProvenKey::token_binding(k.token_binding_id())
        };
        let (victim, thief) = (key(), key());
        let mut h = Self {
            app,
            keys,
            thief: thief.clone(),
            secrets: Default::default(),
            thief_id: String::new(),
            anon_id: String::new(),
        };

        let victim_bound = h.login("victim", Some(&victim)).await.0;
        let thief_bound = h.login("thief", Some(&thief)).await.0;
        let (alice_unbound, challenge) = h.login("alice", None).await;
        let anon_unbound = h.login("anon", None).await.0;
        let (alice_rebound, alice_short_lived) = h
            .register(&alice_unbound, &challenge.expect("a challenge"))
            .await;
        let bare = |v: &str| v.rsplit_once('~').expect("bound").0.to_string();
        h.thief_id = bare(&thief_bound);
        h.anon_id = bare(&anon_unbound);
        h.secrets = [
            victim_bound.clone(),
            bare(&victim_bound),
            thief_bound,
            alice_unbound.clone(),
            alice_rebound,
            anon_unbound,
            bare(&alice_unbound),
            alice_short_lived,
        ];
        h
    }

    /// The value `s` stands for.
    pub fn secret(&self, s: Secret) -> &str {
        &self.secrets[s as usize - 1]
    }

    /// The `Cookie` header values a template stands for, or `None` when some byte cannot
    /// be in a header value.
    pub fn expand(&self, template: &[u8]) -> Option<Vec<HeaderValue>> {
        template
            .split(|&b| b == b'\n')
            .map(|line| {
                let mut bytes = Vec::with_capacity(line.len());
                for &b in line {
                    match Secret::ALL.iter().find(|s| **s as u8 == b) {
                        Some(s) => bytes.extend_from_slice(self.secret(*s).as_bytes()),
                        None => bytes.push(b),
                    }
                }
                HeaderValue::from_bytes(&bytes).ok()
            })
            .collect()
    }

    /// One request with these `Cookie` headers to a route that changes nothing.
    pub async fn run(&self, who: Requester, cookies: &[HeaderValue]) -> Readings {
        let mut req = Request::get("/read")
            .body(axum::body::Body::empty())
            .unwrap();
        for v in cookies {
            req.headers_mut().append(COOKIE, v.clone());
        }
        if who == Requester::Thief {
            add_proven_key(req.extensions_mut(), self.thief.clone());
        }
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        assert!(!res.status().is_server_error(), "a 5xx: {}", res.status());
        let mut seen = res
            .extensions()
            .get::<Arc<Mutex<Readings>>>()
            .map(|r| r.lock().expect("not poisoned").clone())
            .unwrap_or_default();
        seen.set = set_cookie(res.headers(), NAME);
        seen
    }

    /// Run `template` as the thief and as nobody, and check what the application read.
    pub async fn check(&self, template: &[u8]) -> Result<(), String> {
        let Some(values) = self.expand(template) else {
            return Ok(());
        };
        for who in [Requester::Thief, Requester::Nobody] {
            let (allowed_user, allowed_id, key) = match who {
                Requester::Thief => ("thief", &self.thief_id, Secret::ThiefBound),
                Requester::Nobody => ("anon", &self.anon_id, Secret::AnonUnbound),
            };
            let seen = self.run(who, &values).await;
            let fail = |what: String| {
                Err(format!(
                    "{who:?}: {what}\n  sent {values:?}\n  the app got {:?}",
                    seen.header
                ))
            };
            // Alice's short-lived cookie vouches for her DBSC key: within its lifetime, her
            // re-bound session cookie opens (the theft DBSC bounds by that lifetime).
            let alice = self.presents(&values, DBSC_COOKIE, Secret::AliceShortLived);
            let allowed = |user: &str| user == allowed_user || (alice && user == "alice");
            if let Some(user) = seen.user.as_deref().filter(|u| !allowed(u)) {
                return fail(format!("opened {user}'s session"));
            }
            let alice_id = self.secret(Secret::AliceBare);
            let allowed_value = |v: &str| v == allowed_id || (alice && v == alice_id);
            let unapproved = seen.session_cookies.iter().find(|(_, v)| !allowed_value(v));
            if let Some((parser, v)) = unapproved {
                return fail(format!("{parser} read {NAME}={v:?}"));
            }
            // The session cookie set again for someone else's session stays theirs: it never
            // opens with the requester's key, nor as a cookie bound to no key.
            if let (Some(set), Some(user)) = (&seen.set, &seen.user) {
                let mine = self.keys.open(Some(&self.thief), NAME, set).is_ok();
                let unbound = self.keys.open(None, NAME, set).is_ok();
                if (mine && user != "thief") || (unbound && user != "anon") {
                    return fail(format!("{user}'s session cookie was set again as {set:?}"));
                }
            }
            // Not vacuous: the requester's own cookie, spelled plainly and the only `id`,
            // does open (beside a copy bound to another key, no copy passes; and a cookie
            // issued unbound never opens on a request that proves a key, such as alice's
            // through her short-lived cookie).
            let own = format!("{NAME}={}", self.secret(key));
            let pieces = || {
                values
                    .iter()
                    .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
                    .map(<[u8]>::trim_ascii)
            };
            let plain = pieces().any(|p| p == own.as_bytes());
            let copies = pieces().filter(|p| p.starts_with(b"id=")).count();
            let proves_a_key = who == Requester::Thief || alice;
            let opens = key == Secret::ThiefBound || !proves_a_key;
            if plain && copies == 1 && opens && seen.user.as_deref() != Some(allowed_user) {
                return fail(format!("{allowed_user}'s own cookie did not open"));
            }
        }
        Ok(())
    }

    /// Sign `user` in: the session cookie's (bound) value and the DBSC challenge.
    async fn login(&self, user: &str, key: Option<&ProvenKey>) -> (String, Option<String>) {
        let mut req = Request::get(format!("/login/{user}"))
            .body(axum::body::Body::empty())
            .unwrap();
        if let Some(k) = key {
            add_proven_key(req.extensions_mut(), k.clone());
        }
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::OK);
        let challenge = res
            .headers()
            .get("secure-session-registration")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("challenge=\"").nth(1)?.split('"').next())
            .map(str::to_string);
        (
            set_cookie(res.headers(), NAME).expect("a session cookie"),
            challenge,
        )
    }

    /// Whether some `Cookie` piece is cookie `name` with the value `secret` stands for, as
    /// the layers read names and values (trimmed of any white space).
    fn presents(&self, values: &[HeaderValue], name: &str, secret: Secret) -> bool {
        values
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
            .filter_map(|p| std::str::from_utf8(p).ok()?.split_once('='))
            .any(|(n, v)| n.trim() == name && v.trim() == self.secret(secret))
    }

    /// Register a DBSC session for the login cookie `unbound`: the re-bound login
    /// cookie's value and the short-lived cookie's.
    async fn register(&self, unbound: &str, challenge: &str) -> (String, String) {
        let req = Request::post("/dbsc/register")
            .header(
                "secure-session-response",
                DbscBrowser::new().proof(challenge, true),
            )
            .header(COOKIE, format!("{NAME}={unbound}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        assert_eq!(res.status(), StatusCode::OK, "DBSC registration");
        (
            set_cookie(res.headers(), NAME).expect("the re-bound login cookie"),
            set_cookie(res.headers(), DBSC_COOKIE).expect("the short-lived cookie"),
        )
    }
}

/// The value of the `Set-Cookie` for `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| cookie::Cookie::parse(v.to_str().ok()?).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

async fn login(session: Session, Path(user): Path<String>) -> impl IntoResponse {
    session.insert("user", user).await.expect("memory store");
    (
        axum::Extension(StartDeviceBoundSession::default()),
        "welcome",
    )
}

/// The application: every parser's reading of the request.
async fn read(
    session: Session,
    cookies: tower_cookies::Cookies,
    headers: HeaderMap,
) -> impl IntoResponse {
    let mut seen = Readings {
        user: session.get::<String>("user").await.ok().flatten(),
        header: headers.get_all(COOKIE).iter().cloned().collect(),
        ..Readings::default()
    };
    let mut note = |parser, name: &str, value: &str| {
        if name == NAME {
            seen.session_cookies.push((parser, value.to_string()));
        }
    };
    for c in cookies.list() {
        note("tower-cookies", c.name(), c.value());
    }
    for c in axum_extra::extract::cookie::CookieJar::from_headers(&headers).iter() {
        note("axum-extra", c.name(), c.value());
    }
    if let Some(typed) = headers.typed_get::<headers::Cookie>() {
        for (name, value) in typed.iter() {
            note("headers::Cookie", name, value);
        }
    }
    for v in headers.get_all(COOKIE) {
        let Ok(text) = std::str::from_utf8(v.as_bytes()) else {
            continue;
        };
        for c in cookie::Cookie::split_parse_encoded(text).flatten() {
            note("cookie::split_parse_encoded", c.name(), c.value());
        }
        for c in text
            .split(';')
            .filter_map(|p| cookie::Cookie::parse(p).ok())
        {
            note("cookie::Cookie::parse", c.name(), c.value());
        }
    }
    (axum::Extension(Arc::new(Mutex::new(seen))), "read")
}

/// Names some parser reads as `id` or as the DBSC cookie's, or nearly: to build templates
/// from.
pub const NAMES: &[&[u8]] = &[
    b"id",
    b" id",
    b"id ",
    b"\tid",
    b"i%64",
    b"%69d",
    b"%69%64",
    b"ID",
    b"Id",
    b"\"id\"",
    b"id\t",
    b"$id",
    b"i d",
    b"id%00",
    b"%20id",
    b"id%20",
    "\u{a0}id".as_bytes(),
    "id\u{3000}".as_bytes(),
    "\u{2003}id".as_bytes(),
    b"id\xa0",
    b"\xa0id",
    b"",
    b"x",
    b"__Host-dbsc",
    b" __Host-dbsc",
    b"__host-dbsc",
    b"__Host%2Ddbsc",
];

/// Ways to write the `=` of a pair.
pub const EQUALS: &[&[u8]] = &[b"=", b" =", b"= ", b" = ", b"=\t", b"==", b"=\""];

/// Ways to separate pairs, and `Cookie` headers (`\n`).
pub const SEPARATORS: &[&[u8]] = &[b";", b"; ", b";;", b" ; ", b";\t", b"; ;", b"\n", b";\n"];

/// Bytes to put around or instead of a value: quotes, escapes, the binding's own marks,
/// non-ASCII and Latin-1 bytes.
pub const JUNK: &[&[u8]] = &[
    b"\"",
    b"%",
    b"%7E",
    b"%7e",
    b"~",
    b"~tb1.",
    b"~tb0.",
    b"%ff",
    b"%c3%28",
    b"%41",
    b"\xe9",
    b"\xc3\xa9",
    b",",
    b"$Version=1",
    b"x=1",
    b" ",
    b"\t",
    b"=",
    b"\xff",
    b"\xc2\xa0",
];
