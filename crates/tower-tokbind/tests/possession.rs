//! The cookie layer consumes "this request proved possession of key K", whatever proved
//! it, under a freshness policy: a key proven only earlier (as DBSC proves it) is refused
//! unless the layer was told to accept such proofs.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response};
use tokbind_proto::{Freshness, FreshnessPolicy, Mechanism, ProvenKey, TokenBindingId};
use tower::{ServiceBuilder, ServiceExt as _, service_fn};
use tower_tokbind::add_proven_key;
use tower_tokbind::cookie::{BoundCookieLayer, CookieKeys};

const JWK: &[u8] = br#"{"crv":"P-256","kty":"EC","x":"vVbAUN4XS8pu29ls5URCinUAAvPAGeeP_bOQ4cDBLus","y":"sNd68KYIl43LcQs9Smae5fOYJxNs1mY60_kaNiW5xoQ"}"#;

fn dpop() -> ProvenKey {
    ProvenKey::new(Mechanism::Dpop, Freshness::ThisRequest, JWK, None)
}

fn dbsc(age: Duration) -> ProvenKey {
    let at = SystemTime::now() - age;
    ProvenKey::new(Mechanism::Dbsc, Freshness::ProvenAt(at), JWK, Some("S1"))
}

fn token_binding() -> ProvenKey {
    ProvenKey::token_binding(&TokenBindingId::ecdsap256(&[9; 64]))
}

/// One request through the layer: the `Cookie` the app saw, and the `Set-Cookie` it sent.
async fn round_trip(
    layer: &BoundCookieLayer,
    keys: &[ProvenKey],
    cookie: Option<&str>,
) -> (Option<String>, Option<String>) {
    let svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(|req: Request<()>| async move {
            let seen = req
                .headers()
                .get(COOKIE)
                .map(|v| v.to_str().unwrap().to_string());
            let res = Response::builder()
                .header(SET_COOKIE, "sid=abc; Path=/; HttpOnly")
                .header("x-seen", seen.unwrap_or_default())
                .body(())
                .unwrap();
            Ok::<_, Infallible>(res)
        }));
    let mut req = Request::new(());
    for k in keys {
        add_proven_key(req.extensions_mut(), k.clone());
    }
    if let Some(c) = cookie {
        req.headers_mut().insert(COOKIE, c.parse().unwrap());
    }
    let res = svc.oneshot(req).await.unwrap();
    let header = |name| {
        res.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_string())
            .filter(|v| !v.is_empty())
    };
    (header("x-seen"), header(SET_COOKIE.as_str()))
}

fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_dpop_proof_binds_cookies_like_token_binding() {
    let layer = BoundCookieLayer::new(CookieKeys::generate().unwrap());
    let (_, set) = round_trip(&layer, &[dpop()], None).await;
    let cookie = cookie_of(&set.unwrap());
    assert!(cookie.contains("~tb1."), "{cookie}");
    // The same key on the next request: the app sees the original value.
    let (seen, _) = round_trip(&layer, &[dpop()], Some(&cookie)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
    // Another mechanism's key is another key, even with the same bytes.
    let same_bytes = ProvenKey::new(
        Mechanism::MtlsCertificate,
        Freshness::ThisRequest,
        JWK,
        None,
    );
    let (seen, _) = round_trip(&layer, &[same_bytes], Some(&cookie)).await;
    assert_eq!(seen, None);
    // A thief with a Token Binding key of her own.
    let (seen, _) = round_trip(&layer, &[token_binding()], Some(&cookie)).await;
    assert_eq!(seen, None);
}

#[tokio::test]
async fn earlier_proofs_count_only_when_allowed_and_only_while_recent() {
    let keys = CookieKeys::generate().unwrap();
    let strict = BoundCookieLayer::new(keys.clone());
    let dbsc_ok = BoundCookieLayer::new(keys)
        .accept_proofs(FreshnessPolicy::Within(Duration::from_secs(300)));

    // By default an earlier proof is no proof: no bound cookie is issued on it…
    let (_, set) = round_trip(&strict, &[dbsc(Duration::from_secs(10))], None).await;
    assert_eq!(
        set, None,
        "a cookie was bound to an earlier proof by default"
    );
    // …and a cookie bound to that key is not accepted on it.
    let (_, set) = round_trip(&dbsc_ok, &[dbsc(Duration::from_secs(10))], None).await;
    let cookie = cookie_of(&set.unwrap());
    let (seen, _) = round_trip(&strict, &[dbsc(Duration::from_secs(10))], Some(&cookie)).await;
    assert_eq!(seen, None);

    // Allowed within the window…
    let (seen, _) = round_trip(&dbsc_ok, &[dbsc(Duration::from_secs(10))], Some(&cookie)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
    // …and not after it.
    let (seen, _) = round_trip(&dbsc_ok, &[dbsc(Duration::from_secs(301))], Some(&cookie)).await;
    assert_eq!(seen, None);
}

#[tokio::test]
async fn with_several_proofs_any_proven_key_opens_its_cookie_and_new_ones_bind_to_the_first() {
    let layer = BoundCookieLayer::new(CookieKeys::generate().unwrap());
    let (_, set) = round_trip(&layer, &[dpop()], None).await;
    let dpop_cookie = cookie_of(&set.unwrap());
    // Token Binding and DPoP on one request: the DPoP-bound cookie still opens.
    let (seen, set) = round_trip(&layer, &[token_binding(), dpop()], Some(&dpop_cookie)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
    // The new cookie is bound to the first key (Token Binding): DPoP alone cannot open it.
    let tb_cookie = cookie_of(&set.unwrap());
    let (seen, _) = round_trip(&layer, &[dpop()], Some(&tb_cookie)).await;
    assert_eq!(seen, None);
    let (seen, _) = round_trip(&layer, &[token_binding()], Some(&tb_cookie)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
}
