//! RFC 8473 §5.3 end to end: a Token Consumer's redirect with
//! `Include-Referred-Token-Binding-ID` makes the client send a referred binding — the key
//! it uses with the consumer — to the Token Provider, for that one hop.

mod common;

use std::collections::HashMap;

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use tokbind::client::{Client, Fetched};
use tokbind::tls::ServerVerification;
use tokbind::tower::include_referred::IncludeReferredLayer;
use tokbind::tower::{ProvidedBinding, ReferredBinding, TokenBindingLayer};

/// The provider: shows the bindings it verified, or redirects on to `?next=`.
async fn provider(
    provided: Option<ProvidedBinding>,
    referred: Option<ReferredBinding>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(next) = q.get("next") {
        return Redirect::to(next).into_response();
    }
    let tbh = |id: &tokbind::proto::TokenBindingId| id.tbh().to_string();
    axum::Json(serde_json::json!({
        "provided": provided.map(|p| tbh(&p.0)),
        "referred": referred.map(|r| tbh(&r.0)),
    }))
    .into_response()
}

/// The consumer: redirects to `?to=`, or answers 200 with the header set by hand.
async fn consumer(Query(q): Query<HashMap<String, String>>) -> Response {
    match q.get("to") {
        Some(to) => Redirect::to(to).into_response(),
        None => (
            StatusCode::OK,
            [("include-referred-token-binding-id", "true")],
            "not a redirect",
        )
            .into_response(),
    }
}

fn provider_app() -> Router {
    Router::new()
        .route("/", get(provider))
        .layer(TokenBindingLayer::new())
}

fn consumer_app(include: IncludeReferredLayer) -> Router {
    Router::new()
        .route("/", get(consumer))
        .layer(include)
        .layer(TokenBindingLayer::new())
}

fn client_for(
    servers: &[&Server],
    f: impl FnOnce(tokbind::client::ClientBuilder) -> tokbind::client::ClientBuilder,
) -> Client {
    let roots: Vec<u8> = servers
        .iter()
        .flat_map(|s| s.cert.cert_pem.clone())
        .collect();
    f(Client::builder().server_verification(ServerVerification::Roots(roots)))
        .build()
        .unwrap()
}

