//! DPoP (RFC 9449) end to end over real TLS, through the same stack that serves Token
//! Binding: TokenBindingLayer → DpopLayer → BoundCookieLayer / BoundBearerLayer → handler.
//! One cookie layer and one token layer protect a Token Binding client and a DPoP client
//! alike, directly and behind the proxy (and over rustls, for the DPoP client); every theft
//! and every malformed proof is refused.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request as AxumRequest;
use axum::http::header;
use axum::routing::get;
use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::Value;
use tokbind::client::Client;
use tokbind::dpop::{DpopKey, DpopLayer, DpopVerifier};
use tokbind::oauth::{BoundBearerLayer, CnfPolicy, TokenIssuer, TokenVerifier};
use tokbind::proto::ProvenKeys;
use tokbind::tower::TokenBindingLayer;
use tokbind::tower::cookie::{BoundCookieLayer, CookieKeys};

const AUDIENCE: &str = "api";

both_deployments!(
    one_cookie_layer_binds_sessions_for_dpop_and_token_binding_clients,
    dpop_bound_tokens_work_only_with_their_key_and_scheme,
    a_signed_proof_with_an_iat_out_of_range_is_a_401_not_a_crash,
);

over_rustls!(
    one_cookie_layer_binds_sessions_for_dpop_and_token_binding_clients,
    dpop_bound_tokens_work_only_with_their_key_and_scheme,
    a_signed_proof_with_an_iat_out_of_range_is_a_401_not_a_crash,
);

struct Stack {
    server: Server,
}

/// `/login` sets a session cookie; `/echo` shows the Cookie header the app received;
/// `/token` issues an access token bound to the request's proven key (as a token endpoint
/// would after `check_token_request`); `/api/me` needs a bound access token.
async fn stack(d: Deployment) -> Stack {
    // The TLS listener needs the server's own address for `htu`; bind first, then build.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("https://{addr}");
    let issuer = Arc::new(TokenIssuer::generate(origin.clone()).unwrap());
    let tokens = TokenVerifier::new(&issuer.jwks(), issuer.issuer(), AUDIENCE).unwrap();
    let token_issuer = Arc::clone(&issuer);
    let api = Router::new()
        .route(
            "/api/me",
            get(|req: AxumRequest| async move {
                let keys = req.extensions().get::<ProvenKeys>();
                let mechanism = keys.and_then(|k| k.iter().next()).map(|k| k.mechanism());
                format!("hello, bound by {mechanism:?}")
            }),
        )
        .route_layer(BoundBearerLayer::new(tokens).policy(CnfPolicy::Required));
    let app = Router::new()
        .route(
            "/login",
            get(|| async {
                (
                    [(header::SET_COOKIE, "sid=alice-session; Path=/; HttpOnly")],
                    "welcome",
                )
            }),
        )
        .route("/echo", get(echo_cookie))
        .route("/token", bound_token_endpoint(token_issuer, AUDIENCE))
        .merge(api)
        .layer(BoundCookieLayer::new(CookieKeys::generate().unwrap()).only(["sid"]))
        .layer(DpopLayer::new(DpopVerifier::new(), &origin).unwrap());
    let server = d
        .start_app_on(listener, |b| b, app, TokenBindingLayer::new())
        .await;
    Stack { server }
}

impl Stack {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base())
    }

    /// A client without Token Binding (DPoP needs nothing from TLS).
    fn plain_client(&self) -> Client {
        self.server.client(|b| b.offer_token_binding(false))
    }

    /// One request on a new connection.
    async fn send(&self, client: &Client, req: Request<Full<Bytes>>) -> Response<Bytes> {
        self.server.connect(client).await.send(req).await.unwrap()
    }

    /// A request with a fresh DPoP proof by `key` (and `ath` for `token`).
    fn dpop_request(
        &self,
        key: &DpopKey,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> http::request::Builder {
        let proof = key.proof(method, &self.url(path), token, None);
        Request::builder()
            .method(method)
            .uri(path)
            .header("dpop", proof)
    }
}

