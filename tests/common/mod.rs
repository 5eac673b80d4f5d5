//! A Token Binding server and client on loopback, for end-to-end tests.

#![allow(dead_code)]

pub mod dbsc;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::{Value, json};
use tokbind::client::{Client, Connection};
use tokbind::proto::ConnectionInfo;
use tokbind::tls::{
    AcceptorBuilder, ConnectorBuilder, SelfSigned, ServerVerification, TokenBindingAcceptor,
};
use tokbind::tower::ttrp::ForwardedTokenBindingLayer;
use tokbind::tower::{ProvidedBinding, ReferredBinding, TokenBindingLayer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What a handler saw: the connection and the verified IDs.
///
/// Behind the proxy the app has no TLS connection of its own: the connection's facts
/// (`tls_version`, `token_binding`, `resumed`) are then `null`, and only the forwarded IDs
/// are known (draft-ietf-tokbind-ttrp-09 §2).
pub async fn whoami(
    info: Option<Extension<Arc<ConnectionInfo>>>,
    provided: Option<ProvidedBinding>,
    referred: Option<ReferredBinding>,
) -> Json<Value> {
    let id = |id: &tokbind::proto::TokenBindingId| {
        json!({
            "tbid": id.to_base64url(),
            "tbh": id.tbh().to_string(),
            "key_parameters": id.key_parameters().to_string(),
        })
    };
    let info = info.map(|Extension(info)| info);
    Json(json!({
        "tls_version": info.as_ref().map(|i| i.tls_version().to_string()),
        "token_binding": info.as_ref().and_then(|i| i.negotiated()).map(|n| json!({
            "version": n.version.to_string(),
            "key_parameters": n.key_parameters.to_string(),
        })),
        "resumed": info.as_ref().map(|i| i.session_reused()),
        "provided": provided.map(|p| id(&p.0)),
        "referred": referred.map(|r| id(&r.0)),
    }))
}

pub struct Server {
    pub addr: SocketAddr,
    pub cert: SelfSigned,
    stop: Option<oneshot::Sender<()>>,
    finished: Option<oneshot::Receiver<()>>,
    /// The app's own server, behind the proxy: stopped with this one.
    backend: Option<tokio::task::AbortHandle>,
}

impl Server {
    pub fn url(&self) -> http::Uri {
        format!("{}/", self.base()).parse().unwrap()
    }

    /// `https://IP:PORT`.
    pub fn base(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A client that trusts this server, configured by `f`.
    pub fn client(&self, f: impl FnOnce(ConnectorBuilder) -> ConnectorBuilder) -> Client {
        let roots = ServerVerification::Roots(self.cert.cert_pem.clone());
        Client::builder()
            .tls(|b| f(b.server_verification(roots)))
            .build()
            .unwrap()
    }

    pub async fn connect(&self, client: &Client) -> Connection {
        client.connect(&self.url()).await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(backend) = self.backend.take() {
            backend.abort();
        }
    }
}

/// Start the `whoami` app behind `layer` on a Token Binding listener configured by `tls`.
pub async fn start(
    tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
    layer: TokenBindingLayer,
) -> Server {
    start_app(tls, Router::new().route("/", get(whoami)).layer(layer)).await
}

pub async fn start_app(
    tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
    app: Router,
) -> Server {
    start_app_at("127.0.0.1:0".parse().unwrap(), tls, app).await
}

/// Like [`start_app`], on a given address (to restart a server on the same origin).
pub async fn start_app_at(
    addr: SocketAddr,
    tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
    app: Router,
) -> Server {
    start_app_on(bind(addr).await, tls, app)
}

/// A listener on `addr`. A just-stopped server may still hold the port for a moment.
pub async fn bind(addr: SocketAddr) -> TcpListener {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    }
}

/// Like [`start_app`], on a listener the caller bound (to know the origin before building
/// the app, without giving the port back in between).
pub fn start_app_on(
    listener: TcpListener,
    tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
    app: Router,
) -> Server {
    let cert = certificate(&listener);
    let acceptor = tls(TokenBindingAcceptor::builder(&cert.cert_pem, &cert.key_pem).unwrap())
        .build()
        .unwrap();
    spawn_server(listener, cert, acceptor, app)
}

/// A certificate for `localhost` and the listener's address.
fn certificate(listener: &TcpListener) -> SelfSigned {
    let ip = listener.local_addr().unwrap().ip().to_string();
    SelfSigned::generate(&["localhost", &ip]).unwrap()
}

/// Serve `app` on `listener` with `acceptor` (holding `cert`) until the server is stopped.
fn spawn_server<A: tokbind::tls::Accept>(
    listener: TcpListener,
    cert: SelfSigned,
    acceptor: A,
    app: Router,
) -> Server {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (done, finished) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tokbind::tls::serve(listener, acceptor, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future()
            .await;
        let _ = done.send(());
    });
    Server {
        addr,
        cert,
        stop: Some(stop),
        finished: Some(finished),
        backend: None,
    }
}