async fn fetch(client: &Client, url: String) -> Fetched {
    client
        .fetch(
            http::Request::get(url)
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await
        .unwrap()
}

/// The client's key for `server`'s site (its IP address here).
fn key_tbh(client: &Client, server: &Server) -> String {
    client
        .key_for_host(
            &server.addr.ip().to_string(),
            tokbind::proto::KeyParameters::ECDSAP256,
        )
        .unwrap()
        .token_binding_id()
        .tbh()
        .to_string()
}

/// Servers on different loopback addresses are different sites, with different keys.
async fn start_at(ip: &str, app: Router) -> Server {
    start_app_at(format!("{ip}:0").parse().unwrap(), |b| b, app).await
}

#[tokio::test]
async fn redirect_with_the_header_reveals_the_consumer_key_to_the_provider_once() {
    let idp = start_at("127.0.0.2", provider_app()).await;
    let rp = start_app(
        |b| b,
        consumer_app(IncludeReferredLayer::for_redirects_to([idp.base()]).unwrap()),
    )
    .await;
    let client = client_for(&[&rp, &idp], |b| b);

    // RP → 302 (Include-Referred) → IdP, which redirects back to the RP → RP answers 200.
    let back = format!("{}/?", rp.base());
    let to_idp = format!("{}/?next={}", idp.base(), urlencode(&back));
    let fetched = fetch(&client, format!("{}/?to={}", rp.base(), urlencode(&to_idp))).await;
    let hops = &fetched.hops;
    assert_eq!(hops.len(), 3, "{hops:?}");
    assert!(hops[0].include_referred && hops[0].status.is_redirection());
    let rp_key = key_tbh(&client, &rp);
    assert_eq!(
        hops[1].referred.map(|t| t.to_string()),
        Some(rp_key.clone()),
        "referred = the RP key"
    );
    assert_eq!(
        hops[1].provided.map(|t| t.to_string()),
        Some(key_tbh(&client, &idp)),
        "provided = the IdP key"
    );
    assert_ne!(key_tbh(&client, &idp), rp_key, "one key per site");
    assert!(!hops[1].include_referred, "the IdP's redirect did not ask");
    assert_eq!(
        hops[2].referred, None,
        "one hop only: nothing referred on the way back"
    );

    // And the provider verified it: the same flow, stopping at the IdP.
    let fetched = fetch(
        &client,
        format!(
            "{}/?to={}",
            rp.base(),
            urlencode(&format!("{}/", idp.base()))
        ),
    )
    .await;
    let body = json_body(&fetched.response);
    assert_eq!(body["referred"], rp_key.as_str());
    assert_eq!(body["provided"], key_tbh(&client, &idp).as_str());
}

#[tokio::test]
async fn no_referred_without_the_header_or_for_other_targets() {
    let idp = start_at("127.0.0.2", provider_app()).await;
    let idp_url = format!("{}/", idp.base());
    // The consumer only asks for redirects to some other origin.
    let rp = start_app(
        |b| b,
        consumer_app(
            IncludeReferredLayer::for_redirects_to(["https://elsewhere.example"]).unwrap(),
        ),
    )
    .await;
    let client = client_for(&[&rp, &idp], |b| b);
    let fetched = fetch(
        &client,
        format!("{}/?to={}", rp.base(), urlencode(&idp_url)),
    )
    .await;
    assert!(!fetched.hops[0].include_referred);
    assert!(json_body(&fetched.response)["referred"].is_null());

    // A 200 carrying the header is not a redirect: ignored.
    let rp = start_app(
        |b| b,
        consumer_app(IncludeReferredLayer::for_all_redirects()),
    )
    .await;
    let client = client_for(&[&rp, &idp], |b| b);
    let fetched = fetch(&client, format!("{}/", rp.base())).await;
    assert_eq!(fetched.response.status(), 200);
    assert!(
        fetched
            .response
            .headers()
            .contains_key("include-referred-token-binding-id")
    );
    assert!(!fetched.hops[0].include_referred, "ignored on non-3xx");
}

#[tokio::test]
async fn chains_are_hop_by_hop() {
    // RP → IdP1 → IdP2, each redirect asking: IdP2 gets IdP1's key as referred, not the RP's.
    let idp2 = start_at("127.0.0.3", provider_app()).await;
    let idp1 = start_app(
        |b| b,
        Router::new()
            .route("/", get(provider))
            .layer(IncludeReferredLayer::for_all_redirects())
            .layer(TokenBindingLayer::new()),
    )
    .await;
    let rp = start_app(
        |b| b,
        consumer_app(IncludeReferredLayer::for_all_redirects()),
    )
    .await;
    let client = client_for(&[&rp, &idp1, &idp2], |b| b);
    let to_idp2 = format!("{}/", idp2.base());
    let to_idp1 = format!("{}/?next={}", idp1.base(), urlencode(&to_idp2));
    let fetched = fetch(
        &client,
        format!("{}/?to={}", rp.base(), urlencode(&to_idp1)),
    )
    .await;
    assert_eq!(fetched.hops.len(), 3);
    assert_eq!(
        fetched.hops[1].referred.map(|t| t.to_string()),
        Some(key_tbh(&client, &rp))
    );
    assert_eq!(
        fetched.hops[2].referred.map(|t| t.to_string()),
        Some(key_tbh(&client, &idp1))
    );
    assert_eq!(
        json_body(&fetched.response)["referred"],
        key_tbh(&client, &idp1).as_str()
    );
}

#[tokio::test]
async fn ignored_when_the_request_carried_no_token_binding() {
    let idp = start_at("127.0.0.2", provider_app()).await;
    let rp = start_app(
        |b| b,
        consumer_app(IncludeReferredLayer::for_all_redirects()),
    )
    .await;
    let client = client_for(&[&rp, &idp], |b| b.tls(|t| t.offer_token_binding(false)));
    let idp_url = format!("{}/", idp.base());
    let fetched = fetch(
        &client,
        format!("{}/?to={}", rp.base(), urlencode(&idp_url)),
    )
    .await;
    assert!(!fetched.hops[0].include_referred);
    assert_eq!(fetched.hops[1].referred, None);
}

#[tokio::test]
async fn legacy_header_name_only_when_configured() {
    let idp = start_at("127.0.0.2", provider_app()).await;
    let idp_url = format!("{}/", idp.base());
    // A server that emits only the draft name.
    async fn legacy(Query(q): Query<HashMap<String, String>>) -> Response {
        let mut h = HeaderMap::new();
        h.insert("include-referer-token-binding-id", "TRUE".parse().unwrap());
        (h, Redirect::to(&q["to"])).into_response()
    }
    let rp = start_app(
        |b| b,
        Router::new()
            .route("/", get(legacy))
            .layer(TokenBindingLayer::new()),
    )
    .await;
    let url = format!("{}/?to={}", rp.base(), urlencode(&idp_url));
    let strict = client_for(&[&rp, &idp], |b| b);
    assert!(json_body(&fetch(&strict, url.clone()).await.response)["referred"].is_null());
    let lenient = client_for(&[&rp, &idp], |b| b.accept_legacy_include_referer(true));
    assert_eq!(
        json_body(&fetch(&lenient, url).await.response)["referred"],
        key_tbh(&lenient, &rp).as_str()
    );

    // The layer emits both names when asked to.
    let both = start_app(
        |b| b,
        consumer_app(IncludeReferredLayer::for_all_redirects().legacy_header_name(true)),
    )
    .await;
    let client = client_for(&[&both, &idp], |b| b.max_redirects(0));
    let res = fetch(
        &client,
        format!("{}/?to={}", both.base(), urlencode(&idp_url)),
    )
    .await
    .response;
    assert_eq!(res.headers()["include-referred-token-binding-id"], "true");
    assert_eq!(res.headers()["include-referer-token-binding-id"], "true");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
