//! One cookie-binding layer protects one session for a Token Binding client, a DPoP client
//! and a DBSC browser alike (the DBSC browser played here by a client speaking exactly what
//! Chromium 156 sends; `chromium_dbsc.rs` runs the real browser). Over real TLS, through
//! TokenBindingLayer → DpopLayer → DbscLayer → BoundCookieLayer → tower-sessions, directly,
//! behind the proxy, and over rustls (DPoP and DBSC clients).

mod common;

use std::time::Duration;

use common::Deployment;
use common::dbsc::*;
use serde_json::{Value, json};
use tokbind::dpop::DpopKey;

both_deployments!(
    a_dbsc_browser_registers_refreshes_and_its_stolen_cookies_die,
    the_same_layer_binds_the_session_for_token_binding_and_dpop_clients,
    a_stolen_cookie_with_a_forged_refresh_ends_the_session,
);

over_rustls!(
    a_dbsc_browser_registers_refreshes_and_its_stolen_cookies_die,
    the_same_layer_binds_the_session_for_token_binding_and_dpop_clients,
    a_stolen_cookie_with_a_forged_refresh_ends_the_session,
);

async fn a_dbsc_browser_registers_refreshes_and_its_stolen_cookies_die(d: Deployment) {
    // Short, to watch it expire; long enough that the steps after a refresh fit in it.
    let lifetime = Duration::from_secs(4);
    let s = site_in(d, lifetime).await;
    let client = s.plain();
    let browser = DbscBrowser::new();

    // Login: an unbound session cookie (nothing proven yet) and a registration request.
    let res = s.send(&client, get("/login", &[])).await;
    assert_eq!(res.status(), 200);
    let unbound_id = set_cookie(&res, "id").unwrap();
    assert!(unbound_id.contains("~tb0."), "{unbound_id}");
    let registration = res.headers()["secure-session-registration"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        registration.starts_with("(ES256 RS256);path=\"/dbsc/register\";challenge=\""),
        "{registration}"
    );
    let challenge = challenge_of(&res, "secure-session-registration");

    // Mallory logs in herself to get a challenge, then tries to register *Alice's* session
    // cookie (stolen before registration) to her own key: the challenge belongs to her login.
    let res = s.send(&client, get("/login", &[])).await;
    let mallorys_challenge = challenge_of(&res, "secure-session-registration");
    let mallory_key = DbscBrowser::new();
    let hijack = mallory_key.proof(&mallorys_challenge, true);
    let res = s
        .send(
            &client,
            post(
                "/dbsc/register",
                &[
                    ("secure-session-response", &hijack),
                    ("cookie", &unbound_id),
                ],
            ),
        )
        .await;
    assert_eq!(res.status(), 400, "{}", text(&res));
    assert!(
        text(&res).contains("dbsc_session_mismatch"),
        "{}",
        text(&res)
    );

    let (
        Registered {
            sid,
            bound_id,
            dbsc,
            mut next,
        },
        config,
    ) = register(&s, &client, &browser, &unbound_id, &challenge).await;
    assert_eq!(
        config["credentials"][0],
        json!({"type": "cookie", "name": "__Host-dbsc", "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax"})
    );
    assert_eq!(config["refresh_url"], "/dbsc/refresh");
    assert_eq!(
        config["allowed_refresh_initiators"],
        json!(["*.tokbind.test"])
    );
    assert!(
        bound_id.contains("~tb1."),
        "the session cookie is re-bound to the DBSC key: {bound_id}"
    );
    // The registration challenge was single use.
    let proof = browser.proof(&challenge, true);
    let again = s
        .send(
            &client,
            post("/dbsc/register", &[("secure-session-response", &proof)]),
        )
        .await;
    assert_eq!(again.status(), 400);

    assert_eq!(
        text(&s.send(&client, get("/me", &[&bound_id, &dbsc])).await),
        "alice"
    );

    // The thief: the long-lived cookie alone, bound or from before registration, is dead.
    let res = s.send(&client, get("/me", &[&bound_id])).await;
    assert_eq!(
        res.status(),
        401,
        "bound session cookie without the short-lived one"
    );
    let res = s.send(&client, get("/me", &[&unbound_id])).await;
    assert_eq!(
        res.status(),
        401,
        "the unbound cookie from before registration was retired"
    );
    // A browser whose refresh failed sends the request on without the short-lived cookie,
    // saying so: the application sees why, and the session still does not open.
    let mut skipped = get("/me", &[&bound_id]);
    skipped.headers_mut().insert(
        "secure-session-skipped",
        format!("server_error;session_identifier=\"{sid}\"")
            .parse()
            .unwrap(),
    );
    let res = s.send(&client, skipped).await;
    assert_eq!(
        (res.status().as_u16(), text(&res)),
        (
            401,
            format!("no session; refresh skipped: {sid} (server_error)")
        )
    );
    // With both cookies copied the session lasts only as long as the short-lived cookie:
    // DBSC proves the key at refresh, not per request (the policy window says so).
    tokio::time::sleep(lifetime + Duration::from_millis(1100)).await;
    let res = s.send(&client, get("/me", &[&bound_id, &dbsc])).await;
    assert_eq!(
        res.status(),
        401,
        "copied cookies after the short-lived one expired"
    );

    // The browser refreshes: 403 + challenge, then a signed proof (session id sent bare).
    let res = s
        .send(
            &client,
            post("/dbsc/refresh", &[("sec-secure-session-id", &sid)]),
        )
        .await;
    assert_eq!(res.status(), 403);
    // No other origin may frame or read what the endpoints answer.
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert_eq!(res.headers()["cross-origin-resource-policy"], "same-origin");
    let challenge = challenge_of(&res, "secure-session-challenge");
    assert_eq!(
        challenge, next,
        "the challenge sent ahead at registration, still unused, comes again"
    );
    // Anyone who knows the session id can ask, as often as they like: the challenge the
    // browser holds is not rotated away.
    for _ in 0..3 {
        let res = s
            .send(
                &client,
                post("/dbsc/refresh", &[("sec-secure-session-id", &sid)]),
            )
            .await;
        assert_eq!(
            (
                res.status().as_u16(),
                challenge_of(&res, "secure-session-challenge")
            ),
            (403, next.clone())
        );
    }
    let refresh_proof = browser.proof(&challenge, false);
    let res = s
        .send(
            &client,
            refresh(&format!("\"{sid}\""), &refresh_proof, None),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", text(&res));
    let fresh = set_cookie(&res, "__Host-dbsc").unwrap();
    assert_ne!(fresh, dbsc, "a new cookie value every refresh");
    assert_eq!(
        text(&s.send(&client, get("/me", &[&bound_id, &fresh])).await),
        "alice"
    );
    next = if res.headers().contains_key("secure-session-challenge") {
        challenge_of(&res, "secure-session-challenge")
    } else {
        next
    };

    // A replayed proof is stale (benign: a new challenge); another key's proof is refused.
    let res = s.send(&client, refresh(&sid, &refresh_proof, None)).await;
    assert_eq!(res.status(), 403);
    let mallory = DbscBrowser::new();
    let res = s
        .send(&client, refresh(&sid, &mallory.proof(&next, false), None))
        .await;
    assert_eq!(res.status(), 401, "{}", text(&res));
    assert_eq!(
        text(&s.send(&client, get("/me", &[&bound_id, &fresh])).await),
        "alice",
        "a forged proof without the session's cookies does not end the session"
    );
    let res = s
        .send(
            &client,
            post("/dbsc/refresh", &[("sec-secure-session-id", "Sunknown")]),
        )
        .await;
    assert_eq!(res.status(), 401);
    // Mallory's own short-lived cookie cannot be forged from the session id.
    let forged = format!("__Host-dbsc={sid}.99999999999.AAAA~tb1.{}", "A".repeat(43));
    assert_eq!(
        s.send(&client, get("/me", &[&bound_id, &forged]))
            .await
            .status(),
        401
    );

    // Step-up: a 307 that expires the short-lived cookie.
    let res = s.send(&client, get("/step-up", &[&bound_id, &fresh])).await;
    assert_eq!(res.status(), 307);
    assert!(
        set_cookie(&res, "__Host-dbsc").is_some_and(|c| c == "__Host-dbsc="),
        "{:?}",
        res.headers()
    );

    // Logout ends the DBSC session: the browser's next refresh is told to stop.
    let res = s.send(&client, get("/logout", &[&bound_id, &fresh])).await;
    assert_eq!(res.status(), 200);
    let res = s
        .send(
            &client,
            post("/dbsc/refresh", &[("sec-secure-session-id", &sid)]),
        )
        .await;
    let body: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(
        (res.status().as_u16(), body["continue"].clone()),
        (200, json!(false))
    );
}

async fn the_same_layer_binds_the_session_for_token_binding_and_dpop_clients(d: Deployment) {
    let s = site_in(d, Duration::from_secs(600)).await;

    // Token Binding: the session cookie is bound to the client's TLS key (not over rustls,
    // which has no Token Binding).
    if d.token_binding() {
        let tb = s.server.client(|b| b);
        let res = s.send(&tb, get("/login", &[])).await;
        let id = set_cookie(&res, "id").unwrap();
        assert!(id.contains("~tb1."), "{id}");
        assert_eq!(text(&s.send(&tb, get("/me", &[&id])).await), "alice");
        let other_tb = s.server.client(|b| b);
        assert_eq!(
            s.send(&other_tb, get("/me", &[&id])).await.status(),
            401,
            "stolen, another TLS key"
        );
        assert_eq!(
            s.send(&s.plain(), get("/me", &[&id])).await.status(),
            401,
            "stolen, no Token Binding"
        );
    }

    // DPoP: bound to the DPoP key; a proof per request.
    let plain = s.plain();
    let key = DpopKey::generate().unwrap();
    let with_proof = |key: &DpopKey, path: &str, cookies: &[&str]| {
        let mut req = get(path, cookies);
        let proof = key.proof("GET", &format!("{}{path}", s.server.base()), None, None);
        req.headers_mut().insert("dpop", proof.parse().unwrap());
        req
    };
    let res = s.send(&plain, with_proof(&key, "/login", &[])).await;
    let id = set_cookie(&res, "id").unwrap();
    assert!(id.contains("~tb1."), "{id}");
    assert_eq!(
        text(&s.send(&plain, with_proof(&key, "/me", &[&id])).await),
        "alice"
    );
    let thief = DpopKey::generate().unwrap();
    assert_eq!(
        s.send(&plain, with_proof(&thief, "/me", &[&id]))
            .await
            .status(),
        401,
        "stolen, another DPoP key"
    );
    assert_eq!(
        s.send(&plain, get("/me", &[&id])).await.status(),
        401,
        "stolen, no proof"
    );

    // A client that proves nothing still gets an (unbound) session: DBSC is additive.
    let res = s.send(&plain, get("/login", &[])).await;
    let id = set_cookie(&res, "id").unwrap();
    assert_eq!(text(&s.send(&plain, get("/me", &[&id])).await), "alice");
}

/// A refresh signed by another key, sent with the session's own cookie, means that cookie
/// left the device: the session ends, for the thief and for the browser alike.
async fn a_stolen_cookie_with_a_forged_refresh_ends_the_session(d: Deployment) {
    let s = site_in(d, Duration::from_secs(600)).await;
    let client = s.plain();
    let mallory = DbscBrowser::new();
    for stolen in ["login cookie", "short-lived cookie"] {
        let browser = DbscBrowser::new();
        let (unbound_id, challenge) = login(&s, &client).await;
        let (alice, _) = register(&s, &client, &browser, &unbound_id, &challenge).await;
        let me = || get("/me", &[&alice.bound_id, &alice.dbsc]);
        assert_eq!(text(&s.send(&client, me()).await), "alice");

        let cookie = match stolen {
            "login cookie" => &alice.bound_id,
            _ => &alice.dbsc,
        };
        let forged = mallory.proof(&alice.next, false);
        let res = s
            .send(&client, refresh(&alice.sid, &forged, Some(cookie)))
            .await;
        assert_eq!(res.status(), 401, "{stolen}: {}", text(&res));

        // Ended: the cookies open nothing, and the browser's own refresh is told to stop,
        // even with a proof its key signed.
        assert_eq!(s.send(&client, me()).await.status(), 401, "{stolen}");
        let proof = browser.proof(&alice.next, false);
        let res = s.send(&client, refresh(&alice.sid, &proof, None)).await;
        let body: Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(
            (res.status().as_u16(), body["continue"].clone()),
            (200, json!(false)),
            "{stolen}"
        );
    }
}