impl Server {
    /// Stop the server and wait until it has released its port.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(finished) = self.finished.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), finished).await;
        }
        if let Some(backend) = self.backend.take() {
            backend.abort();
        }
    }
}

/// Where the app runs, for the suites that run both ways (as tower-sessions runs one suite
/// against every store): on the Token Binding listener itself, or as a plain HTTP backend
/// behind [`tokbind::proxy::Proxy`] (in process), trusting only the proxy's forwarded IDs
/// (draft-ietf-tokbind-ttrp-09).
///
/// A third, [`Deployment::Rustls`], serves the app directly over rustls
/// (`tokbind_tls::RustlsAcceptor`, asking every client for an optional certificate): no
/// Token Binding, everything else the same, for the suites that do not need Token Binding
/// (`over_rustls!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    Direct,
    BehindProxy,
    Rustls,
}

impl Deployment {
    /// Whether the app sees the TLS connection's own facts (`ConnectionInfo`); behind the
    /// proxy it sees only the forwarded IDs and client certificate.
    pub fn sees_the_connection(self) -> bool {
        self != Deployment::BehindProxy
    }

    /// Whether clients can negotiate Token Binding (not over rustls, which cannot carry
    /// the extension).
    pub fn token_binding(self) -> bool {
        self != Deployment::Rustls
    }

    /// The `whoami` app, with Token Binding verified by `verify`.
    pub async fn start(
        self,
        tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
        verify: TokenBindingLayer,
    ) -> Server {
        let app = Router::new().route("/", get(whoami));
        self.start_app(tls, app, verify).await
    }

    /// `app` (without a Token Binding layer) on a new loopback port, with Token Binding
    /// verified by `verify`.
    pub async fn start_app(
        self,
        tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
        app: Router,
        verify: TokenBindingLayer,
    ) -> Server {
        self.start_app_on(bind("127.0.0.1:0".parse().unwrap()).await, tls, app, verify)
            .await
    }

    /// `app` (without a Token Binding layer) for the clients of `listener`, on a listener
    /// whose TLS is configured by `tls`: directly, `app` behind `verify`; behind the proxy,
    /// the proxy verifies with `verify` and forwards to `app` behind a
    /// `ForwardedTokenBindingLayer` that trusts loopback.
    pub async fn start_app_on(
        self,
        listener: TcpListener,
        tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
        app: Router,
        verify: TokenBindingLayer,
    ) -> Server {
        match self {
            Deployment::Direct => start_app_on(listener, tls, app.layer(verify)),
            Deployment::Rustls => {
                let cert = certificate(&listener);
                let acceptor = tokbind::tls::RustlsAcceptor::builder(&cert.cert_pem, &cert.key_pem)
                    .unwrap()
                    .request_client_certificates(true)
                    .build()
                    .unwrap();
                spawn_server(listener, cert, acceptor, app.layer(verify))
            }
            Deployment::BehindProxy => {
                behind_proxy(listener, tls, app, |proxy| proxy.token_binding(verify)).await
            }
        }
    }
}

/// `app` behind a `ForwardedTokenBindingLayer` that trusts loopback, served by axum on a
/// port of its own, and the proxy to it, configured by `proxy`, for the clients of
/// `listener`.
pub async fn behind_proxy(
    listener: TcpListener,
    tls: impl FnOnce(AcceptorBuilder) -> AcceptorBuilder,
    app: Router,
    proxy: impl FnOnce(tokbind::proxy::Proxy) -> tokbind::proxy::Proxy,
) -> Server {
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", backend.local_addr().unwrap());
    let app = app
        .layer(ForwardedTokenBindingLayer::trusting(["127.0.0.1"]).unwrap())
        .into_make_service_with_connect_info::<SocketAddr>();
    let backend = tokio::spawn(async move {
        let _ = axum::serve(backend, app).await;
    });
    let proxy = proxy(tokbind::proxy::Proxy::new(upstream.parse().unwrap()).unwrap());
    let mut server = start_app_on(listener, tls, proxy.into_router());
    server.backend = Some(backend.abort_handle());
    server
}

/// One `#[tokio::test]` per deployment for each `async fn name(d: Deployment)` named:
/// `direct::name` and `behind_proxy::name`.
#[macro_export]
macro_rules! both_deployments {
    ($($name:ident),* $(,)?) => {
        $crate::deployment_tests!(direct, Direct, $($name),*);
        $crate::deployment_tests!(behind_proxy, BehindProxy, $($name),*);
    };
}

