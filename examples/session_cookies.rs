//! A `tower-sessions` session cookie bound to the client's Token Binding key.
//!
//! `cargo run --release --example session_cookies`
//!
//! Alice logs in over a Token Binding connection and uses her session on a new connection;
//! Mallory, who copied the cookie, gets no session (401) — with her own key, or with no
//! Token Binding at all. Dave's client uses DPoP instead, and the same cookie layer binds
//! his session to his DPoP key. Exits 0 only if every step behaved as expected.
//!
//! Sessions are in memory unless `TOKBIND_REDIS_URL` names a Redis server, and the cookie
//! MAC keys are fresh unless `TOKBIND_COOKIE_KEYS` gives them (`tokbind-demo keygen`):
//! with both, every instance of the app accepts every session.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokbind::client::Client;
use tokbind::dbsc::DbscLayer;
use tokbind::dpop::{DpopKey, DpopLayer, DpopVerifier};
use tokbind::proto::FreshnessPolicy;
use tokbind::tls::{SelfSigned, ServerVerification, TokenBindingAcceptor};
use tokbind::tower::TokenBindingLayer;
use tokbind::tower::cookie::{BoundCookieLayer, CookieKeys};
use tokbind_demo::store::SharedStore;
use tower_sessions::{Session, SessionManagerLayer};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn login(session: Session) -> Result<&'static str, StatusCode> {
    session
        .insert("user", "alice")
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok("welcome, alice")
}

async fn me(session: Session) -> Result<String, StatusCode> {
    match session.get::<String>("user").await {
        Ok(Some(user)) => Ok(format!("you are {user}")),
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

fn get_with_cookie(path: &str, cookie: Option<&str>) -> Result<Request<Full<Bytes>>, Error> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    Ok(b.body(Full::default())?)
}

async fn fetch(
    client: &Client,
    url: &http::Uri,
    path: &str,
    cookie: Option<&str>,
) -> Result<Response<Bytes>, Error> {
    let mut conn = client.connect(url).await?; // a new TLS connection every time
    Ok(conn.send(get_with_cookie(path, cookie)?).await?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Shared by every instance: where sessions live, and the keys that bind the cookie.
    let store = SharedStore::connect(std::env::var("TOKBIND_REDIS_URL").ok().as_deref()).await?;
    let keys = match std::env::var("TOKBIND_COOKIE_KEYS") {
        Ok(config) => CookieKeys::from_config(&config)?,
        Err(_) => CookieKeys::generate()?,
    };
    println!("sessions: {store:?}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("https://{}", listener.local_addr()?);
    let url: http::Uri = format!("{origin}/").parse()?;

    // The lines that bind a session cookie: sessions, binding, and the proofs of possession
    // it accepts — Token Binding and DPoP on every request, DBSC (today's Chromium) at
    // each refresh of its short-lived cookie.
    // DBSC keeps its sessions and the retired login cookies where the sessions live: a
    // retirement forgotten at a restart would revive the pre-registration cookie.
    let dbsc = DbscLayer::new(keys.clone(), &origin)
        .rebind_cookie("id", "Path=/; Secure; HttpOnly; SameSite=Strict")
        .store(std::sync::Arc::new(store.clone()));
    let app = Router::new()
        .route("/login", get(login))
        .route("/me", get(me))
        .layer(SessionManagerLayer::new(store).with_secure(true))
        .layer(
            BoundCookieLayer::new(keys)
                .only(["id"])
                .accept_proofs(FreshnessPolicy::Within(dbsc.proof_window())),
        )
        .layer(dbsc)
        .layer(DpopLayer::new(DpopVerifier::new(), &origin)?)
        .layer(TokenBindingLayer::new());

    let cert = SelfSigned::generate(&["localhost", "127.0.0.1"])?;
    let acceptor = TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem)?.build()?;
    tokio::spawn(async move { tokbind::tls::serve(listener, acceptor, app).await });
    println!("server listening on {url}\n");

    let roots = ServerVerification::Roots(cert.cert_pem.clone());
    let alice = Client::builder()
        .server_verification(roots.clone())
        .build()?;
    let mallory = Client::builder()
        .server_verification(roots.clone())
        .build()?;
    let no_tb = Client::builder()
        .server_verification(roots)
        .tls(|b| b.offer_token_binding(false))
        .build()?;

    let mut failures = 0;
    let mut check = |what: &str, res: &Response<Bytes>, expected: StatusCode| {
        let ok = res.status() == expected;
        failures += usize::from(!ok);
        println!(
            "  [{}] {what}: {} {}",
            if ok { " ok " } else { "FAIL" },
            res.status().as_u16(),
            String::from_utf8_lossy(res.body())
        );
    };

    println!("1. Alice logs in");
    let res = fetch(&alice, &url, "/login", None).await?;
    check("login", &res, StatusCode::OK);
    let set_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .ok_or("no session cookie")?
        .to_str()?
        .to_string();
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    println!("       Set-Cookie: {set_cookie}");

    println!("\n2. Alice uses her session on a new connection");
    let res = fetch(&alice, &url, "/me", Some(&cookie)).await?;
    check("same key, new connection", &res, StatusCode::OK);

    println!("\n3. Mallory copies the cookie");
    let res = fetch(&mallory, &url, "/me", Some(&cookie)).await?;
    check(
        "presented with Mallory's key",
        &res,
        StatusCode::UNAUTHORIZED,
    );
    let res = fetch(&no_tb, &url, "/me", Some(&cookie)).await?;
    check(
        "presented without Token Binding",
        &res,
        StatusCode::UNAUTHORIZED,
    );
    let bare = cookie.split('~').next().unwrap_or_default();
    let res = fetch(&mallory, &url, "/me", Some(bare)).await?;
    check(
        "with the binding stripped off",
        &res,
        StatusCode::UNAUTHORIZED,
    );

    println!(
        "\n4. Dave's client speaks DPoP instead: the same layer binds his session to his DPoP key"
    );
    let dave = DpopKey::generate()?;
    let with_proof = |key: &DpopKey, path: &str, cookie: Option<&str>| -> Result<_, Error> {
        let mut req = get_with_cookie(path, cookie)?;
        let proof = key.proof("GET", &format!("{origin}{path}"), None, None);
        req.headers_mut().insert("dpop", proof.parse()?);
        Ok(req)
    };
    let res = no_tb
        .connect(&url)
        .await?
        .send(with_proof(&dave, "/login", None)?)
        .await?;
    check("login with a DPoP proof", &res, StatusCode::OK);
    let dave_cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .ok_or("no session cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let res = no_tb
        .connect(&url)
        .await?
        .send(with_proof(&dave, "/me", Some(&dave_cookie))?)
        .await?;
    check("a fresh proof on a new connection", &res, StatusCode::OK);
    let thief = DpopKey::generate()?;
    let res = no_tb
        .connect(&url)
        .await?
        .send(with_proof(&thief, "/me", Some(&dave_cookie))?)
        .await?;
    check(
        "his cookie with Mallory's DPoP key",
        &res,
        StatusCode::UNAUTHORIZED,
    );
    println!(
        "   (a DBSC browser gets the same; tests/chromium_dbsc.rs runs Chromium against this stack)"
    );

    println!();
    if failures == 0 {
        println!("every step behaved as expected");
        Ok(())
    } else {
        Err(format!("{failures} step(s) did not behave as expected").into())
    }
}
