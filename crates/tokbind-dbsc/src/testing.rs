//! What the endpoints' unit tests share: the layer over an application whose `/login`
//! starts a session, in front of a `MemoryDbscStore`, driven with `oneshot`.

use std::convert::Infallible;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::{Layer as _, ServiceExt as _, service_fn};
use tower_tokbind::cookie::CookieKeys;

use crate::{DbscLayer, StartDeviceBoundSession};

pub(crate) struct Site {
    pub(crate) layer: DbscLayer,
}

pub(crate) type Answer = Response<Bytes>;

impl Site {
    pub(crate) fn new() -> Self {
        Self {
            layer: DbscLayer::new(CookieKeys::generate().unwrap(), "https://app.example"),
        }
    }

    /// One request through the layer, to an application whose `/login` asks to register
    /// (with `authorization`, if the path has `?auth=…`).
    pub(crate) async fn send(&self, req: Request<Body>) -> Answer {
        let app = service_fn(|req: Request<Body>| async move {
            let mut res = Response::new(Body::from("app"));
            if req.uri().path() == "/login" {
                let authorization = req
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("auth="))
                    .map(str::to_string);
                res.extensions_mut()
                    .insert(StartDeviceBoundSession { authorization });
            }
            Ok::<_, Infallible>(res)
        });
        let res = self.layer.layer(app).oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
    }

    /// A login's registration challenge.
    pub(crate) async fn login(&self, path: &str) -> String {
        let res = self.send(request("GET", path, &[])).await;
        challenge(&res, "secure-session-registration")
    }
}

pub(crate) fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

/// The challenge in a `Secure-Session-Registration` or `Secure-Session-Challenge` value.
pub(crate) fn challenge(res: &Answer, header: &str) -> String {
    let v = res.headers()[header].to_str().unwrap();
    let start = v
        .find("challenge=\"")
        .map_or(1, |i| i + "challenge=\"".len());
    v[start..].split('"').next().unwrap().to_string()
}

/// The `reason` of a problem answer ("" for none).
pub(crate) fn reason(res: &Answer) -> String {
    serde_json::from_slice::<Value>(res.body())
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn json(res: &Answer) -> Value {
    serde_json::from_slice(res.body()).unwrap()
}