/// One `#[tokio::test]` over rustls for each `async fn name(d: Deployment)` named:
/// `rustls::name`.
#[macro_export]
macro_rules! over_rustls {
    ($($name:ident),* $(,)?) => {
        $crate::deployment_tests!(rustls, Rustls, $($name),*);
    };
}

/// `mod $module` with one `#[tokio::test]` per test fn, in `Deployment::$variant`.
#[macro_export]
macro_rules! deployment_tests {
    ($module:ident, $variant:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Deployment::$variant).await
                }
            )*
        }
    };
}

pub fn get_req() -> Request<Full<Bytes>> {
    Request::get("/").body(Full::default()).unwrap()
}

pub fn with_header(name: &str, value: &str) -> Request<Full<Bytes>> {
    Request::get("/")
        .header(name, value)
        .body(Full::default())
        .unwrap()
}

pub fn json_body(res: &Response<Bytes>) -> Value {
    serde_json::from_slice(res.body())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", res.body()))
}

/// A JWT's claims, unchecked (the signature is the layers' business, not the test's).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&tokbind::proto::base64url::decode(payload.as_bytes()).unwrap()).unwrap()
}

/// The `reason` of a problem response ("" when there is none).
pub fn reason(res: &Response<Bytes>) -> String {
    let v: Value = serde_json::from_slice(res.body()).unwrap_or_default();
    v["reason"].as_str().unwrap_or_default().to_string()
}

/// `name=value` of the response's (first) `Set-Cookie`.
#[track_caller]
pub fn set_cookie_pair(res: &Response<Bytes>) -> String {
    let set = res
        .headers()
        .get(http::header::SET_COOKIE)
        .expect("a Set-Cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_string()
}

/// Assert a 400 problem response with this reason.
#[track_caller]
pub fn assert_rejected(res: &Response<Bytes>, reason: &str) {
    assert_eq!(res.status(), 400, "{:?}", res.body());
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body = json_body(res);
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["status"], 400);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

use std::future::IntoFuture as _;

/// A session app protected by every proof of possession at once, as the README sets it up:
/// Token Binding, DPoP and DBSC all feed one `BoundCookieLayer` that binds the
/// `tower-sessions` cookie `id`. `/login` signs in as alice (and asks DBSC browsers to
/// register), `/me` needs the session, `/session` says whose it is (`{"user": …}`), `/cycle`
/// gives it a new id (setting `id` again), `/step-up` forces a fresh DBSC proof (307 to
/// `/me?stepped-up`), `/logout` ends the session. The app is served behind a
/// `TokenBindingLayer` ([`Deployment`]), or a `ForwardedTokenBindingLayer` behind the
/// proxy.
pub fn bound_session_app(origin: &str, dbsc_cookie_lifetime: std::time::Duration) -> Router {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use tokbind::dbsc::{
        DbscLayer, EndDeviceBoundSession, RefreshSkipped, RequireFreshProof,
        StartDeviceBoundSession,
    };
    use tokbind::dpop::{DpopLayer, DpopVerifier};
    use tokbind::proto::FreshnessPolicy;
    use tokbind::tower::cookie::{BoundCookieLayer, CookieKeys, UnprovenClients};
    use tower_sessions::cookie::SameSite;
    use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

    async fn login(session: Session) -> impl IntoResponse {
        session.insert("user", "alice").await.unwrap();
        (
            Extension(StartDeviceBoundSession::default()),
            "welcome, alice",
        )
    }
    async fn me(session: Session, skipped: Option<Extension<RefreshSkipped>>) -> impl IntoResponse {
        match (session.get::<String>("user").await.ok().flatten(), skipped) {
            (Some(user), _) => (StatusCode::OK, user),
            // The browser says why it brought no short-lived cookie.
            (None, Some(Extension(RefreshSkipped(skipped)))) => {
                let why: Vec<String> = skipped
                    .iter()
                    .map(|s| format!("{} ({})", s.session_id, s.reason.token()))
                    .collect();
                let why = why.join(", ");
                (
                    StatusCode::UNAUTHORIZED,
                    format!("no session; refresh skipped: {why}"),
                )
            }
            (None, None) => (StatusCode::UNAUTHORIZED, "no session".to_string()),
        }
    }
    async fn step_up() -> impl IntoResponse {
        (
            StatusCode::TEMPORARY_REDIRECT,
            Extension(RequireFreshProof),
            [(header::LOCATION, "/me?stepped-up")],
        )
    }
    /// `{"user": …}`: what the session lookup found, always a 200.
    async fn user(session: Session) -> Json<Value> {
        Json(json!({"user": session.get::<String>("user").await.ok().flatten()}))
    }
    /// A new session id for the same session (as after a privilege change): `id` is set
    /// again.
    async fn cycle(session: Session) -> Json<Value> {
        session.cycle_id().await.unwrap();
        Json(json!({"user": session.get::<String>("user").await.ok().flatten()}))
    }
    async fn logout(session: Session) -> impl IntoResponse {
        session.flush().await.unwrap();
        (Extension(EndDeviceBoundSession), "bye")
    }

    let keys = CookieKeys::generate().unwrap();
    let dbsc = DbscLayer::new(keys.clone(), origin)
        .cookie_lifetime(dbsc_cookie_lifetime)
        .rebind_cookie("id", "Path=/; Secure; HttpOnly; SameSite=Lax")
        .allowed_refresh_initiators(["*.tokbind.test"]);
    let cookies = BoundCookieLayer::new(keys)
        .only(["id"])
        .unproven_clients(UnprovenClients::IssueUnbound)
        .accept_proofs(FreshnessPolicy::Within(dbsc.proof_window()));
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Html("<!doctype html><title>home</title>home") }),
        )
        .route("/login", get(login))
        .route("/me", get(me))
        .route("/step-up", get(step_up))
        .route("/logout", get(logout))
        .route("/session", get(user))
        .route("/cycle", get(cycle))
        .layer(
            SessionManagerLayer::new(MemoryStore::default())
                .with_secure(true)
                .with_same_site(SameSite::Lax),
        )
        .layer(cookies)
        .layer(dbsc)
        .layer(DpopLayer::new(DpopVerifier::new(), origin).unwrap())
}