fn body(res: &Response<Bytes>) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn empty(b: http::request::Builder) -> Request<Full<Bytes>> {
    b.body(Full::default()).unwrap()
}

async fn one_cookie_layer_binds_sessions_for_dpop_and_token_binding_clients(d: Deployment) {
    let s = stack(d).await;
    let plain = s.plain_client();
    let (alice, mallory) = (DpopKey::generate().unwrap(), DpopKey::generate().unwrap());

    // DPoP client: the cookie is bound to her DPoP key.
    let res = s
        .send(&plain, empty(s.dpop_request(&alice, "GET", "/login", None)))
        .await;
    assert_eq!(res.status(), 200, "{}", body(&res));
    let cookie = set_cookie_pair(&res);
    assert!(cookie.contains("~tb1."), "{cookie}");
    let echo = |key: &DpopKey| {
        empty(
            s.dpop_request(key, "GET", "/echo", None)
                .header(header::COOKIE, &cookie),
        )
    };
    let res = s.send(&plain, echo(&alice)).await;
    assert_eq!(
        body(&res),
        "sid=alice-session",
        "her cookie with a fresh proof on a new connection"
    );
    // Mallory with the cookie and her own key, or with no proof: no session.
    let res = s.send(&plain, echo(&mallory)).await;
    assert_eq!(
        (res.status().as_u16(), body(&res).as_str()),
        (200, ""),
        "stolen cookie, thief's key"
    );
    let bare = empty(Request::get("/echo").header(header::COOKIE, &cookie));
    assert_eq!(
        body(&s.send(&plain, bare).await),
        "",
        "stolen cookie, no proof"
    );
    // Mallory replays one of Alice's proofs with the cookie: the proof was used.
    let replayed = echo(&alice);
    let proof = replayed.headers()["dpop"].clone();
    assert_eq!(body(&s.send(&plain, replayed).await), "sid=alice-session");
    let again = empty(
        Request::get("/echo")
            .header("dpop", proof)
            .header(header::COOKIE, &cookie),
    );
    let res = s.send(&plain, again).await;
    assert_eq!(
        (res.status().as_u16(), reason(&res).as_str()),
        (401, "dpop_replay")
    );

    // A Token Binding client through the very same layers (not over rustls, which has no
    // Token Binding).
    if !d.token_binding() {
        return;
    }
    let tb = s.server.client(|b| b);
    let mut conn = s.server.connect(&tb).await;
    let res = conn.send(empty(Request::get("/login"))).await.unwrap();
    let tb_cookie = set_cookie_pair(&res);
    let res = s
        .send(
            &tb,
            empty(Request::get("/echo").header(header::COOKIE, &tb_cookie)),
        )
        .await;
    assert_eq!(body(&res), "sid=alice-session");
    // Neither kind of key opens the other's cookie.
    let res = s
        .send(
            &plain,
            empty(
                s.dpop_request(&alice, "GET", "/echo", None)
                    .header(header::COOKIE, &tb_cookie),
            ),
        )
        .await;
    assert_eq!(body(&res), "");
    let res = s
        .send(
            &tb,
            empty(Request::get("/echo").header(header::COOKIE, &cookie)),
        )
        .await;
    assert_eq!(body(&res), "");
}

