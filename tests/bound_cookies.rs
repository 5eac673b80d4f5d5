//! Bound cookies end to end over real TLS: Token Binding handshake → TokenBindingLayer →
//! BoundCookieLayer → a handler that sets cookies and echoes the Cookie header it sees,
//! directly and behind the proxy.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::get;
use bytes::Bytes;
use common::*;
use http::Response;
use tokbind::client::{Client, KeyStore, MemoryKeyStore};
use tokbind::tls::ServerVerification;
use tokbind::tower::TokenBindingLayer;
use tokbind::tower::cookie::{BoundCookieLayer, CookieKeys, DropReason, UnprovenClients};
use tokbind_testkit::counters::Counters;

async fn login() -> impl IntoResponse {
    (
        // AppendHeaders: a plain array would *insert*, keeping only the last Set-Cookie.
        AppendHeaders([
            (
                header::SET_COOKIE,
                "id=s3cr3t-session; Path=/; HttpOnly; SameSite=Lax; Priority=High",
            ),
            (header::SET_COOKIE, "theme=dark; Path=/"),
        ]),
        "logged in",
    )
}

async fn logout() -> impl IntoResponse {
    ([(header::SET_COOKIE, "id=; Path=/; Max-Age=0")], "bye")
}

/// The Cookie header exactly as the application receives it.
async fn echo(headers: HeaderMap) -> String {
    headers
        .get_all(header::COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn app(layer: BoundCookieLayer) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/logout", get(logout))
        .route("/echo", get(echo))
        .layer(layer)
}

fn req(path: &str, cookie: Option<&str>) -> http::Request<http_body_util::Full<Bytes>> {
    let mut b = http::Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Default::default()).unwrap()
}

fn set_cookies(res: &Response<Bytes>) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The `id` cookie's value from a login response.
fn bound_id(res: &Response<Bytes>) -> String {
    let line = set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with("id="))
        .unwrap_or_else(|| panic!("id cookie set: {res:?}"));
    line["id=".len()..line.find(';').unwrap()].to_string()
}

fn body(res: &Response<Bytes>) -> String {
    String::from_utf8(res.body().to_vec()).unwrap()
}

struct Setup {
    server: Server,
    stats: Stats,
}

/// What the cookie layer counted (its `metrics` feature), for this test only.
struct Stats(Counters);

impl Stats {
    const PRESENTED: &str = "tokbind_bound_cookies_presented_total";

    fn accepted_count(&self) -> u64 {
        self.0.get(Self::PRESENTED, "accepted")
    }

    fn dropped_count(&self, reason: DropReason) -> u64 {
        self.0.get(Self::PRESENTED, reason.reason())
    }
}

async fn setup(d: Deployment, layer: BoundCookieLayer) -> Setup {
    Setup {
        stats: Stats(Counters::install()),
        server: d
            .start_app(|b| b, app(layer), TokenBindingLayer::new())
            .await,
    }
}

fn layer() -> BoundCookieLayer {
    BoundCookieLayer::new(CookieKeys::generate().unwrap()).only(["id"])
}

fn fresh_keys() -> Arc<dyn KeyStore> {
    Arc::new(MemoryKeyStore::default())
}

/// A client with its own key store (its own Token Binding keys).
fn client(server: &Server, keys: Arc<dyn KeyStore>) -> Client {
    Client::builder()
        .server_verification(ServerVerification::Roots(server.cert.cert_pem.clone()))
        .keys(keys)
        .build()
        .unwrap()
}

both_deployments!(
    bound_cookie_works_on_a_new_connection_with_the_same_key,
    stolen_tampered_and_unbound_cookies_are_dropped,
    only_configured_cookies_are_touched,
    set_cookie_attributes_are_preserved_and_secure_is_forced,
    key_rotation_old_key_verifies_new_key_signs,
    without_token_binding_cookies_are_refused_by_default,
    opt_in_issues_unbound_cookies_that_cannot_be_downgraded_into,
    resetting_the_key_voids_the_bound_cookie,
);

async fn send(
    server: &Server,
    client: &Client,
    path: &str,
    cookie: Option<&str>,
) -> Response<Bytes> {
    let mut conn = server.connect(client).await;
    conn.send(req(path, cookie)).await.unwrap()
}

async fn bound_cookie_works_on_a_new_connection_with_the_same_key(d: Deployment) {
    let Setup { server, stats } = setup(d, layer()).await;
    let alice = client(&server, fresh_keys());
    let res = send(&server, &alice, "/login", None).await;
    let id = bound_id(&res);
    assert!(id.starts_with("s3cr3t-session~tb1."), "{id}");

    // A new TLS connection (new EKM), same key: the application sees the original value.
    let res = send(&server, &alice, "/echo", Some(&format!("id={id}"))).await;
    assert_eq!(body(&res), "id=s3cr3t-session");
    assert_eq!(stats.accepted_count(), 1);
}

