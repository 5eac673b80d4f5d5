//! A site protected by the README's whole stack (`bound_session_app`) and the DBSC steps a
//! browser takes against it: login, registration, refresh.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use serde_json::Value;
use tokbind::client::Client;
pub use tokbind_testkit::DbscBrowser;

use tokbind::tower::TokenBindingLayer;

use super::{Deployment, Server, bound_session_app};

pub struct Site {
    pub server: Server,
}

/// The site, served directly.
pub async fn site(dbsc_cookie_lifetime: Duration) -> Site {
    site_in(Deployment::Direct, dbsc_cookie_lifetime).await
}

/// The site, served as `deployment` says.
pub async fn site_in(deployment: Deployment, dbsc_cookie_lifetime: Duration) -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = bound_session_app(&format!("https://{addr}"), dbsc_cookie_lifetime);
    Site {
        server: deployment
            .start_app_on(listener, |b| b, app, TokenBindingLayer::new())
            .await,
    }
}

impl Site {
    pub async fn send(&self, client: &Client, req: Request<Full<Bytes>>) -> Response<Bytes> {
        self.server.connect(client).await.send(req).await.unwrap()
    }
    pub fn plain(&self) -> Client {
        self.server.client(|b| b.offer_token_binding(false))
    }
}

pub fn get(path: &str, cookies: &[&str]) -> Request<Full<Bytes>> {
    let mut b = Request::get(path);
    if !cookies.is_empty() {
        b = b.header(header::COOKIE, cookies.join("; "));
    }
    b.body(Full::default()).unwrap()
}

/// `name=value` of the `Set-Cookie` for `name`.
pub fn set_cookie(res: &Response<Bytes>, name: &str) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
}

pub fn text(res: &Response<Bytes>) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

/// `"<challenge>";id="<sid>"` or `(…);path="…";challenge="<challenge>"` → the challenge.
pub fn challenge_of(res: &Response<Bytes>, header_name: &str) -> String {
    let v = res.headers()[header_name].to_str().unwrap();
    let start = v
        .find("challenge=\"")
        .map_or(1, |i| i + "challenge=\"".len());
    v[start..].split('"').next().unwrap().to_string()
}

pub fn post(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::post(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::default()).unwrap()
}

/// `/login`: the unbound session cookie and the registration challenge.
pub async fn login(s: &Site, client: &Client) -> (String, String) {
    let res = s.send(client, get("/login", &[])).await;
    assert_eq!(res.status(), 200);
    let unbound_id = set_cookie(&res, "id").unwrap();
    (
        unbound_id,
        challenge_of(&res, "secure-session-registration"),
    )
}

/// A registered DBSC session, as the browser holds it.
pub struct Registered {
    pub sid: String,
    /// The login cookie, re-bound to the session key.
    pub bound_id: String,
    /// The short-lived cookie.
    pub dbsc: String,
    /// The refresh challenge sent ahead.
    pub next: String,
}

/// Registration, the proof sent bare as Chromium sends it.
pub async fn register(
    s: &Site,
    client: &Client,
    browser: &DbscBrowser,
    unbound_id: &str,
    challenge: &str,
) -> (Registered, Value) {
    let proof = browser.proof(challenge, true);
    let res = s
        .send(
            client,
            post(
                "/dbsc/register",
                &[("secure-session-response", &proof), ("cookie", unbound_id)],
            ),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let config: Value = serde_json::from_slice(res.body()).unwrap();
    let registered = Registered {
        sid: config["session_identifier"].as_str().unwrap().to_string(),
        bound_id: set_cookie(&res, "id").unwrap(),
        dbsc: set_cookie(&res, "__Host-dbsc").unwrap(),
        next: challenge_of(&res, "secure-session-challenge"),
    };
    (registered, config)
}

/// A refresh of session `sid` with `proof`, carrying `cookie` if given.
pub fn refresh(sid: &str, proof: &str, cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut headers = vec![
        ("sec-secure-session-id", sid),
        ("secure-session-response", proof),
    ];
    headers.extend(cookie.map(|c| ("cookie", c)));
    post("/dbsc/refresh", &headers)
}