async fn dpop_bound_tokens_work_only_with_their_key_and_scheme(d: Deployment) {
    let s = stack(d).await;
    let plain = s.plain_client();
    let (alice, mallory) = (DpopKey::generate().unwrap(), DpopKey::generate().unwrap());
    let res = s
        .send(
            &plain,
            empty(s.dpop_request(&alice, "POST", "/token", None)),
        )
        .await;
    let issued: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(issued["token_type"], "DPoP");
    let token = issued["access_token"].as_str().unwrap().to_string();
    assert_eq!(jwt_claims(&token)["cnf"]["jkt"], alice.jkt());
    let dpop_auth = format!("DPoP {token}");

    // The refresh token is bound to the same key (RFC 9449 §5: a public client's must be).
    let refresh_token = issued["refresh_token"].as_str().unwrap().to_string();
    let refresh = |key: Option<&DpopKey>| {
        let b = match key {
            Some(key) => s.dpop_request(key, "POST", "/token", None),
            None => Request::post("/token"),
        };
        b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::from(format!(
                "grant_type=refresh_token&refresh_token={refresh_token}"
            )))
            .unwrap()
    };
    let res = s.send(&plain, refresh(Some(&alice))).await;
    assert_eq!(res.status(), 200, "{}", body(&res));
    let refreshed: Value = serde_json::from_slice(res.body()).unwrap();
    let access_token = refreshed["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(access_token)["cnf"]["jkt"], alice.jkt());
    for (what, key, why) in [
        (
            "a stolen refresh token with the thief's key",
            Some(&mallory),
            "binding_mismatch",
        ),
        ("a stolen refresh token without a proof", None, "no_proof"),
    ] {
        let res = s.send(&plain, refresh(key)).await;
        assert_eq!(
            (res.status().as_u16(), reason(&res).as_str()),
            (400, why),
            "{what}: {}",
            body(&res)
        );
    }

    let me = |key: &DpopKey, ath: Option<&str>, auth: &str| {
        empty(
            s.dpop_request(key, "GET", "/api/me", ath)
                .header(header::AUTHORIZATION, auth),
        )
    };
    let res = s.send(&plain, me(&alice, Some(&token), &dpop_auth)).await;
    assert_eq!(
        (res.status().as_u16(), body(&res).as_str()),
        (200, "hello, bound by Some(Dpop)")
    );

    let refused = [
        (
            "thief's own key",
            me(&mallory, Some(&token), &dpop_auth),
            401,
            "binding_mismatch",
        ),
        (
            "proof without ath",
            me(&alice, None, &dpop_auth),
            401,
            "dpop_ath_missing",
        ),
        (
            "ath of another token",
            me(&alice, Some("other"), &dpop_auth),
            401,
            "dpop_ath_mismatch",
        ),
        (
            "presented as Bearer (downgrade)",
            me(&alice, Some(&token), &format!("Bearer {token}")),
            401,
            "dpop_token_as_bearer",
        ),
        (
            "DPoP scheme without a proof",
            empty(Request::get("/api/me").header(header::AUTHORIZATION, &dpop_auth)),
            401,
            "dpop_proof_missing",
        ),
        (
            "two DPoP headers",
            empty(
                s.dpop_request(&alice, "GET", "/api/me", Some(&token))
                    .header(
                        "dpop",
                        alice.proof("GET", &s.url("/api/me"), Some(&token), None),
                    )
                    .header(header::AUTHORIZATION, &dpop_auth),
            ),
            401,
            "dpop_proof_duplicate",
        ),
        (
            "Bearer and DPoP together",
            empty(
                s.dpop_request(&alice, "GET", "/api/me", Some(&token))
                    .header(header::AUTHORIZATION, &dpop_auth)
                    .header(header::AUTHORIZATION, format!("Bearer {token}")),
            ),
            400,
            "conflicting_authorization_schemes",
        ),
        (
            "proof for another URI",
            empty(
                Request::get("/api/me")
                    .header(
                        "dpop",
                        alice.proof("GET", &s.url("/token"), Some(&token), None),
                    )
                    .header(header::AUTHORIZATION, &dpop_auth),
            ),
            401,
            "dpop_htu_mismatch",
        ),
        (
            "proof for another method",
            empty(
                Request::get("/api/me")
                    .header(
                        "dpop",
                        alice.proof("POST", &s.url("/api/me"), Some(&token), None),
                    )
                    .header(header::AUTHORIZATION, &dpop_auth),
            ),
            401,
            "dpop_htm_mismatch",
        ),
        (
            "a proof from ten minutes ago",
            empty(
                Request::get("/api/me")
                    .header(
                        "dpop",
                        alice.proof_at(
                            "GET",
                            &s.url("/api/me"),
                            Some(&token),
                            None,
                            std::time::SystemTime::now() - Duration::from_secs(600),
                        ),
                    )
                    .header(header::AUTHORIZATION, &dpop_auth),
            ),
            401,
            "dpop_stale",
        ),
    ];
    for (what, req, status, why) in refused {
        let res = s.send(&plain, req).await;
        assert_eq!(
            (res.status().as_u16(), reason(&res).as_str()),
            (status, why),
            "{what}: {}",
            body(&res)
        );
        if status == 401 {
            let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("DPoP"), "{what}: {challenge}");
        }
    }

    // A forged proof: Alice's proof with its signature altered.
    let mut forged = alice.proof("GET", &s.url("/api/me"), Some(&token), None);
    let c = if forged.ends_with('A') { "B" } else { "A" };
    forged.replace_range(forged.len() - 1.., c);
    let req = empty(
        Request::get("/api/me")
            .header("dpop", forged)
            .header(header::AUTHORIZATION, &dpop_auth),
    );
    let res = s.send(&plain, req).await;
    assert_eq!(
        (res.status().as_u16(), reason(&res).as_str()),
        (401, "dpop_bad_signature")
    );

    // A Token Binding-bound token from the same issuer keeps working for its client (not
    // over rustls, which has no Token Binding).
    if !d.token_binding() {
        return;
    }
    let tb = s.server.client(|b| b);
    let res = s.send(&tb, empty(Request::post("/token"))).await;
    let tb_token = serde_json::from_slice::<Value>(res.body()).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = format!("Bearer {tb_token}");
    let res = s
        .send(
            &tb,
            empty(Request::get("/api/me").header(header::AUTHORIZATION, &auth)),
        )
        .await;
    assert_eq!(body(&res), "hello, bound by Some(TokenBinding)");
    // …and a DPoP proof cannot stand in for its Token Binding.
    let res = s.send(&plain, me(&alice, Some(&tb_token), &auth)).await;
    assert_eq!(
        (res.status().as_u16(), reason(&res).as_str()),
        (401, "binding_mismatch")
    );
}