async fn stolen_tampered_and_unbound_cookies_are_dropped(d: Deployment) {
    let Setup { server, stats } = setup(d, layer()).await;
    let alice = client(&server, fresh_keys());
    let id = bound_id(&send(&server, &alice, "/login", None).await);

    // Mallory has the cookie but not Alice's key.
    let mallory = client(&server, fresh_keys());
    let res = send(&server, &mallory, "/echo", Some(&format!("id={id}"))).await;
    assert_eq!(body(&res), "", "stolen cookie removed before the handler");
    assert_eq!(stats.dropped_count(DropReason::Mismatch), 1);

    // Alice's own cookie, tampered: value or MAC.
    let tampered_value = id.replacen("s3cr3t", "s3cr3T", 1);
    let mut tampered_mac = id.clone();
    let last = tampered_mac.pop().unwrap();
    tampered_mac.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [&tampered_value, &tampered_mac] {
        let res = send(&server, &alice, "/echo", Some(&format!("id={bad}"))).await;
        assert_eq!(body(&res), "", "{bad}");
    }
    assert!(
        stats.dropped_count(DropReason::Mismatch) + stats.dropped_count(DropReason::Malformed) >= 3
    );

    // The bare value with the binding stripped, and a garbage binding.
    let res = send(&server, &alice, "/echo", Some("id=s3cr3t-session")).await;
    assert_eq!(body(&res), "");
    assert_eq!(stats.dropped_count(DropReason::Unbound), 1);
    let res = send(&server, &alice, "/echo", Some("id=s3cr3t-session~tb1.!!")).await;
    assert_eq!(body(&res), "");
    assert!(stats.dropped_count(DropReason::Malformed) >= 1);
}

async fn only_configured_cookies_are_touched(d: Deployment) {
    let Setup { server, .. } = setup(d, layer()).await;
    let alice = client(&server, fresh_keys());
    let login = send(&server, &alice, "/login", None).await;
    let id = bound_id(&login);
    let res = send(
        &server,
        &alice,
        "/echo",
        Some(&format!("a=1; id={id}; theme=dark;b=\"q\"")),
    )
    .await;
    assert_eq!(body(&res), "a=1; id=s3cr3t-session; theme=dark; b=\"q\"");
    // …and a bad `id` among them is removed alone.
    let res = send(&server, &alice, "/echo", Some("a=1; id=forged; b=2")).await;
    assert_eq!(body(&res), "a=1; b=2");
}

async fn set_cookie_attributes_are_preserved_and_secure_is_forced(d: Deployment) {
    let Setup { server, .. } = setup(d, layer()).await;
    let alice = client(&server, fresh_keys());
    let res = send(&server, &alice, "/login", None).await;
    let cookies = set_cookies(&res);
    let id = cookies.iter().find(|c| c.starts_with("id=")).unwrap();
    let attrs = &id[id.find(';').unwrap()..];
    assert_eq!(
        attrs,
        "; Path=/; HttpOnly; SameSite=Lax; Priority=High; Secure"
    );
    assert!(
        cookies.contains(&"theme=dark; Path=/".to_string()),
        "unconfigured cookie untouched: {cookies:?}"
    );
    // A removal cookie passes as written, so logout works for everyone.
    let res = send(&server, &alice, "/logout", None).await;
    assert_eq!(
        set_cookies(&res),
        vec!["id=; Path=/; Max-Age=0".to_string()]
    );
}

async fn key_rotation_old_key_verifies_new_key_signs(d: Deployment) {
    let (old, new) = ([0x11u8; 32], [0x22u8; 32]);
    let with_keys = |k: CookieKeys| app(BoundCookieLayer::new(k).only(["id"]));
    // Alice keeps her Token Binding key (per origin) across the server's redeploys.
    let alice_keys = Arc::new(MemoryKeyStore::default()) as Arc<dyn KeyStore>;

    // Each deployment after the first on the same address (the same origin), as a redeploy.
    let deploy = async |keys: CookieKeys, addr: std::net::SocketAddr| {
        let app = with_keys(keys);
        d.start_app_on(bind(addr).await, |b| b, app, TokenBindingLayer::new())
            .await
    };

    let any_port = "127.0.0.1:0".parse().unwrap();
    let v1 = deploy(CookieKeys::new(&old).unwrap(), any_port).await;
    let addr = v1.addr;
    let alice = client(&v1, Arc::clone(&alice_keys));
    let old_cookie = bound_id(&send(&v1, &alice, "/login", None).await);
    v1.stop().await;

    // Redeployed on the same origin with a new signing key, the old one kept for verifying.
    let rotated = CookieKeys::new(&new).unwrap().with_previous(&old).unwrap();
    let v2 = deploy(rotated, addr).await;
    let alice = client(&v2, Arc::clone(&alice_keys));
    let res = send(&v2, &alice, "/echo", Some(&format!("id={old_cookie}"))).await;
    assert_eq!(
        body(&res),
        "id=s3cr3t-session",
        "a cookie signed with the old key still verifies"
    );
    let new_cookie = bound_id(&send(&v2, &alice, "/login", None).await);
    assert_ne!(new_cookie, old_cookie, "the new key signs");
    v2.stop().await;

    // Proof that the new key signed: a deployment with only the old key refuses the new
    // cookie, one with only the new key accepts it.
    let v3 = deploy(CookieKeys::new(&old).unwrap(), addr).await;
    let alice = client(&v3, Arc::clone(&alice_keys));
    assert_eq!(
        body(&send(&v3, &alice, "/echo", Some(&format!("id={new_cookie}"))).await),
        ""
    );
    v3.stop().await;
    let v4 = deploy(CookieKeys::new(&new).unwrap(), addr).await;
    let alice = client(&v4, Arc::clone(&alice_keys));
    let res = send(&v4, &alice, "/echo", Some(&format!("id={new_cookie}"))).await;
    assert_eq!(body(&res), "id=s3cr3t-session");
}

