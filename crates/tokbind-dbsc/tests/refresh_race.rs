//! A refresh challenge is used up in one step: two refreshes racing with one challenge —
//! at one instance, or at two sharing the store — cannot both mint a short-lived cookie.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use http::header::SET_COOKIE;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use tokbind_dbsc::{DbscLayer, DbscStore, MemoryDbscStore, StartDeviceBoundSession, StoreError};
use tokbind_testkit::DbscBrowser;
use tower::{Layer as _, Service, ServiceExt as _, service_fn};
use tower_tokbind::cookie::CookieKeys;

/// A shared store with a round trip's worth of latency on every call, so that two requests
/// in flight interleave as they would against Redis.
#[derive(Default)]
struct SlowStore(MemoryDbscStore);

#[async_trait]
impl DbscStore for SlowStore {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.put(key, value, ttl).await
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.take(key).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.get(key).await
    }
    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.0.remove(key).await
    }
}

fn post(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// The challenge in a `Secure-Session-Registration` or `Secure-Session-Challenge` value.
fn challenge<B>(res: &Response<B>, header: &str) -> String {
    let v = res.headers()[header].to_str().unwrap();
    let start = v
        .find("challenge=\"")
        .map_or(1, |i| i + "challenge=\"".len());
    v[start..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_refreshes_answering_one_challenge_mint_one_cookie() {
    let store: Arc<dyn DbscStore> = Arc::new(SlowStore::default());
    // Two instances sharing the store.
    let instance = || {
        DbscLayer::new(CookieKeys::generate().unwrap(), "https://app.example")
            .store(Arc::clone(&store))
            .layer(service_fn(|_req: Request<Body>| async {
                let mut res = Response::new(Body::from("welcome"));
                res.extensions_mut()
                    .insert(StartDeviceBoundSession::default());
                Ok::<_, Infallible>(res)
            }))
    };
    let (mut one, mut two) = (instance(), instance());
    let browser = DbscBrowser::new();

    let login = one
        .ready()
        .await
        .unwrap()
        .call(Request::new(Body::empty()))
        .await
        .unwrap();
    let registration = challenge(&login, "secure-session-registration");
    let proof = browser.proof(&registration, true);
    let registered = one
        .ready()
        .await
        .unwrap()
        .call(post(
            "/dbsc/register",
            &[("secure-session-response", &proof)],
        ))
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);
    let body = registered.into_body().collect().await.unwrap().to_bytes();
    let sid = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["session_identifier"]
        .as_str()
        .unwrap()
        .to_string();
    // The registration's answer sent the first refresh challenge ahead; ask again to get
    // it without the body (a proof-less refresh is answered 403 with the newest one).
    let ask = one
        .ready()
        .await
        .unwrap()
        .call(post("/dbsc/refresh", &[("sec-secure-session-id", &sid)]))
        .await
        .unwrap();
    assert_eq!(ask.status(), StatusCode::FORBIDDEN);
    let next = challenge(&ask, "secure-session-challenge");

    // The same signed proof, to both instances at once.
    let proof = browser.proof(&next, false);
    let refresh = || {
        post(
            "/dbsc/refresh",
            &[
                ("sec-secure-session-id", &sid),
                ("secure-session-response", &proof),
            ],
        )
    };
    let (a, b) = tokio::join!(
        one.ready().await.unwrap().call(refresh()),
        two.ready().await.unwrap().call(refresh()),
    );
    let minted: Vec<bool> = [a.unwrap(), b.unwrap()]
        .iter()
        .map(|r| r.status() == StatusCode::OK && r.headers().contains_key(SET_COOKIE))
        .collect();
    assert_eq!(
        minted.iter().filter(|m| **m).count(),
        1,
        "exactly one refresh mints a cookie: {minted:?}"
    );
}