/// The `Cookie` header exactly as the application receives it.
pub async fn echo_cookie(headers: http::HeaderMap) -> String {
    headers
        .get(http::header::COOKIE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A token endpoint stand-in. A `POST` issues an access token for `audience` bound to the
/// first key the request proved (`cnf.tbh`, `cnf.jkt` or `cnf.x5t#S256`) and a refresh
/// token bound to the same key, as `{"access_token", "token_type", "refresh_token"}`; 400
/// when it proved none. With the form `grant_type=refresh_token&refresh_token=…` the
/// refresh token must be one it issued, presented with its key (400 `invalid_grant` with
/// the reason otherwise).
pub fn bound_token_endpoint(
    issuer: Arc<tokbind::oauth::TokenIssuer>,
    audience: &'static str,
) -> axum::routing::MethodRouter {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::response::IntoResponse;
    use tokbind::oauth::cnf::Confirmation;
    use tokbind::oauth::{BoundGrant, CnfPolicy};
    use tokbind::proto::{Mechanism, ProvenKeys};

    let grants: Arc<Mutex<HashMap<String, BoundGrant>>> = Arc::default();
    axum::routing::post(move |req: axum::extract::Request| async move {
        let keys = req
            .extensions()
            .get::<ProvenKeys>()
            .cloned()
            .unwrap_or_default();
        let body = axum::body::to_bytes(req.into_body(), 4096)
            .await
            .unwrap_or_default();
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
            let grant = form
                .get("refresh_token")
                .and_then(|t| grants.lock().unwrap().get(t).cloned());
            let checked = grant.map(|g| g.check(&keys, CnfPolicy::Required));
            if let Some(reason) = match checked {
                None => Some("unknown_refresh_token"),
                Some(Err(e)) => Some(e.reason()),
                Some(Ok(())) => None,
            } {
                let body = json!({"error": "invalid_grant", "reason": reason});
                return (http::StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
        }
        let key = keys.iter().next();
        let (Some(key), Some(cnf)) = (key, key.and_then(Confirmation::for_key)) else {
            return (http::StatusCode::BAD_REQUEST, "prove a key").into_response();
        };
        let lifetime = std::time::Duration::from_secs(300);
        let token = issuer
            .token_with_cnf(
                "alice",
                audience,
                lifetime,
                None,
                Some(cnf),
                Default::default(),
            )
            .unwrap();
        let token_type = if key.mechanism() == Mechanism::Dpop {
            "DPoP"
        } else {
            "Bearer"
        };
        let refresh = BoundGrant::issue(&keys);
        let refresh_token = refresh.value.clone();
        grants
            .lock()
            .unwrap()
            .insert(refresh_token.clone(), refresh);
        Json(json!({
            "access_token": token,
            "token_type": token_type,
            "refresh_token": refresh_token,
        }))
        .into_response()
    })
}
