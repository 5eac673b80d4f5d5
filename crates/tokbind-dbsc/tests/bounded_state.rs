//! What an attacker can make the DBSC layer keep or do stays bounded, and a full store
//! never turns a login into a 503; a retired login cookie stays retired for as long as its
//! session refreshes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use tokbind_dbsc::{DbscLayer, MemoryDbscStore, RefreshSkipped, StartDeviceBoundSession};
use tokbind_testkit::DbscBrowser;
use tower::{Layer as _, Service, ServiceExt as _, service_fn};
use tower_tokbind::cookie::CookieKeys;

/// The application: `/login` sets the login cookie `id` (issued unbound, as a
/// `BoundCookieLayer` with `IssueUnbound` sets it) and asks to register; every other path
/// answers with the `Cookie` header it received and how many skipped refreshes it was told
/// of.
fn app(
    keys: CookieKeys,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future = impl Send>
+ Clone
+ Send
+ 'static {
    service_fn(move |req: Request<Body>| {
        let keys = keys.clone();
        async move {
            if req.uri().path() == "/login" {
                let mut res = Response::new(Body::from("welcome"));
                let cookie = format!("id={}; Path=/", keys.bind(None, "id", "session-1"));
                res.headers_mut()
                    .insert(SET_COOKIE, cookie.parse().unwrap());
                res.extensions_mut()
                    .insert(StartDeviceBoundSession::default());
                return Ok(res);
            }
            let seen = req
                .headers()
                .get(COOKIE)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let skipped = req
                .extensions()
                .get::<RefreshSkipped>()
                .map_or(0, |s| s.0.len());
            let mut res = Response::new(Body::from(seen));
            res.headers_mut()
                .insert("x-skipped", skipped.to_string().parse().unwrap());
            Ok(res)
        }
    })
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

async fn send<S>(svc: &mut S, req: Request<Body>) -> Response<Vec<u8>>
where
    S: Service<Request<Body>>,
    S::Response: Into<Response<http_body_util::Either<Body, http_body_util::Full<bytes::Bytes>>>>,
    S::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt as _;
    let res: Response<_> = svc.ready().await.unwrap().call(req).await.unwrap().into();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    Response::from_parts(parts, body)
}

/// The value of `header`'s `challenge="…"` (or its leading sf-string).
fn challenge<B>(res: &Response<B>, header: &str) -> String {
    let v = res.headers()[header].to_str().unwrap();
    let start = v
        .find("challenge=\"")
        .map_or(1, |i| i + "challenge=\"".len());
    v[start..].split('"').next().unwrap().to_string()
}

fn set_cookie<B>(res: &Response<B>, name: &str) -> Option<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
}

#[tokio::test]
async fn a_full_store_leaves_logins_working_without_the_offer_to_register() {
    let keys = CookieKeys::generate().unwrap();
    let mut svc = DbscLayer::new(keys.clone(), "https://app.example")
        .rebind_cookie("id", "Path=/")
        .store(Arc::new(MemoryDbscStore::with_capacity(4)))
        .layer(app(keys));
    let mut offered = 0;
    for _ in 0..12 {
        let res = send(&mut svc, request("GET", "/login", &[])).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "a login answered {:?}",
            res.status()
        );
        assert!(set_cookie(&res, "id").is_some(), "the login cookie is set");
        offered += usize::from(res.headers().contains_key("secure-session-registration"));
    }
    assert_eq!(
        offered, 4,
        "registration is offered while the store has room"
    );
}

#[tokio::test]
async fn a_huge_secure_session_skipped_header_is_read_only_so_far() {
    let keys = CookieKeys::generate().unwrap();
    let mut svc = DbscLayer::new(keys.clone(), "https://app.example").layer(app(keys));
    let members: Vec<String> = (0..10_000)
        .map(|i| format!("server_error;session_identifier=\"S{i}\""))
        .collect();
    let res = send(
        &mut svc,
        request(
            "GET",
            "/",
            &[("secure-session-skipped", &members.join(","))],
        ),
    )
    .await;
    assert_eq!(res.headers()["x-skipped"], "16");
}

#[tokio::test]
async fn a_retired_login_cookie_stays_retired_while_its_session_refreshes() {
    let keys = CookieKeys::generate().unwrap();
    let retirement = Duration::from_millis(1000);
    let mut svc = DbscLayer::new(keys.clone(), "https://app.example")
        .rebind_cookie("id", "Path=/")
        .login_cookie_retirement(retirement)
        .layer(app(keys));
    let browser = DbscBrowser::new();
    let login = send(&mut svc, request("GET", "/login", &[])).await;
    let unbound = set_cookie(&login, "id").unwrap();
    let proof = browser.proof(&challenge(&login, "secure-session-registration"), true);
    let registered = send(
        &mut svc,
        request(
            "POST",
            "/dbsc/register",
            &[("secure-session-response", &proof), ("cookie", &unbound)],
        ),
    )
    .await;
    assert_eq!(registered.status(), StatusCode::OK);
    let sid = serde_json::from_slice::<serde_json::Value>(registered.body()).unwrap()
        ["session_identifier"]
        .as_str()
        .unwrap()
        .to_string();
    let mut next = challenge(&registered, "secure-session-challenge");
    let presented = |res: Response<Vec<u8>>| String::from_utf8(res.into_body()).unwrap();
    assert_eq!(
        presented(send(&mut svc, request("GET", "/", &[("cookie", &unbound)])).await),
        "",
        "retired at registration"
    );

    // The browser refreshes before the retirement would lapse, and again after it would
    // have lapsed since registration: each refresh renews it.
    for _ in 0..2 {
        tokio::time::sleep(retirement * 6 / 10).await;
        let proof = browser.proof(&next, false);
        let res = send(
            &mut svc,
            request(
                "POST",
                "/dbsc/refresh",
                &[
                    ("sec-secure-session-id", &sid),
                    ("secure-session-response", &proof),
                ],
            ),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        next = challenge(&res, "secure-session-challenge");
    }
    assert_eq!(
        presented(send(&mut svc, request("GET", "/", &[("cookie", &unbound)])).await),
        "",
        "the retirement lapsed although the session kept refreshing"
    );
}
