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

/// One request through the layer: the `Cookie` the app saw, and the `Set-Cookie` it sent
/// (`sid=abc`).
async fn round_trip(
    layer: &BoundCookieLayer,
    keys: &[ProvenKey],
    cookie: Option<&str>,
) -> (Option<String>, Option<String>) {
    round_trip_setting(layer, keys, cookie, "sid=abc; Path=/; HttpOnly").await
}

/// [`round_trip`], the app setting `set_cookie`.
async fn round_trip_setting(
    layer: &BoundCookieLayer,
    keys: &[ProvenKey],
    cookie: Option<&str>,
    set_cookie: &'static str,
) -> (Option<String>, Option<String>) {
    let svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(service_fn(move |req: Request<()>| async move {
            let seen = req
                .headers()
                .get(COOKIE)
                .map(|v| v.to_str().unwrap().to_string());
            let res = Response::builder()
                .header(SET_COOKIE, set_cookie)
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
    let dbsc_ok = BoundCookieLayer::new(keys.clone())
        .accept_proofs(FreshnessPolicy::Within(Duration::from_secs(300)));

    // An earlier proof never binds a new cookie, whatever the policy: only a key proven
    // for this very request does.
    for layer in [&strict, &dbsc_ok] {
        let (_, set) = round_trip(layer, &[dbsc(Duration::from_secs(10))], None).await;
        assert_eq!(set, None, "a new cookie was bound to an earlier proof");
    }
    // A cookie bound to the DBSC key (as the DBSC layer binds the login cookie at
    // registration) is not accepted on an earlier proof by default…
    let cookie = format!(
        "sid={}",
        keys.bind(Some(&dbsc(Duration::ZERO)), "sid", "abc")
    );
    let (seen, _) = round_trip(&strict, &[dbsc(Duration::from_secs(10))], Some(&cookie)).await;
    assert_eq!(seen, None);

    // …allowed within the window, and set again to the same key…
    let (seen, set) = round_trip(&dbsc_ok, &[dbsc(Duration::from_secs(10))], Some(&cookie)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
    let again = cookie_of(&set.unwrap());
    let (seen, _) = round_trip(&dbsc_ok, &[dbsc(Duration::from_secs(1))], Some(&again)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
    // …and not after it.
    let (seen, _) = round_trip(&dbsc_ok, &[dbsc(Duration::from_secs(301))], Some(&cookie)).await;
    assert_eq!(seen, None);
}

#[tokio::test]
async fn new_cookies_bind_to_a_key_proven_for_this_request_by_preference() {
    let layer = BoundCookieLayer::new(CookieKeys::generate().unwrap());
    let certificate = ProvenKey::mtls_certificate(b"a certificate".to_vec().into());
    // Token Binding first, then a client certificate, then DPoP: whatever order the layers
    // added them in.
    for (keys, expected) in [
        (vec![dpop(), token_binding()], token_binding()),
        (vec![dpop(), certificate.clone()], certificate.clone()),
        (vec![dpop(), dbsc(Duration::ZERO)], dpop()),
    ] {
        let (_, set) = round_trip(&layer, &keys, None).await;
        let cookie = cookie_of(&set.unwrap());
        for k in keys {
            let (seen, _) = round_trip(&layer, std::slice::from_ref(&k), Some(&cookie)).await;
            assert_eq!(seen.is_some(), k == expected, "{k:?} opens {cookie}");
        }
    }
}

#[tokio::test]
async fn a_cookie_set_again_stays_with_the_key_it_opened_with() {
    let keys = CookieKeys::generate().unwrap();
    let layer = BoundCookieLayer::new(keys.clone())
        .accept_proofs(FreshnessPolicy::Within(Duration::from_secs(300)));
    let (_, set) = round_trip(&layer, &[dpop()], None).await;
    let dpop_cookie = cookie_of(&set.unwrap());
    // Token Binding and DPoP on one request: the DPoP-bound cookie still opens, and set
    // again it stays bound to DPoP, although Token Binding is preferred for new ones.
    let (seen, set) = round_trip(&layer, &[token_binding(), dpop()], Some(&dpop_cookie)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
    let again = cookie_of(&set.unwrap());
    let (seen, _) = round_trip(&layer, &[token_binding()], Some(&again)).await;
    assert_eq!(seen, None);
    let (seen, _) = round_trip(&layer, &[dpop()], Some(&again)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));

    // The re-binding attack: the victim's DBSC-bound cookie (inside its short-lived
    // cookie's window) plus a fresh DPoP proof by the thief's own key. Set again, the
    // cookie stays with the victim's DBSC key, so it dies with the short-lived cookie…
    let thief = ProvenKey::new(
        Mechanism::Dpop,
        Freshness::ThisRequest,
        &br#"{"thief":1}"#[..],
        None,
    );
    let victims = format!(
        "sid={}",
        keys.bind(Some(&dbsc(Duration::ZERO)), "sid", "abc")
    );
    let (seen, set) = round_trip(
        &layer,
        &[thief.clone(), dbsc(Duration::from_secs(10))],
        Some(&victims),
    )
    .await;
    assert_eq!(
        seen.as_deref(),
        Some("sid=abc"),
        "within the window it opens"
    );
    let reissued = cookie_of(&set.unwrap());
    let (seen, _) = round_trip(&layer, std::slice::from_ref(&thief), Some(&reissued)).await;
    assert_eq!(
        seen, None,
        "the thief's key alone opens the re-issued cookie"
    );
    let (seen, _) = round_trip(&layer, &[dbsc(Duration::from_secs(20))], Some(&reissued)).await;
    assert_eq!(seen.as_deref(), Some("sid=abc"));
    // …and a new cookie set on that request goes with the session's key too, not the
    // thief's fresh one.
    let (_, set) = round_trip_setting(
        &layer,
        &[thief.clone(), dbsc(Duration::from_secs(10))],
        Some(&victims),
        "csrf=xyz; Path=/",
    )
    .await;
    let csrf = cookie_of(&set.unwrap());
    let (seen, _) = round_trip(&layer, &[thief], Some(&csrf)).await;
    assert_eq!(seen, None);
}

#[tokio::test]
async fn cookies_bound_to_different_keys_bind_no_new_cookie_and_no_duplicate_passes() {
    let keys = CookieKeys::generate().unwrap();
    let layer = BoundCookieLayer::new(keys.clone())
        .accept_proofs(FreshnessPolicy::Within(Duration::from_secs(300)));
    let victim = dbsc(Duration::from_secs(10));
    let victims = format!("sid={}", keys.bind(Some(&victim), "sid", "abc"));
    let thiefs_theme = format!(
        "theme={}",
        keys.bind(Some(&token_binding()), "theme", "dark")
    );
    let both = [token_binding(), victim.clone()];

    // The victim's session cookie beside a harmless cookie of the thief's: a new cookie
    // (a "remember me" for the victim's session, say) could carry the victim's authority,
    // so it is bound to neither key — withheld.
    let (seen, set) = round_trip_setting(
        &layer,
        &both,
        Some(&format!("{victims}; {thiefs_theme}")),
        "remember=1; Path=/",
    )
    .await;
    assert_eq!(seen.as_deref(), Some("sid=abc; theme=dark"));
    assert_eq!(set, None, "a new cookie was bound to one of two keys");
    // Each presented cookie set again stays with its own key.
    let (_, set) = round_trip(&layer, &both, Some(&format!("{victims}; {thiefs_theme}"))).await;
    let again = cookie_of(&set.unwrap());
    let (seen, _) = round_trip(&layer, &[token_binding()], Some(&again)).await;
    assert_eq!(seen, None, "the victim's cookie moved to the thief's key");

    // Two copies of one cookie that open with different keys: the application would read
    // one of them (which, depends on its parser), so none is handed on.
    let thiefs_sid = format!("sid={}", keys.bind(Some(&token_binding()), "sid", "mine"));
    for cookies in [
        format!("{thiefs_sid}; {victims}"),
        format!("{victims}; {thiefs_sid}"),
    ] {
        let (seen, set) = round_trip(&layer, &both, Some(&cookies)).await;
        assert_eq!(seen, None, "{cookies}");
        // With nothing opened, the cookie set goes with the key proven for this request.
        let (seen, _) =
            round_trip(&layer, &[token_binding()], Some(&cookie_of(&set.unwrap()))).await;
        assert_eq!(seen.as_deref(), Some("sid=abc"));
    }
    // Copies bound to the same key all pass.
    let (seen, _) = round_trip(
        &layer,
        std::slice::from_ref(&victim),
        Some(&format!("{victims}; {victims}")),
    )
    .await;
    assert_eq!(seen.as_deref(), Some("sid=abc; sid=abc"));
}