async fn a_signed_proof_with_an_iat_out_of_range_is_a_401_not_a_crash(d: Deployment) {
    let s = stack(d).await;
    let plain = s.plain_client();
    let key = DpopKey::generate().unwrap();
    // One connection for every request: a panic in the request's task would end it, and
    // the good proof at the end would then fail.
    let mut conn = s.server.connect(&plain).await;
    let htu = s.url("/api/me");
    for (n, (iat, why)) in [
        ("18446744073709551615", "dpop_bad_iat"), // u64::MAX
        ("9223372036854775808", "dpop_bad_iat"),  // 2^63: past SystemTime on Linux
        ("9223372036854775807", "dpop_bad_iat"),  // i64::MAX
        ("18446744073709551616", "dpop_bad_iat"), // beyond u64
        ("1e300", "dpop_bad_iat"),
        ("-1", "dpop_bad_iat"),
        ("1e400", "dpop_bad_claims"), // beyond any JSON number type
    ]
    .into_iter()
    .enumerate()
    {
        let claims = format!(r#"{{"jti":"hostile-{n}","htm":"GET","htu":"{htu}","iat":{iat}}}"#);
        let req = empty(Request::get("/api/me").header("dpop", key.proof_with_claims(&claims)));
        let res = conn.send(req).await.unwrap();
        assert_eq!(
            (res.status().as_u16(), reason(&res).as_str()),
            (401, why),
            "iat {iat}: {}",
            body(&res)
        );
        let challenge = res.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.starts_with("DPoP algs=")
                && challenge.contains(r#"error="invalid_dpop_proof""#),
            "iat {iat}: {challenge}"
        );
    }
    // The same key with an honest proof, on the same connection: the server is fine.
    let res = conn
        .send(empty(s.dpop_request(&key, "GET", "/echo", None)))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", body(&res));
}