/// A client that does not offer Token Binding.
fn plain_client(server: &Server) -> Client {
    Client::builder()
        .server_verification(ServerVerification::Roots(server.cert.cert_pem.clone()))
        .tls(|b| b.offer_token_binding(false))
        .build()
        .unwrap()
}

async fn without_token_binding_cookies_are_refused_by_default(d: Deployment) {
    let Setup { server, stats } = setup(d, layer()).await;
    let alice = client(&server, fresh_keys());
    let id = bound_id(&send(&server, &alice, "/login", None).await);

    let plain = plain_client(&server);
    // Alice's bound cookie on a connection without Token Binding: removed.
    let res = send(&server, &plain, "/echo", Some(&format!("id={id}"))).await;
    assert_eq!(body(&res), "");
    assert_eq!(stats.dropped_count(DropReason::NoProof), 1);
    // And such a client is never issued the protected cookie; others still flow.
    let res = send(&server, &plain, "/login", None).await;
    assert_eq!(set_cookies(&res), vec!["theme=dark; Path=/".to_string()]);
}

async fn opt_in_issues_unbound_cookies_that_cannot_be_downgraded_into(d: Deployment) {
    let Setup { server, stats } =
        setup(d, layer().unproven_clients(UnprovenClients::IssueUnbound)).await;
    let plain = plain_client(&server);
    let unbound = bound_id(&send(&server, &plain, "/login", None).await);
    assert!(unbound.starts_with("s3cr3t-session~tb0."), "{unbound}");
    let res = send(&server, &plain, "/echo", Some(&format!("id={unbound}"))).await;
    assert_eq!(body(&res), "id=s3cr3t-session");

    // Token Binding clients still get bound cookies, and theirs cannot be used without the
    // key — neither as they are nor with the binding stripped or relabelled as unbound.
    let alice = client(&server, fresh_keys());
    let bound = bound_id(&send(&server, &alice, "/login", None).await);
    assert!(bound.contains("~tb1."));
    let relabelled = bound.replace("~tb1.", "~tb0.");
    for stolen in [bound.as_str(), "s3cr3t-session", relabelled.as_str()] {
        let res = send(&server, &plain, "/echo", Some(&format!("id={stolen}"))).await;
        assert_eq!(body(&res), "", "{stolen}");
    }
    // An unbound cookie is refused from a client that proves a key (it would be bearer).
    let res = send(&server, &alice, "/echo", Some(&format!("id={unbound}"))).await;
    assert_eq!(body(&res), "");
    assert_eq!(stats.dropped_count(DropReason::NoProof), 1);
    assert_eq!(stats.dropped_count(DropReason::Unbound), 2);
    assert_eq!(stats.dropped_count(DropReason::Mismatch), 1);
}

async fn resetting_the_key_voids_the_bound_cookie(d: Deployment) {
    // RFC 8473 §8.2: after a key reset the client presents a new Token Binding ID, and
    // everything bound to the old one stops working.
    let Setup { server, stats } = setup(d, layer()).await;
    let keys = fresh_keys();
    let alice = client(&server, Arc::clone(&keys));
    let id = bound_id(&send(&server, &alice, "/login", None).await);
    assert_eq!(
        body(&send(&server, &alice, "/echo", Some(&format!("id={id}"))).await),
        "id=s3cr3t-session"
    );
    let before = keys.list().unwrap();
    assert_eq!(keys.reset(Some("127.0.0.1")).unwrap(), 1);
    assert_eq!(
        body(&send(&server, &alice, "/echo", Some(&format!("id={id}"))).await),
        "",
        "the old cookie is void"
    );
    assert_eq!(stats.dropped_count(DropReason::Mismatch), 1);
    let after = keys.list().unwrap();
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].tbh, before[0].tbh, "a new Token Binding ID");
}
