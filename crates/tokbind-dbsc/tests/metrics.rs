//! With the `metrics` feature, `DbscLayer` counts its registrations and refreshes by
//! outcome. Proofs signed by real keys (`DbscBrowser`, as Chromium signs them) go through
//! the real layer, and the counters are read back from a recorder of the test's own.

use std::convert::Infallible;

use axum::body::Body;
use http::header::SET_COOKIE;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tokbind_dbsc::{DbscLayer, StartDeviceBoundSession};
use tokbind_testkit::DbscBrowser;
use tokbind_testkit::counters::{Counters, counts};
use tower::{Layer as _, ServiceExt as _, service_fn};
use tower_tokbind::cookie::CookieKeys;

struct Answer {
    status: StatusCode,
    res: Response<()>,
    body: serde_json::Value,
}

impl Answer {
    /// The challenge in a `Secure-Session-Registration` or `Secure-Session-Challenge` value.
    fn challenge(&self, header: &str) -> String {
        let v = self.res.headers()[header].to_str().unwrap();
        let start = v
            .find("challenge=\"")
            .map_or(1, |i| i + "challenge=\"".len());
        v[start..].split('"').next().unwrap().to_string()
    }
}

async fn send(layer: &DbscLayer, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let app = service_fn(|_req: Request<Body>| async {
        let mut res = Response::new(Body::from("welcome"));
        res.extensions_mut()
            .insert(StartDeviceBoundSession::default());
        Ok::<_, Infallible>(res)
    });
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = layer
        .layer(app)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        res: Response::from_parts(parts, ()),
        body: serde_json::from_slice(&body).unwrap_or_default(),
    }
}

/// A refresh of session `sid` with `proof`, and a cookie if any.
async fn refresh(layer: &DbscLayer, sid: &str, proof: &str, cookie: Option<&str>) -> StatusCode {
    let mut headers = vec![
        ("sec-secure-session-id", sid),
        ("secure-session-response", proof),
    ];
    headers.extend(cookie.map(|c| ("cookie", c)));
    send(layer, "POST", "/dbsc/refresh", &headers).await.status
}

#[tokio::test]
async fn registrations_and_refreshes_are_counted_by_outcome() {
    let layer = DbscLayer::new(CookieKeys::generate().unwrap(), "https://app.example");
    let (browser, thief) = (DbscBrowser::new(), DbscBrowser::new());
    let counters = Counters::install();
    let login = send(&layer, "GET", "/login", &[]).await;
    let proof = browser.proof(&login.challenge("secure-session-registration"), true);
    let register = [("secure-session-response", proof.as_str())];
    let registered = send(&layer, "POST", "/dbsc/register", &register).await;
    assert_eq!(registered.status, StatusCode::OK);
    let sid = registered.body["session_identifier"]
        .as_str()
        .unwrap()
        .to_string();
    let set = registered.res.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = set[..set.find(';').unwrap()].to_string();
    // The challenge is used up; a registration without a proof is refused too.
    let again = send(&layer, "POST", "/dbsc/register", &register).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let bare = send(&layer, "POST", "/dbsc/register", &[]).await;
    assert_eq!(bare.status, StatusCode::BAD_REQUEST);

    let ask = [("sec-secure-session-id", sid.as_str())];
    let asked = send(&layer, "POST", "/dbsc/refresh", &ask).await;
    assert_eq!(asked.status, StatusCode::FORBIDDEN);
    let next = asked.challenge("secure-session-challenge");
    let good = browser.proof(&next, false);
    assert_eq!(refresh(&layer, &sid, &good, None).await, StatusCode::OK);
    // Another key's signature, from someone who knows only the session id.
    let forged = thief.proof(&next, false);
    let res = refresh(&layer, &sid, &forged, None).await;
    assert_eq!(res, StatusCode::UNAUTHORIZED);
    // Another key's signature with the session's cookie: stolen, so the session
    // ends, and the next refresh is told so.
    let res = refresh(&layer, &sid, &forged, Some(&cookie)).await;
    assert_eq!(res, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&layer, &sid, &good, None).await, StatusCode::OK);
    assert_eq!(
        counters.by_outcome("tokbind_dbsc_registrations_total"),
        counts([
            ("accepted", 1),
            ("dbsc_proof_missing", 1),
            ("dbsc_unknown_challenge", 1),
        ])
    );
    assert_eq!(
        counters.by_outcome("tokbind_dbsc_refreshes_total"),
        counts([
            ("accepted", 1),
            ("dbsc_challenge", 1),
            ("dbsc_proof_refused", 1),
            ("session_ended", 1),
            ("stolen_cookie", 1),
        ])
    );
}
